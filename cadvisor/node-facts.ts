/**
 * Node figures of the Summary API read from procfs: the boot time (the node's startTime, /proc/stat btime)
 * and rlimit as upstream's pkg/kubelet/stats/pidlimit: maxpid = min(kernel.pid_max, kernel.threads-max),
 * curproc = the total of /proc/loadavg's fourth field ("2/3518" → 3518). Parsers pure; readers synchronous
 * (procfs, a few microseconds).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** btime of /proc/stat, in ms; undefined if absent. */
export function parseBootTime(procStat: string): number | undefined {
  const m = /^btime\s+(\d+)$/m.exec(procStat);
  return m?.[1] === undefined ? undefined : Number(m[1]) * 1000;
}

/** The process count of /proc/loadavg ("0.10 0.20 0.30 2/3518 12345" → 3518). */
export function parseLoadavgProcs(loadavg: string): number | undefined {
  const m = /^\S+\s+\S+\s+\S+\s+\d+\/(\d+)/.exec(loadavg.trim());
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

function readNumber(path: string): number | undefined {
  try {
    const v = Number(readFileSync(path, "utf8").trim());
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export function readBootTime(procRoot = "/proc"): number {
  try {
    return parseBootTime(readFileSync(join(procRoot, "stat"), "utf8")) ?? 0;
  } catch {
    return 0;
  }
}

export function readRlimit(procRoot = "/proc"): { maxpid?: number; curproc?: number } {
  const out: { maxpid?: number; curproc?: number } = {};
  const pidMax = readNumber(join(procRoot, "sys/kernel/pid_max"));
  const threadsMax = readNumber(join(procRoot, "sys/kernel/threads-max"));
  const max = pidMax === undefined ? threadsMax : threadsMax === undefined ? pidMax : Math.min(pidMax, threadsMax);
  if (max !== undefined) out.maxpid = max;
  try {
    const cur = parseLoadavgProcs(readFileSync(join(procRoot, "loadavg"), "utf8"));
    if (cur !== undefined) out.curproc = cur;
  } catch {
    // absent: curproc omitted
  }
  return out;
}
