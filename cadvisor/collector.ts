/**
 * The stats collector: every housekeeping interval (upstream's kubelet runs its cAdvisor at 10 s) it reads the
 * node's root cgroup, the pods' root (`<cgroupRoot>/kubepods`), every pod cgroup and every container cgroup
 * below them, and keeps the latest sample of each with its CPU rate over the previous one (usageNanoCores).
 * Readers get that snapshot from memory; nothing is read per request.
 *
 * Lifecycle: the constructor does no I/O; start(signal) finds the hierarchies and runs the first pass at once;
 * close() waits for the pass under way.
 */
import type { Logger } from "../src-shared/log.ts";
import { cgroupHierarchies, type CgroupHierarchy } from "../src-shared/cgroups.ts";
import { PeriodicLoop } from "../src-shared/loop.ts";
import { systemClock, type Clock } from "../src-shared/clock.ts";
import { usageNanoCores, type CgroupSample, type InterfaceSample } from "./cgroup-stats.ts";
import { cgroupCreationMs, cgroupLayout, listPodCgroups, readCgroup, processCgroup, readNodeNetwork, readPodNetwork, type CgroupLayout, type CgroupRef } from "./cgroup-reader.ts";

/** upstream's defaultHousekeepingInterval (pkg/kubelet/cadvisor/cadvisor_linux.go). */
export const DEFAULT_HOUSEKEEPING_INTERVAL_MS = 10_000;

/** A cgroup's latest sample with its CPU rate over the sample before it (undefined for the first one). */
export interface CgroupStats {
  sample: CgroupSample;
  usageNanoCores?: number;
  /** When the cgroup was created (its directory's mtime), ms. */
  creationMs?: number;
}

export interface PodCgroupStats {
  uid: string;
  path: string;
  stats: CgroupStats;
  /** By CRI container id (the sandbox's too). */
  containers: Map<string, CgroupStats>;
  /** The pod's network namespace's interfaces (lo, veth*, docker* left out), when a process was found. */
  network?: InterfaceSample[];
}

export interface StatsSnapshot {
  /** When the pass ran, ms. */
  timeMs: number;
  version: 1 | 2;
  /** The root cgroup: the node. */
  node: CgroupStats | undefined;
  /** `<cgroupRoot>/kubepods`: the "pods" system container. */
  pods: CgroupStats | undefined;
  podCgroups: Map<string, PodCgroupStats>;
  /** The node's interfaces (the kubelet's network namespace; lo, veth*, docker* left out). */
  nodeNetwork?: InterfaceSample[];
  /** The Summary's "kubelet" and "runtime" system containers (the pods one is `pods`). */
  systemContainers?: { kubelet?: SystemCgroupStats; runtime?: SystemCgroupStats };
}

export interface SystemCgroupStats {
  /** Its cgroup (the memory hierarchy's on v1). */
  path: string;
  stats: CgroupStats;
}

export interface StatsCollectorOptions {
  /** The kubelet's cgroupRoot ("/" by default); pods live under `<cgroupRoot>/kubepods`. */
  cgroupRoot: string;
  intervalMs?: number;
  log: Logger;
  clock?: Clock;
  /** The mounted hierarchies (tests give fixture trees); default: from /proc/self/mountinfo. */
  hierarchies?: () => Promise<readonly CgroupHierarchy[]>;
  /** Prefix for /proc (tests). */
  procRoot?: string;
  /**
   * The system containers' cgroups (upstream's --kubelet-cgroups, --runtime-cgroups). Without one, the kubelet's
   * is the cgroup this process is in, as upstream finds its own; the runtime's is left out.
   */
  systemCgroups?: { kubelet?: string; runtime?: string };
}

export function kubepodsPath(cgroupRoot: string): string {
  const root = cgroupRoot === "/" ? "" : cgroupRoot.replace(/\/$/, "");
  return `${root}/kubepods`;
}

export class StatsCollector {
  private readonly o: StatsCollectorOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly loop: PeriodicLoop;
  private layout: CgroupLayout | undefined;
  private latest: StatsSnapshot | undefined;
  /** Last stats by cgroup path, for the next rate and the creation time. */
  private previous = new Map<string, CgroupStats>();
  private passes = 0;

  constructor(o: StatsCollectorOptions) {
    this.o = o;
    this.clock = o.clock ?? systemClock;
    this.log = o.log.child({ component: "stats-collector" });
    this.loop = new PeriodicLoop({ name: "stats housekeeping", run: () => this.housekeep(), intervalMs: o.intervalMs ?? DEFAULT_HOUSEKEEPING_INTERVAL_MS, logger: this.log, clock: this.clock });
  }

  start(signal: AbortSignal): void {
    this.loop.start(signal);
  }

  async close(): Promise<void> {
    await this.loop.close();
  }

  /** The latest snapshot (undefined before the first pass). */
  snapshot(): StatsSnapshot | undefined {
    return this.latest;
  }

  /** Housekeeping passes done (tests). */
  get passCount(): number {
    return this.passes;
  }

  /** One pass: read everything, compute rates against the previous pass, publish. Exported for tests and the benchmark. */
  async housekeep(): Promise<void> {
    if (this.layout === undefined) {
      const hs = await (this.o.hierarchies ?? cgroupHierarchies)();
      this.layout = cgroupLayout(hs, this.o.procRoot);
      if (this.layout === undefined) {
        this.log.warn("no cgroup hierarchy mounted: no resource statistics");
        return;
      }
      this.log.info({ version: this.layout.version, mounts: this.layout.mounts }, "collecting cgroup statistics");
    }
    const layout = this.layout;
    const now = this.clock.now();
    const next = new Map<string, CgroupStats>();
    const take = (ref: CgroupRef): CgroupStats | undefined => {
      const sample = readCgroup(layout, ref, now);
      if (sample === undefined) return undefined;
      const key = typeof ref === "string" ? ref : JSON.stringify(ref);
      const prev = this.previous.get(key);
      const s: CgroupStats = { sample };
      const rate = usageNanoCores(prev?.sample, sample);
      if (rate !== undefined) s.usageNanoCores = rate;
      const created = prev?.creationMs ?? cgroupCreationMs(layout, typeof ref === "string" ? ref : (ref.memory ?? "/"));
      if (created !== undefined) s.creationMs = created;
      next.set(key, s);
      return s;
    };
    const kubepods = kubepodsPath(this.o.cgroupRoot);
    const snapshot: StatsSnapshot = { timeMs: now, version: layout.version, node: take("/"), pods: take(kubepods), podCgroups: new Map() };
    for (const pod of listPodCgroups(layout, kubepods)) {
      const stats = take(pod.path);
      if (stats === undefined) continue;
      const containers = new Map<string, CgroupStats>();
      for (const id of pod.containerIds) {
        const c = take(`${pod.path}/${id}`);
        if (c !== undefined) containers.set(id, c);
      }
      const network = readPodNetwork(layout, pod.path, pod.containerIds);
      snapshot.podCgroups.set(pod.uid, { uid: pod.uid, path: pod.path, stats, containers, ...(network === undefined ? {} : { network }) });
    }
    const system: NonNullable<StatsSnapshot["systemContainers"]> = {};
    const kubeletRef = this.o.systemCgroups?.kubelet ?? processCgroup(layout);
    const kubeletStats = kubeletRef === undefined ? undefined : take(kubeletRef);
    if (kubeletRef !== undefined && kubeletStats !== undefined) system.kubelet = { path: typeof kubeletRef === "string" ? kubeletRef : (kubeletRef.memory ?? "/"), stats: kubeletStats };
    const runtimePath = this.o.systemCgroups?.runtime;
    const runtimeStats = runtimePath === undefined ? undefined : take(runtimePath);
    if (runtimePath !== undefined && runtimeStats !== undefined) system.runtime = { path: runtimePath, stats: runtimeStats };
    if (system.kubelet !== undefined || system.runtime !== undefined) snapshot.systemContainers = system;
    const nodeNetwork = readNodeNetwork(layout);
    if (nodeNetwork !== undefined) snapshot.nodeNetwork = nodeNetwork;
    // Cgroups gone since the last pass are forgotten with it.
    this.previous = next;
    this.latest = snapshot;
    this.passes++;
  }
}
