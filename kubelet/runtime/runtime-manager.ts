/**
 * The kubelet's runtime layer (upstream's kuberuntime manager): reads a pod's state from CRI into a
 * PodRuntimeStatus, carries out computePodActions through CRI (pod cgroup, sandbox, images, containers, with
 * crash-loop back-off and events), kills pods gracefully and removes what they leave.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { rm } from "node:fs/promises";
import { errorMessage } from "../../src-shared/errors.ts";
import type { Logger } from "../../src-shared/log.ts";
import type { CriClient } from "../cri/client.ts";
import { isDeckhandError } from "../../src-shared/errors.ts";
import type { Container as CriContainer, ContainerStatus as CriContainerStatus, PodSandbox, Input, PodSandboxConfig } from "../cri/types.ts";
import type { EventRecorder } from "../events.ts";
import { podRef } from "../events.ts";
import { ImagePullError, type DockerConfig, type ImageManager } from "../images/image-manager.ts";
import type { PodCgroupManager, PodResourceConfig } from "../cm/pod-cgroups.ts";
import { computePodActions, CrashLoopBackoff, type ProbeFailures } from "./pod-actions.ts";
import { containerConfig, ContainerConfigError } from "./container-config.ts";
import { containerHash } from "./container-hash.ts";
import { sandboxConfig, podLogDirectory, type NodeContext } from "./sandbox-config.ts";
import { CONTAINER_HASH_ANNOTATION, CONTAINER_KIND_ANNOTATION, CONTAINER_NAME_LABEL, POD_UID_LABEL, POD_TERMINATION_GRACE_ANNOTATION } from "./labels.ts";
import type { ContainerState, PodRuntimeStatus, RuntimeContainer, RuntimeSandbox } from "./types.ts";
import { milliCPUToQuota, milliCPUToShares, qosClass } from "../qos.ts";
import { milliValue, quantityValue } from "../../src-shared/quantity.ts";

/** CRI nanoseconds (a decimal string) to milliseconds. */
export function nsToMs(ns: string | number | undefined): number {
  if (ns === undefined || ns === "" || ns === "0" || ns === 0) return 0;
  return Number(BigInt(ns) / 1_000_000n);
}

const STATE: Record<string, ContainerState> = {
  CONTAINER_CREATED: "created",
  CONTAINER_RUNNING: "running",
  CONTAINER_EXITED: "exited",
  CONTAINER_UNKNOWN: "unknown",
};

function containerKind(annotations: Record<string, string>): RuntimeContainer["kind"] {
  const k = annotations[CONTAINER_KIND_ANNOTATION];
  return k === "init" || k === "sidecar" || k === "ephemeral" ? k : "regular";
}

function toRuntimeContainer(c: CriContainer, status: CriContainerStatus | null): RuntimeContainer {
  const annotations = status?.annotations ?? c.annotations;
  return {
    id: c.id,
    name: c.labels[CONTAINER_NAME_LABEL] ?? c.metadata?.name ?? "",
    attempt: c.metadata?.attempt ?? 0,
    state: STATE[status?.state ?? c.state] ?? "unknown",
    image: status?.image?.image ?? c.image?.image ?? "",
    imageRef: status?.image_ref ?? c.image_ref,
    hash: annotations[CONTAINER_HASH_ANNOTATION] ?? "",
    createdAt: nsToMs(status?.created_at ?? c.created_at),
    startedAt: nsToMs(status?.started_at),
    finishedAt: nsToMs(status?.finished_at),
    exitCode: status?.exit_code ?? 0,
    reason: status?.reason ?? "",
    message: status?.message ?? "",
    kind: containerKind(annotations),
  };
}

function toRuntimeSandbox(s: PodSandbox, ips: string[]): RuntimeSandbox {
  return { id: s.id, attempt: s.metadata?.attempt ?? 0, state: s.state === "SANDBOX_READY" ? "ready" : "notready", createdAt: nsToMs(s.created_at), ips };
}

/** Pod-level limits as upstream's ResourceConfigForPod: sums when every container sets them. */
export function podResourceConfig(pod: V1Pod, cpuCFSQuotaPeriodUs: number): PodResourceConfig {
  let cpuRequestMilli = 0;
  let cpuLimitMilli = 0;
  let memoryLimit = 0;
  let allCpuLimited = true;
  let allMemoryLimited = true;
  for (const c of pod.spec?.containers ?? []) {
    const req = c.resources?.requests as Record<string, string | number> | undefined;
    const lim = c.resources?.limits as Record<string, string | number> | undefined;
    const cpuReq = req?.["cpu"] ?? lim?.["cpu"];
    if (cpuReq !== undefined) cpuRequestMilli += milliValue(cpuReq);
    if (lim?.["cpu"] !== undefined) cpuLimitMilli += milliValue(lim["cpu"]);
    else allCpuLimited = false;
    if (lim?.["memory"] !== undefined) memoryLimit += quantityValue(lim["memory"]);
    else allMemoryLimited = false;
  }
  return {
    cpuShares: milliCPUToShares(cpuRequestMilli),
    ...(allCpuLimited && cpuLimitMilli > 0 ? { cpuQuotaUs: milliCPUToQuota(cpuLimitMilli, cpuCFSQuotaPeriodUs), cpuPeriodUs: cpuCFSQuotaPeriodUs } : {}),
    ...(allMemoryLimited && memoryLimit > 0 ? { memoryLimitBytes: memoryLimit } : {}),
  };
}

/** Why containers are not running after a sync, for the pod status (container name → waiting reason). */
export type WaitingReasons = Record<string, { reason: string; message: string }>;

export interface SyncPodResult {
  waiting: WaitingReasons;
  /** Something was done to the runtime (killed, created, started): its state must be read again. */
  changed: boolean;
  /** The pod failed for good (an init container failed under restartPolicy Never). */
  failed?: { reason: string; message: string };
  /** Ran into a problem worth a retry soon (sandbox creation failed...). */
  error?: string;
  /** When the soonest back-off ends: the pod worker syncs again then. */
  retryInMs?: number;
}

export interface RuntimeManagerOptions {
  cri: CriClient;
  images: ImageManager;
  cgroups: PodCgroupManager;
  events: EventRecorder;
  node: () => NodeContext;
  logger: Logger;
  crashLoopMaxMs?: number;
}

export class RuntimeManager {
  private readonly cri: CriClient;
  private readonly images: ImageManager;
  private readonly cgroups: PodCgroupManager;
  private readonly events: EventRecorder;
  private readonly node: () => NodeContext;
  private readonly log: Logger;
  readonly backoff: CrashLoopBackoff;

  constructor(options: RuntimeManagerOptions) {
    this.cri = options.cri;
    this.images = options.images;
    this.cgroups = options.cgroups;
    this.events = options.events;
    this.node = options.node;
    this.log = options.logger.child({ component: "runtime-manager" });
    this.backoff = new CrashLoopBackoff({ maxMs: options.crashLoopMaxMs ?? 300_000 });
  }

  /** Everything the runtime has for one pod, with full container statuses (exit codes, times). */
  async podStatus(uid: string, signal?: AbortSignal): Promise<PodRuntimeStatus> {
    const opts = signal ? { signal } : {};
    const selector = { [POD_UID_LABEL]: uid };
    const [{ items }, { containers }] = await Promise.all([
      this.cri.runtime("ListPodSandbox", { filter: { label_selector: selector } }, opts),
      this.cri.runtime("ListContainers", { filter: { label_selector: selector } }, opts),
    ]);
    items.sort((a, b) => nsToMs(b.created_at) - nsToMs(a.created_at) || (b.metadata?.attempt ?? 0) - (a.metadata?.attempt ?? 0));
    const sandboxes = await Promise.all(
      items.map(async (s, i) => {
        let ips: string[] = [];
        if (i === 0 && s.state === "SANDBOX_READY") {
          // Only "gone" may read as "no IP": any other failure must fail the sync, or a busy runtime would
          // look like a sandbox without network and get the pod killed and recreated (upstream GetPodStatus).
          const st = await this.cri.runtime("PodSandboxStatus", { pod_sandbox_id: s.id }, opts).catch(ignoreNotFoundAs(undefined));
          const net = st?.status?.network;
          ips = net?.ip ? [net.ip, ...net.additional_ips.map((a) => a.ip)] : [];
        }
        return toRuntimeSandbox(s, ips);
      }),
    );
    const statuses = await Promise.all(
      containers.map(async (c) => {
        // Same here: a failed call must not turn a failed container into exit code 0.
        const st = await this.cri.runtime("ContainerStatus", { container_id: c.id }, opts).catch(ignoreNotFoundAs(undefined));
        return st?.status ? toRuntimeContainer(c, st.status) : undefined; // removed meanwhile
      }),
    );
    const full = statuses.filter((c): c is RuntimeContainer => c !== undefined);
    full.sort((a, b) => b.createdAt - a.createdAt || b.attempt - a.attempt);
    const first = items[0];
    return { uid, name: first?.metadata?.name ?? "", namespace: first?.metadata?.namespace ?? "", sandboxes, containers: full };
  }

  /** Brings the pod's runtime state in line with its spec. Never throws for a problem of the pod itself. */
  async syncPod(pod: V1Pod, status: PodRuntimeStatus, pullSecrets: readonly DockerConfig[], probes: ProbeFailures = {}, signal?: AbortSignal): Promise<SyncPodResult> {
    const uid = pod.metadata?.uid ?? "";
    const log = this.log.child({ pod: `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`, podUID: uid });
    const result: SyncPodResult = { waiting: {}, changed: false };
    await this.removeDeadContainers(status, log, signal);
    const actions = computePodActions(pod, status, probes);
    result.changed = actions.killPod || actions.createSandbox || actions.containersToKill.length > 0 || actions.containersToStart.length > 0;
    const node = this.node();
    const opts = signal ? { signal } : {};

    if (actions.killPod) {
      if (actions.createSandbox && status.sandboxes.length > 0) {
        this.events.event(podRef(pod), "Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.");
      }
      await this.killPodContainers(pod, status, pod.spec?.terminationGracePeriodSeconds ?? 30, signal);
    }
    if (actions.initFailed) {
      result.failed = { reason: "Failed", message: `Init container ${actions.initFailed.container} failed with exit code ${actions.initFailed.exitCode}` };
      return result;
    }
    for (const k of actions.containersToKill) {
      this.events.event(podRef(pod, `spec.containers{${k.name}}`), "Normal", "Killing", k.reason);
      await this.stopContainer(k.id, pod.spec?.terminationGracePeriodSeconds ?? 30, signal);
    }

    let sandboxId = actions.sandboxId;
    let podIPs = status.sandboxes[0]?.ips ?? [];
    let config: Input<PodSandboxConfig>;
    try {
      config = sandboxConfig(pod, actions.attempt, node);
    } catch (err) {
      result.error = errorMessage(err);
      this.events.event(podRef(pod), "Warning", "FailedCreatePodSandBox", `Failed to create pod sandbox: ${result.error}`);
      return result;
    }
    if (actions.createSandbox) {
      try {
        await this.cgroups.ensure(uid, qosClass(pod), podResourceConfig(pod, node.cpuCFSQuotaPeriodUs));
        const res = await this.cri.runtime("RunPodSandbox", { config }, opts);
        sandboxId = res.pod_sandbox_id;
        const st = await this.cri.runtime("PodSandboxStatus", { pod_sandbox_id: sandboxId }, opts);
        const net = st.status?.network;
        podIPs = net?.ip ? [net.ip, ...net.additional_ips.map((a) => a.ip)] : [];
        log.info({ sandboxId, attempt: actions.attempt, podIPs }, "created pod sandbox");
      } catch (err) {
        result.error = `Failed to create pod sandbox: ${errorMessage(err).replace(/^CRI RunPodSandbox: /, "")}`;
        log.warn({ err: result.error }, "sandbox creation failed");
        this.events.event(podRef(pod), "Warning", "FailedCreatePodSandBox", result.error);
        for (const c of actions.containersToStart) result.waiting[c.container.name] = { reason: "ContainerCreating", message: "" };
        return result;
      }
    }

    for (const start of actions.containersToStart) {
      const c = start.container;
      const fieldPath = start.kind === "regular" ? `spec.containers{${c.name}}` : `spec.initContainers{${c.name}}`;
      const ref = podRef(pod, fieldPath);
      // Crash-loop back-off: a container that ran and exited waits before its next start.
      if (start.previous && start.previous.state === "exited") {
        const key = CrashLoopBackoff.key(uid, c.name, containerHash(c));
        const finishedAt = start.previous.finishedAt || start.previous.createdAt;
        const wait = this.backoff.remaining(key, finishedAt, Date.now());
        if (wait > 0) {
          const delay = Math.round(this.backoff.delay(key) / 1000);
          const message = `back-off ${formatDelay(delay)} restarting failed container=${c.name} pod=${pod.metadata?.name ?? ""}_${pod.metadata?.namespace ?? ""}(${uid})`;
          result.waiting[c.name] = { reason: "CrashLoopBackOff", message };
          this.events.event(ref, "Warning", "BackOff", "Back-off restarting failed container");
          result.retryInMs = Math.min(result.retryInMs ?? Infinity, wait);
          continue;
        }
        this.backoff.next(key, finishedAt, Date.now());
      }
      let imageRef: string;
      try {
        imageRef = await this.images.ensureImage(pod, c, pullSecrets, {
          pulling: (image) => this.events.event(ref, "Normal", "Pulling", `Pulling image "${image}"`),
          pulled: (_image, message) => this.events.event(ref, "Normal", "Pulled", message),
          failed: (reason, message) => {
            this.events.event(ref, "Warning", "Failed", message);
            this.events.event(ref, "Warning", "Failed", `Error: ${reason}`);
          },
          backOff: (image) => this.events.event(ref, "Normal", "BackOff", `Back-off pulling image "${image}"`),
        }, signal);
      } catch (err) {
        if (err instanceof ImagePullError) {
          result.waiting[c.name] = { reason: err.reason, message: err.message };
          if (err.reason === "ErrImagePull" || err.reason === "ImagePullBackOff") result.retryInMs = Math.min(result.retryInMs ?? Infinity, 10_000);
        } else result.waiting[c.name] = { reason: "ErrImagePull", message: errorMessage(err) };
        if (start.kind !== "regular") break;
        continue;
      }
      try {
        const cfg = containerConfig({ pod, container: c, kind: start.kind, restartCount: start.restartCount, image: imageRef, node, facts: { podIPs } });
        // The image the user asked for, so ContainerStatus reports it rather than the bare id.
        cfg.image = { image: imageRef, user_specified_image: c.image ?? "" };
        const { container_id } = await this.cri.runtime("CreateContainer", { pod_sandbox_id: sandboxId, config: cfg, sandbox_config: config }, opts);
        this.events.event(ref, "Normal", "Created", `Created container ${c.name}`);
        try {
          await this.cri.runtime("StartContainer", { container_id }, opts);
        } catch (err) {
          const message = errorMessage(err).replace(/^CRI StartContainer: /, "");
          this.events.event(ref, "Warning", "Failed", `Error: ${message}`);
          result.waiting[c.name] = { reason: "RunContainerError", message };
          continue;
        }
        this.events.event(ref, "Normal", "Started", `Started container ${c.name}`);
        log.info({ container: c.name, containerId: container_id, restartCount: start.restartCount }, "started container");
      } catch (err) {
        const configError = err instanceof ContainerConfigError || (isDeckhandError(err) && err.code === "InvalidArgument" && !errorMessage(err).startsWith("CRI"));
        const reason = configError ? "CreateContainerConfigError" : "CreateContainerError";
        const message = errorMessage(err).replace(/^CRI CreateContainer: /, "");
        this.events.event(ref, "Warning", "Failed", `Error: ${message}`);
        result.waiting[c.name] = { reason, message };
        if (start.kind !== "regular") break;
      }
    }
    return result;
  }

  /**
   * Container garbage collection within a pod (upstream keeps one dead container per container name): the two
   * newest attempts of each container stay (what runs, and the last state with its logs); older exited ones go,
   * so a crash-looping pod does not pile up writable layers, logs and status calls.
   */
  private async removeDeadContainers(status: PodRuntimeStatus, log: Logger, signal?: AbortSignal): Promise<void> {
    const seen = new Map<string, number>();
    for (const c of status.containers) {
      const n = (seen.get(c.name) ?? 0) + 1;
      seen.set(c.name, n);
      if (n <= 2 || c.state !== "exited") continue;
      try {
        await this.cri.runtime("RemoveContainer", { container_id: c.id }, signal ? { signal } : {});
      } catch (err) {
        if (!isDeckhandError(err, "NotFound")) log.warn({ containerId: c.id, err: errorMessage(err) }, "could not remove a dead container");
      }
    }
  }

  private async stopContainer(id: string, requestedGraceSeconds: number, signal?: AbortSignal): Promise<void> {
    // Upstream's killContainer never gives less than 2 s (minimumGracePeriodInSeconds).
    const graceSeconds = Math.max(2, requestedGraceSeconds);
    try {
      // CRI's timeout: SIGTERM, then SIGKILL after that many seconds; the call itself may take that long.
      await this.cri.runtime("StopContainer", { container_id: id, timeout: graceSeconds }, { timeoutMs: (graceSeconds + 30) * 1000, ...(signal ? { signal } : {}) });
    } catch (err) {
      if (!isDeckhandError(err, "NotFound")) throw err;
    }
  }

  /**
   * Stops the pod: its app containers first (in parallel, each with the grace period), then sidecars and init
   * containers, then the sandbox (which takes its network down).
   */
  async killPodContainers(pod: V1Pod | undefined, status: PodRuntimeStatus, graceSeconds: number, signal?: AbortSignal): Promise<void> {
    const running = status.containers.filter((c) => c.state === "running" || c.state === "created" || c.state === "unknown");
    const byPhase = [running.filter((c) => c.kind === "regular" || c.kind === "ephemeral"), running.filter((c) => c.kind === "sidecar" || c.kind === "init")];
    for (const group of byPhase) {
      await Promise.all(
        group.map(async (c) => {
          if (pod) this.events.event(podRef(pod, c.kind === "regular" ? `spec.containers{${c.name}}` : `spec.initContainers{${c.name}}`), "Normal", "Killing", `Stopping container ${c.name}`);
          await this.stopContainer(c.id, graceSeconds, signal);
        }),
      );
    }
    for (const s of status.sandboxes) {
      if (s.state !== "ready") continue;
      try {
        await this.cri.runtime("StopPodSandbox", { pod_sandbox_id: s.id }, signal ? { signal } : {});
      } catch (err) {
        if (!isDeckhandError(err, "NotFound")) throw err;
      }
    }
  }

  /** After termination: removes containers, sandboxes, the pod cgroup and its log folder. */
  async removePod(uid: string, namespace: string, name: string, signal?: AbortSignal): Promise<void> {
    const status = await this.podStatus(uid, signal);
    const opts = signal ? { signal } : {};
    for (const c of status.containers) await this.cri.runtime("RemoveContainer", { container_id: c.id }, opts).catch(ignoreNotFound);
    for (const s of status.sandboxes) {
      await this.cri.runtime("StopPodSandbox", { pod_sandbox_id: s.id }, opts).catch(ignoreNotFound);
      await this.cri.runtime("RemovePodSandbox", { pod_sandbox_id: s.id }, opts).catch(ignoreNotFound);
    }
    await this.cgroups.remove(uid);
    const node = this.node();
    await rm(podLogDirectory(node.podLogsDir, { metadata: { uid, namespace, name } }), { recursive: true, force: true });
    this.backoff.forgetPod(uid);
    this.images.forgetPod(uid);
  }

  /** Termination grace recorded on a container, for pods the kubelet no longer has a spec for (orphans). */
  static graceOf(annotations: Record<string, string>): number {
    return Number(annotations[POD_TERMINATION_GRACE_ANNOTATION] ?? "30") || 30;
  }
}

function ignoreNotFound(err: unknown): void {
  if (!isDeckhandError(err, "NotFound")) throw err;
}

function ignoreNotFoundAs<T>(value: T): (err: unknown) => T {
  return (err) => {
    if (!isDeckhandError(err, "NotFound")) throw err;
    return value;
  };
}

/** Go's duration format for whole seconds, as upstream's back-off messages print it ("10s", "1m20s", "5m0s"). */
export function formatDelay(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
}
