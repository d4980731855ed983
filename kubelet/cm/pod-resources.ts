/**
 * A pod's resources as one figure, the single home of that arithmetic for admission, the pod cgroup and the
 * QoS cgroups: upstream's PodRequests and PodLimits (k8s.io/component-helpers/resource) and ResourceConfigForPod
 * (pkg/kubelet/cm/helpers_linux.go). Pure.
 *
 * Both aggregate the same way: the app containers and the sidecars (restartable init containers) together, or an
 * init container with the sidecars started before it, whichever needs more; then the pod overhead (added to every
 * request, and to a limit only where there is one). Pod-level `spec.resources` is refused at admission.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { milliValue, quantityValue } from "../../src-shared/quantity.ts";
import { milliCPUToQuota, milliCPUToShares, qosClass } from "../qos.ts";
import { isSidecar } from "../pod-helpers.ts";

export interface CpuMemory {
  cpuMilli: number;
  memoryBytes: number;
}

type Amounts = Readonly<Record<string, unknown>> | undefined;

function amountsOf(list: Amounts): CpuMemory {
  const cpu = list?.["cpu"] as string | number | undefined;
  const mem = list?.["memory"] as string | number | undefined;
  return { cpuMilli: cpu === undefined || cpu === null ? 0 : milliValue(cpu), memoryBytes: mem === undefined || mem === null ? 0 : quantityValue(mem) };
}

const add = (a: CpuMemory, b: CpuMemory): CpuMemory => ({ cpuMilli: a.cpuMilli + b.cpuMilli, memoryBytes: a.memoryBytes + b.memoryBytes });
const max = (a: CpuMemory, b: CpuMemory): CpuMemory => ({ cpuMilli: Math.max(a.cpuMilli, b.cpuMilli), memoryBytes: Math.max(a.memoryBytes, b.memoryBytes) });
const ZERO: CpuMemory = { cpuMilli: 0, memoryBytes: 0 };

/**
 * max(Σ app containers + Σ sidecars, peak of the init sequence), where an init container's moment counts itself
 * plus the sidecars started before it. `each` also sees every container's own amount (for `declared`).
 */
function aggregate(pod: V1Pod, of: (c: V1Container) => CpuMemory, each?: (own: CpuMemory) => void): CpuMemory {
  let total = ZERO;
  for (const c of pod.spec?.containers ?? []) {
    const own = of(c);
    each?.(own);
    total = add(total, own);
  }
  let sidecars = ZERO;
  let initPeak = ZERO;
  for (const c of pod.spec?.initContainers ?? []) {
    const own = of(c);
    let inUse: CpuMemory;
    if (isSidecar(c)) {
      total = add(total, own);
      sidecars = add(sidecars, own);
      inUse = sidecars;
    } else inUse = add(own, sidecars);
    each?.(inUse);
    initPeak = max(initPeak, inUse);
  }
  return max(total, initPeak);
}

/** A container's requests after the API's defaulting: a limit without a request is the request. */
function containerRequests(c: V1Container): CpuMemory {
  const req = c.resources?.requests ?? {};
  const lim = c.resources?.limits ?? {};
  return amountsOf({ cpu: req["cpu"] ?? lim["cpu"], memory: req["memory"] ?? lim["memory"] });
}

/** PodRequests: what the scheduler and admission count, overhead included. */
export function podRequests(pod: V1Pod): CpuMemory {
  return add(aggregate(pod, containerRequests), amountsOf(pod.spec?.overhead));
}

export interface PodLimits extends CpuMemory {
  /** Every container (init ones included) limits cpu; else the pod as a whole is not cpu-limited. */
  cpuDeclared: boolean;
  memoryDeclared: boolean;
}

/** PodLimits: the same aggregation of limits; the overhead is added to a resource only where it is limited. */
export function podLimits(pod: V1Pod): PodLimits {
  let cpuDeclared = true;
  let memoryDeclared = true;
  const sum = aggregate(
    pod,
    (c) => amountsOf(c.resources?.limits),
    (own) => {
      if (own.cpuMilli === 0) cpuDeclared = false;
      if (own.memoryBytes === 0) memoryDeclared = false;
    },
  );
  const overhead = amountsOf(pod.spec?.overhead);
  return {
    cpuMilli: sum.cpuMilli > 0 ? sum.cpuMilli + overhead.cpuMilli : 0,
    memoryBytes: sum.memoryBytes > 0 ? sum.memoryBytes + overhead.memoryBytes : 0,
    cpuDeclared,
    memoryDeclared,
  };
}

/** The settings of one cgroup, as upstream's ResourceConfig (undefined = left as the kernel has it). */
export interface ResourceConfig {
  cpuShares?: number;
  /** CFS quota in µs; -1 = unlimited ("max"). */
  cpuQuotaUs?: number;
  cpuPeriodUs?: number;
  memoryLimitBytes?: number;
  pidsLimit?: number;
}

/** A pod cgroup's settings: the shares are always set. */
export type PodResourceConfig = ResourceConfig & { cpuShares: number };

export interface PodResourceOptions {
  cpuCFSQuota: boolean;
  cpuCFSQuotaPeriodUs: number;
  /** podPidsLimit: > 0 puts pids.max on every pod cgroup; -1 (or 0) none. */
  podPidsLimit?: number;
}

/**
 * ResourceConfigForPod: shares from the pod's requests (init containers, sidecars and overhead counted); for a
 * Guaranteed pod the CFS quota (unless CFS quota is off) and memory limit of PodLimits, for a Burstable one only
 * those every container declares; BestEffort pods get the minimum shares. Plus podPidsLimit, on every class
 * (pod_container_manager_linux.go EnsureExists).
 */
export function podResourceConfig(pod: V1Pod, options: PodResourceOptions): PodResourceConfig {
  const pids = options.podPidsLimit !== undefined && options.podPidsLimit > 0 ? { pidsLimit: options.podPidsLimit } : {};
  const qos = qosClass(pod);
  if (qos === "BestEffort") return { cpuShares: milliCPUToShares(0), ...pids };
  const limits = podLimits(pod);
  const quota = options.cpuCFSQuota && limits.cpuMilli > 0 && (qos === "Guaranteed" || limits.cpuDeclared);
  const memory = limits.memoryBytes > 0 && (qos === "Guaranteed" || limits.memoryDeclared);
  return {
    cpuShares: milliCPUToShares(podRequests(pod).cpuMilli),
    ...(quota ? { cpuQuotaUs: milliCPUToQuota(limits.cpuMilli, options.cpuCFSQuotaPeriodUs), cpuPeriodUs: options.cpuCFSQuotaPeriodUs } : {}),
    ...(memory ? { memoryLimitBytes: limits.memoryBytes } : {}),
    ...pids,
  };
}
