/**
 * The order pods are evicted in, as upstream's rank functions (pkg/kubelet/eviction/helpers.go):
 *
 *   memory   orderedBy(exceedMemoryRequests, priority, memory): pods whose working set exceeds their memory
 *            request first (pods without stats first of all), then lower priority, then the larger working set
 *            above the request
 *   pids     orderedBy(priority, process): lower priority, then more processes
 *   disk     orderedBy(exceedDiskRequests, priority, disk): usage (container writable layers, logs, local volumes)
 *            above the ephemeral-storage request; inodes the same with no request
 *
 * The QoS class is not used directly. Pure.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { quantityValue } from "../../src-shared/quantity.ts";
import { podRequests } from "../cm/pod-resources.ts";
import type { StarvedResource } from "./thresholds.ts";

export interface ContainerUsage {
  name: string;
  memoryWorkingSetBytes?: number;
  /** Writable layer; undefined when not measured. */
  rootfsBytes?: number;
  rootfsInodes?: number;
  logsBytes?: number;
  logsInodes?: number;
}

export interface VolumeUsage {
  name: string;
  usedBytes: number;
  inodesUsed: number;
}

/** One pod's usage as the eviction manager sees it (upstream's statsapi.PodStats subset). */
export interface PodUsage {
  memoryWorkingSetBytes?: number;
  processes?: number;
  containers: ContainerUsage[];
  /** Local ephemeral volumes (emptyDir on disk). */
  volumes: VolumeUsage[];
}

export type UsageOf = (pod: V1Pod) => PodUsage | undefined;
type Cmp = (a: V1Pod, b: V1Pod) => number;

/** cmpBool: true first. */
function cmpBool(a: boolean, b: boolean): number {
  if (a === b) return 0;
  return a ? -1 : 1;
}

function orderedBy(...cmps: Cmp[]): Cmp {
  return (a, b) => {
    for (const c of cmps) {
      const r = c(a, b);
      if (r !== 0) return r;
    }
    return 0;
  };
}

export function podPriority(pod: V1Pod): number {
  return pod.spec?.priority ?? 0;
}

/** Lower priority first. */
const priority: Cmp = (a, b) => podPriority(a) - podPriority(b);

/** The pod's memory request as the scheduler counts it (init containers, sidecars, overhead). */
export function memoryRequest(pod: V1Pod): number {
  try {
    return podRequests(pod).memoryBytes;
  } catch {
    return 0;
  }
}

/** The sum of the containers' ephemeral-storage requests (max with the init containers'). */
export function ephemeralStorageRequest(pod: V1Pod): number {
  const of = (cs: { resources?: { requests?: Record<string, unknown> } }[] | undefined): number[] =>
    (cs ?? []).map((c) => {
      const v = c.resources?.requests?.["ephemeral-storage"];
      return v === undefined ? 0 : quantityValue(v as string);
    });
  try {
    const sum = of(pod.spec?.containers).reduce((a, b) => a + b, 0);
    return Math.max(sum, ...of(pod.spec?.initContainers));
  } catch {
    return 0;
  }
}

function withStats(usage: UsageOf, f: (a: PodUsage, b: PodUsage, pa: V1Pod, pb: V1Pod) => number): Cmp {
  return (pa, pb) => {
    const a = usage(pa);
    const b = usage(pb);
    if (!a || !b) return cmpBool(!a, !b);
    return f(a, b, pa, pb);
  };
}

const memoryOf = (u: PodUsage): number => u.memoryWorkingSetBytes ?? 0;

export function rankMemoryPressure(pods: readonly V1Pod[], usage: UsageOf): V1Pod[] {
  const exceeds = withStats(usage, (a, b, pa, pb) => cmpBool(memoryOf(a) > memoryRequest(pa), memoryOf(b) > memoryRequest(pb)));
  const memory = withStats(usage, (a, b, pa, pb) => memoryOf(b) - memoryRequest(pb) - (memoryOf(a) - memoryRequest(pa)));
  return [...pods].sort(orderedBy(exceeds, priority, memory));
}

export function rankPIDPressure(pods: readonly V1Pod[], usage: UsageOf): V1Pod[] {
  const process = withStats(usage, (a, b) => (b.processes ?? 0) - (a.processes ?? 0));
  return [...pods].sort(orderedBy(priority, process));
}

/** A pod's local storage usage (bytes or inodes): writable layers, logs, local volumes. */
export function podDiskUsage(u: PodUsage, resource: "ephemeral-storage" | "inodes"): number {
  let total = 0;
  for (const c of u.containers) total += resource === "inodes" ? (c.rootfsInodes ?? 0) + (c.logsInodes ?? 0) : (c.rootfsBytes ?? 0) + (c.logsBytes ?? 0);
  for (const v of u.volumes) total += resource === "inodes" ? v.inodesUsed : v.usedBytes;
  return total;
}

export function rankDiskPressure(pods: readonly V1Pod[], usage: UsageOf, resource: "ephemeral-storage" | "inodes"): V1Pod[] {
  const request = (p: V1Pod): number => (resource === "inodes" ? 0 : ephemeralStorageRequest(p));
  const exceeds = withStats(usage, (a, b, pa, pb) => cmpBool(podDiskUsage(a, resource) > request(pa), podDiskUsage(b, resource) > request(pb)));
  const disk = withStats(usage, (a, b, pa, pb) => podDiskUsage(b, resource) - request(pb) - (podDiskUsage(a, resource) - request(pa)));
  return [...pods].sort(orderedBy(exceeds, priority, disk));
}

export function rankFor(resource: StarvedResource): (pods: readonly V1Pod[], usage: UsageOf) => V1Pod[] {
  switch (resource) {
    case "memory":
      return rankMemoryPressure;
    case "pids":
      return rankPIDPressure;
    case "ephemeral-storage":
    case "inodes":
      return (pods, usage) => rankDiskPressure(pods, usage, resource);
  }
}
