/**
 * Run by mounter.test.ts inside a mount namespace of its own (`unshare -m --propagation private`), so that the
 * mounts it makes, and whatever other tests do to the host's mount table meanwhile, never meet: the real mount
 * helper binds and refuses as the kubelet's would, and the outcome is printed as one JSON line.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SystemMounter } from "../../../../kubelet/volumes/mounter.ts";

const dir = mkdtempSync("/tmp/deckhand-mounter-");
const mounter = new SystemMounter();
// The helper runs detached (unref'd): keep this process alive until the requests are answered.
const alive = setInterval(() => undefined, 1000);
const outcome = async (p: Promise<void>): Promise<string> => p.then(() => "bound", (err: unknown) => `${(err as { code?: string }).code ?? "?"}: ${err instanceof Error ? err.message : String(err)}`);
try {
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
  const file = target("file", true);
  const whole = target("whole");
  const results = {
    folder: await outcome(mounter.bindPinned(vol, "a/b", folder)),
    folderContent: readFileSync(join(folder, "f"), "utf8"),
    file: await outcome(mounter.bindPinned(vol, "a/b/f", file)),
    fileContent: readFileSync(file, "utf8"),
    whole: await outcome(mounter.bindPinned(vol, "", whole)),
    wholeContent: readFileSync(join(whole, "a", "b", "f"), "utf8"),
    last: (await outcome(mounter.bindPinned(vol, "link", target("last")))).replace(dir, "<dir>").replace(dir, "<dir>"),
    through: (await outcome(mounter.bindPinned(vol, "link/f", target("through")))).replace(dir, "<dir>").replace(dir, "<dir>"),
    mounts: (await mounter.mountPointsUnder(dir)).map((m) => m.replace(dir, "<dir>")).sort(),
  };
  const t = target("tmpfs");
  await mounter.mountTmpfs(t, 1 << 20);
  const tmpfsLine = readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.split(" ")[4] === t) ?? "";
  await mounter.unmount(t);
  const afterUnmount = await mounter.mountPointsUnder(t);
  console.log(JSON.stringify({ ...results, tmpfsLine: tmpfsLine.replace(dir, "<dir>"), afterUnmount }));
} finally {
  for (const mp of await mounter.mountPointsUnder(dir)) await mounter.unmount(mp).catch(() => undefined);
  mounter.close();
  clearInterval(alive);
  rmSync(dir, { recursive: true, force: true });
}
