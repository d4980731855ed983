/**
 * The mounts the volume manager makes itself: tmpfs for memory-backed emptyDirs and for the secret, projected
 * and downwardAPI volumes (upstream wraps those in a memory emptyDir so their content never touches the disk).
 * An interface so the volume manager is unit tested without mounting; the real one runs `mount`/`umount`
 * (util-linux) and reads /proc/self/mountinfo.
 */
import { readFile } from "node:fs/promises";
import { run } from "../../src-shared/exec.ts";

export interface Mounter {
  /** Mounts a tmpfs of at most `sizeBytes` (undefined: the kernel's default, half the RAM) at `path`. */
  mountTmpfs(path: string, sizeBytes: number | undefined, signal?: AbortSignal): Promise<void>;
  unmount(path: string, signal?: AbortSignal): Promise<void>;
  /** Mount points at or under `dir`, deepest first. */
  mountPointsUnder(dir: string): Promise<string[]>;
}

/** Decodes the octal escapes mountinfo uses for spaces and the like (`\040`). */
function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points listed in a mountinfo text that are `dir` or under it, deepest first. Pure. */
export function mountPointsIn(mountinfo: string, dir: string): string[] {
  const base = dir.replace(/\/+$/, "");
  const out = new Set<string>();
  for (const line of mountinfo.split("\n")) {
    const mp = line.split(" ")[4];
    if (mp === undefined) continue;
    const path = unescapeMountPath(mp);
    if (path === base || path.startsWith(`${base}/`)) out.add(path);
  }
  return [...out].sort((a, b) => b.length - a.length);
}

export class SystemMounter implements Mounter {
  async mountTmpfs(path: string, sizeBytes: number | undefined, signal?: AbortSignal): Promise<void> {
    const options = ["mode=0777", ...(sizeBytes !== undefined && sizeBytes > 0 ? [`size=${Math.ceil(sizeBytes)}`] : [])].join(",");
    await run("mount", ["-t", "tmpfs", "-o", options, "tmpfs", path], { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
  }

  async unmount(path: string, signal?: AbortSignal): Promise<void> {
    await run("umount", [path], { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
  }

  async mountPointsUnder(dir: string): Promise<string[]> {
    return mountPointsIn(await readFile("/proc/self/mountinfo", "utf8"), dir);
  }
}
