/**
 * The eviction manager, as upstream's pkg/kubelet/eviction/eviction_manager.go `synchronize`:
 *
 *   1. observe the signals (fresh figures, not the stats collector's last 10 s pass);
 *   2. thresholds met now, plus those met before whose minimum reclaim is not reached yet;
 *   3. node conditions (MemoryPressure, DiskPressure, PIDPressure), held for evictionPressureTransitionPeriod
 *      after they were last observed;
 *   4. thresholds whose grace period has passed, and whose observation is newer than the last acted on;
 *   5. local storage limits first (emptyDir sizeLimit, pod and container ephemeral-storage limits): a pod over
 *      its limit is evicted at once, whatever the node's state;
 *   6. the threshold to reclaim (memory first): Warning event `EvictionThresholdMet` "Attempting to reclaim
 *      <resource>", node-level reclaim first for disk (dead containers, unused images), and no eviction if that
 *      was enough (minimum reclaim included);
 *   7. the active pods ranked for the resource (ranking.ts) and the first that can be evicted is: critical
 *      pods never; grace 1 s for a hard threshold (upstream's immediateEvictionGracePeriodSeconds: the doc's
 *      "0s", which the pod worker raises to 1 anyway), evictionMaxPodGracePeriod for a soft one (0: the pod's own); phase Failed, reason
 *      `Evicted`, upstream's message, a DisruptionTarget condition and a Warning `Evicted` event. One pod per pass;
 *      then wait (1 s steps, 30 s at most) for it to be cleaned up, as upstream.
 *
 * When it runs: every `monitoringIntervalMs` (upstream's 10 s), when a held condition's transition period ends,
 * and at once when `wake()` is called (the memory watch, memory-watch.ts, calls it as soon as a memory threshold
 * is crossed: that is what makes the reaction fast).
 *
 * Lifecycle: the constructor does no I/O; start(signal); close() waits for the pass under way.
 */
import type { V1Pod, V1PodCondition } from "@kubernetes/client-node";
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import { PeriodicLoop } from "../../src-shared/loop.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import { Quantity } from "../../src-shared/quantity.ts";
import { isCriticalPod } from "../qos.ts";
import { rankFor, type PodUsage } from "./ranking.ts";
import { makeSignalObservations, type NodeFigures } from "./signals.ts";
import {
  EVICTED_REASON,
  TERMINATION_BY_KUBELET,
  containerEphemeralStorageMessage,
  emptyDirMessage,
  evictionMessage,
  podEphemeralStorageMessage,
} from "./messages.ts";
import {
  SIGNAL_TO_RESOURCE,
  isHard,
  mergeThresholds,
  nodeConditions,
  nodeConditionsLastObservedAt,
  nodeConditionsObservedSince,
  sortByEvictionPriority,
  thresholdsFirstObservedAt,
  thresholdsMet,
  thresholdsMetGracePeriod,
  thresholdsUpdatedStats,
  type NodeConditionType,
  type Observation,
  type Signal,
  type StarvedResource,
  type Threshold,
} from "./thresholds.ts";

/** upstream's evictionMonitoringPeriod. */
export const DEFAULT_MONITORING_INTERVAL_MS = 10_000;
/** upstream's immediateEvictionGracePeriodSeconds: hard thresholds and local storage limits. */
export const IMMEDIATE_EVICTION_GRACE_PERIOD_SECONDS = 1;
/** podCleanupTimeout and podCleanupPollFreq. */
export const POD_CLEANUP_TIMEOUT_MS = 30_000;
export const POD_CLEANUP_POLL_MS = 1_000;

export interface EvictionStats {
  /** The node's figures, read now. */
  figures(): Promise<NodeFigures>;
  /** Usage of the given pods, read now; `what` says which figures are needed (memory/pids are cheap, disk walks folders). */
  podUsage(pods: readonly V1Pod[], what: StarvedResource): Promise<Map<string, PodUsage>>;
}

/** How a pod is ended (the kubelet's pod workers: upstream's TerminatePodAbnormally). */
export interface PodEvictor {
  /** Terminates the pod with the grace period and final status; false if it could not be asked to. */
  evict(pod: V1Pod, gracePeriodSeconds: number, status: { reason: string; message: string; conditions: V1PodCondition[] }): boolean;
  /** The pod's containers are gone (its worker has terminated it). */
  isCleanedUp(uid: string): boolean;
}

export interface NodeReclaimer {
  /** Dead containers and sandboxes whatever the per-pod policy keeps (upstream's DeleteAllUnusedContainers). */
  deleteAllUnusedContainers(signal: AbortSignal): Promise<void>;
  /** Every image no container uses (upstream's DeleteUnusedImages). */
  deleteUnusedImages(signal: AbortSignal): Promise<void>;
}

export interface EvictionEvents {
  node(type: "Normal" | "Warning", reason: string, message: string): void;
  pod(pod: V1Pod, type: "Normal" | "Warning", reason: string, message: string, annotations?: Record<string, string>): void;
}

export interface EvictionManagerOptions {
  thresholds: readonly Threshold[];
  pressureTransitionPeriodMs: number;
  maxPodGracePeriodSeconds: number;
  /** localStorageCapacityIsolation: emptyDir sizeLimit and ephemeral-storage limits evict. */
  localStorageCapacityIsolation: boolean;
  stats: EvictionStats;
  activePods: () => V1Pod[];
  evictor: PodEvictor;
  reclaimer?: NodeReclaimer;
  events: EvictionEvents;
  /** Told when the node conditions change (the node status reports them at once). */
  onConditions?: (conditions: readonly NodeConditionType[]) => void;
  logger: Logger;
  clock?: Clock;
  monitoringIntervalMs?: number;
  /** Pod cleanup wait after an eviction (tests shorten it). */
  cleanupTimeoutMs?: number;
  cleanupPollMs?: number;
}

/** upstream's metric labels for local storage limit evictions. */
export type LocalStorageSignal = "emptydirfs.limit" | "ephemeralpodfs.limit" | "ephemeralcontainerfs.limit";

/** One eviction, for the caller and the tests. */
export interface Eviction {
  pod: V1Pod;
  /** The threshold's signal, or the local storage limit (the `kubelet_evictions` label). */
  signal: Signal | LocalStorageSignal;
  message: string;
  gracePeriodSeconds: number;
  /** When the evictor was told (ms). */
  atMs: number;
}

export class EvictionManager {
  private readonly o: EvictionManagerOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly loop: PeriodicLoop;
  private conditions: NodeConditionType[] = [];
  private thresholdsFirstObserved = new Map<string, { threshold: Threshold; at: number }>();
  private conditionsLastObserved = new Map<NodeConditionType, number>();
  private thresholdsMetLast: Threshold[] = [];
  private lastObservations: ReadonlyMap<Signal, Observation> = new Map();
  private readonly listeners: ((e: Eviction) => void)[] = [];
  /** Passes run (tests, metrics). */
  passes = 0;

  constructor(options: EvictionManagerOptions) {
    this.o = options;
    this.log = options.logger.child({ component: "eviction-manager" });
    this.clock = options.clock ?? systemClock;
    this.loop = new PeriodicLoop({
      name: "eviction manager",
      intervalMs: options.monitoringIntervalMs ?? DEFAULT_MONITORING_INTERVAL_MS,
      run: (signal) => this.pass(signal),
      logger: this.log,
      clock: this.clock,
    });
  }

  start(signal: AbortSignal): void {
    this.loop.start(signal);
  }

  close(): Promise<void> {
    return this.loop.close();
  }

  /** Synchronize now (a memory threshold was crossed). */
  wake(): void {
    this.loop.wake();
  }

  onEviction(f: (e: Eviction) => void): void {
    this.listeners.push(f);
  }

  /** The node conditions now (held through the transition period). */
  nodeConditions(): readonly NodeConditionType[] {
    return this.conditions;
  }

  isUnderMemoryPressure(): boolean {
    return this.conditions.includes("MemoryPressure");
  }

  isUnderDiskPressure(): boolean {
    return this.conditions.includes("DiskPressure");
  }

  isUnderPIDPressure(): boolean {
    return this.conditions.includes("PIDPressure");
  }

  /**
   * One pass, then the delay before the next: the monitoring interval, or less when a held condition's transition
   * period ends sooner (it then clears on time, where upstream's clears at the first 10 s pass after).
   */
  private async pass(signal: AbortSignal): Promise<number | undefined> {
    const evicted = await this.synchronize(signal);
    if (evicted) await this.waitForCleanup(evicted, signal);
    const now = this.clock.now();
    const expiries = [...this.conditionsLastObserved.values()].map((at) => at + this.o.pressureTransitionPeriodMs - now).filter((d) => d >= 0);
    const interval = this.o.monitoringIntervalMs ?? DEFAULT_MONITORING_INTERVAL_MS;
    return Math.min(interval, ...expiries.map((d) => d + 1));
  }

  /** One synchronize; returns the pod evicted, if any. Exported for tests. */
  async synchronize(signal: AbortSignal = this.loop.signal): Promise<V1Pod | undefined> {
    this.passes++;
    const configured = this.o.thresholds;
    if (configured.length === 0 && !this.o.localStorageCapacityIsolation) return undefined;
    const activePods = this.o.activePods();
    const figures = await this.o.stats.figures();
    const observations = makeSignalObservations(figures);

    let thresholds = thresholdsMet(configured, observations, false);
    if (this.thresholdsMetLast.length > 0) thresholds = mergeThresholds(thresholds, thresholdsMet(this.thresholdsMetLast, observations, true));
    const now = this.clock.now();
    const firstObserved = thresholdsFirstObservedAt(thresholds, this.thresholdsFirstObserved, now);
    const lastObserved = nodeConditionsLastObservedAt(nodeConditions(thresholds), this.conditionsLastObserved, now);
    const conditions = nodeConditionsObservedSince(lastObserved, this.o.pressureTransitionPeriodMs, now);
    const graceMet = thresholdsMetGracePeriod(firstObserved, now);

    const changed = conditions.length !== this.conditions.length || conditions.some((c) => !this.conditions.includes(c));
    this.conditions = conditions;
    this.thresholdsFirstObserved = firstObserved;
    // Conditions no longer held are forgotten (upstream keeps them; nothing reads them after the period).
    this.conditionsLastObserved = new Map([...lastObserved].filter(([c]) => conditions.includes(c)));
    this.thresholdsMetLast = graceMet;
    const toAct = thresholdsUpdatedStats(graceMet, observations, this.lastObservations);
    this.lastObservations = observations;
    if (changed) {
      this.log.info({ conditions }, "node pressure conditions changed");
      this.o.onConditions?.(conditions);
    }

    if (this.o.localStorageCapacityIsolation) {
      const pod = await this.localStorageEviction(activePods, signal);
      if (pod) return pod;
    }
    if (toAct.length === 0) return undefined;

    const sorted = sortByEvictionPriority(toAct);
    const threshold = sorted[0];
    if (!threshold) return undefined;
    const resource = SIGNAL_TO_RESOURCE[threshold.signal];
    this.log.info({ resource, signal: threshold.signal }, "eviction manager: attempting to reclaim");
    this.o.events.node("Warning", "EvictionThresholdMet", `Attempting to reclaim ${resource}`);

    if (await this.reclaimNodeLevelResources(threshold.signal, signal)) {
      this.log.info({ resource }, "eviction manager: able to reduce resource pressure without evicting pods");
      return undefined;
    }
    if (activePods.length === 0) {
      this.log.warn("eviction manager: eviction thresholds have been met, but no pods are active to evict");
      return undefined;
    }
    const usage = await this.o.stats.podUsage(activePods, resource);
    const usageOf = (p: V1Pod): PodUsage | undefined => usage.get(p.metadata?.uid ?? "");
    const ranked = rankFor(resource)(activePods, usageOf);
    this.log.info({ pods: ranked.map(name) }, "eviction manager: pods ranked for eviction");
    const grace = isHard(threshold) ? IMMEDIATE_EVICTION_GRACE_PERIOD_SECONDS : this.o.maxPodGracePeriodSeconds;
    for (const pod of ranked) {
      const { message, annotations } = evictionMessage(resource, pod, usageOf(pod), sorted, observations);
      const condition: V1PodCondition = { type: "DisruptionTarget", status: "True", reason: TERMINATION_BY_KUBELET, message };
      if (this.evictPod(pod, grace, message, annotations, [condition], threshold.signal)) return pod;
    }
    this.log.warn("eviction manager: unable to evict any pods from the node");
    return undefined;
  }

  /** Container and image GC for disk signals; true when the thresholds (with minimum reclaim) are then all resolved. */
  private async reclaimNodeLevelResources(sig: Signal, signal: AbortSignal): Promise<boolean> {
    const r = this.o.reclaimer;
    const resource = SIGNAL_TO_RESOURCE[sig];
    if (!r || (resource !== "ephemeral-storage" && resource !== "inodes")) return false;
    for (const f of [(s: AbortSignal) => r.deleteAllUnusedContainers(s), (s: AbortSignal) => r.deleteUnusedImages(s)]) {
      try {
        await f(signal);
      } catch (err) {
        if (signal.aborted) throw err;
        this.log.info({ resource, err: errorMessage(err) }, "eviction manager: unexpected error when attempting to reduce resource pressure");
      }
    }
    const observations = makeSignalObservations(await this.o.stats.figures());
    return thresholdsMet(this.o.thresholds, observations, true).length === 0;
  }

  /** emptyDir sizeLimit, then the pod's ephemeral-storage limit, then each container's: first pod over wins. */
  private async localStorageEviction(pods: readonly V1Pod[], _signal: AbortSignal): Promise<V1Pod | undefined> {
    const limited = pods.filter(hasLocalStorageLimit);
    if (limited.length === 0) return undefined;
    const usage = await this.o.stats.podUsage(limited, "ephemeral-storage");
    for (const pod of limited) {
      const u = usage.get(pod.metadata?.uid ?? "");
      if (!u) continue;
      const v = localStorageViolation(pod, u);
      if (v && this.evictPod(pod, IMMEDIATE_EVICTION_GRACE_PERIOD_SECONDS, v.message, {}, [], v.signal)) return pod;
    }
    return undefined;
  }

  private evictPod(pod: V1Pod, gracePeriodSeconds: number, message: string, annotations: Record<string, string>, conditions: V1PodCondition[], sig: Eviction["signal"]): boolean {
    if (isCriticalPod(pod)) {
      this.log.error({ pod: name(pod) }, "eviction manager: cannot evict a critical pod");
      return false;
    }
    this.o.events.pod(pod, "Warning", EVICTED_REASON, message, annotations);
    const ok = this.o.evictor.evict(pod, gracePeriodSeconds, { reason: EVICTED_REASON, message, conditions });
    this.log.info({ pod: name(pod), signal: sig, gracePeriodSeconds, message }, ok ? "eviction manager: evicting pod" : "eviction manager: pod could not be evicted");
    const e: Eviction = { pod, signal: sig, message, gracePeriodSeconds, atMs: this.clock.now() };
    for (const f of this.listeners) f(e);
    return true;
  }

  private async waitForCleanup(pod: V1Pod, signal: AbortSignal): Promise<void> {
    const uid = pod.metadata?.uid ?? "";
    const until = this.clock.now() + (this.o.cleanupTimeoutMs ?? POD_CLEANUP_TIMEOUT_MS);
    while (!signal.aborted && this.clock.now() < until) {
      await this.clock.sleep(this.o.cleanupPollMs ?? POD_CLEANUP_POLL_MS, signal).catch(() => undefined);
      if (this.o.evictor.isCleanedUp(uid)) {
        this.log.info({ pod: name(pod) }, "eviction manager: pod successfully cleaned up");
        return;
      }
    }
    if (!signal.aborted) this.log.info({ pod: name(pod) }, "eviction manager: timed out waiting for pod to be cleaned up");
  }
}

function name(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
}

function limitOf(resources: { limits?: Record<string, unknown> } | undefined): Quantity | undefined {
  const v = resources?.limits?.["ephemeral-storage"];
  if (v === undefined) return undefined;
  try {
    const q = Quantity.fromJSON(v);
    return q.sign() > 0 ? q : undefined;
  } catch {
    return undefined;
  }
}

function sizeLimitOf(v: unknown): Quantity | undefined {
  if (v === undefined || v === null) return undefined;
  try {
    const q = Quantity.fromJSON(v);
    return q.sign() > 0 ? q : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the pod has anything localStorageEviction checks. */
export function hasLocalStorageLimit(pod: V1Pod): boolean {
  const spec = pod.spec;
  if (!spec) return false;
  if ((spec.volumes ?? []).some((v) => sizeLimitOf(v.emptyDir?.sizeLimit) !== undefined)) return true;
  return [...spec.containers, ...(spec.initContainers ?? [])].some((c) => limitOf(c.resources) !== undefined);
}

/**
 * The first local storage limit the pod is over, as upstream checks them: an emptyDir past its sizeLimit, the
 * pod's total past the sum of its containers' ephemeral-storage limits, a container past its own. The message
 * and the metric's signal label, or undefined. Pure.
 */
export function localStorageViolation(pod: V1Pod, u: PodUsage): { message: string; signal: LocalStorageSignal } | undefined {
  const spec = pod.spec;
  if (!spec) return undefined;
  for (const v of spec.volumes ?? []) {
    const size = sizeLimitOf(v.emptyDir?.sizeLimit);
    const used = u.volumes.find((x) => x.name === v.name)?.usedBytes;
    if (size && used !== undefined && used > size.value()) return { message: emptyDirMessage(v.name, size.toString()), signal: "emptydirfs.limit" };
  }
  const limits = spec.containers.map((c) => limitOf(c.resources as { limits?: Record<string, unknown> }));
  if (limits.some((l) => l !== undefined)) {
    // PodLimits: the sum of the limits the containers set.
    const total = limits.reduce<Quantity | undefined>((acc, l) => (l === undefined ? acc : acc === undefined ? l : acc.add(l)), undefined);
    const podUsed = u.volumes.reduce((a, v) => a + v.usedBytes, 0) + u.containers.reduce((a, c) => a + (c.rootfsBytes ?? 0) + (c.logsBytes ?? 0), 0);
    if (total && podUsed > total.value()) return { message: podEphemeralStorageMessage(total.toString()), signal: "ephemeralpodfs.limit" };
  }
  for (const c of spec.containers) {
    const limit = limitOf(c.resources);
    if (!limit) continue;
    const cs = u.containers.find((x) => x.name === c.name);
    if (!cs) continue;
    const used = (cs.logsBytes ?? 0) + (cs.rootfsBytes ?? 0);
    if (used > limit.value()) return { message: containerEphemeralStorageMessage(c.name, limit.toString()), signal: "ephemeralcontainerfs.limit" };
  }
  return undefined;
}
