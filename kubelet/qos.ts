/**
 * Quality of service and the resource arithmetic built on it, as upstream:
 *
 * - `qosClass` / `computePodQOS`: pkg/apis/core/v1/helper/qos (GetPodQOS, ComputePodQOS), with the API's
 *   defaulting of requests from limits (SetDefaults_Pod) applied first, since pods that did not pass through
 *   an API server (static pods read from disk) have not been defaulted;
 * - `oomScoreAdj`: pkg/kubelet/qos/policy.go GetContainerOOMScoreAdjust (and helpers.go);
 * - `isStaticPod`, `isMirrorPod`, `isCriticalPod`, `isNodeCriticalPod`: pkg/kubelet/types/pod_update.go;
 * - `milliCPUToShares`, `milliCPUToQuota`: pkg/kubelet/cm/helpers_linux.go.
 *
 * Feature gates as in a current release: PodLevelResources on (pod-level `spec.resources` decide the class
 * and add to the OOM heuristic), InPlacePodVerticalScaling's allocated-resources bookkeeping not modelled.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { quantityFromJSON } from "../src-shared/quantity.ts";
import { CONFIG_MIRROR_ANNOTATION, CONFIG_SOURCE_ANNOTATION } from "./runtime/labels.ts";

export type QOSClass = "Guaranteed" | "Burstable" | "BestEffort";

// ---------------------------------------------------------------------------------------------------------
// QoS class
// ---------------------------------------------------------------------------------------------------------

type ResourceList = Readonly<Record<string, unknown>> | undefined;

const QOS_RESOURCES = ["cpu", "memory"] as const;

/** A container's (or the pod's) requests after the API's defaulting: a limit without request is its request. */
function effectiveRequests(requests: ResourceList, limits: ResourceList): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(requests ?? {}) };
  for (const [k, v] of Object.entries(limits ?? {})) if (out[k] === undefined && v !== undefined && v !== null) out[k] = v;
  return out;
}

/** The exact value of an optional quantity in nano units (Go quantities are no finer), 0 when absent. */
function nanoValue(v: unknown): bigint {
  return v === undefined || v === null ? 0n : quantityFromJSON(v).nanos;
}

/** resourceQOS: the class of one set of requirements (a container's, or the pod-level ones). */
function resourceQOS(requests: ResourceList, limits: ResourceList): QOSClass {
  const req = effectiveRequests(requests, limits);
  if (Object.keys(req).length === 0 && Object.keys(limits ?? {}).length === 0) return "BestEffort";
  let qos: QOSClass | undefined;
  for (const name of QOS_RESOURCES) {
    const r = nanoValue(req[name]);
    const l = nanoValue(limits?.[name]);
    // Unequal: at least one is set, so neither Guaranteed nor BestEffort.
    if (r !== l) return "Burstable";
    const bestEffort = r === 0n;
    if (qos === undefined) qos = bestEffort ? "BestEffort" : "Guaranteed";
    else if (bestEffort !== (qos === "BestEffort")) return "Burstable";
  }
  return qos ?? "BestEffort";
}

/** Whether the pod sets pod-level resources (spec.resources with any request or limit). */
function podLevelResourcesSet(pod: V1Pod): boolean {
  const r = pod.spec?.resources;
  return r !== undefined && (Object.keys(r.requests ?? {}).length > 0 || Object.keys(r.limits ?? {}).length > 0);
}

/**
 * ComputePodQOS: from pod-level resources when set, else each container's class (init containers included;
 * ephemeral ones cannot ask for resources): any Burstable container, or a mix of Guaranteed and BestEffort
 * ones, makes the pod Burstable. Only cpu and memory count; requests default to limits.
 */
export function computePodQOS(pod: V1Pod): QOSClass {
  const r = pod.spec?.resources;
  if (podLevelResourcesSet(pod)) return resourceQOS(r?.requests, r?.limits);
  let podQOS: QOSClass | undefined;
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    const qos = resourceQOS(c.resources?.requests, c.resources?.limits);
    if (qos === "Burstable") return qos;
    if (podQOS === undefined) podQOS = qos;
    else if (podQOS !== qos) return "Burstable";
  }
  return podQOS ?? "BestEffort";
}

/** GetPodQOS: the class the API recorded (status.qosClass) when there is one, else computed from the spec. */
export function qosClass(pod: V1Pod): QOSClass {
  const recorded = pod.status?.qosClass;
  if (recorded === "Guaranteed" || recorded === "Burstable" || recorded === "BestEffort") return recorded;
  return computePodQOS(pod);
}

// ---------------------------------------------------------------------------------------------------------
// Pod kinds (pkg/kubelet/types)
// ---------------------------------------------------------------------------------------------------------

/** scheduling.SystemCriticalPriority: 2 × the highest user-definable priority (1e9). */
export const SYSTEM_CRITICAL_PRIORITY = 2_000_000_000;
export const SYSTEM_NODE_CRITICAL = "system-node-critical";

/** A pod from a file or URL source: its config.source annotation says so (absent = not known to be static). */
export function isStaticPod(pod: V1Pod): boolean {
  const source = pod.metadata?.annotations?.[CONFIG_SOURCE_ANNOTATION];
  return source !== undefined && source !== "api";
}

export function isMirrorPod(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.[CONFIG_MIRROR_ANNOTATION] !== undefined;
}

/** IsCriticalPod: static, mirror, or priority at or above system-cluster-critical's. */
export function isCriticalPod(pod: V1Pod): boolean {
  if (isStaticPod(pod) || isMirrorPod(pod)) return true;
  const priority = pod.spec?.priority;
  return priority !== undefined && priority >= SYSTEM_CRITICAL_PRIORITY;
}

/** IsNodeCriticalPod: critical AND of priority class system-node-critical (both, as upstream). */
export function isNodeCriticalPod(pod: V1Pod): boolean {
  return isCriticalPod(pod) && pod.spec?.priorityClassName === SYSTEM_NODE_CRITICAL;
}

// ---------------------------------------------------------------------------------------------------------
// oom_score_adj (pkg/kubelet/qos/policy.go)
// ---------------------------------------------------------------------------------------------------------

export const KUBELET_OOM_SCORE_ADJ = -999;
export const KUBE_PROXY_OOM_SCORE_ADJ = -999;
const GUARANTEED_OOM_SCORE_ADJ = -997;
const BESTEFFORT_OOM_SCORE_ADJ = 1000;

/** Memory().Value() of a request list after defaulting from limits, in bytes (rounded up). */
function memoryRequest(requests: ResourceList, limits: ResourceList): bigint {
  const v = effectiveRequests(requests, limits)["memory"];
  return v === undefined || v === null ? 0n : quantityFromJSON(v).scaledValue(0);
}

function containerMemoryRequest(c: V1Container): bigint {
  return memoryRequest(c.resources?.requests, c.resources?.limits);
}

/** resourcehelper.IsPodLevelRequestsSet: pod-level requests naming a supported resource. */
function podLevelRequestsSet(pod: V1Pod): boolean {
  const r = pod.spec?.resources;
  return QOS_RESOURCES.some((n) => effectiveRequests(r?.requests, r?.limits)[n] !== undefined);
}

/** AggregateContainerRequests for memory: regular + sidecars, at least the peak of the init sequence. */
function aggregateContainerMemoryRequests(pod: V1Pod): bigint {
  let total = 0n;
  for (const c of pod.spec?.containers ?? []) total += containerMemoryRequest(c);
  let sidecars = 0n;
  let initPeak = 0n;
  for (const c of pod.spec?.initContainers ?? []) {
    const req = containerMemoryRequest(c);
    let use: bigint;
    if (c.restartPolicy === "Always") {
      total += req;
      sidecars += req;
      use = sidecars;
    } else use = req + sidecars;
    if (use > initPeak) initPeak = use;
  }
  return total > initPeak ? total : initPeak;
}

/** remainingPodMemReqPerContainer: the pod-level memory request not given to any container, per container. */
function remainingPodMemoryRequestPerContainer(pod: V1Pod): bigint {
  const r = pod.spec?.resources;
  const podRequest = memoryRequest(r?.requests, r?.limits);
  if (podRequest === 0n) return 0n;
  const n = BigInt((pod.spec?.containers?.length ?? 0) + (pod.spec?.initContainers?.length ?? 0));
  if (n === 0n) return 0n;
  return (podRequest - aggregateContainerMemoryRequests(pod)) / n;
}

function isSidecarContainer(pod: V1Pod, container: V1Container): boolean {
  return container.restartPolicy === "Always" && (pod.spec?.initContainers ?? []).some((c) => c.name === container.name);
}

/**
 * GetContainerOOMScoreAdjust: -997 for node-critical and Guaranteed pods, 1000 for BestEffort, and for
 * Burstable `1000 - 1000 × memoryRequest / memoryCapacity` (integer division) clamped to [3, 999]; a sidecar
 * gets no more than what the regular container with the smallest memory request would get.
 */
export function oomScoreAdj(pod: V1Pod, container: V1Container, memoryCapacityBytes: number): number {
  if (isNodeCriticalPod(pod)) return GUARANTEED_OOM_SCORE_ADJ;
  switch (qosClass(pod)) {
    case "Guaranteed":
      return GUARANTEED_OOM_SCORE_ADJ;
    case "BestEffort":
      return BESTEFFORT_OOM_SCORE_ADJ;
    case "Burstable":
      break;
  }
  const capacity = BigInt(Math.max(0, Math.floor(memoryCapacityBytes)));
  // Upstream divides by the capacity unconditionally; without one, no request counts.
  const adj = (request: bigint): bigint => (capacity > 0n ? 1000n - (1000n * request) / capacity : 1000n);
  const podLevel = podLevelRequestsSet(pod);
  const remaining = podLevel ? remainingPodMemoryRequestPerContainer(pod) : 0n;
  let score = adj(containerMemoryRequest(container) + remaining);
  if (isSidecarContainer(pod, container)) {
    const regular = pod.spec?.containers ?? [];
    if (regular.length > 0) {
      let min = containerMemoryRequest(regular[0]!);
      for (const c of regular.slice(1)) {
        const r = containerMemoryRequest(c);
        if (r < min) min = r;
      }
      const minAdj = adj(min + remaining);
      if (score > minAdj) score = minAdj;
    }
  }
  if (score < BigInt(1000 + GUARANTEED_OOM_SCORE_ADJ)) return 1000 + GUARANTEED_OOM_SCORE_ADJ;
  if (score === BigInt(BESTEFFORT_OOM_SCORE_ADJ)) return BESTEFFORT_OOM_SCORE_ADJ - 1;
  return Number(score);
}

// ---------------------------------------------------------------------------------------------------------
// CPU shares and quota (pkg/kubelet/cm/helpers_linux.go)
// ---------------------------------------------------------------------------------------------------------

export const MIN_SHARES = 2;
export const MAX_SHARES = 262_144;
export const SHARES_PER_CPU = 1024;
export const MILLI_CPU_TO_CPU = 1000;
/** Default CFS period, µs (100 ms). */
export const QUOTA_PERIOD = 100_000;
/** Smallest CFS quota the kernel takes, µs (1 ms). */
export const MIN_QUOTA_PERIOD = 1000;
/** The smallest CPU limit that is not raised to MIN_QUOTA_PERIOD: 1000 × 1000 / 100000. */
export const MIN_MILLI_CPU_LIMIT = 10;

/** MilliCPUToShares: 1024 per core, at least 2 (also for no request), at most 262144. */
export function milliCPUToShares(milliCPU: number): number {
  if (milliCPU === 0) return MIN_SHARES;
  const shares = Math.trunc((milliCPU * SHARES_PER_CPU) / MILLI_CPU_TO_CPU);
  if (shares < MIN_SHARES) return MIN_SHARES;
  if (shares > MAX_SHARES) return MAX_SHARES;
  return shares;
}

/**
 * MilliCPUToQuota: the CFS quota (µs) for a CPU limit over `period` µs, at least 1 ms; 0 for no limit.
 * Upstream honours a non-default period only with the CPUCFSQuotaPeriod feature gate: callers decide.
 */
export function milliCPUToQuota(milliCPU: number, period: number = QUOTA_PERIOD): number {
  if (milliCPU === 0) return 0;
  const quota = Math.trunc((milliCPU * period) / MILLI_CPU_TO_CPU);
  return quota < MIN_QUOTA_PERIOD ? MIN_QUOTA_PERIOD : quota;
}
