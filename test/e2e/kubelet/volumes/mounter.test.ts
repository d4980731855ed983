/**
 * The real mount helper (kubelet/volumes/mounter.ts) on this machine's kernel: tmpfs mounts and pinned subPath
 * binds, read back from /proc/self/mountinfo and the files themselves. Everything lives in a fresh folder of
 * this run and is unmounted in teardown.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SystemMounter } from "../../../../kubelet/volumes/mounter.ts";

const dir = mkdtempSync("/tmp/deckhand-mounter-");
const mounter = new SystemMounter();

afterAll(async () => {
  for (const mp of await mounter.mountPointsUnder(dir)) await mounter.unmount(mp);
  mounter.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("SystemMounter", () => {
  it("binds a checked subPath pinned: folders and files bound, a symlink anywhere on the walk refused", async () => {
    const vol = join(dir, "vol");
    mkdirSync(join(vol, "a", "b"), { recursive: true });
    writeFileSync(join(vol, "a", "b", "f"), "inside");
    mkdirSync(join(dir, "outside"));
    writeFileSync(join(dir, "outside", "f"), "outside");
    symlinkSync(join(dir, "outside"), join(vol, "link"));
    const target = (name: string, file = false): string => {
      const t = join(dir, name);
      if (file) writeFileSync(t, "");
      else mkdirSync(t);
      return t;
    };
    const folder = target("folder");
    await mounter.bindPinned(vol, "a/b", folder);
    expect(readFileSync(join(folder, "f"), "utf8")).toBe("inside");
    const file = target("file", true);
    await mounter.bindPinned(vol, "a/b/f", file);
    expect(readFileSync(file, "utf8")).toBe("inside");
    const whole = target("whole");
    await mounter.bindPinned(vol, "", whole);
    expect(readFileSync(join(whole, "a", "b", "f"), "utf8")).toBe("inside");
    // The symlink as the last element and as a folder on the way: neither is followed.
    const refusal = (rel: string, name: string): Promise<unknown> => mounter.bindPinned(vol, rel, target(name)).then(() => "bound", (err: unknown) => err);
    expect(await refusal("link", "last")).toMatchObject({ code: "InvalidArgument", message: `bind ${join(vol, "link")} at ${join(dir, "last")}: ELOOP` });
    expect(await refusal("link/f", "through")).toMatchObject({ code: "InvalidArgument", message: `bind ${join(vol, "link/f")} at ${join(dir, "through")}: ENOTDIR` });
    expect((await mounter.mountPointsUnder(dir)).sort()).toEqual([file, folder, whole].sort());
  });

  it("mounts and unmounts a sized tmpfs", async () => {
    const t = join(dir, "tmpfs");
    mkdirSync(t);
    await mounter.mountTmpfs(t, 1 << 20);
    const line = readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.split(" ")[4] === t);
    expect(line).toMatch(/ - tmpfs tmpfs .*size=1024k/);
    await mounter.unmount(t);
    expect(await mounter.mountPointsUnder(t)).toEqual([]);
  });
});
