/**
 * The kubelet's own metrics for `/metrics`, under upstream's names (pkg/kubelet/metrics/metrics.go) on the
 * shared registry (src-shared/metrics.ts): `kubelet_node_name`, `kubelet_running_pods` (pods with a running
 * sandbox), `kubelet_running_containers` by `container_state`, read from the runtime pod cache when scraped;
 * `kubelet_pleg_relist_duration_seconds` (observed at each relist) and `kubelet_pleg_last_seen_seconds`;
 * `kubelet_pod_start_duration_seconds` (first seen to first Running status, upstream's buckets up to an
 * hour) and `kubelet_pod_worker_duration_seconds` by `operation_type` (create, update, sync, kill,
 * terminated: from an update's arrival to the end of the sync serving it); client-go's
 * `rest_client_requests_total` (src-shared/kube/client-metrics.ts); and the process metrics Prometheus' Go
 * collector gives every component (`process_*`).
 */
import { readFileSync, readdirSync } from "node:fs";
import { Counter, Gauge, Histogram, type Metric } from "../src-shared/metrics.ts";
import { restClientRequests } from "../src-shared/kube/client-metrics.ts";
import type { PodRuntimeStatus } from "./runtime/types.ts";

const START_SECONDS = Math.floor(Date.now() / 1000 - process.uptime());

function openFds(): number | undefined {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return undefined;
  }
}

function maxFds(): number | undefined {
  try {
    const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"));
    const v = line?.split(/\s{2,}/)[1];
    return v === undefined || v === "unlimited" ? undefined : Number(v);
  } catch {
    return undefined;
  }
}

/** Prometheus client_golang's DefBuckets. */
const DEF_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Upstream's podStartupDurationBuckets. */
const POD_START_BUCKETS = [0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600];

export class KubeletMetrics {
  private readonly nodeName = new Gauge("kubelet_node_name", "The node's name. The count is always 1.", { labelled: true });
  private readonly runningPods = new Gauge("kubelet_running_pods", "Number of pods that have a running pod sandbox");
  private readonly runningContainers = new Gauge("kubelet_running_containers", "Number of containers currently running", { labelled: true });
  private readonly relist = new Histogram("kubelet_pleg_relist_duration_seconds", "Duration in seconds for relisting pods in PLEG.", DEF_BUCKETS);
  private readonly podStart = new Histogram("kubelet_pod_start_duration_seconds", "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run", POD_START_BUCKETS);
  private readonly podWorker = new Histogram("kubelet_pod_worker_duration_seconds", "Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync", DEF_BUCKETS, { labelled: true });
  private readonly plegLastSeen = new Gauge("kubelet_pleg_last_seen_seconds", "Timestamp in seconds when PLEG was last seen active.");
  private readonly evictions = new Counter("kubelet_evictions", "Cumulative number of pod evictions by eviction signal", { labelled: true });
  private readonly cpu = new Counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.");
  private readonly rss = new Gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
  private readonly start = new Gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.");
  private readonly fds = new Gauge("process_open_fds", "Number of open file descriptors.");
  private readonly maxFds = new Gauge("process_max_fds", "Maximum number of open file descriptors.");
  private readonly pods: () => Iterable<PodRuntimeStatus>;
  private readonly lastRelistAt: () => number | undefined;

  constructor(o: { nodeName: string; pods: () => Iterable<PodRuntimeStatus>; lastRelistAt?: () => number | undefined }) {
    this.nodeName.set(1, { node: o.nodeName });
    this.pods = o.pods;
    this.lastRelistAt = o.lastRelistAt ?? (() => undefined);
  }

  /** The eviction manager evicted a pod for this signal (a threshold's, or a local storage limit's). */
  observeEviction(signal: string): void {
    this.evictions.inc({ eviction_signal: signal });
  }

  /** One PLEG relist took this long. */
  observeRelist(durationMs: number): void {
    this.relist.observe(durationMs / 1000);
  }

  /** A pod ran for the first time, this long after the kubelet first saw it. */
  observePodStart(seconds: number): void {
    this.podStart.observe(seconds);
  }

  /** A pod worker's sync of this operation type ended, this long after the update it served came. */
  observePodWorker(operationType: string, seconds: number): void {
    this.podWorker.observe(seconds, { operation_type: operationType });
  }

  /** Text exposition 0.0.4, figures read now. */
  render(): string {
    let pods = 0;
    const states: Record<string, number> = { created: 0, exited: 0, running: 0, unknown: 0 };
    for (const p of this.pods()) {
      if (p.sandboxes.some((s) => s.state === "ready")) pods++;
      for (const c of p.containers) states[c.state] = (states[c.state] ?? 0) + 1;
    }
    this.runningPods.set(pods);
    for (const [state, n] of Object.entries(states)) this.runningContainers.set(n, { container_state: state });
    const usage = process.cpuUsage();
    this.cpu.delete({});
    this.cpu.inc(undefined, (usage.user + usage.system) / 1e6);
    this.rss.set(process.memoryUsage.rss());
    this.start.set(START_SECONDS);
    const open = openFds();
    if (open !== undefined) this.fds.set(open);
    const max = maxFds();
    if (max !== undefined) this.maxFds.set(max);
    const seen = this.lastRelistAt();
    if (seen !== undefined) this.plegLastSeen.set(seen / 1000);
    const all: Metric[] = [this.evictions, this.nodeName, this.plegLastSeen, this.relist, this.podStart, this.podWorker, this.runningContainers, this.runningPods, this.cpu, this.fds, this.maxFds, this.rss, this.start, restClientRequests];
    return all.map((m) => m.render()).join("");
  }
}

