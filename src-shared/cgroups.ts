import { readFile, readdir, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseMountInfo } from "./mountinfo.ts";

/** One mounted cgroup hierarchy: a v1 controller set (cpu, memory, name=systemd...) or the v2 tree. */
export interface CgroupHierarchy {
  mountPoint: string;
  fsType: "cgroup" | "cgroup2";
  /** Super-block options as mounted (for v1 they name the controllers). */
  options: string;
}

/**
 * The cgroup hierarchies mounted under /sys/fs/cgroup, from /proc/self/mountinfo text. Handles v1, hybrid
 * (v1 controllers plus cgroup2 at /sys/fs/cgroup/unified) and pure v2 (cgroup2 at /sys/fs/cgroup).
 */
export function parseCgroupMounts(mountinfo: string): CgroupHierarchy[] {
  return parseMountInfo(mountinfo)
    .filter((m) => (m.fsType === "cgroup" || m.fsType === "cgroup2") && (m.mountPoint === "/sys/fs/cgroup" || m.mountPoint.startsWith("/sys/fs/cgroup/")))
    .map((m) => ({ mountPoint: m.mountPoint, fsType: m.fsType as CgroupHierarchy["fsType"], options: m.superOptions }));
}

export async function cgroupHierarchies(): Promise<CgroupHierarchy[]> {
  return parseCgroupMounts(await readFile("/proc/self/mountinfo", "utf8"));
}

/**
 * Removes a cgroup (an absolute path such as `/kubepods/besteffort/pod<uid>`) and its children from every
 * hierarchy, deepest first. A cgroup that still holds processes cannot be removed: the error says so.
 */
export async function removeCgroupTree(cgroupPath: string, hierarchies?: readonly CgroupHierarchy[], signal?: AbortSignal): Promise<void> {
  // Independent hierarchies, removed at once.
  await Promise.all((hierarchies ?? (await cgroupHierarchies())).map((h) => removeDepthFirst(join(h.mountPoint, cgroupPath), signal)));
}

async function removeDepthFirst(dir: string, signal?: AbortSignal): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  for (const e of entries) if (e.isDirectory()) await removeDepthFirst(join(dir, e.name), signal);
  // EBUSY right after the last process exits is normal while the kernel finishes with it: retry briefly.
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || attempt >= 20) throw err;
      await sleep(50, undefined, signal ? { signal } : {});
    }
  }
}
