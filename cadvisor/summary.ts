/**
 * The Summary API (`/stats/summary`, kubelet stats/v1alpha1) and the resource metrics (`/metrics/resource`)
 * from a collector snapshot and what the kubelet knows of its pods. Pure: the kubelet server calls these.
 *
 * JSON as upstream's Go types marshal it (staging/src/k8s.io/kubelet/pkg/apis/stats/v1alpha1/types.go): every
 * figure is an omitempty pointer, so an unknown figure is an absent key, never 0; times are metav1.Time
 * (RFC 3339, seconds). Filled as pkg/kubelet/stats/helper.go fills them from cAdvisor: usageNanoCores from the
 * last two samples, availableBytes = limit − workingSet only when there is a limit (the node's is MemTotal).
 * Pod network is the sandbox netns's /proc/<pid>/net/dev, the node's the kubelet's own; filesystem figures come
 * from the fs collector's snapshot (fs-collector.ts) and are absent until its first pass.
 */
import type { FsInfo } from "./machine.ts";
import type { CgroupStats, StatsSnapshot } from "./collector.ts";
import type { InterfaceSample } from "./cgroup-stats.ts";
import type { FsSnapshot, PodFsUsage } from "./fs-collector.ts";
import type { DiskUsage } from "./disk-usage.ts";

export interface CPUStats {
  time: string;
  usageNanoCores?: number;
  usageCoreNanoSeconds?: number;
}

export interface MemoryStats {
  time: string;
  availableBytes?: number;
  usageBytes?: number;
  workingSetBytes?: number;
  rssBytes?: number;
  pageFaults?: number;
  majorPageFaults?: number;
}

export interface FsStats {
  time: string;
  availableBytes?: number;
  capacityBytes?: number;
  usedBytes?: number;
  inodesFree?: number;
  inodes?: number;
  inodesUsed?: number;
}

export interface SwapStats {
  time: string;
  swapAvailableBytes?: number;
  swapUsageBytes?: number;
}

export interface ContainerStats {
  name: string;
  startTime: string;
  cpu?: CPUStats;
  memory?: MemoryStats;
  swap?: SwapStats;
  rootfs?: FsStats;
  logs?: FsStats;
}

/** upstream's VolumeStats: FsStats inline, the volume's name (pvcRef: no PVC volumes here). */
export interface VolumeStats extends FsStats {
  name: string;
}

export interface InterfaceStats {
  name: string;
  rxBytes?: number;
  rxErrors?: number;
  txBytes?: number;
  txErrors?: number;
}

/** The default interface (eth0) inline, every interface in `interfaces`. */
export interface NetworkStats extends Partial<InterfaceStats> {
  time: string;
  interfaces?: InterfaceStats[];
}

export interface PodStats {
  podRef: { name: string; namespace: string; uid: string };
  startTime: string;
  containers: ContainerStats[];
  cpu?: CPUStats;
  memory?: MemoryStats;
  network?: NetworkStats;
  volume?: VolumeStats[];
  "ephemeral-storage"?: FsStats;
  process_stats?: { process_count?: number };
  swap?: SwapStats;
}

export interface NodeStats {
  nodeName: string;
  systemContainers?: ContainerStats[];
  startTime: string;
  cpu?: CPUStats;
  memory?: MemoryStats;
  network?: NetworkStats;
  fs?: FsStats;
  runtime?: { imageFs?: FsStats };
  rlimit?: { time: string; maxpid?: number; curproc?: number };
  swap?: SwapStats;
}

export interface Summary {
  node: NodeStats;
  pods: PodStats[];
}

/**
 * The latest node and pod statistics for the kubelet's own consumers (the eviction manager reads its signals
 * here, as upstream's reads summaryProvider.Get): the Summary built from the collectors' latest snapshots, from
 * memory, no I/O. Before the first housekeeping pass the node has no cpu/memory and there are no pods; figures
 * the collectors could not read are absent keys, never 0. `onlyCpuAndMemory` leaves out network, fs, volumes,
 * ephemeral storage, rlimit, swap and process stats (cheaper). Kept stable: the kubelet server's StatsHost
 * implements it (kubelet/server/stats-host.ts) and main.ts hands that one object to every consumer.
 */
export interface SummaryProvider {
  statsSummary(onlyCpuAndMemory: boolean): Summary;
}

/** What the kubelet knows of a pod on the node. */
export interface PodInfo {
  uid: string;
  name: string;
  namespace: string;
  /** The pod's status startTime (ms); undefined until the kubelet set it. */
  startTimeMs?: number;
  /** The latest container of each name (CRI id, when it started in ms, its image for /metrics/cadvisor). */
  containers: { name: string; id: string; startTimeMs: number; image?: string }[];
}

export interface SummaryInput {
  nodeName: string;
  /** The machine's boot time (ms): the node's startTime. */
  bootTimeMs: number;
  /** MemTotal (bytes): the node's memory limit. */
  memoryCapacityBytes: number;
  /** SwapTotal (bytes): the node's swap limit; 0 or absent: no swap. */
  swapCapacityBytes?: number;
  snapshot: StatsSnapshot | undefined;
  pods: PodInfo[];
  /** statfs of the kubelet root dir (the fs collector's when it has one). */
  rootFs?: FsInfo;
  /** statfs of the image store (replaced by the fs collector's CRI ImageFsInfo when it has one). */
  imageFs?: FsInfo;
  /** The filesystem side (fs-collector.ts): rootfs, logs, volumes, ephemeral storage, imageFs usage. */
  fs?: FsSnapshot;
  rlimit?: { maxpid?: number; curproc?: number };
  onlyCpuAndMemory: boolean;
}

/** metav1.Time's JSON: RFC 3339 to the second, UTC. */
export function metaTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

function cpuStats(s: CgroupStats): CPUStats | undefined {
  const cpu = s.sample.cpu;
  if (cpu === undefined) return undefined;
  const out: CPUStats = { time: metaTime(s.sample.timeMs) };
  if (s.usageNanoCores !== undefined) out.usageNanoCores = s.usageNanoCores;
  out.usageCoreNanoSeconds = cpu.usageNanos;
  return out;
}

function memoryStats(s: CgroupStats, limitOverride?: number): MemoryStats | undefined {
  const m = s.sample.memory;
  if (m === undefined) return undefined;
  const out: MemoryStats = { time: metaTime(s.sample.timeMs) };
  const limit = limitOverride ?? m.limitBytes;
  if (limit !== undefined) out.availableBytes = Math.max(0, limit - m.workingSetBytes);
  out.usageBytes = m.usageBytes;
  out.workingSetBytes = m.workingSetBytes;
  out.rssBytes = m.rssBytes;
  out.pageFaults = m.pageFaults;
  out.majorPageFaults = m.majorPageFaults;
  return out;
}

function fsStats(fs: FsInfo, timeMs: number): FsStats {
  return { time: metaTime(timeMs), availableBytes: fs.availableBytes, capacityBytes: fs.capacityBytes, usedBytes: fs.usedBytes, inodesFree: fs.inodesFree, inodes: fs.inodes, inodesUsed: fs.inodesUsed };
}

/** statfs figures with a du-measured usage in place of the filesystem's (a directory's share of it). */
function usageOn(fs: FsInfo | undefined, usage: DiskUsage, timeMs: number): FsStats {
  const out: FsStats = { time: metaTime(timeMs) };
  if (fs !== undefined) {
    out.availableBytes = fs.availableBytes;
    out.capacityBytes = fs.capacityBytes;
  }
  out.usedBytes = usage.usedBytes;
  if (fs !== undefined) {
    out.inodesFree = fs.inodesFree;
    out.inodes = fs.inodes;
  }
  out.inodesUsed = usage.inodesUsed;
  return out;
}

/**
 * upstream's calcEphemeralStorage (pkg/kubelet/stats/helper.go, CRI provider): the root fs's capacity and free
 * space; used = every container's rootfs and (when it has a rootfs) logs, the ephemeral volumes (all of them
 * here: no persistent volume is supported), the pod's other log files and its etc-hosts.
 */
function ephemeralStorage(containers: readonly ContainerStats[], volumes: readonly VolumeStats[], pod: PodFsUsage, rootFs: FsInfo | undefined, timeMs: number): FsStats {
  const used = { usedBytes: 0, inodesUsed: 0 };
  const add = (u: { usedBytes?: number; inodesUsed?: number } | undefined): void => {
    used.usedBytes += u?.usedBytes ?? 0;
    used.inodesUsed += u?.inodesUsed ?? 0;
  };
  for (const c of containers) {
    if (c.rootfs === undefined) continue;
    add(c.rootfs);
    add(c.logs);
  }
  for (const v of volumes) add(v);
  add(pod.podLogs);
  add(pod.etcHosts);
  return usageOn(rootFs, used, timeMs);
}

function withCpuMemory<T extends { cpu?: CPUStats; memory?: MemoryStats }>(target: T, s: CgroupStats | undefined, limitOverride?: number): T {
  if (s === undefined) return target;
  const cpu = cpuStats(s);
  const memory = memoryStats(s, limitOverride);
  if (cpu !== undefined) target.cpu = cpu;
  if (memory !== undefined) target.memory = memory;
  return target;
}

/**
 * upstream's swap stats (helper.go cadvisorInfoToSwapStats): the usage the kernel accounts (v1 total_swap, v2
 * memory.swap.current), with swapAvailableBytes only under a known limit (the node's: SwapTotal). Absent where
 * swap is not accounted.
 */
function swapStats(s: CgroupStats | undefined, limit?: number): SwapStats | undefined {
  const used = s?.sample.memory?.swapBytes;
  if (s === undefined || used === undefined) return undefined;
  return { time: metaTime(s.sample.timeMs), ...(limit ? { swapAvailableBytes: Math.max(0, limit - used) } : {}), swapUsageBytes: used };
}

/** A system container ("kubelet", "runtime", "pods") as upstream lists them under the node. */
function systemContainer(name: string, s: CgroupStats, bootTimeMs: number, onlyCpuAndMemory: boolean): ContainerStats {
  const c = withCpuMemory<ContainerStats>({ name, startTime: metaTime(s.creationMs ?? bootTimeMs) }, s);
  const swap = onlyCpuAndMemory ? undefined : swapStats(s);
  if (swap !== undefined) c.swap = swap;
  return c;
}

/** upstream's defaultNetworkInterfaceName: the interface copied inline. */
const DEFAULT_INTERFACE = "eth0";

function networkStats(interfaces: readonly InterfaceSample[], timeMs: number): NetworkStats {
  const all = interfaces.map((x) => ({ name: x.name, rxBytes: x.rxBytes, rxErrors: x.rxErrors, txBytes: x.txBytes, txErrors: x.txErrors }));
  const def = all.find((x) => x.name === DEFAULT_INTERFACE);
  return { time: metaTime(timeMs), ...(def ?? {}), interfaces: all };
}

export function buildSummary(i: SummaryInput): Summary {
  const snap = i.snapshot;
  const now = snap?.timeMs ?? Date.now();
  // upstream's key order: nodeName, systemContainers, startTime, cpu, memory, network, fs, runtime, rlimit, swap.
  const system: ContainerStats[] = [];
  const sys = snap?.systemContainers;
  if (sys?.kubelet !== undefined) system.push(systemContainer("kubelet", sys.kubelet.stats, i.bootTimeMs, i.onlyCpuAndMemory));
  if (sys?.runtime !== undefined) system.push(systemContainer("runtime", sys.runtime.stats, i.bootTimeMs, i.onlyCpuAndMemory));
  if (snap?.pods !== undefined) system.push(systemContainer("pods", snap.pods, i.bootTimeMs, i.onlyCpuAndMemory));
  const node: NodeStats = { nodeName: i.nodeName, ...(system.length > 0 ? { systemContainers: system } : {}), startTime: metaTime(i.bootTimeMs) };
  withCpuMemory(node, snap?.node, i.memoryCapacityBytes);
  const fsSnap = i.onlyCpuAndMemory ? undefined : i.fs;
  const rootFs = fsSnap?.rootFs ?? i.rootFs;
  if (!i.onlyCpuAndMemory) {
    if (snap?.nodeNetwork !== undefined) node.network = networkStats(snap.nodeNetwork, snap.timeMs);
    if (rootFs !== undefined) node.fs = fsStats(rootFs, fsSnap?.rootFs !== undefined ? fsSnap.timeMs : now);
    const img = fsSnap?.imageFs;
    // upstream's ImageFsStats: the mount point's capacity and free space, the runtime's own used bytes and inodes.
    if (img !== undefined) node.runtime = { imageFs: img.usage === undefined ? fsStats(img.fs, img.timeMs) : usageOn(img.fs, img.usage, img.timeMs) };
    else if (i.imageFs !== undefined) node.runtime = { imageFs: fsStats(i.imageFs, now) };
    if (i.rlimit !== undefined) node.rlimit = { time: metaTime(now), ...i.rlimit };
    const swap = swapStats(snap?.node, i.swapCapacityBytes);
    if (swap !== undefined) node.swap = swap;
  }
  const pods: PodStats[] = [];
  for (const p of i.pods) {
    const cg = snap?.podCgroups.get(p.uid);
    if (cg === undefined) continue;
    const containers: ContainerStats[] = [];
    for (const c of p.containers) {
      const cs = cg.containers.get(c.id);
      if (cs === undefined) continue;
      const out = withCpuMemory<ContainerStats>({ name: c.name, startTime: metaTime(c.startTimeMs) }, cs);
      const swap = i.onlyCpuAndMemory ? undefined : swapStats(cs);
      if (swap !== undefined) out.swap = swap;
      const layer = fsSnap?.writableLayers.get(c.id);
      if (layer !== undefined) out.rootfs = usageOn(layer.fs, layer, layer.timeMs);
      const logs = fsSnap?.pods.get(p.uid)?.containerLogs.get(c.name);
      if (logs !== undefined && fsSnap !== undefined) out.logs = usageOn(rootFs, logs, fsSnap.timeMs);
      containers.push(out);
    }
    const ps = withCpuMemory<PodStats>({ podRef: { name: p.name, namespace: p.namespace, uid: p.uid }, startTime: metaTime(p.startTimeMs ?? cg.stats.creationMs ?? now), containers }, cg.stats);
    if (!i.onlyCpuAndMemory && cg.network !== undefined) ps.network = networkStats(cg.network, cg.stats.sample.timeMs);
    const podFs = fsSnap?.pods.get(p.uid);
    if (podFs !== undefined && fsSnap !== undefined) {
      const volumes = podFs.volumes.map((v): VolumeStats => ({ ...usageOn(v.fs, v, fsSnap.timeMs), name: v.name }));
      if (volumes.length > 0) ps.volume = volumes;
      ps["ephemeral-storage"] = ephemeralStorage(containers, volumes, podFs, rootFs, fsSnap.timeMs);
    }
    const pids = cg.stats.sample.pids;
    if (!i.onlyCpuAndMemory && pids !== undefined) ps.process_stats = { process_count: pids.current };
    const podSwap = i.onlyCpuAndMemory ? undefined : swapStats(cg.stats);
    if (podSwap !== undefined) ps.swap = podSwap;
    pods.push(ps);
  }
  return { node, pods };
}

/** Go's %g-like float formatting as Prometheus' text format writes it (shortest round-trip). */
function num(v: number): string {
  return String(v);
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function timeMsOf(t: string): number {
  return Date.parse(t);
}

/**
 * `/metrics/resource` (pkg/kubelet/metrics/collectors/resource_metrics.go) from the CPU-and-memory summary:
 * families sorted by name as client_golang gathers them, labels sorted by name, each sample stamped with its
 * stats time (ms) except container_start_time_seconds. `scrapeError` sets scrape_error and
 * resource_scrape_error to 1 (the summary could not be built).
 */
export function resourceMetrics(summary: Summary | undefined): string {
  type Family = { name: string; help: string; type: "counter" | "gauge"; stability: "STABLE" | "ALPHA"; deprecated?: string; lines: string[] };
  const fam = (name: string, type: Family["type"], help: string, stability: Family["stability"] = "STABLE", deprecated?: string): Family => ({ name, help, type, stability, lines: [], ...(deprecated ? { deprecated } : {}) });
  const nodeCpu = fam("node_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the node in core-seconds");
  const nodeMem = fam("node_memory_working_set_bytes", "gauge", "Current working set of the node in bytes");
  const cCpu = fam("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the container in core-seconds");
  const cMem = fam("container_memory_working_set_bytes", "gauge", "Current working set of the container in bytes");
  const cStart = fam("container_start_time_seconds", "gauge", "Start time of the container since unix epoch in seconds");
  const pCpu = fam("pod_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the pod in core-seconds");
  const pMem = fam("pod_memory_working_set_bytes", "gauge", "Current working set of the pod in bytes");
  const scrape = fam("scrape_error", "gauge", "1 if there was an error while getting container metrics, 0 otherwise", "ALPHA", "1.29.0");
  const rscrape = fam("resource_scrape_error", "gauge", "1 if there was an error while getting container metrics, 0 otherwise");
  const sample = (f: Family, labels: [string, string][], value: number, timeMs?: number): void => {
    const l = labels.length === 0 ? "" : `{${[...labels].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
    f.lines.push(`${f.name}${l} ${num(value)}${timeMs === undefined ? "" : ` ${timeMs}`}`);
  };
  if (summary !== undefined) {
    const n = summary.node;
    if (n.cpu?.usageCoreNanoSeconds !== undefined) sample(nodeCpu, [], n.cpu.usageCoreNanoSeconds / 1e9, timeMsOf(n.cpu.time));
    if (n.memory?.workingSetBytes !== undefined) sample(nodeMem, [], n.memory.workingSetBytes, timeMsOf(n.memory.time));
    for (const p of summary.pods) {
      const pl: [string, string][] = [["pod", p.podRef.name], ["namespace", p.podRef.namespace]];
      for (const c of p.containers) {
        const cl: [string, string][] = [["container", c.name], ...pl];
        const start = timeMsOf(c.startTime);
        if (start > 0) sample(cStart, cl, start / 1000);
        if (c.cpu?.usageCoreNanoSeconds !== undefined) sample(cCpu, cl, c.cpu.usageCoreNanoSeconds / 1e9, timeMsOf(c.cpu.time));
        if (c.memory?.workingSetBytes !== undefined) sample(cMem, cl, c.memory.workingSetBytes, timeMsOf(c.memory.time));
      }
      if (p.cpu?.usageCoreNanoSeconds !== undefined) sample(pCpu, pl, p.cpu.usageCoreNanoSeconds / 1e9, timeMsOf(p.cpu.time));
      if (p.memory?.workingSetBytes !== undefined) sample(pMem, pl, p.memory.workingSetBytes, timeMsOf(p.memory.time));
    }
  }
  const err = summary === undefined ? 1 : 0;
  sample(scrape, [], err);
  sample(rscrape, [], err);
  const families = [nodeCpu, nodeMem, cCpu, cMem, cStart, pCpu, pMem, scrape, rscrape].sort((a, b) => (a.name < b.name ? -1 : 1));
  let out = "";
  for (const f of families) {
    if (f.lines.length === 0) continue;
    const help = f.deprecated === undefined ? f.help : `(Deprecated since ${f.deprecated}) ${f.help}`;
    out += `# HELP ${f.name} [${f.stability}] ${help}\n# TYPE ${f.name} ${f.type}\n${f.lines.join("\n")}\n`;
  }
  return out;
}
