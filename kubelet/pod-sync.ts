/**
 * What the pod workers do to a pod (upstream's SyncPod, SyncTerminatingPod, SyncTerminatedPod): run it
 * through the runtime manager, compute its API status from what the runtime then holds, enforce
 * activeDeadlineSeconds, stop it gracefully, and finally remove what it left and let the API forget it.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../src-shared/log.ts";
import { errorMessage } from "../src-shared/errors.ts";
import { rfc3339 } from "../src-shared/time.ts";
import { isApiError, type KubeClient } from "../src-shared/kube/client.ts";
import type { EventRecorder } from "./events.ts";
import { podRef } from "./events.ts";
import type { DockerConfig } from "./images/image-manager.ts";
import type { PodSyncer } from "./pod-workers.ts";
import type { RuntimeManager, WaitingReasons } from "./runtime/runtime-manager.ts";
import type { PodRuntimeStatus } from "./runtime/types.ts";
import type { StatusManager, PodKey } from "./status/status-manager.ts";
import { computePodStatus, type PodStatus } from "./status/pod-status.ts";

export interface PodSyncDeps {
  client: KubeClient | undefined;
  runtime: RuntimeManager;
  status: StatusManager<PodStatus>;
  events: EventRecorder;
  logger: Logger;
  hostIPs: () => string[];
  memoryCapacityBytes: () => number;
  /** Where a pod's status goes in the API (a static pod's goes to its mirror pod); undefined = nowhere yet. */
  apiKey: (pod: V1Pod) => PodKey | undefined;
}

type Terminal = { phase: "Failed" | "Succeeded"; reason?: string; message?: string };

export class PodSync implements PodSyncer {
  private readonly d: PodSyncDeps;
  private readonly log: Logger;
  /** When each pod was first seen (status.startTime), and its last waiting reasons. */
  private readonly started = new Map<string, string>();
  private readonly waiting = new Map<string, WaitingReasons>();
  private readonly terminal = new Map<string, Terminal>();

  constructor(deps: PodSyncDeps) {
    this.d = deps;
    this.log = deps.logger.child({ component: "pod-sync" });
  }

  private podLog(pod: V1Pod): Logger {
    return this.log.child({ pod: `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`, podUID: pod.metadata?.uid ?? "" });
  }

  /** Records the pod's status from the runtime's current state. */
  private report(pod: V1Pod, runtime: PodRuntimeStatus | undefined): PodStatus {
    const uid = pod.metadata?.uid ?? "";
    const startTime = pod.status?.startTime ? String(pod.status.startTime instanceof Date ? rfc3339(pod.status.startTime.getTime()) : pod.status.startTime) : (this.started.get(uid) ?? rfc3339(Date.now()));
    this.started.set(uid, startTime);
    const terminal = this.terminal.get(uid);
    const previous = this.d.status.getStatus(uid);
    const status = computePodStatus({
      pod,
      runtime,
      waiting: this.waiting.get(uid) ?? {},
      hostIPs: this.d.hostIPs(),
      startTime,
      now: rfc3339(Date.now()),
      memoryCapacityBytes: this.d.memoryCapacityBytes(),
      // Upstream works from the status manager's cache, not the API's copy (which a lagging watch may hold).
      ...(previous ? { previous } : {}),
      ...(terminal ? { terminal } : {}),
    });
    const key = this.d.apiKey(pod);
    if (key) this.d.status.setStatus(uid, key, status);
    return status;
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

  async syncPod(pod: V1Pod, signal: AbortSignal): Promise<{ retryInMs?: number; terminal?: boolean }> {
    const uid = pod.metadata?.uid ?? "";
    const log = this.podLog(pod);
    // A pod the API already reports finished stays finished (a restarted kubelet must not run it again).
    const apiPhase = pod.status?.phase;
    if ((apiPhase === "Succeeded" || apiPhase === "Failed") && !this.terminal.has(uid)) this.terminal.set(uid, { phase: apiPhase, ...(pod.status?.reason ? { reason: pod.status.reason } : {}), ...(pod.status?.message ? { message: pod.status.message } : {}) });
    if (this.terminal.has(uid)) {
      this.report(pod, await this.d.runtime.podStatus(uid, signal));
      return { terminal: true };
    }
    const before = await this.d.runtime.podStatus(uid, signal);
    const startTime = this.report(pod, before).startTime;
    const deadline = pod.spec?.activeDeadlineSeconds;
    if (deadline !== undefined && startTime && Date.now() - Date.parse(startTime) >= deadline * 1000) {
      const message = "Pod was active on the node longer than the specified deadline";
      this.terminal.set(uid, { phase: "Failed", reason: "DeadlineExceeded", message });
      this.d.events.event(podRef(pod), "Normal", "DeadlineExceeded", message);
      log.info("active deadline exceeded; stopping the pod");
      return { terminal: true };
    }
    const result = await this.d.runtime.syncPod(pod, before, await this.pullSecrets(pod), {}, signal);
    this.waiting.set(uid, result.waiting);
    if (result.failed) this.terminal.set(uid, { phase: "Failed", reason: result.failed.reason, message: result.failed.message });
    // Read the runtime again only when the sync changed it (a steady-state resync changes nothing).
    const status = this.report(pod, result.changed ? await this.d.runtime.podStatus(uid, signal) : before);
    if (result.error) log.warn({ err: result.error }, "pod sync incomplete");
    const terminal = status.phase === "Succeeded" || status.phase === "Failed";
    let retryInMs = result.retryInMs;
    if (result.error) retryInMs = Math.min(retryInMs ?? Infinity, 2000);
    if (deadline !== undefined && startTime) retryInMs = Math.min(retryInMs ?? Infinity, Math.max(0, Date.parse(startTime) + deadline * 1000 - Date.now()));
    return { ...(retryInMs !== undefined && Number.isFinite(retryInMs) ? { retryInMs } : {}), ...(terminal ? { terminal } : {}) };
  }

  async syncTerminatingPod(pod: V1Pod, gracePeriodSeconds: number, signal: AbortSignal): Promise<void> {
    const uid = pod.metadata?.uid ?? "";
    const status = await this.d.runtime.podStatus(uid, signal);
    this.podLog(pod).info({ gracePeriodSeconds }, "stopping pod");
    await this.d.runtime.killPodContainers(pod, status, gracePeriodSeconds, signal);
    this.report(pod, await this.d.runtime.podStatus(uid, signal));
  }

  async syncTerminatedPod(pod: V1Pod, removed: boolean, signal: AbortSignal): Promise<void> {
    const uid = pod.metadata?.uid ?? "";
    const deleting = removed || pod.metadata?.deletionTimestamp !== undefined;
    // Final status first (containers terminated), then what the pod leaves on the node.
    this.report(pod, await this.d.runtime.podStatus(uid, signal));
    if (!deleting) return; // a finished pod keeps its containers (and logs) until it is deleted
    await this.d.runtime.removePod(uid, pod.metadata?.namespace ?? "", pod.metadata?.name ?? "", signal);
    const key = this.d.apiKey(pod);
    // As upstream's canBeDeleted: the API pod goes only once its final status is in (a Job's finalizer reads
    // it); until then the worker retries.
    if (this.d.client && key && !removed && !(await this.d.status.flush(uid))) {
      throw new Error("the pod's final status is not in the API yet; deleting it after");
    }
    if (this.d.client && key && !removed) {
      try {
        await this.d.client.delete(
          { group: "", version: "v1", resource: "pods", namespace: key.namespace, name: key.name },
          { gracePeriodSeconds: 0, preconditions: { uid: key.uid } },
          { signal },
        );
      } catch (err) {
        if (!isApiError(err, 404) && !isApiError(err, 409)) throw err;
      }
    }
    this.forget(uid);
  }

  /** Forgets a pod entirely (after removal). */
  forget(uid: string): void {
    this.started.delete(uid);
    this.waiting.delete(uid);
    this.terminal.delete(uid);
    this.d.status.forget(uid);
  }
}
