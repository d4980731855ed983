/**
 * What an eviction says, in upstream's words (pkg/kubelet/eviction/helpers.go evictionMessage and constants;
 * eviction_manager.go Admit): the pod's status message and event, the DisruptionTarget condition, the event's
 * annotations, and admission's refusal under pressure. Every fragment ends with a space, as upstream's. Pure.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { Quantity } from "../../src-shared/quantity.ts";
import type { PodUsage } from "./ranking.ts";
import { SIGNAL_TO_RESOURCE, formatOf, thresholdQuantityText, type Observations, type StarvedResource, type Threshold } from "./thresholds.ts";

/** status.reason of an evicted pod, and the event's reason. */
export const EVICTED_REASON = "Evicted";
/** The DisruptionTarget condition's reason when the kubelet ends a pod. */
export const TERMINATION_BY_KUBELET = "TerminationByKubelet";

export const OFFENDING_CONTAINERS_KEY = "offending_containers";
export const OFFENDING_CONTAINERS_USAGE_KEY = "offending_containers_usage";
export const STARVED_RESOURCE_KEY = "starved_resource";

export function emptyDirMessage(volume: string, limit: string): string {
  return `Usage of EmptyDir volume ${JSON.stringify(volume)} exceeds the limit ${JSON.stringify(limit)}. `;
}

export function podEphemeralStorageMessage(limit: string): string {
  return `Pod ephemeral local storage usage exceeds the total limit of containers ${limit}. `;
}

export function containerEphemeralStorageMessage(container: string, limit: string): string {
  return `Container ${container} exceeded its local ephemeral storage limit ${JSON.stringify(limit)}. `;
}

function bytes(n: number): string {
  return Quantity.of(n, "BinarySI").toString();
}

function requestText(v: unknown): string {
  if (v === undefined) return "0";
  try {
    return Quantity.fromJSON(v).toString();
  } catch {
    return JSON.stringify(v) ?? "";
  }
}

/**
 * evictionMessage: "The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. " then,
 * for each container (regular, then init and sidecars) using more than its request of the resource,
 * "Container c was using 300Mi, request is 0, has larger consumption of memory. ".
 */
export function evictionMessage(resource: StarvedResource, pod: V1Pod, usage: PodUsage | undefined, thresholds: readonly Threshold[], observations: Observations): { message: string; annotations: Record<string, string> } {
  let message = `The node was low on resource: ${resource}. `;
  const met = thresholds.find((t) => SIGNAL_TO_RESOURCE[t.signal] === resource && observations.has(t.signal));
  const o = met ? observations.get(met.signal) : undefined;
  if (met && o) message += `Threshold quantity: ${thresholdQuantityText(met, o.capacity)}, available: ${Quantity.of(o.available, formatOf(met.signal)).toString()}. `;
  const annotations: Record<string, string> = {};
  if (!usage) return { message, annotations };
  const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  const names: string[] = [];
  const usages: string[] = [];
  for (const cs of usage.containers) {
    const spec = containers.find((c) => c.name === cs.name);
    if (!spec) continue;
    const requested = (spec.resources?.requests as Record<string, unknown> | undefined)?.[resource];
    let used: number | undefined;
    if (resource === "memory") used = cs.memoryWorkingSetBytes;
    else if (resource === "ephemeral-storage" && cs.rootfsBytes !== undefined && cs.logsBytes !== undefined) used = cs.rootfsBytes + cs.logsBytes;
    if (used === undefined) continue;
    let req: number;
    try {
      req = requested === undefined ? 0 : Quantity.fromJSON(requested).value();
    } catch {
      req = 0;
    }
    if (used > req) {
      message += `Container ${cs.name} was using ${bytes(used)}, request is ${requestText(requested)}, has larger consumption of ${resource}. `;
      names.push(cs.name);
      usages.push(bytes(used));
    }
  }
  annotations[OFFENDING_CONTAINERS_KEY] = names.join(",");
  annotations[OFFENDING_CONTAINERS_USAGE_KEY] = usages.join(",");
  annotations[STARVED_RESOURCE_KEY] = resource;
  return { message, annotations };
}
