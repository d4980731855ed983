/**
 * The eviction manager's figures, read when it asks (upstream's summaryProvider.Get(updateStats=true)): the
 * memory of the root cgroup and of `<cgroupRoot>/kubepods` and of each pod cgroup (cadvisor/cgroup-reader.ts, the
 * memory and pids files only), statfs of the kubelet's root dir and of the image store (cadvisor/machine.ts), the
 * pid figures (cadvisor/node-facts.ts), and the pods' local storage (cadvisor/disk-usage.ts: emptyDir volumes on
 * disk and container logs, read now: the filesystem stats collector's pass is a minute apart) and the containers' writable layers (CRI
 * ListContainerStats, as upstream's CRI stats provider: containerd measures its snapshots). Disk figures are read
 * only for the pods asked about: those with a local storage limit each pass, all of them under disk pressure.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cgroupHierarchies, type CgroupHierarchy } from "../../src-shared/cgroups.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import { cgroupLayout, listPodCgroups, readCgroup, type CgroupLayout, type PodCgroup } from "../../cadvisor/cgroup-reader.ts";
import { kubepodsPath } from "../../cadvisor/collector.ts";
import { readFsInfo, type FsInfo } from "../../cadvisor/machine.ts";
import { readRlimit } from "../../cadvisor/node-facts.ts";
import { podVolumes } from "../volumes/layout.ts";
import { podLogDirectory } from "../runtime/sandbox-config.ts";
import { diskUsage } from "../../cadvisor/disk-usage.ts";
import type { EvictionStats } from "./eviction-manager.ts";
import type { PodUsage } from "./ranking.ts";
import type { NodeFigures } from "./signals.ts";
import type { StarvedResource } from "./thresholds.ts";

export interface NodeStatsOptions {
  cgroupRoot: string;
  rootDir: string;
  imageFsDir: string;
  podLogsDir: string;
  memoryCapacityBytes: () => number;
  /** Capacity − kube/system reserved memory (what enforcing allocatable puts on kubepods). */
  allocatableMemoryBytes: () => number;
  /** Container names by CRI id for a pod (the kubelet's pod cache), newest first. */
  containerNames: (uid: string) => ReadonlyMap<string, string>;
  /** Writable layer usage by CRI container id (CRI ListContainerStats); none when absent. */
  writableLayers?: () => Promise<ReadonlyMap<string, { bytes: number; inodes: number }>>;
  clock?: Clock;
  hierarchies?: () => Promise<readonly CgroupHierarchy[]>;
  procRoot?: string;
}

export class NodeStats implements EvictionStats {
  private readonly o: NodeStatsOptions;
  private readonly clock: Clock;
  private layout: CgroupLayout | undefined;
  private memoryLayout: CgroupLayout | undefined;
  private podsLimit: number | undefined;

  constructor(options: NodeStatsOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
  }

  /** Finds the cgroup hierarchies (once, before the first read). */
  async init(): Promise<void> {
    if (this.layout) return;
    const layout = cgroupLayout(await (this.o.hierarchies ?? cgroupHierarchies)(), this.o.procRoot);
    this.layout = layout;
    // v1: only the memory and pids controllers' files (the watch reads 2 files per cgroup, not 5).
    if (layout) this.memoryLayout = layout.version === 1 ? { ...layout, mounts: { ...(layout.mounts.memory ? { memory: layout.mounts.memory } : {}), ...(layout.mounts.pids ? { pids: layout.mounts.pids } : {}) } } : layout;
  }

  /**
   * The memory watch's cheap read: each cgroup's usage alone (one small file), given as its working set. Usage is
   * never below the working set (usage − inactive_file), so when no threshold is met on these figures none is
   * met on the exact ones, and memory.stat (whose hierarchical totals are the costly read) is not needed. The
   * pods cgroup's limit is the last one the exact read saw.
   */
  memoryUpperBound(): NodeFigures {
    const f: NodeFigures = { timeMs: this.clock.now(), memoryCapacityBytes: this.o.memoryCapacityBytes(), allocatableMemoryBytes: this.o.allocatableMemoryBytes() };
    const layout = this.memoryLayout;
    if (!layout) return f;
    const node = readUsage(layout, "/");
    if (node !== undefined) f.nodeWorkingSetBytes = node;
    const pods = readUsage(layout, kubepodsPath(this.o.cgroupRoot));
    if (pods !== undefined) {
      f.podsWorkingSetBytes = pods;
      if (this.podsLimit !== undefined) f.podsLimitBytes = this.podsLimit;
    }
    return f;
  }

  /** The memory figures alone, synchronously (the memory watch's exact read). */
  memoryFigures(): NodeFigures {
    const now = this.clock.now();
    const f: NodeFigures = { timeMs: now, memoryCapacityBytes: this.o.memoryCapacityBytes(), allocatableMemoryBytes: this.o.allocatableMemoryBytes() };
    const layout = this.memoryLayout;
    if (!layout) return f;
    const node = readCgroup(layout, "/", now)?.memory;
    if (node) f.nodeWorkingSetBytes = node.workingSetBytes;
    const pods = readCgroup(layout, kubepodsPath(this.o.cgroupRoot), now)?.memory;
    if (pods) {
      f.podsWorkingSetBytes = pods.workingSetBytes;
      if (pods.limitBytes !== undefined) f.podsLimitBytes = pods.limitBytes;
      this.podsLimit = pods.limitBytes;
    }
    return f;
  }

  async figures(): Promise<NodeFigures> {
    await this.init();
    const f = this.memoryFigures();
    const [nodeFs, imageFs] = await Promise.all([readFsInfo(this.o.rootDir).catch(() => undefined), readFsInfo(this.o.imageFsDir).catch(() => undefined)]);
    const fig = (i: FsInfo | undefined): NodeFigures["nodeFs"] => (i ? { availableBytes: i.availableBytes, capacityBytes: i.capacityBytes, inodesFree: i.inodesFree, inodes: i.inodes } : undefined);
    const n = fig(nodeFs);
    const im = fig(imageFs);
    if (n) f.nodeFs = n;
    if (im) f.imageFs = im;
    f.dedicatedImageFs = nodeFs !== undefined && imageFs !== undefined && (nodeFs.capacityBytes !== imageFs.capacityBytes || nodeFs.inodes !== imageFs.inodes);
    const rl = readRlimit(this.o.procRoot);
    if (rl.maxpid !== undefined) f.maxPid = rl.maxpid;
    if (rl.curproc !== undefined) f.processes = rl.curproc;
    return f;
  }

  async podUsage(pods: readonly V1Pod[], what: StarvedResource): Promise<Map<string, PodUsage>> {
    await this.init();
    const out = new Map<string, PodUsage>();
    const now = this.clock.now();
    const layout = this.memoryLayout;
    const layers = what === "memory" || what === "pids" ? new Map<string, { bytes: number; inodes: number }>() : await (this.o.writableLayers?.() ?? Promise.resolve(new Map<string, { bytes: number; inodes: number }>())).catch(() => new Map<string, { bytes: number; inodes: number }>());
    const cgroups = new Map<string, PodCgroup>(layout ? listPodCgroups(layout, kubepodsPath(this.o.cgroupRoot)).map((c) => [c.uid, c]) : []);
    for (const pod of pods) {
      const uid = pod.metadata?.uid ?? "";
      const u: PodUsage = { containers: [], volumes: [] };
      const cg = cgroups.get(uid);
      if (layout && cg && (what === "memory" || what === "pids")) {
        const s = readCgroup(layout, cg.path, now);
        if (!s) continue;
        if (s.memory) u.memoryWorkingSetBytes = s.memory.workingSetBytes;
        if (s.pids) u.processes = s.pids.current;
        const names = this.o.containerNames(uid);
        for (const id of cg.containerIds) {
          const name = names.get(id);
          if (name === undefined) continue; // the sandbox, or a container the cache does not know yet
          const c = readCgroup(layout, `${cg.path}/${id}`, now);
          if (c?.memory) u.containers.push({ name, memoryWorkingSetBytes: c.memory.workingSetBytes });
        }
      } else if (what === "memory" || what === "pids") {
        continue; // no stats: ranked first, as upstream ranks pods without stats
      } else {
        for (const [name, v] of podVolumes(this.o.rootDir, pod)) {
          if (v.plugin !== "emptyDir") continue;
          const spec = pod.spec?.volumes?.find((x) => x.name === name);
          if (spec?.emptyDir?.medium === "Memory") continue;
          const d = await diskUsage(v.path);
          u.volumes.push({ name, usedBytes: d?.usedBytes ?? 0, inodesUsed: d?.inodesUsed ?? 0 });
        }
        const logs = podLogDirectory(this.o.podLogsDir, pod);
        // The newest container of each name (the pod cache lists newest first).
        const layerOf = new Map<string, { bytes: number; inodes: number }>();
        for (const [id, name] of this.o.containerNames(uid)) {
          const l = layers.get(id);
          if (l && !layerOf.has(name)) layerOf.set(name, l);
        }
        for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
          const d = await diskUsage(join(logs, c.name));
          const l = layerOf.get(c.name);
          u.containers.push({ name: c.name, logsBytes: d?.usedBytes ?? 0, logsInodes: d?.inodesUsed ?? 0, ...(l ? { rootfsBytes: l.bytes, rootfsInodes: l.inodes } : {}) });
        }
      }
      out.set(uid, u);
    }
    return out;
  }
}

/** A cgroup's memory usage alone (v1 memory.usage_in_bytes, v2 memory.current); undefined when not readable. */
function readUsage(layout: CgroupLayout, cgroupPath: string): number | undefined {
  const rel = cgroupPath === "/" ? "" : cgroupPath;
  const file = layout.version === 1 ? (layout.mounts.memory ? join(layout.mounts.memory, rel, "memory.usage_in_bytes") : undefined) : join(layout.mounts.unified ?? "/sys/fs/cgroup", rel, "memory.current");
  if (file === undefined) return undefined;
  try {
    const v = Number(readFileSync(file, "utf8").trim());
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined; // v2's root has no memory.current: the exact read covers it
  }
}
