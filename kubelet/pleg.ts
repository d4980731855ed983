/**
 * The Pod Lifecycle Event Generator, upstream's GenericPLEG (pkg/kubelet/pleg/generic.go): a second after each
 * relist it lists sandboxes and containers from CRI (one call each for the whole node), and for each pod whose
 * state changed since the previous relist (or that has no cache entry yet) reads what changed (container
 * statuses of new or changed containers, the newest ready sandbox's IPs when it changed) into the runtime pod
 * cache, stamped with the relist's start time; the entries of pods the runtime no longer holds go. Once every
 * pod is in, it raises the cache's global time and tells the pod workers which pods changed. Syncs read the
 * cache ("newer than"), never CRI. Its health (a relist within 3 minutes) feeds the Node's Ready condition.
 *
 * The kubelet depends on `PodLifecycleEventGenerator`, so an evented PLEG (CRI GetContainerEvents, not in
 * containerd 1.6) can stand in for the relisting one later.
 */
import type { Logger } from "../src-shared/log.ts";
import { errorMessage } from "../src-shared/errors.ts";
import { systemClock, type Clock } from "../src-shared/clock.ts";
import { PeriodicLoop } from "../src-shared/loop.ts";
import { forEachConcurrently } from "../src-shared/concurrency.ts";
import type { RuntimeService } from "./cri/services.ts";
import type { Container, PodSandbox } from "./cri/types.ts";
import { POD_UID_LABEL, POD_NAME_LABEL, POD_NAMESPACE_LABEL, CONTAINER_NAME_LABEL } from "./runtime/labels.ts";
import { emptyPodStatus, type PodCache } from "./runtime/pod-cache.ts";
import { buildPodStatus } from "./runtime/runtime-manager.ts";

export const PLEG_RELIST_PERIOD_MS = 1000;
export const PLEG_RELIST_THRESHOLD_MS = 3 * 60_000;
/** Pods whose changes one relist reads from the runtime at once. */
const RELIST_READ_CONCURRENCY = 4;

/** What one relist saw of a pod: enough to tell changes and to find orphans. */
export interface RelistedPod {
  uid: string;
  name: string;
  namespace: string;
  /** `<kind>:<id>=<state>` for every sandbox and container, sorted: equal strings mean nothing changed. */
  fingerprint: string;
  /** Names of containers running now. */
  running: string[];
}

export interface PlegEvent {
  uid: string;
  /** Container names that started or died since the previous relist (for logs). */
  changed: string[];
}

/** What the kubelet needs of a PLEG (upstream's PodLifecycleEventGenerator). */
export interface PodLifecycleEventGenerator {
  onEvent(listener: (event: PlegEvent) => void): void;
  start(signal: AbortSignal): void;
  close(): Promise<void>;
  /** Upstream's PLEG health check. */
  healthy(now?: number): { ok: boolean; lastSeenMs: number };
  /** Whether the runtime has been seen at least once (the cache is complete). */
  readonly hasRelisted: boolean;
  /** Pods the runtime held at the last look. */
  runtimePods(): ReadonlyMap<string, RelistedPod>;
}

export interface PlegOptions {
  runtime: RuntimeService;
  cache: PodCache;
  logger: Logger;
  clock?: Clock;
  periodMs?: number;
}

interface Listed {
  pod: RelistedPod;
  sandboxes: PodSandbox[];
  containers: Container[];
}

export class Pleg implements PodLifecycleEventGenerator {
  private readonly cri: RuntimeService;
  private readonly cache: PodCache;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly periodMs: number;
  private readonly loop: PeriodicLoop;
  private pods = new Map<string, RelistedPod>();
  /** Pods whose last read failed: read again at the next relist even if their listing did not change. */
  private readonly reinspect = new Set<string>();
  private readonly listeners: ((event: PlegEvent) => void)[] = [];
  private lastRelist = 0;
  private relisted = false;
  /** The relist under way: relists never overlap (the loop's and a forced one). */
  private current: Promise<void> = Promise.resolve();
  /** Duration of the last relist, ms (kubelet_pleg_relist_duration_seconds). */
  lastRelistDurationMs = 0;

  constructor(options: PlegOptions) {
    this.cri = options.runtime;
    this.cache = options.cache;
    this.log = options.logger.child({ component: "pleg" });
    this.clock = options.clock ?? systemClock;
    this.periodMs = options.periodMs ?? PLEG_RELIST_PERIOD_MS;
    this.loop = new PeriodicLoop({
      name: "PLEG relist",
      intervalMs: this.periodMs,
      logger: this.log,
      clock: this.clock,
      // A whole period after each relist, however long it took (upstream's wait.Until is sliding): a slow
      // runtime is not listed back to back.
      run: () => this.relist(),
    });
  }

  onEvent(listener: (event: PlegEvent) => void): void {
    this.listeners.push(listener);
  }

  start(signal: AbortSignal): void {
    this.lastRelist = this.clock.now();
    this.loop.start(signal);
  }

  async close(): Promise<void> {
    await this.loop.close();
    await this.current.catch(() => undefined);
  }

  /**
   * Upstream's PLEG health check: relisted within the threshold, and never before a first relist succeeded
   * ("pleg has yet to be successful"); `lastSeenMs` counts from start() until then.
   */
  healthy(now = this.clock.now()): { ok: boolean; lastSeenMs: number } {
    const since = now - this.lastRelist;
    return { ok: this.relisted && since <= PLEG_RELIST_THRESHOLD_MS, lastSeenMs: since };
  }

  /** Whether at least one relist has completed (the runtime has been seen). */
  get hasRelisted(): boolean {
    return this.relisted;
  }

  /** Pods seen in the runtime at the last relist. */
  runtimePods(): ReadonlyMap<string, RelistedPod> {
    return this.pods;
  }

  /** One relist; public so the kubelet can force one (e.g. right after start). Waits for one under way. */
  relist(): Promise<void> {
    const next = this.current.catch(() => undefined).then(() => this.relistOnce());
    this.current = next;
    return next;
  }

  private async relistOnce(): Promise<void> {
    const signal = this.loop.signal;
    // The cache's timestamps are the start of the relist: a status read now is at least this fresh.
    const timestamp = this.clock.now();
    const opts = { signal, timeoutMs: 30_000 };
    const [{ items }, { containers }] = await Promise.all([this.cri.runtime("ListPodSandbox", {}, opts), this.cri.runtime("ListContainers", {}, opts)]);
    const listed = group(items, containers);

    const cached = new Set(this.cache.uids());
    const changed: string[] = [];
    for (const [uid, l] of listed) {
      const before = this.pods.get(uid);
      if (!before || before.fingerprint !== l.pod.fingerprint || this.reinspect.has(uid) || !cached.has(uid)) changed.push(uid);
    }
    const gone = [...this.pods.keys()].filter((uid) => !listed.has(uid));

    const failed = new Set<string>();
    // A few pods at a time (upstream reads them one by one): a burst of new pods must not put a status call per
    // pod on the runtime at once, while the same pods' syncs wait on it.
    await forEachConcurrently(changed, RELIST_READ_CONCURRENCY, async (uid) => {
      const l = listed.get(uid);
      if (!l) return;
      const previous = cached.has(uid) ? this.cache.get(uid) : undefined;
      try {
        const status = await buildPodStatus(this.cri, uid, l.sandboxes, l.containers, previous?.error ? undefined : previous?.status, signal);
        this.cache.set(uid, status, undefined, timestamp);
      } catch (err) {
        if (signal.aborted) throw err;
        // Keep the last good status, marked: a sync must not act on it blindly, and the next relist reads again.
        failed.add(uid);
        this.log.warn({ podUID: uid, err: errorMessage(err) }, "could not read the pod's state from the runtime; will retry");
        this.cache.set(uid, previous?.status ?? emptyPodStatus(uid), err instanceof Error ? err : new Error(String(err)), timestamp);
      }
    });
    // A pod the runtime no longer holds: its entry goes, as upstream's updateCache for a pod missing from the
    // relist (the cache then answers "nothing" for it once updateTime below vouches for the whole node). So does
    // an entry the relists never saw (a pod read by its sync, then removed before a relist). A read newer than
    // this relist's start (a sync's own) stays: it may show what this listing missed.
    for (const uid of cached) if (!listed.has(uid) && this.cache.get(uid).timestamp <= timestamp) this.cache.delete(uid);
    this.cache.updateTime(timestamp);

    const events: PlegEvent[] = [];
    for (const uid of changed) {
      if (failed.has(uid)) continue; // as upstream: no event until the pod could be read
      const l = listed.get(uid);
      const before = this.pods.get(uid);
      if (!l || (before?.fingerprint === l.pod.fingerprint && !this.reinspect.has(uid))) continue; // first cache fill of a known pod
      const running = l.pod.running;
      events.push({ uid, changed: [...new Set([...running.filter((n) => !before?.running.includes(n)), ...(before?.running.filter((n) => !running.includes(n)) ?? [])])] });
    }
    for (const uid of gone) events.push({ uid, changed: [] });

    this.reinspect.clear();
    for (const uid of failed) this.reinspect.add(uid);
    const pods = new Map<string, RelistedPod>();
    for (const [uid, l] of listed) {
      // A pod that could not be read keeps its old listing, so its change is seen (and told) once it can be.
      const before = this.pods.get(uid);
      pods.set(uid, failed.has(uid) && before ? before : l.pod);
    }
    this.pods = pods;
    this.lastRelist = this.clock.now();
    this.lastRelistDurationMs = this.lastRelist - timestamp;
    this.relisted = true;
    for (const ev of events) {
      for (const l of this.listeners) {
        try {
          l(ev);
        } catch (err) {
          // One listener's bug must not cost the others (or the next pods) their events.
          this.log.error({ podUID: ev.uid, err: errorMessage(err) }, "PLEG event listener failed");
        }
      }
    }
  }
}

/** Groups one node-wide listing by pod uid (objects without the kubelet's labels are not ours). */
function group(sandboxes: readonly PodSandbox[], containers: readonly Container[]): Map<string, Listed> {
  const out = new Map<string, Listed & { parts: string[] }>();
  const entry = (labels: Record<string, string>): (Listed & { parts: string[] }) | undefined => {
    const uid = labels[POD_UID_LABEL];
    if (!uid) return undefined;
    let e = out.get(uid);
    if (!e) {
      e = { pod: { uid, name: labels[POD_NAME_LABEL] ?? "", namespace: labels[POD_NAMESPACE_LABEL] ?? "", fingerprint: "", running: [] }, sandboxes: [], containers: [], parts: [] };
      out.set(uid, e);
    }
    return e;
  };
  for (const s of sandboxes) {
    const e = entry(s.labels);
    if (!e) continue;
    e.sandboxes.push(s);
    e.parts.push(`s:${s.id}=${s.state}`);
  }
  for (const c of containers) {
    const e = entry(c.labels);
    if (!e) continue;
    e.containers.push(c);
    e.parts.push(`c:${c.id}=${c.state}`);
    if (c.state === "CONTAINER_RUNNING") e.pod.running.push(c.labels[CONTAINER_NAME_LABEL] ?? "");
  }
  const result = new Map<string, Listed>();
  for (const [uid, e] of out) {
    e.pod.fingerprint = e.parts.sort().join(",");
    e.pod.running.sort();
    result.set(uid, { pod: e.pod, sandboxes: e.sandboxes, containers: e.containers });
  }
  return result;
}
