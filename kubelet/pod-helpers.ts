/**
 * The one home of the pod facts that both the runtime side (what to run, runtime/pod-actions.ts) and the
 * status side (what to report, status/pod-status.ts) decide from: restart policy, sidecars, whether a
 * container is restarted, whether the pod needs a new sandbox. Pure; upstream:
 * pkg/kubelet/container/helpers.go (ShouldContainerBeRestarted), pkg/kubelet/kuberuntime/kuberuntime_manager.go
 * (podSandboxChanged), pkg/api/v1/pod (IsRestartableInitContainer).
 */
import { isDeepStrictEqual } from "node:util";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { PodRuntimeStatus, RuntimeContainer } from "./runtime/types.ts";

export type RestartPolicy = "Always" | "OnFailure" | "Never";

/** The pod's restartPolicy; the API server's default (Always) when unset. */
export function restartPolicy(pod: V1Pod): RestartPolicy {
  const p = pod.spec?.restartPolicy ?? "Always";
  return p === "OnFailure" || p === "Never" ? p : "Always";
}

/** A restartable init container (a sidecar): an init container whose own restartPolicy is Always. */
export function isSidecar(c: V1Container): boolean {
  return c.restartPolicy === "Always";
}

/** Whether the pod has been asked to terminate (deletionTimestamp set). */
export function isPodDeleting(pod: V1Pod): boolean {
  return pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null;
}

/**
 * Upstream's ShouldContainerBeRestarted (ContainerRestartRules off: the pod's policy decides), given the
 * container's newest attempt: a deleted pod restarts nothing; a container never run (or garbage collected)
 * starts; a running one stays; one in unknown or created state is restarted; an exited one by policy.
 */
export function shouldContainerBeRestarted(pod: V1Pod, latest: RuntimeContainer | undefined): boolean {
  if (isPodDeleting(pod)) return false;
  if (!latest) return true;
  if (latest.state === "running") return false;
  if (latest.state === "unknown" || latest.state === "created") return true;
  const policy = restartPolicy(pod);
  if (policy === "Never") return false;
  if (policy === "OnFailure" && latest.exitCode === 0) return false;
  return true;
}

export interface SandboxChange {
  /** A new sandbox is needed. */
  changed: boolean;
  /** Attempt for the new sandbox, or the current one's. */
  attempt: number;
  /** The newest sandbox's id ("" when there is none). */
  sandboxId: string;
}

/**
 * Upstream's podSandboxChanged: a new sandbox is needed when there is none, when more than one is ready, when
 * the newest is not ready, or when a pod network pod's newest sandbox has no IP. (The network-namespace mode
 * check is not modelled: a pod's hostNetwork cannot change.)
 */
export function podSandboxChanged(pod: V1Pod, status: PodRuntimeStatus | undefined): SandboxChange {
  const sandboxes = status?.sandboxes ?? [];
  const latest = sandboxes[0];
  if (!latest) return { changed: true, attempt: 0, sandboxId: "" };
  const next = { changed: true, attempt: latest.attempt + 1, sandboxId: latest.id };
  if (sandboxes.filter((s) => s.state === "ready").length > 1) return next;
  if (latest.state !== "ready") return next;
  if (!pod.spec?.hostNetwork && latest.ips.length === 0) return next;
  return { changed: false, attempt: latest.attempt, sandboxId: latest.id };
}

/** Annotations the kubelet's pod sources set themselves: a difference in them is no change of the pod. */
const LOCAL_ANNOTATIONS = new Set(["kubernetes.io/config.source", "kubernetes.io/config.mirror", "kubernetes.io/config.seen"]);

function annotationsEqual(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const own = (m: Record<string, string> | undefined): [string, string][] => Object.entries(m ?? {}).filter(([k]) => !LOCAL_ANNOTATIONS.has(k));
  const x = own(a);
  const y = new Map(own(b));
  return x.length === y.size && x.every(([k, v]) => y.get(k) === v);
}

/**
 * Whether an update of a pod asks the kubelet for anything (upstream's podsDifferSemantically): its spec, labels,
 * deletion or annotations changed. A status-only update (most often the echo of the kubelet's own status patch)
 * does not: it is reconciled, not synced.
 */
export function podsDifferSemantically(existing: V1Pod, next: V1Pod): boolean {
  const a = existing.metadata;
  const b = next.metadata;
  return !(
    isDeepStrictEqual(existing.spec, next.spec) &&
    isDeepStrictEqual(a?.labels ?? {}, b?.labels ?? {}) &&
    String(a?.deletionTimestamp ?? "") === String(b?.deletionTimestamp ?? "") &&
    a?.deletionGracePeriodSeconds === b?.deletionGracePeriodSeconds &&
    annotationsEqual(a?.annotations, b?.annotations)
  );
}

/**
 * Whether a status-only update must still be synced because the pod's Ready condition depends on it: a pod with
 * readiness gates whose gate conditions changed (upstream syncs when NeedToReconcilePodReadiness).
 */
export function readinessGatesChanged(existing: V1Pod, next: V1Pod): boolean {
  const gates = next.spec?.readinessGates ?? [];
  if (gates.length === 0) return false;
  const condition = (p: V1Pod, type: string): string => {
    const c = p.status?.conditions?.find((x) => x.type === type);
    return c ? `${c.status}/${c.message ?? ""}` : "";
  };
  return gates.some((g) => condition(existing, g.conditionType) !== condition(next, g.conditionType));
}
