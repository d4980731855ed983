/**
 * How long a container gets to stop (upstream's killContainer in kuberuntime_container.go): the grace period
 * chosen for the kill (a termination's override, else setTerminationGracePeriod: the deletion's grace, a failed
 * probe's own, the pod's), minus the whole seconds a preStop hook used, never under upstream's 2 s minimum
 * when StopContainer is finally called. Pure.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { killGracePeriodSeconds } from "../prober/prober.ts";

/**
 * The grace period of a pod's termination (upstream's calculateEffectiveGracePeriod in pod_workers.go): it
 * only ever shrinks from `current` (0: none yet); the API server's deletionGracePeriodSeconds, then a shorter
 * override (eviction, removal), else the pod's terminationGracePeriodSeconds (so a deletion with grace 0
 * still gets it); never under 1 s.
 */
export function effectiveTerminationGrace(current: number, pod: V1Pod, override?: number): number {
  let grace = current;
  const deletion = pod.metadata?.deletionGracePeriodSeconds;
  if (deletion !== undefined && deletion !== null && (grace === 0 || deletion < grace)) grace = deletion;
  if (override !== undefined && (grace === 0 || override < grace)) grace = override;
  if (grace === 0) grace = pod.spec?.terminationGracePeriodSeconds ?? 30;
  return Math.max(1, grace);
}

/** upstream's minimumGracePeriodInSeconds: containers always get this long between SIGTERM and SIGKILL. */
export const MINIMUM_GRACE_PERIOD_SECONDS = 2;

export interface KillGraceInput {
  pod: V1Pod;
  container: V1Container | undefined;
  /** The pod worker's grace for a termination (deletion, eviction, kubelet removal): replaces the rest. */
  override?: number | undefined;
  /** A failed liveness or startup probe caused the kill: its own terminationGracePeriodSeconds counts. */
  failedProbe?: "liveness" | "startup" | undefined;
}

/** The grace period a kill starts with, before any preStop hook. */
export function killGraceSeconds(input: KillGraceInput): number {
  if (input.override !== undefined) return input.override;
  return killGracePeriodSeconds(input.pod, input.container, input.failedProbe);
}

/** Whether a preStop hook runs: only when one is declared and there is grace left to run it in. */
export function runsPreStop(container: V1Container | undefined, graceSeconds: number): boolean {
  return container?.lifecycle?.preStop !== undefined && container.lifecycle.preStop !== null && graceSeconds > 0;
}

/**
 * The grace StopContainer gets after a preStop hook that took `hookElapsedMs` (0 without one): upstream
 * subtracts the hook's whole seconds (Go's int64 of Seconds() truncates) and floors the result at 2 s.
 */
export function stopGraceSeconds(graceSeconds: number, hookElapsedMs = 0): number {
  return Math.max(MINIMUM_GRACE_PERIOD_SECONDS, graceSeconds - Math.floor(hookElapsedMs / 1000));
}
