/**
 * One cgroup's CPU, memory and PID figures from the text of its files, for cgroup v1 and v2, as runc's
 * libcontainer reads them and cAdvisor turns them into ContainerStats (google/cadvisor
 * container/libcontainer/handler.go setMemoryStats; runc libcontainer/cgroups/fs and fs2):
 *
 *   figure          cgroup v1                                      cgroup v2 (Documentation/admin-guide/cgroup-v2.rst)
 *   cpu total       cpuacct.usage (ns)                             cpu.stat usage_usec × 1000
 *   cpu user/sys    cpuacct.stat user/system (USER_HZ ticks: ×1e7) cpu.stat user_usec/system_usec × 1000
 *   cpu CFS         cpu.stat nr_periods/nr_throttled/throttled_time  cpu.stat nr_periods/nr_throttled/throttled_usec
 *   memory usage    memory.usage_in_bytes                          memory.current (root: MemTotal − MemFree)
 *   working set     usage − memory.stat total_inactive_file, ≥ 0   usage − memory.stat inactive_file, ≥ 0
 *   rss / cache     total_rss / total_cache                        anon / file
 *   page faults     pgfault, pgmajfault (the cgroup's own)         pgfault, pgmajfault (hierarchical)
 *   swap            total_swap                                     memory.swap.current
 *   limit           memory.limit_in_bytes                          memory.max ("max": none)
 *   pids            pids.current                                   pids.current
 *   block I/O       blkio.throttle.io_service{_bytes,d}_recursive  io.stat rbytes/wbytes/rios/wios
 *
 * A limit at or above 2^62 is "unlimited" (the kubelet's isMemoryUnlimited); v1 writes its unlimited as
 * 9223372036854771712. Pure functions of the files' text: the reader (cgroup-reader.ts) does the I/O.
 */
import { DeckhandError } from "../src-shared/errors.ts";

/** One cgroup at one instant. Absent fields were not readable (controller missing, file absent). */
export interface CgroupSample {
  /** Milliseconds since the epoch, when the files were read. */
  timeMs: number;
  cpu?: { usageNanos: number; userNanos?: number; systemNanos?: number; cfs?: CfsSample };
  memory?: MemorySample;
  pids?: { current: number };
  /** Block I/O per device (v1 blkio throttle counters, v2 io.stat). */
  io?: DeviceIo[];
}

/** CFS bandwidth control: enforcement periods elapsed and throttled, and the time throttled (cpu.stat). */
export interface CfsSample {
  periods: number;
  throttledPeriods: number;
  throttledNanos: number;
}

/** cpu.stat's CFS counters (v1: throttled_time in ns; v2: throttled_usec); undefined without nr_periods. */
export function cfsOf(kv: ReadonlyMap<string, number>): CfsSample | undefined {
  const periods = kv.get("nr_periods");
  if (periods === undefined) return undefined;
  const throttledNanos = kv.get("throttled_time") ?? (kv.get("throttled_usec") ?? 0) * 1000;
  return { periods, throttledPeriods: kv.get("nr_throttled") ?? 0, throttledNanos };
}

export interface DeviceIo {
  major: number;
  minor: number;
  /** /dev/<name> (the reader resolves it through /sys/dev/block), cAdvisor's `device` label. */
  device?: string;
  readBytes: number;
  writeBytes: number;
  reads: number;
  writes: number;
}

export interface MemorySample {
  usageBytes: number;
  workingSetBytes: number;
  rssBytes: number;
  cacheBytes: number;
  pageFaults: number;
  majorPageFaults: number;
  swapBytes?: number;
  /** Undefined when unlimited. */
  limitBytes?: number;
}

/** The kubelet's isMemoryUnlimited: a limit of 2^62 or more means none. */
export const UNLIMITED_MEMORY = 2 ** 62;

/** USER_HZ: cpuacct.stat counts in 1/100 s (runc's clockTicks). */
const NANOS_PER_TICK = 1e9 / 100;

/** "key value" lines (memory.stat, cpu.stat, cpuacct.stat) into a map; lines that do not parse are skipped. */
export function parseFlatKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const sp = line.indexOf(" ");
    if (sp <= 0) continue;
    const v = Number(line.slice(sp + 1).trim());
    if (Number.isFinite(v)) out.set(line.slice(0, sp), v);
  }
  return out;
}

/** A file holding one number; "max" (v2) is undefined. Throws on anything else, naming the file. */
export function parseSingleValue(text: string, file: string): number | undefined {
  const t = text.trim();
  if (t === "max") return undefined;
  const v = Number(t);
  if (t === "" || !Number.isFinite(v)) throw new DeckhandError("InvalidArgument", `cgroup file ${file}: cannot parse ${JSON.stringify(t.slice(0, 40))} as a number`);
  return v;
}

function limitOf(v: number | undefined): number | undefined {
  return v === undefined || v >= UNLIMITED_MEMORY ? undefined : v;
}

/** The text of the v1 files of one cgroup, by file name (undefined: not readable). */
export interface V1Files {
  "cpuacct.usage"?: string;
  "cpuacct.stat"?: string;
  "cpu.stat"?: string;
  "memory.usage_in_bytes"?: string;
  "memory.limit_in_bytes"?: string;
  "memory.stat"?: string;
  "pids.current"?: string;
  "blkio.throttle.io_service_bytes_recursive"?: string;
  "blkio.throttle.io_serviced_recursive"?: string;
}

/**
 * v1 blkio's throttle counters as runc reads them when the CFQ/BFQ files are empty (the default with blk-mq):
 * `MAJ:MIN Read|Write|Sync|Async|Discard|Total N` lines and a final `Total N`; bytes from
 * io_service_bytes_recursive, operations from io_serviced_recursive. Devices sorted by major, minor.
 */
export function parseBlkioV1(serviceBytes: string | undefined, serviced: string | undefined): DeviceIo[] {
  const devices = new Map<string, DeviceIo>();
  const take = (text: string | undefined, read: "readBytes" | "reads", write: "writeBytes" | "writes"): void => {
    for (const line of (text ?? "").split("\n")) {
      const m = /^(\d+):(\d+) (Read|Write) (\d+)$/.exec(line.trim());
      if (m === null) continue;
      const key = `${m[1]}:${m[2]}`;
      let d = devices.get(key);
      if (d === undefined) devices.set(key, (d = { major: Number(m[1]), minor: Number(m[2]), readBytes: 0, writeBytes: 0, reads: 0, writes: 0 }));
      d[m[3] === "Read" ? read : write] = Number(m[4]);
    }
  };
  take(serviceBytes, "readBytes", "writeBytes");
  take(serviced, "reads", "writes");
  return [...devices.values()].sort((a, b) => a.major - b.major || a.minor - b.minor);
}

/** v2 io.stat: `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N` per device (cgroup-v2.rst). */
export function parseIoStat(text: string): DeviceIo[] {
  const out: DeviceIo[] = [];
  for (const line of text.split("\n")) {
    const [dev, ...kvs] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? "");
    if (m === null) continue;
    const kv = new Map(kvs.map((x) => x.split("=") as [string, string]));
    const n = (k: string): number => Number(kv.get(k) ?? 0) || 0;
    out.push({ major: Number(m[1]), minor: Number(m[2]), readBytes: n("rbytes"), writeBytes: n("wbytes"), reads: n("rios"), writes: n("wios") });
  }
  return out.sort((a, b) => a.major - b.major || a.minor - b.minor);
}

export function v1Sample(files: V1Files, timeMs: number): CgroupSample {
  const s: CgroupSample = { timeMs };
  const usage = files["cpuacct.usage"];
  if (usage !== undefined) {
    const total = parseSingleValue(usage, "cpuacct.usage") ?? 0;
    s.cpu = { usageNanos: total };
    const st = files["cpuacct.stat"];
    if (st !== undefined) {
      const kv = parseFlatKeyed(st);
      const user = kv.get("user");
      const system = kv.get("system");
      if (user !== undefined) s.cpu.userNanos = user * NANOS_PER_TICK;
      if (system !== undefined) s.cpu.systemNanos = system * NANOS_PER_TICK;
    }
    const cfs = files["cpu.stat"] === undefined ? undefined : cfsOf(parseFlatKeyed(files["cpu.stat"]));
    if (cfs !== undefined) s.cpu.cfs = cfs;
  }
  const memUsage = files["memory.usage_in_bytes"];
  const memStat = files["memory.stat"];
  if (memUsage !== undefined && memStat !== undefined) {
    const usageBytes = parseSingleValue(memUsage, "memory.usage_in_bytes") ?? 0;
    const kv = parseFlatKeyed(memStat);
    // use_hierarchy is always 1 on kernels since 5.x (and runc reads total_* when it is): totals include children.
    const inactiveFile = kv.get("total_inactive_file") ?? kv.get("inactive_file") ?? 0;
    const m: MemorySample = {
      usageBytes,
      workingSetBytes: Math.max(0, usageBytes - inactiveFile),
      rssBytes: kv.get("total_rss") ?? kv.get("rss") ?? 0,
      cacheBytes: kv.get("total_cache") ?? kv.get("cache") ?? 0,
      pageFaults: kv.get("pgfault") ?? 0,
      majorPageFaults: kv.get("pgmajfault") ?? 0,
    };
    const swap = kv.get("total_swap") ?? kv.get("swap");
    if (swap !== undefined) m.swapBytes = swap;
    const limit = files["memory.limit_in_bytes"] === undefined ? undefined : limitOf(parseSingleValue(files["memory.limit_in_bytes"], "memory.limit_in_bytes"));
    if (limit !== undefined) m.limitBytes = limit;
    s.memory = m;
  }
  const pids = files["pids.current"];
  if (pids !== undefined) s.pids = { current: parseSingleValue(pids, "pids.current") ?? 0 };
  if (files["blkio.throttle.io_service_bytes_recursive"] !== undefined) s.io = parseBlkioV1(files["blkio.throttle.io_service_bytes_recursive"], files["blkio.throttle.io_serviced_recursive"]);
  return s;
}

/** The text of the v2 files of one cgroup; for the root cgroup (no memory.current), /proc/meminfo. */
export interface V2Files {
  "cpu.stat"?: string;
  "memory.current"?: string;
  "memory.max"?: string;
  "memory.stat"?: string;
  "memory.swap.current"?: string;
  "pids.current"?: string;
  "io.stat"?: string;
  /** The root cgroup only: memory usage is MemTotal − MemFree, as runc emulates it. */
  meminfo?: string;
}

/** kB fields of /proc/meminfo in bytes. */
export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([^:]+):\s+(\d+)(?:\s+kB)?$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) out.set(m[1], Number(m[2]) * (line.includes("kB") ? 1024 : 1));
  }
  return out;
}

export function v2Sample(files: V2Files, timeMs: number): CgroupSample {
  const s: CgroupSample = { timeMs };
  const cpuStat = files["cpu.stat"];
  if (cpuStat !== undefined) {
    const kv = parseFlatKeyed(cpuStat);
    const usage = kv.get("usage_usec");
    if (usage !== undefined) {
      s.cpu = { usageNanos: usage * 1000 };
      const user = kv.get("user_usec");
      const system = kv.get("system_usec");
      if (user !== undefined) s.cpu.userNanos = user * 1000;
      if (system !== undefined) s.cpu.systemNanos = system * 1000;
      const cfs = cfsOf(kv);
      if (cfs !== undefined) s.cpu.cfs = cfs;
    }
  }
  const memStat = files["memory.stat"];
  let usageBytes: number | undefined;
  if (files["memory.current"] !== undefined) usageBytes = parseSingleValue(files["memory.current"], "memory.current") ?? 0;
  else if (files.meminfo !== undefined) {
    const mi = parseMeminfo(files.meminfo);
    usageBytes = (mi.get("MemTotal") ?? 0) - (mi.get("MemFree") ?? 0);
  }
  if (usageBytes !== undefined && memStat !== undefined) {
    const kv = parseFlatKeyed(memStat);
    const m: MemorySample = {
      usageBytes,
      workingSetBytes: Math.max(0, usageBytes - (kv.get("inactive_file") ?? 0)),
      rssBytes: kv.get("anon") ?? 0,
      cacheBytes: kv.get("file") ?? 0,
      pageFaults: kv.get("pgfault") ?? 0,
      majorPageFaults: kv.get("pgmajfault") ?? 0,
    };
    if (files["memory.swap.current"] !== undefined) m.swapBytes = parseSingleValue(files["memory.swap.current"], "memory.swap.current") ?? 0;
    const limit = files["memory.max"] === undefined ? undefined : limitOf(parseSingleValue(files["memory.max"], "memory.max"));
    if (limit !== undefined) m.limitBytes = limit;
    s.memory = m;
  }
  const pids = files["pids.current"];
  if (pids !== undefined) s.pids = { current: parseSingleValue(pids, "pids.current") ?? 0 };
  if (files["io.stat"] !== undefined) s.io = parseIoStat(files["io.stat"]);
  return s;
}

/**
 * cAdvisor's instantaneous CPU (info/v2/conversion.go instCpuStats): core-nanoseconds per second between two
 * samples. Undefined when there is no earlier sample, the window is not positive, or the counter went back
 * (a new cgroup under the same path).
 */
export function usageNanoCores(previous: CgroupSample | undefined, current: CgroupSample): number | undefined {
  if (previous?.cpu === undefined || current.cpu === undefined) return undefined;
  const dtNs = (current.timeMs - previous.timeMs) * 1e6;
  const delta = current.cpu.usageNanos - previous.cpu.usageNanos;
  if (dtNs <= 0 || delta < 0) return undefined;
  return Math.round((delta * 1e9) / dtNs);
}

/** One interface's counters from /proc/<pid>/net/dev. */
export interface InterfaceSample {
  name: string;
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

/** cAdvisor's ignored interfaces (networkStatsFromProc): lo, veth*, docker*. */
const IGNORED_INTERFACES = /^(lo|veth|docker)/i;

/**
 * /proc/<pid>/net/dev as cAdvisor reads it (container/libcontainer/handler.go scanInterfaceStats): two header
 * lines, then `name: 16 counters` (rx bytes, packets, errs, drop, fifo, frame, compressed, multicast, tx bytes,
 * packets, errs, drop, ...); lo, veth* and docker* left out. A line without its 17 fields is an
 * InvalidArgument, as cAdvisor rejects the file.
 */
export function parseNetDev(text: string): InterfaceSample[] {
  const out: InterfaceSample[] = [];
  for (const line of text.split("\n").slice(2)) {
    if (line.trim() === "") continue;
    const fields = line.replace(":", " ").trim().split(/\s+/);
    if (fields.length !== 17) throw new DeckhandError("InvalidArgument", `net/dev: ${JSON.stringify(line.slice(0, 60))} does not have 17 fields`);
    const name = fields[0] ?? "";
    if (IGNORED_INTERFACES.test(name)) continue;
    const n = (i: number): number => Number(fields[i]);
    out.push({ name, rxBytes: n(1), rxPackets: n(2), rxErrors: n(3), rxDropped: n(4), txBytes: n(9), txPackets: n(10), txErrors: n(11), txDropped: n(12) });
  }
  return out;
}
