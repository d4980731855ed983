/**
 * `/metrics/cadvisor`: cAdvisor's Prometheus names and help (google/cadvisor metrics/prometheus.go) for the
 * cgroups the collector samples, with the labels the kubelet attaches (containerPrometheusLabelsFunc: `container`,
 * `id` the cgroup path, `image`, `name` the runtime's id, `namespace`, `pod`, blank where they do not apply):
 * the node's root cgroup (id "/"), the pods root, each pod (container="") and each container the kubelet
 * knows (the sandbox's pause is left out). Stats carry the sample's time stamp, spec figures none, as cAdvisor
 * writes them; families and series sorted as client_golang gathers them. Pure.
 *
 * Served: container_cpu_usage_seconds_total{cpu="total"}, _user_, _system_; container_memory_usage_bytes,
 * _working_set_bytes, _rss, _cache, _swap; container_spec_memory_limit_bytes (0 when unlimited);
 * container_processes; container_start_time_seconds (cgroup creation); container_last_seen;
 * container_fs_reads_bytes_total, _reads_total, _writes_bytes_total, _writes_total per block device (blkio /
 * io.stat); container_network_{receive,transmit}_{bytes,packets,errors,packets_dropped}_total per interface on the
 * pod's series (container="": the pod's network namespace, once) and the node's (id="/"); container_fs_usage_bytes,
 * _limit_bytes, _inodes_free per device for each container's writable layer (CRI) and the node's root and image
 * filesystems (the fs collector's snapshot); machine_cpu_cores, machine_memory_bytes; container_scrape_error.
 * Left out: container_fs_inodes_total (a gauge named _total: promtool's lint refuses it), tasks
 * state, memory failures.
 */
import type { CgroupStats, StatsSnapshot } from "./collector.ts";
import type { MachineInfo } from "./machine.ts";
import type { PodInfo } from "./summary.ts";
import type { InterfaceSample } from "./cgroup-stats.ts";
import type { FsSnapshot } from "./fs-collector.ts";
import type { FsInfo } from "./machine.ts";

export interface CadvisorMetricsInput {
  snapshot: StatsSnapshot | undefined;
  pods: PodInfo[];
  machine: Pick<MachineInfo, "numCores" | "memoryCapacity" | "bootID" | "machineID" | "systemUUID">;
  /** The kubelet's cgroupRoot: the pods root is `<cgroupRoot>/kubepods`. */
  kubepodsPath: string;
  nowMs: number;
  /** The fs collector's snapshot: the containers' writable layers, the node's root and image filesystems. */
  fs?: FsSnapshot;
}

type Labels = [string, string][];

interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge";
  series: { labels: string; value: number; timeMs?: number }[];
}

function labelText(labels: Labels): string {
  const sorted = [...labels].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return `{${sorted.map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`).join(",")}}`;
}

export function cadvisorMetrics(i: CadvisorMetricsInput): string {
  const families = new Map<string, Family>();
  const add = (name: string, type: Family["type"], help: string, labels: Labels, value: number, timeMs?: number): void => {
    let f = families.get(name);
    if (f === undefined) families.set(name, (f = { name, help, type, series: [] }));
    f.series.push({ labels: labelText(labels), value, ...(timeMs === undefined ? {} : { timeMs }) });
  };
  const nowSec = Math.floor(i.nowMs / 1000);
  const emit = (s: CgroupStats, labels: Labels): void => {
    const t = s.sample.timeMs;
    add("container_last_seen", "gauge", "Last time a container was seen by the exporter", labels, nowSec, i.nowMs);
    if (s.creationMs !== undefined) add("container_start_time_seconds", "gauge", "Start time of the container since unix epoch in seconds.", labels, Math.floor(s.creationMs / 1000));
    const cpu = s.sample.cpu;
    if (cpu !== undefined) {
      if (cpu.usageNanos > 0) add("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed in seconds.", [...labels, ["cpu", "total"]], cpu.usageNanos / 1e9, t);
      if (cpu.userNanos !== undefined) add("container_cpu_user_seconds_total", "counter", "Cumulative user cpu time consumed in seconds.", labels, cpu.userNanos / 1e9, t);
      if (cpu.systemNanos !== undefined) add("container_cpu_system_seconds_total", "counter", "Cumulative system cpu time consumed in seconds.", labels, cpu.systemNanos / 1e9, t);
      // As cAdvisor, only for a cgroup with a CFS quota (the kernel counts periods only then).
      if (cpu.cfs !== undefined && cpu.cfs.periods > 0) {
        add("container_cpu_cfs_periods_total", "counter", "Number of elapsed enforcement period intervals.", labels, cpu.cfs.periods, t);
        add("container_cpu_cfs_throttled_periods_total", "counter", "Number of throttled period intervals.", labels, cpu.cfs.throttledPeriods, t);
        add("container_cpu_cfs_throttled_seconds_total", "counter", "Total time duration the container has been throttled.", labels, cpu.cfs.throttledNanos / 1e9, t);
      }
    }
    const m = s.sample.memory;
    if (m !== undefined) {
      add("container_memory_cache", "gauge", "Number of bytes of page cache memory.", labels, m.cacheBytes, t);
      add("container_memory_rss", "gauge", "Size of RSS in bytes.", labels, m.rssBytes, t);
      if (m.swapBytes !== undefined) add("container_memory_swap", "gauge", "Container swap usage in bytes.", labels, m.swapBytes, t);
      add("container_memory_usage_bytes", "gauge", "Current memory usage in bytes, including all memory regardless of when it was accessed", labels, m.usageBytes, t);
      add("container_memory_working_set_bytes", "gauge", "Current working set in bytes.", labels, m.workingSetBytes, t);
      add("container_spec_memory_limit_bytes", "gauge", "Memory limit for the container.", labels, m.limitBytes ?? 0);
    }
    if (s.sample.pids !== undefined) add("container_processes", "gauge", "Number of processes running inside the container.", labels, s.sample.pids.current, t);
    for (const d of s.sample.io ?? []) {
      const l: Labels = [...labels, ["device", d.device ?? `${d.major}:${d.minor}`]];
      add("container_fs_reads_bytes_total", "counter", "Cumulative count of bytes read", l, d.readBytes, t);
      add("container_fs_reads_total", "counter", "Cumulative count of reads completed", l, d.reads, t);
      add("container_fs_writes_bytes_total", "counter", "Cumulative count of bytes written", l, d.writeBytes, t);
      add("container_fs_writes_total", "counter", "Cumulative count of writes completed", l, d.writes, t);
    }
  };
  // cAdvisor's network families (metrics/prometheus.go), one series per interface.
  const NETWORK: [keyof InterfaceSample, string, string][] = [
    ["rxBytes", "container_network_receive_bytes_total", "Cumulative count of bytes received"],
    ["rxErrors", "container_network_receive_errors_total", "Cumulative count of errors encountered while receiving"],
    ["rxDropped", "container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving"],
    ["rxPackets", "container_network_receive_packets_total", "Cumulative count of packets received"],
    ["txBytes", "container_network_transmit_bytes_total", "Cumulative count of bytes transmitted"],
    ["txErrors", "container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting"],
    ["txDropped", "container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting"],
    ["txPackets", "container_network_transmit_packets_total", "Cumulative count of packets transmitted"],
  ];
  const emitNetwork = (interfaces: readonly InterfaceSample[], labels: Labels, timeMs: number): void => {
    for (const x of interfaces) for (const [key, name, help] of NETWORK) add(name, "counter", help, [...labels, ["interface", x.name]], x[key] as number, timeMs);
  };
  const base = (id: string, o: { container?: string; image?: string; name?: string; namespace?: string; pod?: string } = {}): Labels => [
    ["container", o.container ?? ""],
    ["id", id],
    ["image", o.image ?? ""],
    ["name", o.name ?? ""],
    ["namespace", o.namespace ?? ""],
    ["pod", o.pod ?? ""],
  ];
  // cAdvisor's filesystem families, one series per device: a container's writable layer, the node's filesystems.
  const emitFs = (labels: Labels, device: string, usedBytes: number, fs: FsInfo | undefined, timeMs: number): void => {
    const l: Labels = [...labels, ["device", device]];
    add("container_fs_usage_bytes", "gauge", "Number of bytes that are consumed by the container on this filesystem.", l, usedBytes, timeMs);
    if (fs === undefined) return;
    add("container_fs_limit_bytes", "gauge", "Number of bytes that can be consumed by the container on this filesystem.", l, fs.capacityBytes, timeMs);
    add("container_fs_inodes_free", "gauge", "Number of available Inodes", l, fs.inodesFree, timeMs);
    // cAdvisor's container_fs_inodes_total is left out: a gauge named _total fails promtool's lint.
  };
  const fsSnap = i.fs;
  if (fsSnap !== undefined) {
    const seen = new Set<string>();
    for (const [fs, device] of [[fsSnap.rootFs, fsSnap.rootFsDevice], [fsSnap.imageFs?.fs, fsSnap.imageFs?.device]] as const) {
      if (fs === undefined || device === undefined || seen.has(device)) continue;
      seen.add(device);
      emitFs(base("/"), device, fs.usedBytes, fs, fsSnap.timeMs);
    }
  }
  const snap = i.snapshot;
  if (snap !== undefined) {
    if (snap.node !== undefined) emit(snap.node, base("/"));
    if (snap.nodeNetwork !== undefined) emitNetwork(snap.nodeNetwork, base("/"), snap.timeMs);
    if (snap.pods !== undefined) emit(snap.pods, base(i.kubepodsPath));
    for (const p of i.pods) {
      const cg = snap.podCgroups.get(p.uid);
      if (cg === undefined) continue;
      emit(cg.stats, base(cg.path, { namespace: p.namespace, pod: p.name }));
      if (cg.network !== undefined) emitNetwork(cg.network, base(cg.path, { namespace: p.namespace, pod: p.name }), cg.stats.sample.timeMs);
      for (const c of p.containers) {
        const cs = cg.containers.get(c.id);
        if (cs === undefined) continue;
        const labels = base(`${cg.path}/${c.id}`, { container: c.name, image: c.image ?? "", name: c.id, namespace: p.namespace, pod: p.name });
        emit(cs, labels);
        const layer = fsSnap?.writableLayers.get(c.id);
        if (layer !== undefined) emitFs(labels, layer.device ?? "", layer.usedBytes, layer.fs, layer.timeMs);
      }
    }
  }
  const machineLabels: Labels = [["boot_id", i.machine.bootID], ["machine_id", i.machine.machineID], ["system_uuid", i.machine.systemUUID]];
  add("machine_cpu_cores", "gauge", "Number of logical CPU cores.", machineLabels, i.machine.numCores);
  add("machine_memory_bytes", "gauge", "Amount of memory installed on the machine.", machineLabels, i.machine.memoryCapacity);
  let out = "";
  for (const f of [...families.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    out += `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of [...f.series].sort((a, b) => (a.labels < b.labels ? -1 : a.labels > b.labels ? 1 : 0))) out += `${f.name}${s.labels} ${s.value}${s.timeMs === undefined ? "" : ` ${s.timeMs}`}\n`;
  }
  // cAdvisor's own gauge, unlabelled, 0: the snapshot is read from memory and cannot fail here.
  out += "# HELP container_scrape_error 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE container_scrape_error gauge\n";
  out += `container_scrape_error ${snap === undefined ? 1 : 0}\n`;
  return out;
}
