/**
 * The disk usage of a directory tree as upstream measures volumes, logs and pod directories
 * (pkg/volume/util/fs DiskUsage, what `du` does): the allocated blocks (st_blocks × 512) and the count of
 * distinct inodes, the top directory included, hard links counted once, symlinks not followed, other
 * filesystems mounted below not entered (`du -x`). Entries that vanish during the walk are skipped.
 *
 * Asynchronous (a volume can hold many files): one lstat per entry on the thread pool.
 */
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

export interface DiskUsage {
  usedBytes: number;
  inodesUsed: number;
}

/** Usage of `path` (a file or a directory tree); undefined when `path` does not exist. */
export async function diskUsage(path: string, signal?: AbortSignal): Promise<DiskUsage | undefined> {
  let top;
  try {
    top = await lstat(path);
  } catch {
    return undefined;
  }
  const seen = new Set<number>([top.ino]);
  const usage: DiskUsage = { usedBytes: top.blocks * 512, inodesUsed: 1 };
  if (!top.isDirectory()) return usage;
  const dev = top.dev;
  const stack = [path];
  while (stack.length > 0) {
    signal?.throwIfAborted();
    const dir = stack.pop() as string;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    const stats = await Promise.all(names.map((n) => lstat(join(dir, n)).then((s) => [n, s] as const, () => undefined)));
    for (const e of stats) {
      if (e === undefined) continue;
      const [name, s] = e;
      if (s.dev !== dev || seen.has(s.ino)) continue;
      seen.add(s.ino);
      usage.usedBytes += s.blocks * 512;
      usage.inodesUsed++;
      if (s.isDirectory()) stack.push(join(dir, name));
    }
  }
  return usage;
}
