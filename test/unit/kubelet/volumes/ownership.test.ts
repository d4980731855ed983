import { chmod, lstat, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { rootMatches, setVolumeOwnership } from "../../../../kubelet/volumes/ownership.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "deckhand-owner-"));
  await mkdir(join(dir, "sub"));
  await writeFile(join(dir, "sub", "f"), "x", { mode: 0o600 });
  await symlink("sub/f", join(dir, "link"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const modeOf = async (p: string): Promise<number> => (await lstat(p)).mode & 0o7777;
const gidOf = async (p: string): Promise<number> => (await lstat(p)).gid;

describe("setVolumeOwnership", () => {
  it("gives every file the group with group read/write, folders execute and setgid", async () => {
    await setVolumeOwnership(dir, 2000, false, undefined);
    for (const p of [dir, join(dir, "sub"), join(dir, "sub", "f"), join(dir, "link")]) expect(await gidOf(p)).toBe(2000);
    expect(await modeOf(join(dir, "sub", "f"))).toBe(0o660);
    expect((await modeOf(join(dir, "sub"))) & 0o2070).toBe(0o2070);
    expect(await rootMatches(dir, 2000, false)).toBe(true);
  });

  it("gives read-only volumes group read only", async () => {
    await setVolumeOwnership(dir, 2000, true, "Always");
    expect(await modeOf(join(dir, "sub", "f"))).toBe(0o640);
  });

  it("skips the walk under OnRootMismatch when the root already matches", async () => {
    await setVolumeOwnership(dir, 2000, false, "OnRootMismatch");
    await chmod(join(dir, "sub", "f"), 0o600);
    await setVolumeOwnership(dir, 2000, false, "OnRootMismatch");
    expect(await modeOf(join(dir, "sub", "f"))).toBe(0o600);
    await setVolumeOwnership(dir, 2000, false, "Always");
    expect(await modeOf(join(dir, "sub", "f"))).toBe(0o660);
  });
});
