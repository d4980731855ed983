/**
 * One worker per pod, serialising everything done to it, as upstream's podWorkers: a pod is synced
 * (SyncPod) until it must stop, then terminated once (SyncTerminatingPod: containers killed with the grace
 * period), then cleaned up (SyncTerminatedPod). Updates arriving while a sync runs are coalesced into the
 * next one; a sync may ask to run again after a delay (back-off ends, periodic resync).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../src-shared/log.ts";
import { errorMessage } from "../src-shared/errors.ts";

export interface PodSyncer {
  /** Returns when to sync again (ms), or undefined for the periodic resync; `terminal` ends the pod's life. */
  syncPod(pod: V1Pod, signal: AbortSignal): Promise<{ retryInMs?: number; terminal?: boolean }>;
  /** Kills the pod's containers with the grace period (seconds). */
  syncTerminatingPod(pod: V1Pod, gracePeriodSeconds: number, signal: AbortSignal): Promise<void>;
  /** After termination: final status, cleanup, API deletion. `removed`: the pod is gone from its sources. */
  syncTerminatedPod(pod: V1Pod, removed: boolean, signal: AbortSignal): Promise<void>;
}

export type WorkerState = "syncing" | "terminating" | "terminated";

interface Worker {
  uid: string;
  pod: V1Pod;
  state: WorkerState;
  /** Grace period asked for by the kill (seconds). */
  grace: number | undefined;
  pending: boolean;
  wake: (() => void) | undefined;
  loop: Promise<void>;
  nextSyncAt: number;
  /** The pod was removed from its sources: after termination the worker is forgotten. */
  removed: boolean;
  /** The pod came back (same uid) while terminating: once terminated, it starts again (upstream's restartRequested). */
  restartRequested: boolean;
}

export class PodWorkers {
  private readonly syncer: PodSyncer;
  private readonly log: Logger;
  private readonly resyncMs: number;
  private readonly workers = new Map<string, Worker>();
  private readonly stop = new AbortController();
  /** How many syncs ran (kubelet_pod_worker_duration_seconds count). */
  syncs = 0;

  constructor(options: { syncer: PodSyncer; logger: Logger; resyncIntervalMs?: number }) {
    this.syncer = options.syncer;
    this.log = options.logger.child({ component: "pod-workers" });
    this.resyncMs = options.resyncIntervalMs ?? 60_000;
  }

  start(signal: AbortSignal): void {
    signal.addEventListener("abort", () => this.stop.abort(), { once: true });
  }

  /** Stops every worker loop (pods keep running in the runtime). */
  async close(): Promise<void> {
    this.stop.abort();
    for (const w of this.workers.values()) w.wake?.();
    await Promise.all([...this.workers.values()].map((w) => w.loop));
  }

  state(uid: string): WorkerState | undefined {
    return this.workers.get(uid)?.state;
  }

  uids(): string[] {
    return [...this.workers.keys()];
  }

  /** A new or changed pod from its sources; a deletion timestamp starts termination. */
  update(pod: V1Pod): void {
    const uid = pod.metadata?.uid ?? "";
    if (!uid || this.stop.signal.aborted) return;
    let w = this.workers.get(uid);
    if (!w) {
      w = { uid, pod, state: "syncing", grace: undefined, pending: true, wake: undefined, loop: Promise.resolve(), nextSyncAt: 0, removed: false, restartRequested: false };
      this.workers.set(uid, w);
      w.loop = this.run(w);
    }
    w.pod = pod;
    if (w.removed) w.restartRequested = true;
    if (pod.metadata?.deletionTimestamp) this.beginTermination(w, pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30);
    this.trigger(w);
  }

  /** The pod is gone from its sources (deleted in the API, manifest removed): terminate and forget it. */
  remove(uid: string, gracePeriodSeconds?: number): void {
    const w = this.workers.get(uid);
    if (!w) return;
    w.removed = true;
    w.restartRequested = false;
    this.beginTermination(w, gracePeriodSeconds ?? w.pod.spec?.terminationGracePeriodSeconds ?? 30);
    this.trigger(w);
  }

  /** Something about the pod changed in the runtime (PLEG) or a timer fired: sync it soon. */
  wake(uid: string): void {
    const w = this.workers.get(uid);
    if (w) this.trigger(w);
  }

  /** Starts termination, or shortens the grace of one under way (a later, shorter delete wins, as upstream). */
  private beginTermination(w: Worker, grace: number): void {
    if (w.state === "terminated") return;
    w.state = "terminating";
    w.grace = Math.min(grace, w.grace ?? Infinity);
  }

  private trigger(w: Worker): void {
    w.pending = true;
    w.wake?.();
  }

  private async waitForWork(w: Worker): Promise<void> {
    if (w.pending || this.stop.signal.aborted) return;
    // setTimeout fires at once past 2^31-1 ms: cap the wait (a parked worker wakes every ~24 days, harmlessly).
    const delay = Math.min(2_147_483_647, Math.max(0, w.nextSyncAt - Date.now()));
    const timer = new AbortController();
    await Promise.race([
      new Promise<void>((resolve) => {
        w.wake = resolve;
      }),
      sleep(delay, undefined, { signal: timer.signal }).catch(() => undefined),
    ]);
    timer.abort();
    w.wake = undefined;
  }

  private async run(w: Worker): Promise<void> {
    const log = this.log.child({ podUID: w.uid });
    const signal = this.stop.signal;
    while (!signal.aborted) {
      await this.waitForWork(w);
      if (signal.aborted) break;
      w.pending = false;
      this.syncs++;
      try {
        if (w.state === "syncing") {
          const result = await this.syncer.syncPod(w.pod, signal);
          if (result.terminal && w.state === "syncing") this.beginTermination(w, w.pod.spec?.terminationGracePeriodSeconds ?? 30);
          if (w.state !== "syncing") {
            w.pending = true;
            continue;
          }
          w.nextSyncAt = Date.now() + (result.retryInMs ?? this.resyncMs);
        } else if (w.state === "terminating") {
          await this.syncer.syncTerminatingPod(w.pod, w.grace ?? 30, signal);
          w.state = "terminated";
          w.pending = true;
        } else {
          await this.syncer.syncTerminatedPod(w.pod, w.removed, signal);
          if (w.removed && w.restartRequested) {
            // Removed and added back while it was stopping (a static pod's manifest moved out and in): run anew.
            Object.assign(w, { state: "syncing", removed: false, restartRequested: false, grace: undefined, pending: true });
            continue;
          }
          if (w.removed) {
            this.workers.delete(w.uid);
            return;
          }
          // A terminated pod that still exists in its source (a finished pod): nothing more to do until removed.
          w.nextSyncAt = Number.MAX_SAFE_INTEGER;
        }
      } catch (err) {
        if (signal.aborted) break;
        log.warn({ err: errorMessage(err), state: w.state }, "pod sync failed; retrying");
        w.nextSyncAt = Date.now() + 1000;
      }
    }
  }
}
