/**
 * Disk usage of a folder tree, as upstream's volume metrics (`du`-like: allocated blocks × 512 and inodes, links
 * not followed, other filesystems not crossed). The eviction manager's source for pods' local storage (emptyDir
 * volumes on disk, container logs) while the stats collector does not report volume and log usage: read only when
 * a disk threshold or a local storage limit needs it.
 */
import { lstat, opendir } from "node:fs/promises";
import { join } from "node:path";

export interface DiskUsage {
  bytes: number;
  inodes: number;
}

/** The tree's usage; a missing folder is empty. Entries that vanish while walking are skipped. */
export async function diskUsage(path: string, signal?: AbortSignal): Promise<DiskUsage> {
  const out: DiskUsage = { bytes: 0, inodes: 0 };
  let root;
  try {
    root = await lstat(path);
  } catch {
    return out;
  }
  const walk = async (dir: string, dev: number): Promise<void> => {
    let d;
    try {
      d = await opendir(dir);
    } catch {
      return;
    }
    for await (const e of d) {
      signal?.throwIfAborted();
      const p = join(dir, e.name);
      let st;
      try {
        st = await lstat(p);
      } catch {
        continue;
      }
      out.inodes++;
      out.bytes += st.blocks * 512;
      if (st.isDirectory() && st.dev === dev) await walk(p, dev);
    }
  };
  out.inodes++;
  out.bytes += root.blocks * 512;
  if (root.isDirectory()) await walk(path, root.dev);
  return out;
}
