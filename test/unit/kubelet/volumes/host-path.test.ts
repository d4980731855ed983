import { mkdtemp, rm, stat, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkHostPathType } from "../../../../kubelet/volumes/host-path.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "deckhand-hostpath-"));
  await writeFile(join(dir, "file"), "x");
  await mkdir(join(dir, "folder"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("checkHostPathType", () => {
  it("accepts what matches and leaves an unset type unchecked", async () => {
    await checkHostPathType(join(dir, "folder"), "Directory");
    await checkHostPathType(join(dir, "file"), "File");
    await checkHostPathType("/dev/null", "CharDevice");
    await checkHostPathType(join(dir, "missing"), "");
    await checkHostPathType(join(dir, "missing"), undefined);
  });

  it("creates what the *OrCreate types ask for", async () => {
    await checkHostPathType(join(dir, "new", "folder"), "DirectoryOrCreate");
    expect((await stat(join(dir, "new", "folder"))).isDirectory()).toBe(true);
    await checkHostPathType(join(dir, "new2", "file"), "FileOrCreate");
    expect((await stat(join(dir, "new2", "file"))).isFile()).toBe(true);
  });

  it("fails each type clearly", async () => {
    await expect(checkHostPathType(join(dir, "missing"), "Directory")).rejects.toThrow(`hostPath type check failed: ${join(dir, "missing")} is not a directory`);
    await expect(checkHostPathType(join(dir, "folder"), "File")).rejects.toThrow(`hostPath type check failed: ${join(dir, "folder")} is not a file`);
    await expect(checkHostPathType(join(dir, "file"), "Socket")).rejects.toThrow("is not a socket file");
    await expect(checkHostPathType(join(dir, "file"), "CharDevice")).rejects.toThrow("is not a character device");
    await expect(checkHostPathType(join(dir, "file"), "BlockDevice")).rejects.toThrow("is not a block device");
    await expect(checkHostPathType(join(dir, "file"), "DirectoryOrCreate")).rejects.toThrow(`path ${join(dir, "file")} exists but is not a directory`);
    await expect(checkHostPathType(join(dir, "folder"), "FileOrCreate")).rejects.toThrow(`path ${join(dir, "folder")} exists but is not a file`);
    await expect(checkHostPathType(join(dir, "file"), "Pipe")).rejects.toThrow('hostPath.type: Unsupported value: "Pipe"');
  });
});
