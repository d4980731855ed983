/** A process's CPU time and RSS from /proc, for the benchmarks' kubelet figures. */
import { readFile } from "node:fs/promises";

export interface ProcStats {
  rssMiB: number;
  /** utime + stime, in ms (clock ticks of 10 ms: USER_HZ is 100 on Linux). */
  cpuMs: number;
}

export async function procStats(pid: number): Promise<ProcStats> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  // Fields after the command name (which may hold spaces), so utime and stime are the 12th and 13th.
  const stat = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]?.split(" ") ?? [];
  const ticks = Number(stat[11] ?? 0) + Number(stat[12] ?? 0);
  return { rssMiB: rssKiB / 1024, cpuMs: ticks * 10 };
}
