/**
 * The runtime pod cache, upstream's kubecontainer.Cache (pkg/kubelet/container/cache.go): what the runtime
 * holds for each pod, as last read, with the time of that read. The PLEG fills it on every relist (one CRI
 * read for the whole node) and raises its global timestamp once a relist is complete; a pod worker asks for a
 * status newer than the end of its last sync and waits until the cache has one, so a sync never acts on a
 * state older than its own last action, and never reads CRI itself.
 */
import { DeckhandError, errorMessage } from "../../src-shared/errors.ts";
import type { PodRuntimeStatus } from "./types.ts";

export interface CachedPodStatus {
  /** What the runtime held; an empty status (no sandbox, no container) for a pod it does not know. */
  status: PodRuntimeStatus;
  /** The read failed: the status is the last good one (or empty) and must not be acted on blindly. */
  error?: Error;
  /** When the read that produced it started (ms since the epoch). */
  timestamp: number;
}

export function emptyPodStatus(uid: string): PodRuntimeStatus {
  return { uid, name: "", namespace: "", sandboxes: [], containers: [] };
}

interface Subscriber {
  minTime: number;
  resolve: (entry: CachedPodStatus) => void;
  reject: (err: unknown) => void;
}

export class PodCache {
  private readonly pods = new Map<string, CachedPodStatus>();
  private readonly subscribers = new Map<string, Set<Subscriber>>();
  /** Every pod's entry is at least this fresh (a complete relist ended after it started). */
  private globalTimestamp = 0;

  /** The cached status (an empty one at the global timestamp for a pod the runtime did not have). */
  get(uid: string): CachedPodStatus {
    return this.pods.get(uid) ?? { status: emptyPodStatus(uid), timestamp: this.globalTimestamp };
  }

  /**
   * Resolves with a status read after `minTime`: at once if the cache has one, else when it comes. Strictly
   * after, as upstream's GetNewerThan (time.After), and more so here: times are whole milliseconds, so a relist
   * stamped with the very millisecond a sync ended may have listed before that sync's last action.
   */
  getNewerThan(uid: string, minTime: number, signal?: AbortSignal): Promise<CachedPodStatus> {
    const entry = this.fresh(uid, minTime);
    if (entry) return Promise.resolve(entry);
    if (signal?.aborted) return Promise.reject(cancelled(signal));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const subs = this.subscribers.get(uid);
        subs?.delete(sub);
        if (subs?.size === 0) this.subscribers.delete(uid);
        reject(cancelled(signal));
      };
      const sub: Subscriber = {
        minTime,
        resolve: (e) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(e);
        },
        reject,
      };
      let subs = this.subscribers.get(uid);
      if (!subs) {
        subs = new Set();
        this.subscribers.set(uid, subs);
      }
      subs.add(sub);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Records a pod's status read at `timestamp` (an older read never replaces a newer one). */
  set(uid: string, status: PodRuntimeStatus, error: Error | undefined, timestamp: number): void {
    const old = this.pods.get(uid);
    if (old && old.timestamp > timestamp) return;
    this.pods.set(uid, { status, ...(error ? { error } : {}), timestamp });
    this.notify(uid);
  }

  /** A relist that started at `timestamp` has completed: every pod's state is known as of then. */
  updateTime(timestamp: number): void {
    if (timestamp <= this.globalTimestamp) return;
    this.globalTimestamp = timestamp;
    for (const uid of [...this.subscribers.keys()]) this.notify(uid);
  }

  /** The pod is gone for good (removed from the kubelet's pods and from the runtime). */
  delete(uid: string): void {
    this.pods.delete(uid);
  }

  /** Uids with an entry (pods the runtime held at some relist and not deleted since). */
  uids(): string[] {
    return [...this.pods.keys()];
  }

  private fresh(uid: string, minTime: number): CachedPodStatus | undefined {
    const entry = this.pods.get(uid);
    if (entry && entry.timestamp > minTime) return entry;
    // A complete relist after minTime that did not see the pod: the runtime has nothing for it.
    if (this.globalTimestamp > minTime) return entry ?? { status: emptyPodStatus(uid), timestamp: this.globalTimestamp };
    return undefined;
  }

  private notify(uid: string): void {
    const subs = this.subscribers.get(uid);
    if (!subs) return;
    for (const sub of [...subs]) {
      const entry = this.fresh(uid, sub.minTime);
      if (!entry) continue;
      subs.delete(sub);
      sub.resolve(entry);
    }
    if (subs.size === 0) this.subscribers.delete(uid);
  }
}

/** A wait given up because the pod's work was cancelled: typed, with the signal's reason as the cause. */
function cancelled(signal: AbortSignal | undefined): DeckhandError {
  const reason: unknown = signal?.reason;
  return new DeckhandError("Cancelled", `waiting for the pod's runtime state cancelled${reason === undefined ? "" : `: ${errorMessage(reason)}`}`, { cause: reason });
}
