/**
 * Probe results by container id, one cache per probe kind (upstream's prober/results.Manager): workers write,
 * the status computation and the restart decision read, and listeners (the pod workers) hear every change,
 * as upstream's Updates() channel wakes the sync loop.
 */

export type ProbeType = "liveness" | "readiness" | "startup";

/** upstream's results.Result. */
export type ProbeResult = "Success" | "Failure" | "Unknown";

export interface ResultUpdate {
  containerId: string;
  result: ProbeResult;
  podUid: string;
}

export type ResultListener = (update: ResultUpdate) => void;

export class ResultsManager {
  private readonly cache = new Map<string, ProbeResult>();
  private readonly listeners = new Set<ResultListener>();

  get(containerId: string): ProbeResult | undefined {
    return this.cache.get(containerId);
  }

  /** Records a result; listeners hear it only when it changes (as upstream's Set). */
  set(containerId: string, result: ProbeResult, podUid: string): void {
    if (this.cache.get(containerId) === result) return;
    this.cache.set(containerId, result);
    for (const l of this.listeners) l({ containerId, result, podUid });
  }

  remove(containerId: string): void {
    this.cache.delete(containerId);
  }

  /** Subscribes to changes; returns the unsubscribe. */
  onUpdate(listener: ResultListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get size(): number {
    return this.cache.size;
  }
}
