/**
 * The kubelet's runtime layer (upstream's kuberuntime manager): turns what CRI lists of a pod into a
 * PodRuntimeStatus (one conversion, shared by the PLEG's relist and `podStatus`), carries out
 * computePodActions through CRI (pod cgroup, sandbox, images, containers, with crash-loop back-off and events),
 * kills pods gracefully and removes what they leave. It takes the runtime as interfaces (RuntimeService,
 * ImageManager, PodCgroups, Clock) so its decisions are unit tested on an in-memory runtime.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { rm } from "node:fs/promises";
import { DeckhandError, errorMessage, isDeckhandError } from "../../src-shared/errors.ts";
import type { Logger } from "../../src-shared/log.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import type { RuntimeService } from "../cri/services.ts";
import { runtimeMessage } from "../cri/errors.ts";
import type { Container as CriContainer, ContainerConfig, Mount, ContainerStatus as CriContainerStatus, PodSandbox, Input, PodSandboxConfig } from "../cri/types.ts";
import type { EventRecorder } from "../events.ts";
import { podRef } from "../events.ts";
import { ImagePullError, type PullSecrets, type ImageManager } from "../images/image-manager.ts";
import type { PodCgroups } from "../cm/pod-cgroups.ts";
import { podResourceConfig } from "../cm/pod-resources.ts";
import { computePodActions, CrashLoopBackoff, type ProbeFailures } from "./pod-actions.ts";
import { HookRunner } from "../lifecycle/handlers.ts";
import { killGraceSeconds, runsPreStop, stopGraceSeconds } from "../lifecycle/grace.ts";
import { readTerminationMessage, type TerminationMessageFiles } from "../lifecycle/termination-files.ts";
import { enrichMessage } from "../lifecycle/termination-message.ts";
import { containerConfig, containerEnv, nonRootPolicy, verifyRunAsNonRoot, NO_ENV_SOURCES, envReferences, type EnvSources } from "./container-config.ts";
import { deadContainersOverLimit } from "./container-gc.ts";
import { containerHash } from "./container-hash.ts";
import { sandboxConfig, podLogDirectory, type NodeContext } from "./sandbox-config.ts";
import { specsFromContainerLabels, CONTAINER_HASH_ANNOTATION, CONTAINER_KIND_ANNOTATION, CONTAINER_NAME_LABEL, POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL, POD_TERMINATION_GRACE_ANNOTATION } from "./labels.ts";
import type { ContainerState, PodRuntimeStatus, RuntimeContainer, RuntimeSandbox } from "./types.ts";
import { qosClass } from "../qos.ts";

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

/** The state a listed container is in, in our words (a changed state means its details must be read again). */
export function listedState(c: CriContainer): ContainerState {
  return STATE[c.state] ?? "unknown";
}

function toRuntimeSandbox(s: PodSandbox, ips: string[]): RuntimeSandbox {
  return { id: s.id, attempt: s.metadata?.attempt ?? 0, state: s.state === "SANDBOX_READY" ? "ready" : "notready", createdAt: nsToMs(s.created_at), ips };
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
  /** The sandbox this sync created, with the IPs it already read: the read after the sync need not ask again. */
  sandbox?: RuntimeSandbox;
}

export interface RuntimeManagerOptions {
  runtime: RuntimeService;
  images: ImageManager;
  cgroups: PodCgroups;
  events: EventRecorder;
  node: () => NodeContext;
  logger: Logger;
  crashLoopMaxMs?: number;
  clock?: Clock;
  /** Termination message files (kubelet root dir); without them containers get no termination message mount. */
  terminationFiles?: TerminationMessageFiles;
  /**
   * The CRI mounts of a container's volumeMounts (the volume manager's, see volumes/container-mounts.ts), given
   * its environment for subPathExpr; a failure leaves the container in CreateContainerConfigError.
   */
  containerMounts?: (pod: V1Pod, container: V1Container, env: ReadonlyMap<string, string>, podIPs: readonly string[]) => Promise<Input<Mount>[]>;
  /** The ConfigMaps and Secrets a container's env reads (the kubelet's watches); none without it. */
  envSources?: (pod: V1Pod, refs: ReturnType<typeof envReferences>, signal?: AbortSignal) => Promise<EnvSources>;
}

/** Sorts sandboxes newest first (creation time, then attempt), as upstream's status reads them. */
export function sortSandboxes(items: PodSandbox[]): PodSandbox[] {
  const ns = (s: PodSandbox): bigint => BigInt(s.created_at || "0");
  return items.sort((a, b) => (ns(a) === ns(b) ? (b.metadata?.attempt ?? 0) - (a.metadata?.attempt ?? 0) : ns(b) > ns(a) ? 1 : -1));
}

/**
 * Builds a pod's PodRuntimeStatus from its already-listed sandboxes and containers (upstream's GetPodStatus
 * after the lists): the IPs of the newest sandbox when it is ready, and each container's full status. With
 * `previous` (the last status built for the pod), a container whose listed state did not change keeps its
 * previous details, and the newest sandbox keeps its IPs when it is the same ready one: no CRI call for them.
 * Only "gone" may read as absent; any other failed read throws (the caller keeps its last good status).
 */
export async function buildPodStatus(runtime: RuntimeService, uid: string, sandboxes: readonly PodSandbox[], containers: readonly CriContainer[], previous: PodRuntimeStatus | undefined, signal?: AbortSignal): Promise<PodRuntimeStatus> {
  const opts = signal ? { signal } : {};
  const items = sortSandboxes([...sandboxes]);
  const newest = items[0];
  let ips: string[] = [];
  if (newest?.state === "SANDBOX_READY") {
    const before = previous?.sandboxes[0];
    if (before?.id === newest.id && before.state === "ready") ips = before.ips;
    else {
      // A failed read must fail the whole status, or a busy runtime would look like a sandbox without network
      // and get the pod killed and recreated (upstream GetPodStatus).
      const st = await runtime.runtime("PodSandboxStatus", { pod_sandbox_id: newest.id }, opts).catch(ignoreNotFoundAs(undefined));
      const net = st?.status?.network;
      ips = net?.ip ? [net.ip, ...net.additional_ips.map((a) => a.ip)] : [];
    }
  }
  const runtimeSandboxes = items.map((s, i) => toRuntimeSandbox(s, i === 0 ? ips : []));
  const known = new Map((previous?.containers ?? []).map((c) => [c.id, c]));
  const statuses = await Promise.all(
    containers.map(async (c) => {
      const before = known.get(c.id);
      if (before && before.state === listedState(c)) return before;
      // Same here: a failed call must not turn a failed container into exit code 0.
      const st = await runtime.runtime("ContainerStatus", { container_id: c.id }, opts).catch(ignoreNotFoundAs(undefined));
      if (!st?.status) return undefined; // removed meanwhile
      const rc = toRuntimeContainer(c, st.status);
      // Read once, when the container is first seen exited (an unchanged state keeps the previous details).
      if (rc.state === "exited") rc.message = enrichMessage(rc.message, await readTerminationMessage(st.status));
      return rc;
    }),
  );
  const full = statuses.filter((c): c is RuntimeContainer => c !== undefined);
  full.sort((a, b) => b.createdAt - a.createdAt || b.attempt - a.attempt);
  const labels = newest?.labels ?? containers[0]?.labels ?? {};
  return {
    uid,
    name: newest?.metadata?.name || labels[POD_NAME_LABEL] || "",
    namespace: newest?.metadata?.namespace || labels[POD_NAMESPACE_LABEL] || "",
    sandboxes: runtimeSandboxes,
    containers: full,
  };
}

export class RuntimeManager {
  private readonly cri: RuntimeService;
  private readonly images: ImageManager;
  private readonly cgroups: PodCgroups;
  private readonly events: EventRecorder;
  private readonly node: () => NodeContext;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly containerMounts: RuntimeManagerOptions["containerMounts"];
  private readonly envSources: RuntimeManagerOptions["envSources"];
  readonly backoff: CrashLoopBackoff;
  private readonly hooks: HookRunner;
  private readonly terminationFiles: TerminationMessageFiles | undefined;

  constructor(options: RuntimeManagerOptions) {
    this.cri = options.runtime;
    this.images = options.images;
    this.cgroups = options.cgroups;
    this.events = options.events;
    this.node = options.node;
    this.log = options.logger.child({ component: "runtime-manager" });
    this.clock = options.clock ?? systemClock;
    this.containerMounts = options.containerMounts;
    this.envSources = options.envSources;
    this.backoff = new CrashLoopBackoff({ maxMs: options.crashLoopMaxMs ?? 300_000 });
    this.hooks = new HookRunner({ runtime: this.cri, clock: this.clock, recorder: this.events });
    this.terminationFiles = options.terminationFiles;
  }

  /** Drops back-off entries long out of use (housekeeping). */
  gcBackOffs(): void {
    const now = this.clock.now();
    this.backoff.gc(now);
    this.images.gc(now);
  }

  /** Drops what this layer keeps per pod (crash-loop and image-pull back-off): part of the kubelet's forget(uid). */
  forgetPod(uid: string): void {
    this.backoff.forgetPod(uid);
    this.images.forgetPod(uid);
  }

  /**
   * Everything the runtime has for one pod, with full container statuses (exit codes, times): reads CRI. With
   * `previous` (what the caller knows is still true), its containers in an unchanged state and its newest
   * sandbox's IPs are not asked for again, as in the PLEG's relist.
   */
  async podStatus(uid: string, signal?: AbortSignal, previous?: PodRuntimeStatus): Promise<PodRuntimeStatus> {
    const opts = signal ? { signal } : {};
    const selector = { [POD_UID_LABEL]: uid };
    const [{ items }, { containers }] = await Promise.all([
      this.cri.runtime("ListPodSandbox", { filter: { label_selector: selector } }, opts),
      this.cri.runtime("ListContainers", { filter: { label_selector: selector } }, opts),
    ]);
    return this.podStatusFrom(uid, items, containers, previous, signal);
  }

  /** The one conversion from listed sandboxes/containers to a PodRuntimeStatus (see buildPodStatus). */
  podStatusFrom(uid: string, sandboxes: readonly PodSandbox[], containers: readonly CriContainer[], previous: PodRuntimeStatus | undefined, signal?: AbortSignal): Promise<PodRuntimeStatus> {
    return buildPodStatus(this.cri, uid, sandboxes, containers, previous, signal);
  }

  /** Brings the pod's runtime state in line with its spec. Never throws for a problem of the pod itself. */
  async syncPod(pod: V1Pod, status: PodRuntimeStatus, pullSecrets: PullSecrets, probes: ProbeFailures = {}, signal?: AbortSignal): Promise<SyncPodResult> {
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
      // No override: each container's own grace (upstream's killPodWithSyncResult with a nil override).
      await this.killPodContainers(pod, status, undefined, signal);
      if (actions.createSandbox) await this.purgeInitContainers(pod, status, log, signal);
    }
    if (actions.initFailed) {
      result.failed = { reason: "Failed", message: `Init container ${actions.initFailed.container} failed with exit code ${actions.initFailed.exitCode}` };
      return result;
    }
    for (const k of actions.containersToKill) {
      const init = k.kind === "sidecar" || k.kind === "init";
      const spec = (init ? pod.spec?.initContainers : pod.spec?.containers)?.find((c) => c.name === k.name);
      this.events.event(podRef(pod, init ? `spec.initContainers{${k.name}}` : `spec.containers{${k.name}}`), "Normal", "Killing", k.reason);
      // A failed probe's own terminationGracePeriodSeconds, if any, before the pod's; the preStop hook first.
      const notRunning = status.containers.find((c) => c.id === k.id)?.state !== "running";
      await this.killContainer({ pod, spec, id: k.id, graceSeconds: killGraceSeconds({ pod, container: spec, failedProbe: k.probe }), podIP: hookIP(pod, podIPsOf(status), node), notRunning }, signal);
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
        await this.cgroups.ensure(uid, qosClass(pod), podResourceConfig(pod, node));
        const res = await this.cri.runtime("RunPodSandbox", { config }, opts);
        sandboxId = res.pod_sandbox_id;
        const st = await this.cri.runtime("PodSandboxStatus", { pod_sandbox_id: sandboxId }, opts);
        const net = st.status?.network;
        podIPs = net?.ip ? [net.ip, ...net.additional_ips.map((a) => a.ip)] : [];
        result.sandbox = { id: sandboxId, attempt: actions.attempt, state: "ready", createdAt: nsToMs(st.status?.created_at ?? 0), ips: podIPs };
        log.info({ sandboxId, attempt: actions.attempt, podIPs }, "created pod sandbox");
      } catch (err) {
        throwIfCancelled(err, signal);
        result.error = `Failed to create pod sandbox: ${runtimeMessage(err)}`;
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
        const wait = this.backoff.remaining(key, finishedAt, this.clock.now());
        if (wait > 0) {
          const delay = Math.round(this.backoff.delay(key) / 1000);
          const message = `back-off ${formatDelay(delay)} restarting failed container=${c.name} pod=${pod.metadata?.name ?? ""}_${pod.metadata?.namespace ?? ""}(${uid})`;
          result.waiting[c.name] = { reason: "CrashLoopBackOff", message };
          this.events.event(ref, "Warning", "BackOff", "Back-off restarting failed container");
          result.retryInMs = Math.min(result.retryInMs ?? Infinity, wait);
          continue;
        }
        this.backoff.next(key, finishedAt, this.clock.now());
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
        throwIfCancelled(err, signal);
        if (err instanceof ImagePullError) {
          result.waiting[c.name] = { reason: err.reason, message: err.message };
          if (err.reason === "ErrImagePull" || err.reason === "ImagePullBackOff" || err.reason === "ErrImageInspect") result.retryInMs = Math.min(result.retryInMs ?? Infinity, 10_000);
        } else result.waiting[c.name] = { reason: "ErrImagePull", message: runtimeMessage(err) };
        if (start.kind !== "regular") break;
        continue;
      }
      // A failed step leaves the container waiting with upstream's reason for that step, and a Failed event.
      const step = async <T>(reason: string, run: () => Promise<T>): Promise<T | undefined> => {
        try {
          return await run();
        } catch (err) {
          throwIfCancelled(err, signal);
          const message = runtimeMessage(err);
          this.events.event(ref, "Warning", "Failed", `Error: ${message}`);
          result.waiting[c.name] = { reason, message };
          return undefined;
        }
      };
      // What the spec asks cannot be turned into a container config: upstream's CreateContainerConfigError.
      const cfg = await step("CreateContainerConfigError", async (): Promise<Input<ContainerConfig>> => {
        const policy = nonRootPolicy(pod, c);
        // The image's user is read only when the pod leaves it to the image (one ImageStatus call).
        verifyRunAsNonRoot(pod, c, policy.runAsNonRoot && policy.runAsUser === undefined ? await this.images.imageUser(imageRef, signal) : undefined);
        const refs = envReferences(c);
        const envSources = this.envSources ? await this.envSources(pod, refs, signal) : NO_ENV_SOURCES;
        const warnings: string[] = [];
        const env = containerEnv(pod, c, node, { podIPs }, envSources, warnings);
        for (const w of warnings) this.events.event(podRef(pod), "Warning", "InvalidEnvironmentVariableNames", w);
        const volumeMounts = this.containerMounts ? await this.containerMounts(pod, c, new Map(env.map((e) => [e.key, e.value])), podIPs) : [];
        return containerConfig({ pod, container: c, kind: start.kind, restartCount: start.restartCount, image: imageRef, node, facts: { podIPs }, volumeMounts, envSources });
      });
      if (!cfg) {
        if (start.kind !== "regular") break;
        continue;
      }
      // The image the user asked for, so ContainerStatus reports it rather than the bare id.
      cfg.image = { image: imageRef, user_specified_image: c.image ?? "" };
      // The termination message file, bind-mounted at terminationMessagePath (upstream's makeMounts).
      const terminationMount = await this.terminationFiles?.create(uid, c);
      if (terminationMount) cfg.mounts = [...(cfg.mounts ?? []), terminationMount];
      const created = await step("CreateContainerError", () => this.cri.runtime("CreateContainer", { pod_sandbox_id: sandboxId, config: cfg, sandbox_config: config }, opts));
      if (!created) {
        if (start.kind !== "regular") break;
        continue;
      }
      const containerId = created.container_id;
      this.events.event(ref, "Normal", "Created", `Created container ${c.name}`);
      if (!(await step("RunContainerError", () => this.cri.runtime("StartContainer", { container_id: containerId }, opts)))) continue;
      this.events.event(ref, "Normal", "Started", `Started container ${c.name}`);
      log.info({ container: c.name, containerId, restartCount: start.restartCount }, "started container");
      const postStart = c.lifecycle?.postStart;
      if (postStart) {
        // Right after the start, before the next container (upstream's startContainer step 4).
        const podIP = hookIP(pod, podIPs, node);
        const failure = await this.hooks.run(postStart, { pod, container: c, containerId, podIP }, signal ?? new AbortController().signal);
        if (signal?.aborted) throw new DeckhandError("Cancelled", "pod sync cancelled");
        if (failure !== undefined) {
          log.info({ container: c.name, containerId, failure }, "postStart hook failed; killing the container");
          // Not the message in the event: a hook's output may hold secrets (upstream since 1.29). It goes to the
          // container's waiting state, as upstream's sync result does.
          this.events.event(ref, "Warning", "FailedPostStartHook", "PostStartHook failed");
          await this.killContainer({ pod, spec: c, id: containerId, graceSeconds: killGraceSeconds({ pod, container: c }), podIP, message: "FailedPostStartHook" }, signal);
          result.waiting[c.name] = { reason: "PostStartHookError", message: failure };
        }
      }
    }
    return result;
  }

  /**
   * The container GC's per-container limit (container-gc.ts), applied to the pod being synced from the status at
   * hand, so a crash-looping pod keeps one dead attempt per container (the last state) without waiting for the
   * node-wide pass. Unknown ones are left to computePodActions, which kills them first.
   */
  private async removeDeadContainers(status: PodRuntimeStatus, log: Logger, signal?: AbortSignal): Promise<void> {
    const candidates = status.containers
      .filter((c) => c.state !== "unknown")
      .map((c) => ({ id: c.id, podUid: status.uid, name: c.name, running: c.state === "running", unknown: false, createdAt: BigInt(c.createdAt) * 1_000_000n, attempt: c.attempt }));
    for (const c of deadContainersOverLimit(candidates, this.clock.now())) {
      try {
        await this.cri.runtime("RemoveContainer", { container_id: c.id }, signal ? { signal } : {});
      } catch (err) {
        throwIfCancelled(err, signal);
        if (!isDeckhandError(err, "NotFound")) log.warn({ containerId: c.id, err: errorMessage(err) }, "could not remove a dead container");
      }
    }
  }

  /**
   * Upstream's purgeInitContainers: before a new sandbox, every attempt of every init container goes (they are
   * all stopped by now). Otherwise the new sandbox's next sync would find the old sandbox's successful attempts
   * as the newest and skip those init containers.
   */
  private async purgeInitContainers(pod: V1Pod, status: PodRuntimeStatus, log: Logger, signal?: AbortSignal): Promise<void> {
    const names = new Set((pod.spec?.initContainers ?? []).map((c) => c.name));
    for (const c of status.containers) {
      if (!names.has(c.name)) continue;
      try {
        await this.cri.runtime("RemoveContainer", { container_id: c.id }, signal ? { signal } : {});
      } catch (err) {
        throwIfCancelled(err, signal);
        log.warn({ containerId: c.id, err: errorMessage(err) }, "could not remove an init container of the old sandbox");
      }
    }
  }

  /**
   * upstream's killContainer: the Killing event is the caller's (or `message` here), then the preStop hook with
   * the grace period as its deadline (FailedPreStopHook on failure, without the hook's output: it may hold
   * secrets), then StopContainer with what is left of the grace, never under 2 s.
   */
  private async killContainer(k: { pod: V1Pod | undefined; spec: V1Container | undefined; id: string; graceSeconds: number; podIP: string; message?: string; notRunning?: boolean }, signal?: AbortSignal): Promise<void> {
    const { pod, spec } = k;
    const init = pod && spec ? (pod.spec?.initContainers ?? []).some((c) => c.name === spec.name) : false;
    const ref = pod && spec ? podRef(pod, init ? `spec.initContainers{${spec.name}}` : `spec.containers{${spec.name}}`) : undefined;
    if (ref && k.message) this.events.event(ref, "Normal", "Killing", k.message);
    let elapsedMs = 0;
    const preStop = spec?.lifecycle?.preStop;
    // A container that never ran (created, unknown) has no process to run a hook in (upstream kills only
    // running ones).
    if (pod && spec && ref && preStop && !k.notRunning && runsPreStop(spec, k.graceSeconds)) {
      const started = this.clock.now();
      const deadline = new AbortController();
      const hookSignal = signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal;
      const hook = this.hooks.run(preStop, { pod, container: spec, containerId: k.id, podIP: k.podIP }, hookSignal);
      // The hook gets the grace period, no more (upstream stops waiting for it then).
      const timedOut = await Promise.race([hook.then(() => false), this.clock.sleep(k.graceSeconds * 1000, hookSignal).then(() => true, () => false)]);
      deadline.abort();
      const failure = await hook;
      if (signal?.aborted) throw new DeckhandError("Cancelled", "pod sync cancelled");
      if (timedOut) this.log.info({ containerId: k.id, graceSeconds: k.graceSeconds }, "preStop hook did not complete within the grace period");
      else if (failure !== undefined) {
        this.log.warn({ containerId: k.id, failure }, "preStop hook failed");
        this.events.event(ref, "Warning", "FailedPreStopHook", "PreStopHook failed");
      }
      elapsedMs = this.clock.now() - started;
    }
    const graceSeconds = stopGraceSeconds(k.graceSeconds, elapsedMs);
    try {
      // CRI's timeout: SIGTERM, then SIGKILL after that many seconds; the call itself may take that long.
      await this.cri.runtime("StopContainer", { container_id: k.id, timeout: graceSeconds }, { timeoutMs: (graceSeconds + 30) * 1000, ...(signal ? { signal } : {}) });
    } catch (err) {
      if (!isDeckhandError(err, "NotFound")) throw err;
    }
  }

  /**
   * Stops the pod: its app containers first (in parallel, each with the grace period), then its sidecars and
   * init containers one at a time in reverse spec order (as upstream since sidecar containers: a sidecar
   * outlives what it serves, the first started goes last), then every sandbox, ready or not, as upstream's
   * KillPod: a sandbox whose pause process died is not ready but keeps its network namespace and IP until
   * StopPodSandbox tears them down (and containerd 1.6 refuses to remove it before).
   */
  async killPodContainers(pod: V1Pod | undefined, status: PodRuntimeStatus, graceSeconds: number | undefined, signal?: AbortSignal): Promise<void> {
    const running = status.containers.filter((c) => c.state === "running" || c.state === "created" || c.state === "unknown");
    const podIP = pod ? hookIP(pod, podIPsOf(status), this.node()) : "";
    const kill = async (c: RuntimeContainer): Promise<void> => {
      if (pod) {
        this.events.event(podRef(pod, c.kind === "regular" ? `spec.containers{${c.name}}` : `spec.initContainers{${c.name}}`), "Normal", "Killing", `Stopping container ${c.name}`);
        const spec = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].find((s) => s.name === c.name);
        await this.killContainer({ pod, spec, id: c.id, graceSeconds: killGraceSeconds({ pod, container: spec, override: graceSeconds }), podIP, notRunning: c.state !== "running" }, signal);
        return;
      }
      // No spec (an orphan): what the container was created with stands in for it, preStop hook included.
      const restored = await this.restoreSpecs(c.id, signal);
      const grace = restored ? killGraceSeconds({ pod: restored.pod, container: restored.container, override: graceSeconds }) : (graceSeconds ?? 2);
      await this.killContainer({ pod: restored?.pod, spec: restored?.container, id: c.id, graceSeconds: grace, podIP: podIPsOf(status)[0] ?? "", notRunning: c.state !== "running" }, signal);
    };
    await Promise.all(running.filter((c) => c.kind === "regular" || c.kind === "ephemeral").map(kill));
    // Reverse spec order; without a spec (an orphan), newest first (status.containers is newest first).
    const order = (pod?.spec?.initContainers ?? []).map((c) => c.name);
    const rest = running.filter((c) => c.kind === "sidecar" || c.kind === "init");
    if (order.length > 0) rest.sort((a, b) => order.indexOf(b.name) - order.indexOf(a.name));
    for (const c of rest) await kill(c);
    for (const s of status.sandboxes) {
      try {
        await this.cri.runtime("StopPodSandbox", { pod_sandbox_id: s.id }, signal ? { signal } : {});
      } catch (err) {
        if (!isDeckhandError(err, "NotFound")) throw err;
      }
    }
  }

  /** upstream's restoreSpecsFromContainerLabels, through ContainerStatus; undefined when the container is gone. */
  private async restoreSpecs(id: string, signal?: AbortSignal): Promise<{ pod: V1Pod; container: V1Container } | undefined> {
    const st = await this.cri.runtime("ContainerStatus", { container_id: id }, signal ? { signal } : {}).catch(ignoreNotFoundAs(undefined));
    return st?.status ? specsFromContainerLabels(st.status.labels, st.status.annotations) : undefined;
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
    await this.cgroups.remove(uid, signal);
    const node = this.node();
    await rm(podLogDirectory(node.podLogsDir, { metadata: { uid, namespace, name } }), { recursive: true, force: true });
    await this.terminationFiles?.removePod(uid);
    this.forgetPod(uid);
  }

  /** Termination grace recorded on a container, for pods the kubelet no longer has a spec for (orphans). */
  static graceOf(annotations: Record<string, string>): number {
    return Number(annotations[POD_TERMINATION_GRACE_ANNOTATION] ?? "30") || 30;
  }
}

/** The newest sandbox's IPs. */
function podIPsOf(status: PodRuntimeStatus): string[] {
  return status.sandboxes[0]?.ips ?? [];
}

/** The default host of an httpGet hook: the pod's primary IP, the node's for a host-network pod (as probes). */
function hookIP(pod: V1Pod, podIPs: readonly string[], node: NodeContext): string {
  return podIPs[0] ?? (pod.spec?.hostNetwork ? (node.hostIPs[0] ?? "") : "");
}

/** A call the pod's own signal cancelled is no failure of the pod: the sync stops, nothing is recorded. */
function throwIfCancelled(err: unknown, signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw isDeckhandError(err, "Cancelled") ? err : new DeckhandError("Cancelled", "pod sync cancelled", { cause: err });
  if (isDeckhandError(err, "Cancelled")) throw err;
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
