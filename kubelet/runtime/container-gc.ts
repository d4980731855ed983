/**
 * Node-wide garbage collection of dead containers and sandboxes, upstream's containerGC
 * (pkg/kubelet/kuberuntime/kuberuntime_gc.go) with its default policy (MinAge 0, MaxPerPodContainer 1,
 * MaxContainers -1), once a minute as upstream's ContainerGCPeriod:
 * - containers not running, grouped per pod and container name ("evict units"), newest first: all of them
 *   once the pod's content may go (deleted and terminated, or unknown once every pod source has synced), else
 *   all but the newest `maxPerPodContainer` (what a status needs for lastState and the restart count);
 * - sandboxes neither ready nor holding a container: all of a pod whose content may go, else all but the
 *   newest sandbox of the pod (the newest is what the pod's status and restart decisions read).
 * Each sandbox is stopped before it is removed, as upstream's removeSandbox (its network may still be up).
 * The per-container limit is also applied by the runtime manager to the pod it syncs, from the status it
 * already holds (no listing): a crash-looping pod then never keeps more than one dead attempt per container
 * for up to a minute. Upstream only trims in the periodic pass; the policy (`deadContainersOverLimit`) is this
 * file's either way. `deleteAllUnusedContainers` is upstream's reclaim under disk pressure (the eviction manager):
 * the dead containers and sandboxes of terminated pods go too, not only those of deleted ones.
 */
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage, isDeckhandError } from "../../src-shared/errors.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import { PeriodicLoop } from "../../src-shared/loop.ts";
import type { RuntimeService } from "../cri/services.ts";
import type { Container } from "../cri/types.ts";
import { CONTAINER_NAME_LABEL, POD_UID_LABEL } from "./labels.ts";

/** Upstream's ContainerGCPeriod. */
export const CONTAINER_GC_PERIOD_MS = 60_000;

export interface ContainerGCPolicy {
  /** A dead container younger than this is kept (upstream MinAge; default 0). */
  minAgeMs: number;
  /** Dead containers kept per pod and container name; negative = no limit (default 1). */
  maxPerPodContainer: number;
  /** Dead containers kept on the node; negative = no limit (default -1). */
  maxContainers: number;
}

export const DEFAULT_CONTAINER_GC_POLICY: ContainerGCPolicy = { minAgeMs: 0, maxPerPodContainer: 1, maxContainers: -1 };

export interface ContainerGCOptions {
  runtime: RuntimeService;
  /**
   * Upstream's ShouldPodContentBeRemoved: the pod was deleted and its worker terminated it, or the kubelet does
   * not know the pod at all (only asked once `allSourcesReady`, for containers).
   */
  isPodDeleted: (uid: string) => boolean;
  /** Every pod source has delivered its first full state: before that, an unknown pod is not a deleted one. */
  allSourcesReady: () => boolean;
  /**
   * Upstream's ShouldPodRuntimeBeRemoved: the pod's worker has terminated it (finished, evicted) or the kubelet
   * does not know it. Only `deleteAllUnusedContainers` (the eviction manager's reclaim) uses it.
   */
  isPodTerminated?: (uid: string) => boolean;
  logger: Logger;
  policy?: Partial<ContainerGCPolicy>;
  clock?: Clock;
  periodMs?: number;
}

/** A container as the policy sees it. */
export interface GCCandidate {
  id: string;
  podUid: string;
  name: string;
  /** Not running: exited, created or unknown (upstream counts all of them as dead). */
  running: boolean;
  unknown: boolean;
  /** Nanoseconds since the epoch. */
  createdAt: bigint;
  attempt: number;
}

type DeadContainer = GCCandidate;

/** Upstream's evictableContainers: dead containers created before now - minAge, by pod and name, newest first. */
export function evictUnits(containers: readonly GCCandidate[], nowMs: number, minAgeMs: number): Map<string, GCCandidate[]> {
  const newestGCTime = BigInt(nowMs - minAgeMs) * 1_000_000n;
  const units = new Map<string, GCCandidate[]>();
  for (const c of containers) {
    if (c.running || c.createdAt > newestGCTime) continue;
    const key = `${c.podUid}\u0000${c.name}`;
    const unit = units.get(key) ?? [];
    unit.push(c);
    units.set(key, unit);
  }
  for (const unit of units.values()) unit.sort(newestFirst);
  return units;
}

/** The dead containers of each unit beyond the newest `keep` (the per-container limit), oldest last. */
export function deadContainersOverLimit(containers: readonly GCCandidate[], nowMs: number, policy: ContainerGCPolicy = DEFAULT_CONTAINER_GC_POLICY): GCCandidate[] {
  if (policy.maxPerPodContainer < 0) return [];
  return [...evictUnits(containers, nowMs, policy.minAgeMs).values()].flatMap((unit) => unit.slice(policy.maxPerPodContainer));
}

export class ContainerGC {
  private readonly cri: RuntimeService;
  private readonly o: ContainerGCOptions;
  private readonly policy: ContainerGCPolicy;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly loop: PeriodicLoop;

  constructor(options: ContainerGCOptions) {
    this.cri = options.runtime;
    this.o = options;
    this.policy = { ...DEFAULT_CONTAINER_GC_POLICY, ...options.policy };
    this.clock = options.clock ?? systemClock;
    this.log = options.logger.child({ component: "container-gc" });
    this.loop = new PeriodicLoop({
      name: "container GC",
      intervalMs: options.periodMs ?? CONTAINER_GC_PERIOD_MS,
      logger: this.log,
      clock: this.clock,
      run: (signal) => this.garbageCollect(signal),
    });
  }

  start(signal: AbortSignal): void {
    this.loop.start(signal);
  }

  /** Waits for the pass under way. */
  close(): Promise<void> {
    return this.loop.close();
  }

  /** One pass: dead containers, then dead sandboxes (which the first step may have emptied). */
  async garbageCollect(signal?: AbortSignal): Promise<void> {
    await this.evictContainers(signal, false);
    await this.evictSandboxes(signal, false);
  }

  /**
   * Upstream's DeleteAllUnusedContainers (node-level reclaim under disk pressure): the same pass, where every dead
   * container and sandbox of a pod that has terminated goes too, not only those of deleted pods.
   */
  async deleteAllUnusedContainers(signal?: AbortSignal): Promise<void> {
    await this.evictContainers(signal, true);
    await this.evictSandboxes(signal, true);
  }

  private mayGo(uid: string, evictNonDeletedPods: boolean): boolean {
    return this.o.isPodDeleted(uid) || (evictNonDeletedPods && (this.o.isPodTerminated?.(uid) ?? false));
  }

  private async evictContainers(signal: AbortSignal | undefined, evictNonDeletedPods: boolean): Promise<void> {
    const { containers } = await this.cri.runtime("ListContainers", {}, signal ? { signal } : {});
    const units = this.evictableContainers(containers);
    if (this.o.allSourcesReady()) {
      for (const [key, unit] of units) {
        if (!this.mayGo(unit[0]?.podUid ?? "", evictNonDeletedPods)) continue;
        await this.removeOldest(unit, unit.length, signal);
        units.delete(key);
      }
    }
    if (this.policy.maxPerPodContainer >= 0) await this.enforcePerUnit(units, this.policy.maxPerPodContainer, signal);
    const max = this.policy.maxContainers;
    const count = (): number => [...units.values()].reduce((n, u) => n + u.length, 0);
    if (max >= 0 && count() > max) {
      // An equal share per unit (at least one), then the oldest of what is left.
      await this.enforcePerUnit(units, Math.max(1, Math.floor(max / Math.max(1, units.size))), signal);
      const left = count();
      if (left > max) {
        const flat = [...units.values()].flat().sort(newestFirst);
        await this.removeOldest(flat, left - max, signal);
      }
    }
  }

  /** Dead containers old enough, by pod uid and container name, newest first. */
  private evictableContainers(containers: readonly Container[]): Map<string, DeadContainer[]> {
    const candidates: GCCandidate[] = [];
    for (const c of containers) {
      const podUid = c.labels[POD_UID_LABEL];
      if (!podUid) continue; // not the kubelet's
      candidates.push({
        id: c.id,
        podUid,
        name: c.labels[CONTAINER_NAME_LABEL] ?? c.metadata?.name ?? "",
        running: c.state === "CONTAINER_RUNNING",
        unknown: c.state === "CONTAINER_UNKNOWN",
        createdAt: BigInt(c.created_at || "0"),
        attempt: c.metadata?.attempt ?? 0,
      });
    }
    return evictUnits(candidates, this.clock.now(), this.policy.minAgeMs);
  }

  private async enforcePerUnit(units: Map<string, DeadContainer[]>, keep: number, signal?: AbortSignal): Promise<void> {
    for (const [key, unit] of units) {
      if (unit.length <= keep) continue;
      await this.removeOldest(unit, unit.length - keep, signal);
      units.set(key, unit.slice(0, keep));
    }
  }

  /** Removes the last `n` of a newest-first list; one in unknown state is killed first, as it may run. */
  private async removeOldest(list: readonly DeadContainer[], n: number, signal?: AbortSignal): Promise<void> {
    const opts = signal ? { signal } : {};
    for (let i = list.length - 1; i >= list.length - n && i >= 0; i--) {
      const c = list[i];
      if (!c) continue;
      try {
        if (c.unknown) await this.cri.runtime("StopContainer", { container_id: c.id, timeout: 0 }, opts).catch(ignoreNotFound);
        await this.cri.runtime("RemoveContainer", { container_id: c.id }, opts);
        this.log.debug({ containerId: c.id }, "removed dead container");
      } catch (err) {
        if (signal?.aborted) throw err;
        this.log.warn({ containerId: c.id, err: errorMessage(err) }, "could not remove a dead container");
      }
    }
  }

  private async evictSandboxes(signal: AbortSignal | undefined, evictNonDeletedPods: boolean): Promise<void> {
    const opts = signal ? { signal } : {};
    const [{ items }, { containers }] = await Promise.all([this.cri.runtime("ListPodSandbox", {}, opts), this.cri.runtime("ListContainers", {}, opts)]);
    const withContainers = new Set(containers.map((c) => c.pod_sandbox_id));
    const byPod = new Map<string, { id: string; createdAt: bigint; active: boolean }[]>();
    for (const s of items) {
      const uid = s.labels[POD_UID_LABEL] ?? s.metadata?.uid;
      if (!uid) continue;
      const list = byPod.get(uid) ?? [];
      list.push({ id: s.id, createdAt: BigInt(s.created_at || "0"), active: s.state === "SANDBOX_READY" || withContainers.has(s.id) });
      byPod.set(uid, list);
    }
    for (const [uid, sandboxes] of byPod) {
      sandboxes.sort(newestFirst);
      // The newest stays while the pod exists; every inactive one goes once its content may be removed (asked,
      // as for containers, only once every source has synced: before, an unknown pod is not a deleted one).
      const keep = this.o.allSourcesReady() && this.mayGo(uid, evictNonDeletedPods) ? 0 : 1;
      for (const s of sandboxes.slice(keep)) {
        if (s.active) continue;
        try {
          // As upstream's removeSandbox: stop first. A sandbox whose pause process died keeps its network until
          // StopPodSandbox, and containerd 1.6 refuses to remove it before ("... is not fully closed").
          await this.cri.runtime("StopPodSandbox", { pod_sandbox_id: s.id }, opts).catch(ignoreNotFound);
          await this.cri.runtime("RemovePodSandbox", { pod_sandbox_id: s.id }, opts);
          this.log.debug({ podUID: uid, sandboxId: s.id }, "removed dead sandbox");
        } catch (err) {
          if (signal?.aborted) throw err;
          this.log.warn({ podUID: uid, sandboxId: s.id, err: errorMessage(err) }, "could not remove a dead sandbox");
        }
      }
    }
  }
}

/** Newest first; the attempt breaks ties (times known only to the millisecond). */
function newestFirst(a: { createdAt: bigint; attempt?: number }, b: { createdAt: bigint; attempt?: number }): number {
  if (a.createdAt === b.createdAt) return (b.attempt ?? 0) - (a.attempt ?? 0);
  return a.createdAt > b.createdAt ? -1 : 1;
}

function ignoreNotFound(err: unknown): void {
  if (!isDeckhandError(err, "NotFound")) throw err;
}

