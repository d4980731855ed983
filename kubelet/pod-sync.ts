/**
 * What the pod workers do to a pod (upstream's SyncPod, SyncTerminatingPod, SyncTerminatedPod): run it
 * through the runtime manager, compute its API status from what the runtime holds, enforce
 * activeDeadlineSeconds, stop it gracefully, and finally remove what it left and let the API forget it.
 *
 * The runtime state comes from the PLEG's pod cache, "newer than" the end of the pod's last sync (upstream's
 * podCache.GetNewerThan(uid, lastSyncTime)): one relist reads CRI for every pod. Two deliberate exceptions,
 * for latency: a sync that changed the runtime reads that one pod again and puts it in the cache, so its
 * status (Running, with the pod IP) is reported at once rather than after the next relist; and a kill reads
 * the pod directly, so a deletion does not wait for a relist (upstream's TODO in podWorkerLoop).
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../src-shared/log.ts";
import { DeckhandError, errorMessage } from "../src-shared/errors.ts";
import { rfc3339 } from "../src-shared/time.ts";
import { systemClock, type Clock } from "../src-shared/clock.ts";
import { isApiError, type KubeClient } from "../src-shared/kube/client.ts";
import type { EventRecorder } from "./events.ts";
import { podRef } from "./events.ts";
import type { DockerConfig } from "./images/image-manager.ts";
import type { PodSyncContext, PodSyncer, PodTerminalStatus, SyncPodOutcome } from "./pod-workers.ts";
import type { RuntimeManager, WaitingReasons } from "./runtime/runtime-manager.ts";
import type { PodCache } from "./runtime/pod-cache.ts";
import type { PodRuntimeStatus } from "./runtime/types.ts";
import type { ProbeFailures } from "./runtime/pod-actions.ts";
import type { ProberManager } from "./prober/manager.ts";
import type { StatusManager, PodKey } from "./status/status-manager.ts";
import { computePodStatus, type PodStatus } from "./status/pod-status.ts";
import { VolumeSetUpError, type VolumeManager } from "./volumes/volume-manager.ts";

/** What pod sync needs of the runtime manager. */
export type PodRuntime = Pick<RuntimeManager, "podStatus" | "syncPod" | "killPodContainers" | "removePod">;
/** What pod sync needs of the API: image pull secrets, and deleting a pod once it has terminated. */
export type PodSyncClient = Pick<KubeClient, "get" | "delete">;
export type PodStatusStore = Pick<StatusManager<PodStatus>, "getStatus" | "setStatus" | "flush">;
/** What pod sync needs of the prober: its results for the status and the restarts, and stopping it. */
export type PodProber = Pick<ProberManager, "addPod" | "updatePodStatus" | "stopLivenessAndStartup" | "removePod">;
/** What pod sync needs of the volume manager: volumes set up before the containers, torn down after them. */
export type PodVolumes = Pick<VolumeManager, "setUpPod" | "tearDownPod" | "removePod">;

/** How soon a pod whose volumes could not be set up tries again (a watched object appearing wakes it sooner). */
/** The same FailedMount event is not sent again sooner than this (the retries are more frequent). */
const MOUNT_EVENT_INTERVAL_MS = 30_000;

/**
 * The first sync of a pod reads the cache once any relist has completed: before it, a pod the runtime already
 * runs (adopted after a restart) would look like one to create.
 */
const AFTER_FIRST_RELIST = 1;

export interface PodSyncDeps {
  client: PodSyncClient | undefined;
  runtime: PodRuntime;
  prober: PodProber;
  /** The volume manager; undefined = a kubelet without volumes (pods declaring none). */
  volumes?: PodVolumes;
  cache: PodCache;
  status: PodStatusStore;
  events: EventRecorder;
  logger: Logger;
  clock?: Clock;
  hostIPs: () => string[];
  memoryCapacityBytes: () => number;
  /** Where a pod's status goes in the API (a static pod's goes to its mirror pod); undefined = nowhere yet. */
  apiKey: (pod: V1Pod) => PodKey | undefined;
}

/** The phase the API already shows as final: a restarted kubelet must not run the pod again. */
function apiTerminal(pod: V1Pod): PodTerminalStatus | undefined {
  const phase = pod.status?.phase;
  if (phase !== "Succeeded" && phase !== "Failed") return undefined;
  return { phase, ...(pod.status?.reason ? { reason: pod.status.reason } : {}), ...(pod.status?.message ? { message: pod.status.message } : {}) };
}

export class PodSync implements PodSyncer {
  private readonly d: PodSyncDeps;
  private readonly log: Logger;
  private readonly clock: Clock;
  /** Why each pod's containers are not running after its last sync (upstream's reasonCache). */
  private readonly waiting = new Map<string, WaitingReasons>();
  /** The last FailedMount event of each pod (message, time): repeated only after MOUNT_EVENT_INTERVAL_MS. */
  private readonly mountEvents = new Map<string, { key: string; at: number }>();
  /** Pods whose start (first Running status) was reported to the onPodStarted listeners. */
  private readonly startReported = new Set<string>();
  private readonly startListeners: ((seconds: number) => void)[] = [];

  constructor(deps: PodSyncDeps) {
    this.d = deps;
    this.clock = deps.clock ?? systemClock;
    this.log = deps.logger.child({ component: "pod-sync" });
  }

  private podLog(pod: V1Pod): Logger {
    return this.log.child({ pod: `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`, podUID: pod.metadata?.uid ?? "" });
  }

  /** The pod is gone for good (PodStateOwner). */
  forgetPod(uid: string): void {
    this.waiting.delete(uid);
    this.mountEvents.delete(uid);
    this.startReported.delete(uid);
  }

  /** A pod's status turned Running for the first time: seconds since the kubelet first saw it (kubelet_pod_start_duration_seconds). */
  onPodStarted(listener: (seconds: number) => void): void {
    this.startListeners.push(listener);
  }

  /** The runtime's state of the pod from the cache, at least as fresh as the end of the pod's last sync. */
  private async cached(uid: string, ctx: PodSyncContext): Promise<PodRuntimeStatus> {
    const entry = await this.d.cache.getNewerThan(uid, Math.max(ctx.lastSyncEnd, AFTER_FIRST_RELIST), ctx.signal);
    if (entry.error) throw new DeckhandError("Unavailable", `reading the pod's runtime state: ${entry.error.message}`, { cause: entry.error });
    return entry.status;
  }

  /**
   * Reads the pod from the runtime now, and leaves what it read in the cache for the others. `known`: what the
   * caller knows to be current (containers whose listed state did not change are not asked for again).
   */
  private async fresh(uid: string, signal: AbortSignal, known?: PodRuntimeStatus): Promise<PodRuntimeStatus> {
    const t = this.clock.now();
    const status = await this.d.runtime.podStatus(uid, signal, known);
    this.d.cache.set(uid, status, undefined, t);
    return status;
  }

  /**
   * Records the pod's status from the runtime's state and the probes' results (upstream's generateAPIPodStatus,
   * which asks the prober in passing: workers of containers that now exist start there); returns the status and
   * the containers the probes say to restart.
   */
  private report(pod: V1Pod, runtime: PodRuntimeStatus | undefined, ctx: PodSyncContext, terminal = ctx.terminal): { status: PodStatus; failures: ProbeFailures } {
    const uid = pod.metadata?.uid ?? "";
    const apiStart = pod.status?.startTime;
    const startTime = apiStart ? (apiStart instanceof Date ? rfc3339(apiStart.getTime()) : String(apiStart)) : rfc3339(ctx.startedAt ?? this.clock.now());
    const previous = this.d.status.getStatus(uid);
    const probes = this.d.prober.updatePodStatus(pod, runtime);
    const status = computePodStatus({
      pod,
      runtime,
      waiting: this.waiting.get(uid) ?? {},
      hostIPs: this.d.hostIPs(),
      startTime,
      now: rfc3339(this.clock.now()),
      memoryCapacityBytes: this.d.memoryCapacityBytes(),
      readiness: probes.readiness,
      startup: probes.startup,
      // Upstream works from the status manager's cache, not the API's copy (which a lagging watch may hold).
      ...(previous ? { previous } : {}),
      ...(terminal ? { terminal } : {}),
    });
    const key = this.d.apiKey(pod);
    if (key) this.d.status.setStatus(uid, key, status);
    return { status, failures: probes.failures };
  }

  private async pullSecrets(pod: V1Pod): Promise<DockerConfig[]> {
    const client = this.d.client;
    const names = (pod.spec?.imagePullSecrets ?? []).map((s) => s.name).filter((n): n is string => !!n);
    if (!client || names.length === 0) return [];
    const configs: DockerConfig[] = [];
    for (const name of names) {
      try {
        const secret = await client.get<{ type?: string; data?: Record<string, string> }>({ group: "", version: "v1", resource: "secrets", namespace: pod.metadata?.namespace ?? "", name });
        const raw = secret.data?.[".dockerconfigjson"] ?? secret.data?.[".dockercfg"];
        if (!raw) continue;
        const parsed = JSON.parse(Buffer.from(raw, "base64").toString("utf8")) as DockerConfig | Record<string, unknown>;
        configs.push("auths" in parsed ? (parsed) : { auths: parsed as DockerConfig["auths"] & object });
      } catch (err) {
        // Upstream goes on without the secret, with a warning event.
        this.d.events.event(podRef(pod), "Warning", "FailedToRetrieveImagePullSecret", `Unable to retrieve some image pull secrets (${name}); attempting to pull the image may not succeed.`);
        this.podLog(pod).warn({ secret: name, err: errorMessage(err) }, "image pull secret unavailable");
      }
    }
    return configs;
  }

  async syncPod(pod: V1Pod, ctx: PodSyncContext): Promise<SyncPodOutcome> {
    const uid = pod.metadata?.uid ?? "";
    const log = this.podLog(pod);
    const signal = ctx.signal;
    const finished = apiTerminal(pod);
    if (finished) {
      this.report(pod, await this.cached(uid, ctx), ctx, finished);
      return { terminal: finished };
    }
    // Probed from its first sync on, as upstream's SyncPod does (idempotent): never revived by a later update of a
    // pod being stopped, whose probes syncTerminatingPod removed.
    this.d.prober.addPod(pod);
    const before = await this.cached(uid, ctx);
    const { status: { startTime }, failures } = this.report(pod, before, ctx);
    const deadline = pod.spec?.activeDeadlineSeconds;
    const activeUntil = deadline !== undefined && startTime ? Date.parse(startTime) + deadline * 1000 : undefined;
    if (activeUntil !== undefined && this.clock.now() >= activeUntil) {
      const message = "Pod was active on the node longer than the specified deadline";
      this.d.events.event(podRef(pod), "Normal", "DeadlineExceeded", message);
      log.info("active deadline exceeded; stopping the pod");
      const terminal: PodTerminalStatus = { phase: "Failed", reason: "DeadlineExceeded", message };
      this.report(pod, before, ctx, terminal);
      return { terminal };
    }
    // Volumes first, on every sync (a changed ConfigMap or a token due is written then): no container starts
    // before all of them are set up (upstream's WaitForAttachAndMount).
    let refreshAt: number | undefined;
    if (this.d.volumes) {
      try {
        refreshAt = (await this.d.volumes.setUpPod(pod, signal)).refreshAt;
        this.mountEvents.delete(uid);
      } catch (err) {
        if (!(err instanceof VolumeSetUpError) || signal.aborted) throw err;
        // The same event again only after a while (the retries are frequent); a new problem at once.
        const last = this.mountEvents.get(uid);
        const now = this.clock.now();
        const event = { volume: err.volume, text: errorMessage(err) };
        const key = `${event.volume}\u0000${event.text}`;
        if (!last || last.key !== key || now - last.at >= MOUNT_EVENT_INTERVAL_MS) {
          this.d.events.event(podRef(pod), "Warning", "FailedMount", event.text);
          this.mountEvents.set(uid, { key, at: now });
        }
        // Back to the pod worker, whose jittered back-off paces the retries (upstream: the volume manager's
        // exponential back-off); the object's watch wakes the pod as soon as a missing object appears.
        throw err;
      }
    }
    const result = await this.d.runtime.syncPod(pod, before, () => this.pullSecrets(pod), failures, signal);
    this.waiting.set(uid, result.waiting);
    const failed: PodTerminalStatus | undefined = result.failed ? { phase: "Failed", reason: result.failed.reason, message: result.failed.message } : undefined;
    // Read the runtime again only when the sync changed it (a steady-state resync changes nothing), without
    // asking again for what the sync itself just read (the new sandbox's IPs) or left as it was.
    const known = result.sandbox ? { ...before, sandboxes: [result.sandbox, ...before.sandboxes] } : before;
    const { status } = this.report(pod, result.changed ? await this.fresh(uid, signal, known) : before, ctx, failed);
    // The status is recorded; the failure goes back to the pod worker, whose jittered back-off paces the retries
    // (upstream's SyncPod returns result.Error() the same way).
    if (result.error) throw new DeckhandError("Unavailable", `pod sync incomplete: ${result.error}`);
    let retryInMs = result.retryInMs;
    if (activeUntil !== undefined) retryInMs = Math.min(retryInMs ?? Infinity, Math.max(0, activeUntil - this.clock.now()));
    if (refreshAt !== undefined) retryInMs = Math.min(retryInMs ?? Infinity, Math.max(0, refreshAt - this.clock.now()));
    const phase = status.phase;
    if (phase === "Running" && ctx.firstSeenAt !== undefined && !this.startReported.has(uid)) {
      this.startReported.add(uid);
      const seconds = Math.max(0, this.clock.now() - ctx.firstSeenAt) / 1000;
      for (const l of this.startListeners) l(seconds);
    }
    const terminal: PodTerminalStatus | undefined = failed ?? (phase === "Succeeded" || phase === "Failed" ? { phase } : undefined);
    return { ...(retryInMs !== undefined && Number.isFinite(retryInMs) ? { retryInMs } : {}), ...(terminal ? { terminal } : {}) };
  }

  async syncTerminatingPod(pod: V1Pod, gracePeriodSeconds: number, ctx: PodSyncContext): Promise<void> {
    const uid = pod.metadata?.uid ?? "";
    this.podLog(pod).info({ gracePeriodSeconds }, "stopping pod");
    // A container must not be restarted for a failed probe while it is being stopped; readiness goes on until
    // the containers are down (upstream's order).
    this.d.prober.stopLivenessAndStartup(pod);
    await this.d.runtime.killPodContainers(pod, await this.fresh(uid, ctx.signal), gracePeriodSeconds, ctx.signal);
    this.d.prober.removePod(pod);
    this.report(pod, await this.fresh(uid, ctx.signal), ctx);
  }

  async syncTerminatedPod(pod: V1Pod, removed: boolean, ctx: PodSyncContext): Promise<void> {
    const uid = pod.metadata?.uid ?? "";
    const deleting = removed || pod.metadata?.deletionTimestamp !== undefined;
    // Final status first (containers terminated), then what the pod leaves on the node.
    this.report(pod, await this.cached(uid, ctx), ctx);
    // Every container has stopped: the volumes go (upstream's WaitForUnmount in SyncTerminatedPod).
    await this.d.volumes?.tearDownPod(uid, ctx.signal);
    if (!deleting) return; // a finished pod keeps its containers (and logs) until it is deleted
    await this.d.runtime.removePod(uid, pod.metadata?.namespace ?? "", pod.metadata?.name ?? "", ctx.signal);
    await this.d.volumes?.removePod(uid, ctx.signal);
    const key = this.d.apiKey(pod);
    const client = this.d.client;
    if (!client || !key || removed) return;
    // As upstream's canBeDeleted: the API pod goes only once its final status is in (a Job's finalizer reads
    // it); until then the worker retries.
    if (!(await this.d.status.flush(uid))) throw new DeckhandError("Unavailable", "the pod's final status is not in the API yet; deleting it after");
    try {
      await client.delete({ group: "", version: "v1", resource: "pods", namespace: key.namespace, name: key.name }, { gracePeriodSeconds: 0, preconditions: { uid: key.uid } }, { signal: ctx.signal });
    } catch (err) {
      if (!isApiError(err, 404) && !isApiError(err, 409)) throw err;
    }
  }
}
