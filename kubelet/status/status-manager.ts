/**
 * Sends pod statuses to the API, as upstream's status manager: the latest status of each pod is kept, sent
 * as a strategic merge patch to pods/status only when it differs from what the API last accepted, with the
 * pod's uid as precondition; a failure (conflict, outage) keeps it pending and it is retried, so the latest
 * status is never lost and never overtaken by an older one.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import { Backoff } from "../../src-shared/backoff.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import { PeriodicLoop } from "../../src-shared/loop.ts";
import { forEachConcurrently } from "../../src-shared/concurrency.ts";
import { isApiError, type KubeClient } from "../../src-shared/kube/client.ts";

/** What the status manager needs of the API (a fake in unit tests). */
export type StatusClient = Pick<KubeClient, "patch" | "get">;

export interface PodKey {
  namespace: string;
  name: string;
  /** The uid of the pod object in the API (a static pod's mirror pod has its own). */
  uid: string;
}

export interface StatusManagerOptions<S> {
  client: StatusClient;
  logger: Logger;
  /** Whether two statuses are the same for the API (ignoring probe times). */
  equal: (a: S, b: S) => boolean;
  /** The strategic merge patch for pods/status. */
  patch: (key: PodKey, previous: S | undefined, next: S) => unknown;
  /** Resend pending statuses at least this often; default 10 s (upstream's syncPeriod). */
  resyncMs?: number;
  clock?: Clock;
  /** Longest a status send may take; default 10 s. */
  requestTimeoutMs?: number;
  /** Longest the last sends of close() may take together (shutdown must not hang on a dead API); default 2 s. */
  shutdownFlushMs?: number;
}

/** Pods whose statuses one pass sends at once. */
const SEND_CONCURRENCY = 8;

interface Entry<S> {
  key: PodKey;
  status: S;
  /** What the API last accepted from us. */
  sent: S | undefined;
  version: number;
}

export class StatusManager<S> {
  private readonly options: StatusManagerOptions<S>;
  private readonly log: Logger;
  private readonly entries = new Map<string, Entry<S>>();
  private readonly dirty = new Set<string>();
  private readonly backoff: Backoff;
  private readonly loop: PeriodicLoop;
  private readonly timeoutMs: number;
  private started = false;
  /** Patches the API accepted (for tests and metrics). */
  patches = 0;

  constructor(options: StatusManagerOptions<S>) {
    this.options = options;
    this.log = options.logger.child({ component: "status-manager" });
    const clock = options.clock ?? systemClock;
    this.timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.backoff = new Backoff({ initialMs: 500, maxMs: 10_000, jitter: 0.1, now: () => clock.now() });
    this.loop = new PeriodicLoop({
      name: "pod status sync",
      intervalMs: options.resyncMs ?? 10_000,
      run: (signal) => this.syncBatch(signal),
      logger: this.log,
      clock,
    });
  }

  start(signal: AbortSignal): void {
    this.started = true;
    this.loop.start(signal);
  }

  /** Stops the loop, then sends what is still pending once (best effort, bounded by shutdownFlushMs). */
  async close(): Promise<void> {
    await this.loop.close();
    if (!this.started || this.dirty.size === 0) return;
    const deadline = AbortSignal.timeout(this.options.shutdownFlushMs ?? 2000);
    for (const uid of [...this.dirty]) {
      if (deadline.aborted) break;
      await this.send(uid, deadline);
    }
    if (this.dirty.size > 0) this.log.warn({ pending: this.dirty.size }, "pod statuses not sent before shutdown");
  }

  /**
   * One pass: sends every pending status, a few pods at a time (each pod's own sends stay in order: a pass sends
   * a pod once); the delay before the next pass. Upstream's syncBatch sends one at a time, but with a Go client
   * a send costs little of the kubelet; here a burst of new pods would queue its Running statuses behind every
   * other pod's round trip.
   */
  private async syncBatch(signal: AbortSignal): Promise<number | undefined> {
    let failed = false;
    await forEachConcurrently([...this.dirty], SEND_CONCURRENCY, async (uid) => {
      if (!signal.aborted && !(await this.send(uid, signal))) failed = true;
    });
    if (failed) return this.backoff.next();
    this.backoff.reset();
    return this.dirty.size > 0 ? 0 : undefined;
  }

  /** Records the pod's latest status; it reaches the API soon if it changed. */
  setStatus(podUid: string, key: PodKey, status: S): void {
    const e = this.entries.get(podUid);
    if (e && e.key.uid === key.uid && this.options.equal(e.status, status)) return;
    this.entries.set(podUid, { key, status, sent: e?.key.uid === key.uid ? e.sent : undefined, version: (e?.version ?? 0) + 1 });
    if (e?.sent === undefined || !this.options.equal(e.sent, status)) {
      this.dirty.add(podUid);
      this.loop.wake();
    }
  }

  /** The latest status recorded for a pod (what the kubelet believes), sent or not. */
  getStatus(podUid: string): S | undefined {
    return this.entries.get(podUid)?.status;
  }

  /**
   * The API's copy of the pod's status (from the pod watch): it is the base the next patch is diffed against,
   * and when it differs from what the kubelet holds (someone else wrote kubelet-owned fields, e.g. the node
   * lifecycle controller marking pods not ready during a partition), the kubelet's status is sent again, as
   * upstream's needsReconcile does.
   */
  reconcile(podUid: string, apiUid: string, apiStatus: S): void {
    const e = this.entries.get(podUid);
    if (!e || e.key.uid !== apiUid) return;
    e.sent = apiStatus;
    if (this.options.equal(e.status, apiStatus)) this.dirty.delete(podUid);
    else if (!this.dirty.has(podUid)) {
      this.dirty.add(podUid);
      this.loop.wake();
    }
  }

  /** Sends the pod's pending status now; true when the API has the latest (upstream deletes only then). */
  async flush(podUid: string): Promise<boolean> {
    if (!this.dirty.has(podUid)) return this.entries.has(podUid);
    return this.send(podUid);
  }

  /** The pod is gone for good (PodStateOwner). */
  forgetPod(podUid: string): void {
    this.entries.delete(podUid);
    this.dirty.delete(podUid);
  }

  /** Whether every recorded status has reached the API. */
  get settled(): boolean {
    return this.dirty.size === 0;
  }

  private async send(uid: string, signal?: AbortSignal): Promise<boolean> {
    const e = this.entries.get(uid);
    if (!e) {
      this.dirty.delete(uid);
      return true;
    }
    const { version, status, key } = e;
    try {
      await this.options.client.patch(
        { group: "", version: "v1", resource: "pods", namespace: key.namespace, name: key.name, subresource: "status" },
        "strategic",
        this.options.patch(key, e.sent, status),
        { timeoutMs: this.timeoutMs, ...(signal ? { signal } : {}) },
      );
      this.patches++;
      const now = this.entries.get(uid);
      // The entry may have moved on meanwhile (a newer status, or a recreated mirror pod with another uid).
      if (now && now.key.uid === key.uid) {
        now.sent = status;
        if (now.version === version) this.dirty.delete(uid);
      }
      return true;
    } catch (err) {
      if (isApiError(err, 404) || (isApiError(err, 409) && (await this.replaced(key, signal)))) {
        // The pod is gone, or replaced by another of the same name: this status is no one's any more.
        this.log.debug({ pod: `${key.namespace}/${key.name}`, err: errorMessage(err) }, "dropping status of a pod the API no longer has");
        if (this.entries.get(uid)?.key.uid === key.uid) this.dirty.delete(uid);
        return true;
      }
      this.log.warn({ pod: `${key.namespace}/${key.name}`, err: errorMessage(err) }, "status update failed; will retry");
      return false;
    }
  }

  /**
   * A 409 on the uid precondition means the pod under that name is another one now; any other 409 is a real
   * conflict to retry. Told apart by reading the pod, never by the error's text.
   */
  private async replaced(key: PodKey, signal?: AbortSignal): Promise<boolean> {
    try {
      const pod = await this.options.client.get<V1Pod>({ group: "", version: "v1", resource: "pods", namespace: key.namespace, name: key.name }, { timeoutMs: this.timeoutMs, ...(signal ? { signal } : {}) });
      return pod.metadata?.uid !== key.uid;
    } catch (err) {
      return isApiError(err, 404);
    }
  }
}
