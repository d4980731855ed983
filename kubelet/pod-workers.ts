/**
 * One worker per pod, serialising everything done to it, as upstream's podWorkers (pkg/kubelet/pod_workers.go):
 * a pod is synced (SyncPod) until it must stop, then terminated once (SyncTerminatingPod: containers killed
 * with the grace period), then cleaned up (SyncTerminatedPod). The worker owns the pod's lifecycle facts: its
 * state (a tagged union), when it was started, why it ended, and the AbortController of the work under way.
 *
 * - Updates arriving while a sync runs are coalesced into the next one.
 * - A termination request aborts the sync under way at once (a long image pull does not delay the kill); the
 *   terminating phase runs on a fresh controller, aborted again only to restart it with a shorter grace period.
 * - A failed sync is retried with back-off and jitter; a good one is resynced every `resyncIntervalMs` with
 *   jitter (upstream's workerBackOffPeriodJitterFactor and workerResyncIntervalJitterFactor, both 0.5).
 * - Static pods with the same full name (name_namespace) never run at the same time: a new one starts only
 *   once the one started before it has terminated (upstream's startedStaticPodsByFullname and
 *   waitingToStartStaticPodsByFullname), e.g. across an edit of its manifest.
 */
import { effectiveTerminationGrace } from "./lifecycle/grace.ts";
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../src-shared/log.ts";
import { errorMessage } from "../src-shared/errors.ts";
import { Backoff } from "../src-shared/backoff.ts";
import { systemClock, type Clock } from "../src-shared/clock.ts";
import { Wakeup } from "../src-shared/loop.ts";
import { isStaticPod } from "./qos.ts";

/** Upstream's backOffPeriod: the longest wait after a failed sync. */
export const BACK_OFF_PERIOD_MS = 10_000;
/**
 * Where the error back-off starts. Upstream waits backOffPeriod (10 s) after every failure; we start at 1 s and
 * double up to it, so a transient failure (a busy runtime, a status not yet in the API) costs a second, as
 * before this back-off existed, while a pod that keeps failing settles at upstream's pace.
 */
export const INITIAL_BACK_OFF_MS = 1000;
export const WORKER_BACK_OFF_PERIOD_JITTER_FACTOR = 0.5;
export const WORKER_RESYNC_INTERVAL_JITTER_FACTOR = 0.5;

/** How a pod that ended says so in its status (phase Succeeded/Failed with reason and message). */
export interface PodTerminalStatus {
  phase: "Failed" | "Succeeded";
  reason?: string;
  message?: string;
  /** Conditions the ending adds (an eviction's DisruptionTarget). */
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
}

/** Why a pod's termination was requested. */
export type TerminationReason =
  /** It has a deletion timestamp (deleted in the API, evicted). */
  | "Deleted"
  /** It is gone from its source (API pod removed, manifest deleted). */
  | "Removed"
  /** Its sync found it finished (phase Succeeded/Failed, active deadline exceeded...). */
  | "Terminal";

export type PodWorkState =
  | { kind: "syncing" }
  | { kind: "terminating"; gracePeriodSeconds: number; requestedAt: number; reason: TerminationReason }
  | { kind: "terminated"; reason: TerminationReason; requestedAt: number; terminatedAt: number };

/** What a sync is given, besides the pod. */
export interface PodSyncContext {
  /** Aborted when the work is no longer wanted (termination requested, grace shortened, kubelet stopping). */
  signal: AbortSignal;
  /** When the previous sync of this pod ended (0 before the first): read runtime state at least this fresh. */
  lastSyncEnd: number;
  /** When the worker first let the pod start (status.startTime unless the API already has one). */
  startedAt: number | undefined;
  /** How the pod ended, once a sync said so. */
  terminal: PodTerminalStatus | undefined;
  /** When the worker was made for the pod (upstream's first-seen time; undefined in tests that make contexts by hand). */
  firstSeenAt?: number;
}

/**
 * What a sync served, as upstream's UpdateType for kubelet_pod_worker_duration_seconds: `create` (a new
 * pod), `update` (a changed pod), `sync` (a resync or runtime change), `kill` (termination); the
 * terminated phase is reported as `terminated`.
 */
export type PodUpdateType = "create" | "update" | "sync" | "kill";

export interface SyncPodOutcome {
  /** Sync again after this long (a back-off ends, the active deadline falls); default: the periodic resync. */
  retryInMs?: number;
  /** The pod has ended: it goes on to termination with this status. */
  terminal?: PodTerminalStatus;
}

export interface PodSyncer {
  syncPod(pod: V1Pod, ctx: PodSyncContext): Promise<SyncPodOutcome>;
  /** Kills the pod's containers with the grace period (seconds). */
  syncTerminatingPod(pod: V1Pod, gracePeriodSeconds: number, ctx: PodSyncContext): Promise<void>;
  /** After termination: final status, cleanup, API deletion. `removed`: the pod is gone from its sources. */
  syncTerminatedPod(pod: V1Pod, removed: boolean, ctx: PodSyncContext): Promise<void>;
}

export interface PodWorkersOptions {
  syncer: PodSyncer;
  logger: Logger;
  /** upstream's syncFrequency; default 60 s. */
  resyncIntervalMs?: number;
  /** Told when a pod removed from its sources is fully terminated and cleaned up: nobody needs its state now. */
  onPodFinished?: (uid: string) => void;
  clock?: Clock;
  random?: () => number;
}

interface Worker {
  uid: string;
  pod: V1Pod;
  /** name_namespace, as upstream's kubecontainer.GetPodFullName. */
  fullname: string;
  isStatic: boolean;
  state: PodWorkState;
  startedAt: number | undefined;
  terminal: PodTerminalStatus | undefined;
  /** The pod is gone from its sources: once terminated, its worker goes. */
  removed: boolean;
  /** Removed, then added back (same uid) while terminating: once terminated it starts anew. */
  restartRequested: boolean;
  /** Aborts the sync under way: replaced by a fresh one when the phase changes. */
  work: AbortController;
  firstSeenAt: number;
  /** The update the next sync serves, and when it came (the latest replaces an earlier one, as upstream's pendingUpdate). */
  update: { type: PodUpdateType; at: number } | undefined;
  wakeup: Wakeup;
  pending: boolean;
  nextSyncAt: number;
  lastSyncEnd: number;
  backoff: Backoff;
  loop: Promise<void>;
}

/** wait.Jitter: d plus up to factor × d at random. */
export function jitter(ms: number, factor: number, random: () => number = Math.random): number {
  return ms + random() * factor * ms;
}

/** Upstream's kubecontainer.GetPodFullName: name_namespace. */
function fullNameOf(pod: V1Pod): string {
  return `${pod.metadata?.name ?? ""}_${pod.metadata?.namespace ?? ""}`;
}

export class PodWorkers {
  private readonly syncer: PodSyncer;
  private readonly log: Logger;
  private readonly resyncMs: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly onPodFinished: (uid: string) => void;
  private readonly workers = new Map<string, Worker>();
  private readonly syncDoneListeners: ((operation: PodUpdateType | "terminated", seconds: number) => void)[] = [];
  private readonly startedStaticPodsByFullname = new Map<string, string>();
  private readonly waitingToStartStaticPodsByFullname = new Map<string, string[]>();
  private readonly stop = new AbortController();
  /** How many syncs ran (kubelet_pod_worker_duration_seconds count). */
  syncs = 0;

  constructor(options: PodWorkersOptions) {
    this.syncer = options.syncer;
    this.log = options.logger.child({ component: "pod-workers" });
    this.resyncMs = options.resyncIntervalMs ?? 60_000;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.onPodFinished = options.onPodFinished ?? (() => undefined);
  }

  start(signal: AbortSignal): void {
    if (signal.aborted) this.close().catch(() => undefined);
    else signal.addEventListener("abort", () => void this.close(), { once: true });
  }

  /** Stops every worker, aborting the work under way (pods keep running in the runtime). */
  async close(): Promise<void> {
    this.stop.abort();
    for (const w of this.workers.values()) {
      w.work.abort();
      w.wakeup.wake();
    }
    await Promise.all([...this.workers.values()].map((w) => w.loop));
  }

  /** The pod's lifecycle state, or undefined for a pod without a worker. */
  state(uid: string): PodWorkState | undefined {
    return this.workers.get(uid)?.state;
  }

  /** Whether the pod may run containers: it has a worker that is neither terminating nor terminated. */
  isActive(uid: string): boolean {
    return this.workers.get(uid)?.state.kind === "syncing";
  }

  /** When the worker let the pod start; undefined while it waits (a static pod queued behind its namesake). */
  startedAt(uid: string): number | undefined {
    return this.workers.get(uid)?.startedAt;
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
      w = this.newWorker(uid, pod);
      this.workers.set(uid, w);
      w.loop = this.run(w);
    } else {
      if (w.removed) w.restartRequested = true;
      this.noteUpdate(w, "update");
    }
    w.pod = pod;
    if (pod.metadata?.deletionTimestamp) this.requestTermination(w, "Deleted");
    this.trigger(w);
  }

  /** A newer copy of the pod that asks for nothing (a status-only update): kept for the next sync, none is started. */
  refresh(pod: V1Pod): void {
    const w = this.workers.get(pod.metadata?.uid ?? "");
    if (w) w.pod = pod;
    else this.update(pod);
  }

  /** The pod is gone from its sources (deleted in the API, manifest removed): terminate and forget it. */
  remove(uid: string, gracePeriodSeconds?: number): void {
    const w = this.workers.get(uid);
    if (!w) return;
    w.removed = true;
    w.restartRequested = false;
    this.requestTermination(w, "Removed", gracePeriodSeconds);
    this.trigger(w);
  }

  /**
   * Ends a running pod with this final status (upstream's TerminatePodAbnormally, for the eviction manager): its
   * containers are killed with `gracePeriodSeconds` (a shorter deletion grace still wins) and it stays in its
   * source, Failed. False when the pod has no worker or is already stopping.
   */
  terminate(uid: string, terminal: PodTerminalStatus, gracePeriodSeconds: number): boolean {
    const w = this.workers.get(uid);
    if (!w || w.state.kind !== "syncing") return false;
    w.terminal = terminal;
    this.requestTermination(w, "Terminal", gracePeriodSeconds);
    this.trigger(w);
    return true;
  }

  /** Something about the pod changed in the runtime (PLEG) or a timer fired: sync it soon. */
  wake(uid: string): void {
    const w = this.workers.get(uid);
    if (!w) return;
    if (w.update === undefined) w.update = { type: "sync", at: this.clock.now() };
    this.trigger(w);
  }

  /** Each finished sync: the update it served (or `terminated`) and the seconds since that update came. */
  onSyncDone(listener: (operation: PodUpdateType | "terminated", seconds: number) => void): void {
    this.syncDoneListeners.push(listener);
  }

  private noteUpdate(w: Worker, type: PodUpdateType): void {
    // A pod not yet synced stays a creation; a kill is not downgraded by a later change.
    if (w.update?.type === "create" || w.update?.type === "kill") return;
    w.update = { type, at: this.clock.now() };
  }

  private syncDone(operation: PodUpdateType | "terminated", since: number): void {
    const seconds = Math.max(0, this.clock.now() - since) / 1000;
    for (const l of this.syncDoneListeners) l(operation, seconds);
  }

  private newWorker(uid: string, pod: V1Pod): Worker {
    const w: Worker = {
      uid,
      pod,
      fullname: fullNameOf(pod),
      isStatic: isStaticPod(pod),
      state: { kind: "syncing" },
      startedAt: undefined,
      terminal: undefined,
      removed: false,
      restartRequested: false,
      work: new AbortController(),
      firstSeenAt: this.clock.now(),
      update: { type: "create", at: this.clock.now() },
      wakeup: new Wakeup(),
      pending: true,
      nextSyncAt: 0,
      lastSyncEnd: 0,
      backoff: new Backoff({ initialMs: INITIAL_BACK_OFF_MS, maxMs: BACK_OFF_PERIOD_MS, now: () => this.clock.now() }),
      loop: Promise.resolve(),
    };
    if (w.isStatic) this.queueStaticPod(w);
    return w;
  }

  private queueStaticPod(w: Worker): void {
    const waiting = this.waitingToStartStaticPodsByFullname.get(w.fullname) ?? [];
    waiting.push(w.uid);
    this.waitingToStartStaticPodsByFullname.set(w.fullname, waiting);
  }

  /**
   * Starts termination, or shortens the grace of one under way (a later, shorter delete wins, as upstream).
   * The work under way is aborted when it no longer applies: a sync (the pod must stop now), or a kill whose
   * grace period just got shorter (it restarts with the new one).
   */
  private requestTermination(w: Worker, reason: TerminationReason, override?: number): void {
    const s = w.state;
    if (s.kind === "terminated") return;
    // Upstream's calculateEffectiveGracePeriod: the deletion's grace, a shorter override, else the pod's own.
    const gracePeriodSeconds = effectiveTerminationGrace(s.kind === "terminating" ? s.gracePeriodSeconds : 0, w.pod, override);
    if (s.kind === "syncing") {
      w.update = { type: "kill", at: this.clock.now() };
      w.state = { kind: "terminating", gracePeriodSeconds, requestedAt: this.clock.now(), reason };
      this.restartWork(w);
      return;
    }
    if (gracePeriodSeconds < s.gracePeriodSeconds) {
      w.state = { ...s, gracePeriodSeconds };
      this.restartWork(w);
    }
  }

  private restartWork(w: Worker): void {
    w.work.abort();
    w.work = new AbortController();
  }

  private trigger(w: Worker): void {
    w.pending = true;
    w.wakeup.wake();
  }

  /** Upstream's allowStaticPodStart: no other started pod of that full name, and first in line among the waiting. */
  private allowStart(w: Worker): boolean {
    if (!w.isStatic) return true;
    const started = this.startedStaticPodsByFullname.get(w.fullname);
    if (started !== undefined) return started === w.uid;
    const waiting = this.waitingToStartStaticPodsByFullname.get(w.fullname) ?? [];
    // Skip those that went away or stopped before their turn.
    const valid = waiting.filter((uid) => this.workers.get(uid)?.state.kind === "syncing");
    if (valid[0] !== w.uid) {
      this.waitingToStartStaticPodsByFullname.set(w.fullname, valid);
      return false;
    }
    const rest = valid.slice(1);
    if (rest.length > 0) this.waitingToStartStaticPodsByFullname.set(w.fullname, rest);
    else this.waitingToStartStaticPodsByFullname.delete(w.fullname);
    this.startedStaticPodsByFullname.set(w.fullname, w.uid);
    return true;
  }

  /** The pod has terminated: the next static pod of its full name may start. */
  private releaseFullname(w: Worker): void {
    if (!w.isStatic || this.startedStaticPodsByFullname.get(w.fullname) !== w.uid) return;
    this.startedStaticPodsByFullname.delete(w.fullname);
    for (const uid of this.waitingToStartStaticPodsByFullname.get(w.fullname) ?? []) this.wake(uid);
  }

  private async waitForWork(w: Worker): Promise<void> {
    while (!w.pending && !this.stop.signal.aborted) {
      const delay = w.nextSyncAt - this.clock.now();
      if (delay <= 0) return;
      // A wake-up left over from one already handled just goes round again.
      await w.wakeup.wait(delay, this.stop.signal, this.clock);
    }
  }

  /** The update this sync serves: the pending one, else a periodic resync due now. */
  private takeUpdate(w: Worker): { type: PodUpdateType; at: number } {
    const u = w.update ?? { type: "sync", at: this.clock.now() };
    w.update = undefined;
    return u;
  }

  private context(w: Worker): PodSyncContext {
    return { signal: w.work.signal, lastSyncEnd: w.lastSyncEnd, startedAt: w.startedAt, terminal: w.terminal, firstSeenAt: w.firstSeenAt };
  }

  private async run(w: Worker): Promise<void> {
    const log = this.log.child({ pod: `${w.pod.metadata?.namespace ?? ""}/${w.pod.metadata?.name ?? ""}`, podUID: w.uid });
    while (!this.stop.signal.aborted) {
      await this.waitForWork(w);
      if (this.stop.signal.aborted) break;
      w.pending = false;
      const state = w.state;
      const work = w.work;
      try {
        if (state.kind === "syncing") {
          if (w.startedAt === undefined) {
            if (!this.allowStart(w)) {
              log.debug({ fullname: w.fullname }, "static pod waits for the one of the same full name to terminate");
              // Woken when the other terminates; the timer is a safety net, as upstream's requeue.
              w.nextSyncAt = this.clock.now() + jitter(BACK_OFF_PERIOD_MS, WORKER_BACK_OFF_PERIOD_JITTER_FACTOR, this.random);
              continue;
            }
            w.startedAt = this.clock.now();
          }
          this.syncs++;
          const served = this.takeUpdate(w);
          const outcome = await this.syncer.syncPod(w.pod, this.context(w)).catch((err: unknown) => {
            w.update ??= served; // served again by the retry
            throw err;
          });
          this.syncDone(served.type, served.at);
          w.lastSyncEnd = this.clock.now();
          w.backoff.reset();
          if (outcome.terminal && w.state.kind === "syncing") {
            w.terminal = outcome.terminal;
            this.requestTermination(w, "Terminal");
          }
          if (w.state.kind !== "syncing") {
            w.pending = true; // on to the next phase at once
            continue;
          }
          const resync = jitter(this.resyncMs, WORKER_RESYNC_INTERVAL_JITTER_FACTOR, this.random);
          w.nextSyncAt = this.clock.now() + Math.min(resync, outcome.retryInMs ?? Infinity);
        } else if (state.kind === "terminating") {
          this.syncs++;
          const served = this.takeUpdate(w);
          await this.syncer.syncTerminatingPod(w.pod, state.gracePeriodSeconds, this.context(w)).catch((err: unknown) => {
            w.update ??= served;
            throw err;
          });
          this.syncDone(served.type, served.at);
          w.lastSyncEnd = this.clock.now();
          w.backoff.reset();
          // A shorter grace that arrived meanwhile restarts the kill; otherwise the pod has terminated.
          if (w.work !== work) {
            w.pending = true;
            continue;
          }
          w.state = { kind: "terminated", reason: state.reason, requestedAt: state.requestedAt, terminatedAt: this.clock.now() };
          w.work = new AbortController(); // a fresh one per phase (nothing runs on the old one now)
          w.pending = true;
        } else {
          this.syncs++;
          const served = this.takeUpdate(w);
          await this.syncer.syncTerminatedPod(w.pod, w.removed, this.context(w)).catch((err: unknown) => {
            w.update ??= served;
            throw err;
          });
          this.syncDone("terminated", served.at);
          w.lastSyncEnd = this.clock.now();
          w.backoff.reset();
          this.releaseFullname(w);
          if (w.removed && w.restartRequested) {
            // Removed and added back while it was stopping (a manifest moved out and in): it runs anew.
            log.info("pod came back while terminating; starting it again");
            Object.assign(w, { state: { kind: "syncing" }, startedAt: undefined, terminal: undefined, removed: false, restartRequested: false, pending: true, update: { type: "create", at: this.clock.now() } });
            w.work = new AbortController();
            if (w.isStatic) this.queueStaticPod(w);
            continue;
          }
          if (w.removed) {
            this.workers.delete(w.uid);
            this.onPodFinished(w.uid);
            return;
          }
          // A finished pod that still exists in its source: nothing more to do until it changes or goes.
          w.nextSyncAt = Number.POSITIVE_INFINITY;
        }
      } catch (err) {
        if (this.stop.signal.aborted) break;
        if (work.signal.aborted) {
          // Interrupted on purpose (termination requested, grace shortened): the next phase is already queued.
          log.debug({ state: state.kind }, "pod sync interrupted");
          w.pending = true;
          continue;
        }
        const delay = jitter(w.backoff.next(), WORKER_BACK_OFF_PERIOD_JITTER_FACTOR, this.random);
        log.warn({ err: errorMessage(err), state: state.kind, retryInMs: Math.round(delay) }, "pod sync failed; retrying");
        w.nextSyncAt = this.clock.now() + delay;
      }
    }
  }
}
