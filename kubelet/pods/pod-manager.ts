/**
 * The kubelet's own facts about the pods its sources want (upstream's pod manager): each desired pod by uid,
 * and the pods admission refused. The pod workers own each pod's lifecycle; every other component that keeps
 * per-pod state says so by implementing `PodStateOwner`, so that one `forget(uid)` reaches them all.
 */
import type { V1Pod } from "@kubernetes/client-node";

/** A component keeping state per pod uid, dropped once the pod is gone for good. */
export interface PodStateOwner {
  forgetPod(uid: string): void;
}

export class PodManager implements PodStateOwner {
  private readonly desired = new Map<string, V1Pod>();
  private readonly rejected = new Set<string>();

  set(pod: V1Pod): void {
    this.desired.set(pod.metadata?.uid ?? "", pod);
  }

  get(uid: string): V1Pod | undefined {
    return this.desired.get(uid);
  }

  has(uid: string): boolean {
    return this.desired.has(uid);
  }

  /** The pod is no longer wanted by its source (its worker may still be stopping it). */
  delete(uid: string): void {
    this.desired.delete(uid);
  }

  pods(): V1Pod[] {
    return [...this.desired.values()];
  }

  reject(uid: string): void {
    this.rejected.add(uid);
  }

  isRejected(uid: string): boolean {
    return this.rejected.has(uid);
  }

  forgetPod(uid: string): void {
    this.desired.delete(uid);
    this.rejected.delete(uid);
  }
}

/**
 * Upstream's HandlePodAdditions order: oldest creationTimestamp first. Pods without one (static pods) come
 * first, as Go's zero time does; ties keep their arrival order (the sort is stable).
 */
export function byCreationTime(a: V1Pod, b: V1Pod): number {
  const t = (p: V1Pod): number => {
    const c = p.metadata?.creationTimestamp;
    if (c === undefined || c === null) return Number.NEGATIVE_INFINITY;
    const ms = c instanceof Date ? c.getTime() : Date.parse(String(c));
    return Number.isNaN(ms) ? Number.NEGATIVE_INFINITY : ms;
  };
  return t(a) - t(b) || 0;
}

/**
 * Holds what one pod source delivers until its first full list is in, then hands the pods over oldest first,
 * so that admission after a restart decides in creation order, not in list order (which pod is refused when
 * the node is full must not depend on the API's listing order). Later changes pass straight through.
 */
export class InitialBatch {
  private held: Map<string, V1Pod> | undefined = new Map();

  /** Whether the source's first full list is still being gathered. */
  get open(): boolean {
    return this.held !== undefined;
  }

  /** Holds a new or changed pod; false once the batch is released (deliver it directly). */
  hold(pod: V1Pod): boolean {
    if (!this.held) return false;
    const uid = pod.metadata?.uid ?? "";
    // A change of a held pod keeps its place; the latest version wins.
    this.held.set(uid, pod);
    return true;
  }

  /** Drops a held pod that went away before the batch was released; false when it was not held. */
  drop(uid: string): boolean {
    return this.held?.delete(uid) ?? false;
  }

  /** Ends the batch: the held pods, oldest first. */
  release(): V1Pod[] {
    const pods = [...(this.held?.values() ?? [])];
    this.held = undefined;
    return pods.sort(byCreationTime);
  }
}
