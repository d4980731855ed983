/**
 * The pod's API status from what the runtime holds: pure, no I/O. It follows upstream closely:
 *
 * - pkg/kubelet/kubelet_pods.go: generateAPIPodStatus, convertStatusToAPIStatus, convertToAPIContainerStatuses,
 *   getPhase, sortPodIPs;
 * - pkg/kubelet/prober/prober_manager.go UpdatePodStatus (container `started` and `ready`);
 * - pkg/kubelet/status/generate.go (PodReadyToStartContainers, Initialized, Ready, ContainersReady);
 * - pkg/kubelet/status/status_manager.go: updateStatusInternal (condition transition times, startTime kept,
 *   normalizeStatus), mergePodStatus (terminal phase only once no container can run, Ready false when
 *   terminal), isPodStatusByKubeletEqual (`podStatusEqual`);
 * - pkg/util/pod PatchPodStatus (`statusPatch`: a two-way strategic merge patch with a uid precondition).
 *
 * Feature gates as a current release ships them: SidecarContainers, PodReadyToStartContainersCondition and
 * PodObservedGenerationTracking on; ContainerRestartRules, RestartAllContainersOnContainerExits,
 * ChangeContainerStatusOnKubeletRestart off; in-place resize, DRA, user namespaces' `user`, image volumes,
 * `volumeMounts` status and `allocatedResources` not modelled.
 *
 * Output is the JSON wire format (`PodStatus` below): times are RFC 3339 strings at second precision (what
 * metav1.Time serialises), absent fields are left out (Go's omitempty), and the container state objects
 * `state`/`lastState` are always present, possibly empty, as the API shows them.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { isIP } from "node:net";
import { qosClass, isStaticPod, type QOSClass } from "../qos.ts";
import type { PodRuntimeStatus, RuntimeContainer } from "../runtime/types.ts";
import { rfc3339 } from "../../src-shared/time.ts";
import { isPodDeleting, isSidecar, podSandboxChanged, restartPolicy, shouldContainerBeRestarted } from "../pod-helpers.ts";

// ---------------------------------------------------------------------------------------------------------
// Wire types
// ---------------------------------------------------------------------------------------------------------

export type PodPhase = "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";

export interface ContainerStateWaiting {
  reason?: string;
  message?: string;
}

export interface ContainerStateRunning {
  startedAt?: string;
}

export interface ContainerStateTerminated {
  exitCode: number;
  signal?: number;
  reason?: string;
  message?: string;
  startedAt?: string;
  finishedAt?: string;
  containerID?: string;
}

/** At most one member is set; `{}` is "no state" (an empty lastState). */
export interface ContainerState {
  waiting?: ContainerStateWaiting;
  running?: ContainerStateRunning;
  terminated?: ContainerStateTerminated;
}

export interface ContainerStatus {
  name: string;
  state: ContainerState;
  lastState: ContainerState;
  ready: boolean;
  restartCount: number;
  image: string;
  imageID: string;
  containerID?: string;
  started?: boolean;
}

export interface PodCondition {
  type: string;
  status: string;
  observedGeneration?: number;
  lastProbeTime?: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface PodIP {
  ip: string;
}

/**
 * A pod's `status` as it travels in JSON (core/v1 PodStatus): the fields the kubelet sets, plus those it
 * keeps from the API (other components' conditions). Times are RFC 3339 strings, not Date objects.
 */
export interface PodStatus {
  observedGeneration?: number;
  phase: PodPhase;
  conditions?: PodCondition[];
  message?: string;
  reason?: string;
  nominatedNodeName?: string;
  hostIP?: string;
  hostIPs?: PodIP[];
  podIP?: string;
  podIPs?: PodIP[];
  startTime?: string;
  initContainerStatuses?: ContainerStatus[];
  containerStatuses?: ContainerStatus[];
  qosClass?: QOSClass;
  ephemeralContainerStatuses?: ContainerStatus[];
}

export interface PodStatusInput {
  /** The desired pod (spec, and its current API status: previous container states, others' conditions). */
  pod: V1Pod;
  /** What the runtime holds for the pod; undefined = nothing yet. */
  runtime: PodRuntimeStatus | undefined;
  /** Why containers are not running, from the last sync (upstream's reason cache): name → reason, message. */
  waiting: Record<string, { reason: string; message: string }>;
  /** Readiness probe results by container name; absent = no result yet (ready iff it has no readiness probe). */
  readiness?: Record<string, boolean>;
  /** Startup probe results by container name; absent = no result yet (started iff it has no startup probe). */
  startup?: Record<string, boolean>;
  /** The node's addresses, primary first. */
  hostIPs: string[];
  /** When the kubelet first saw the pod, RFC 3339; an existing status.startTime wins. */
  startTime: string;
  /** Now, RFC 3339: the transition time of conditions that change. */
  now: string;
  /**
   * Set when the kubelet ends the pod (active deadline, eviction): the phase, reason and message to report
   * (upstream's ShouldEvict override); the pod is then terminal for the phase computation too.
   */
  terminal?: { phase: "Failed" | "Succeeded"; reason?: string; message?: string; conditions?: { type: string; status: string; reason?: string; message?: string }[] };
  /** The node's memory; the status does not depend on it (accepted so callers pass node facts uniformly). */
  memoryCapacityBytes?: number;
  /**
   * The status last computed for this pod (upstream's status-manager cache), when newer than `pod.status`:
   * previous container states and condition transition times are taken from it. Default: `pod.status`.
   */
  previous?: PodStatus;
  /** The CRI runtime name used in container IDs (`<runtime>://<id>`); default "containerd". */
  runtimeName?: string;
}

// ---------------------------------------------------------------------------------------------------------
// Constants (upstream's names)
// ---------------------------------------------------------------------------------------------------------

export const POD_INITIALIZING = "PodInitializing";
export const CONTAINER_CREATING = "ContainerCreating";
export const CONTAINER_STATUS_UNKNOWN = "ContainerStatusUnknown";
export const UNKNOWN_CONTAINER_STATUSES = "UnknownContainerStatuses";
export const POD_COMPLETED = "PodCompleted";
export const POD_FAILED = "PodFailed";
export const CONTAINERS_NOT_READY = "ContainersNotReady";
export const CONTAINERS_NOT_INITIALIZED = "ContainersNotInitialized";
export const READINESS_GATES_NOT_READY = "ReadinessGatesNotReady";
/** kubecontainer.MaxPodTerminationMessageLogLength: termination messages share 12 KiB per pod. */
export const MAX_POD_TERMINATION_MESSAGE_LENGTH = 1024 * 12;

const POD_READY_TO_START_CONTAINERS = "PodReadyToStartContainers";
const POD_INITIALIZED = "Initialized";
const POD_READY = "Ready";
const CONTAINERS_READY = "ContainersReady";
const POD_SCHEDULED = "PodScheduled";
const DISRUPTION_TARGET = "DisruptionTarget";

/** kubetypes.PodConditionByKubelet (with PodReadyToStartContainersCondition on). */
const KUBELET_CONDITIONS: ReadonlySet<string> = new Set([POD_SCHEDULED, POD_READY, POD_INITIALIZED, CONTAINERS_READY, POD_READY_TO_START_CONTAINERS]);
/** kubetypes.PodConditionSharedByKubelet. */
const SHARED_CONDITIONS: ReadonlySet<string> = new Set([DISRUPTION_TARGET]);

// ---------------------------------------------------------------------------------------------------------
// Normalisation of what the API gives (JSON strings or client-node objects with Dates)
// ---------------------------------------------------------------------------------------------------------


function normalizeTime(t: string): string {
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? t : rfc3339(ms);
}

function toWire(v: unknown): unknown {
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : rfc3339(v.getTime());
  if (Array.isArray(v)) return v.map(toWire).filter((x) => x !== undefined);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const w = toWire(x);
      if (w !== undefined) out[k] = w;
    }
    return out;
  }
  return v === null ? undefined : v;
}

/**
 * An API pod status (parsed JSON, or a client-node V1PodStatus with Date objects) in this module's wire form:
 * Dates become RFC 3339 strings, nulls (e.g. `lastProbeTime: null`) are dropped.
 */
export function toPodStatus(status: unknown): PodStatus {
  const w = toWire(status ?? {}) as Partial<PodStatus>;
  const out: PodStatus = { ...w, phase: w.phase ?? "Pending" };
  // Container statuses always carry their states (the API serialises empty ones as {}).
  for (const k of ["initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"] as const) {
    const list = out[k];
    if (list) out[k] = list.map((c) => ({ ...c, state: c.state ?? {}, lastState: c.lastState ?? {}, ready: c.ready ?? false, restartCount: c.restartCount ?? 0, image: c.image ?? "", imageID: c.imageID ?? "" }));
  }
  return out;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

function isTerminalPhase(phase: string | undefined): boolean {
  return phase === "Succeeded" || phase === "Failed";
}

function findCondition(conditions: readonly PodCondition[] | undefined, type: string): PodCondition | undefined {
  return conditions?.find((c) => c.type === type);
}

function statusByName(statuses: readonly ContainerStatus[], name: string): ContainerStatus | undefined {
  return statuses.find((s) => s.name === name);
}

/** Go's fmt %s of a []string: "[a b c]". */
function goList(names: readonly string[]): string {
  return `[${names.join(" ")}]`;
}

type Loose<T> = { [K in keyof T]: T[K] | undefined };

/** Drops undefined members (exactOptionalPropertyTypes): `{ a: undefined }` → `{}`. */
function compact<T extends object>(o: Loose<T>): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === "" ? undefined : s;
}

function ipFamily(ip: string): 4 | 6 | 0 {
  const v = isIP(ip);
  if (v === 6 && /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip)) return 4;
  return v === 4 || v === 6 ? v : 0;
}

/** The IP re-stringified canonically, as Go's ParseIPSloppy + String (IPv4-mapped IPv6 prints as IPv4). */
function canonicalIP(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1]) return mapped[1];
  if (isIP(ip) === 6) {
    try {
      return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
    } catch {
      return ip;
    }
  }
  if (isIP(ip) === 4) return ip.split(".").map((o) => String(Number(o))).join(".");
  return ip;
}

/** sortPodIPs: the first IP of the node's family, then the first of the other family. */
function sortPodIPs(ips: readonly string[], hostIPs: readonly string[]): string[] {
  const primary = hostIPs[0] !== undefined && ipFamily(hostIPs[0]) === 6 ? 6 : 4;
  const secondary = primary === 4 ? 6 : 4;
  const out: string[] = [];
  const first = ips.find((ip) => ipFamily(ip) === primary);
  if (first !== undefined) out.push(canonicalIP(first));
  const second = ips.find((ip) => ipFamily(ip) === secondary);
  if (second !== undefined) out.push(canonicalIP(second));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Container statuses (convertToAPIContainerStatuses)
// ---------------------------------------------------------------------------------------------------------

interface ConvertContext {
  pod: V1Pod;
  /** Runtime containers, newest first. */
  containers: readonly RuntimeContainer[];
  waiting: PodStatusInput["waiting"];
  runtimeName: string;
  hasInitContainers: boolean;
}

function latestByName(ctx: ConvertContext, name: string): RuntimeContainer | undefined {
  return ctx.containers.find((c) => c.name === name);
}

function convertContainerStatus(ctx: ConvertContext, cs: RuntimeContainer, specImage: string, old: ContainerStatus | undefined): ContainerStatus {
  const cid = `${ctx.runtimeName}://${cs.id}`;
  const status: ContainerStatus = {
    name: cs.name,
    state: {},
    lastState: {},
    ready: false,
    restartCount: cs.attempt,
    image: cs.image !== "" ? cs.image : specImage,
    imageID: cs.imageRef,
    containerID: cid,
  };
  switch (cs.state) {
    case "running":
      status.state.running = compact<ContainerStateRunning>({ startedAt: cs.startedAt > 0 ? rfc3339(cs.startedAt) : undefined });
      break;
    case "created":
      // Created but not running: "waiting to be running".
      status.state.waiting = {};
      break;
    case "exited":
      status.state.terminated = compact<ContainerStateTerminated>({
        exitCode: cs.exitCode,
        reason: nonEmpty(cs.reason),
        message: nonEmpty(cs.message),
        startedAt: cs.startedAt > 0 ? rfc3339(cs.startedAt) : undefined,
        finishedAt: cs.finishedAt > 0 ? rfc3339(cs.finishedAt) : undefined,
        containerID: cid,
      });
      break;
    case "unknown":
      if (old?.state.running) {
        // It ran and the runtime lost it: it must not look like it never ran (a Never pod would run twice).
        status.state.terminated = { exitCode: 137, reason: CONTAINER_STATUS_UNKNOWN, message: "The container could not be located when the pod was terminated" };
        status.restartCount = old.restartCount + 1;
      } else status.state.waiting = {};
      break;
  }
  return status;
}

function convertToAPIContainerStatuses(ctx: ConvertContext, specs: readonly V1Container[], previous: readonly ContainerStatus[] | undefined, isInit: boolean): ContainerStatus[] {
  const oldStatuses = new Map<string, ContainerStatus>();
  for (const s of previous ?? []) oldStatuses.set(s.name, s);
  const defaultReason = ctx.hasInitContainers ? POD_INITIALIZING : CONTAINER_CREATING;

  // Every container starts waiting; a previous terminated status stands until the runtime says otherwise.
  const statuses = new Map<string, ContainerStatus>();
  for (const c of specs) {
    let status: ContainerStatus = { name: c.name, state: { waiting: { reason: defaultReason } }, lastState: {}, ready: false, restartCount: 0, image: c.image ?? "", imageID: "" };
    const old = oldStatuses.get(c.name);
    if (old) {
      if (old.state.terminated) status = clone(old);
      else {
        status.restartCount = old.restartCount;
        status.lastState = clone(old.lastState);
      }
    }
    statuses.set(c.name, status);
  }

  // A container that was running and vanished from the runtime terminated, even if we do not know how.
  for (const c of specs) {
    if (latestByName(ctx, c.name)) continue;
    const old = oldStatuses.get(c.name);
    if (!old || old.state.terminated || !old.state.running) continue;
    const status = statuses.get(c.name)!;
    if (status.state.waiting?.reason !== defaultReason) continue;
    if (status.lastState.terminated) continue;
    status.lastState = { terminated: { exitCode: 137, reason: CONTAINER_STATUS_UNKNOWN, message: "The container could not be located when the pod was deleted.  The container used to be Running" } };
    if (!isPodDeleting(ctx.pod)) status.restartCount += 1;
  }

  // The newest attempt of each container is its state, the one before its last state.
  const seen = new Map<string, number>();
  for (const cs of ctx.containers) {
    const current = statuses.get(cs.name);
    if (!current) continue;
    const n = seen.get(cs.name) ?? 0;
    if (n >= 2) continue;
    const old = oldStatuses.get(cs.name);
    const spec = specs.find((c) => c.name === cs.name);
    const status = convertContainerStatus(ctx, cs, spec?.image ?? "", old);
    // ChangeContainerStatusOnKubeletRestart off: a running container keeps the started it had (here only
    // when it is the same container, not a restarted one).
    if (cs.state === "running" && old?.started !== undefined && old.containerID === status.containerID) status.started = old.started;
    if (n === 0) statuses.set(cs.name, status);
    else current.lastState = status.state;
    seen.set(cs.name, n + 1);
  }

  // Containers that will be (re)started at the next sync show why they are not running yet.
  for (const c of specs) {
    const latest = latestByName(ctx, c.name);
    const status = statuses.get(c.name)!;
    if (isInit) {
      // A completed init container is not restarted.
      if (latest?.state === "exited" && latest.exitCode === 0) continue;
      // Its status lost (static pod, GC) but the app containers exist: it completed.
      if (!latest && !isSidecar(c) && hasAnyRegularContainerCreated(ctx) && status.state.waiting) {
        status.state = { terminated: { exitCode: 0, reason: "Completed", message: "Unable to get init container status from container runtime and pod has been initialized, treat it as exited normally" } };
        continue;
      }
    }
    if (!shouldContainerBeRestarted(ctx.pod, latest)) continue;
    const reason = ctx.waiting[c.name];
    if (!reason) continue;
    if (status.state.terminated) status.lastState = status.state;
    status.state = { waiting: compact<ContainerStateWaiting>({ reason: nonEmpty(reason.reason), message: nonEmpty(reason.message) }) };
  }

  const out = specs.map((c) => statuses.get(c.name)!);
  // Init containers in spec order; the others by name (kubetypes.SortedContainerStatuses).
  if (!isInit) out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return out;
}

function hasAnyRegularContainerCreated(ctx: ConvertContext): boolean {
  for (const c of ctx.pod.spec?.containers ?? []) {
    const s = latestByName(ctx, c.name);
    if (s && (s.state === "created" || s.state === "running" || s.state === "exited")) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------
// Probe results (prober manager's UpdatePodStatus)
// ---------------------------------------------------------------------------------------------------------

interface ProbeResults {
  readiness: Record<string, boolean>;
  startup: Record<string, boolean>;
}

function isContainerStarted(spec: V1Container | undefined, status: ContainerStatus, probes: ProbeResults): boolean {
  if (!status.state.running) return false;
  const result = probes.startup[status.name];
  if (result !== undefined) return result;
  if (status.started === true) return true;
  // A startup probe that has not succeeded yet: not started.
  return !spec?.startupProbe;
}

function isContainerReady(spec: V1Container | undefined, status: ContainerStatus, probes: ProbeResults): boolean {
  if (!status.state.running) return false;
  const result = probes.readiness[status.name];
  if (result === true) return true;
  // No result: ready unless there is a readiness probe to pass.
  return result === undefined && !spec?.readinessProbe;
}

function updateProbeStatus(pod: V1Pod, containerStatuses: ContainerStatus[], initStatuses: ContainerStatus[], probes: ProbeResults): void {
  const containers = pod.spec?.containers ?? [];
  for (const s of containerStatuses) {
    const spec = containers.find((c) => c.name === s.name);
    s.started = isContainerStarted(spec, s, probes);
    if (!s.started) continue;
    s.ready = isContainerReady(spec, s, probes);
  }
  const inits = pod.spec?.initContainers ?? [];
  for (const s of initStatuses) {
    const spec = inits.find((c) => c.name === s.name);
    s.started = isContainerStarted(spec, s, probes);
    if (!spec) continue;
    if (!isSidecar(spec)) {
      if (s.state.terminated?.exitCode === 0) s.ready = true;
      continue;
    }
    if (!s.started) continue;
    s.ready = isContainerReady(spec, s, probes);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Phase (getPhase, ContainerRestartRules off)
// ---------------------------------------------------------------------------------------------------------

export function getPhase(pod: V1Pod, info: readonly ContainerStatus[], podIsTerminal: boolean, podHasInitialized: boolean): PodPhase {
  const spec = pod.spec;
  let pendingRestartableInit = 0;
  let pendingRegularInit = 0;
  let failedInitialization = 0;
  for (const c of spec?.initContainers ?? []) {
    if (isSidecar(c)) continue;
    // Finished: terminated now, or waiting to restart after a termination; anything else is still pending.
    const s = statusByName(info, c.name);
    const exitCode = s?.state.terminated?.exitCode ?? (s?.state.waiting ? s.lastState.terminated?.exitCode : undefined);
    if (exitCode === undefined) pendingRegularInit++;
    else if (exitCode !== 0) failedInitialization++;
  }

  let unknown = 0;
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const c of spec?.initContainers ?? []) {
    if (!isSidecar(c)) continue;
    const s = statusByName(info, c.name);
    if (!s) {
      unknown++;
      continue;
    }
    if (s.state.running) {
      if (s.started !== true) pendingRestartableInit++;
      running++;
    } else if (s.state.terminated) {
      // Terminated sidecars do not count for the phase.
    } else if (s.state.waiting) {
      if (!s.lastState.terminated) {
        pendingRestartableInit++;
        waiting++;
      }
    } else {
      pendingRestartableInit++;
      unknown++;
    }
  }

  for (const c of spec?.containers ?? []) {
    const s = statusByName(info, c.name);
    if (!s) {
      unknown++;
      continue;
    }
    if (s.state.running) running++;
    else if (s.state.terminated) {
      stopped++;
      if (s.state.terminated.exitCode === 0) succeeded++;
    } else if (s.state.waiting) {
      if (s.lastState.terminated) stopped++;
      else waiting++;
    } else unknown++;
  }

  const policy = restartPolicy(pod);
  if (failedInitialization > 0 && policy === "Never") return "Failed";

  if (pendingRegularInit > 0 || (pendingRestartableInit > 0 && !podHasInitialized) || waiting > 0) return "Pending";
  if (running > 0 && unknown === 0) return "Running";
  if (running === 0 && stopped > 0 && unknown === 0) {
    // A terminal pod's containers will not restart whatever the policy (static pods excepted, #116484).
    if (podIsTerminal && !isStaticPod(pod)) return stopped === succeeded ? "Succeeded" : "Failed";
    if (policy === "Always") return "Running";
    if (stopped === succeeded) return "Succeeded";
    if (policy === "Never") return "Failed";
    return "Running";
  }
  return "Pending";
}

// ---------------------------------------------------------------------------------------------------------
// Conditions (status/generate.go)
// ---------------------------------------------------------------------------------------------------------

type GeneratedCondition = Omit<PodCondition, "lastTransitionTime" | "lastProbeTime">;

function condition(type: string, status: "True" | "False", generation: number | undefined, reason?: string, message?: string): GeneratedCondition {
  return compact<GeneratedCondition>({ type, status, observedGeneration: generation, reason: nonEmpty(reason), message: nonEmpty(message) });
}

function containersReadyCondition(pod: V1Pod, statuses: readonly ContainerStatus[], phase: PodPhase, generation: number | undefined): GeneratedCondition {
  const unknown: string[] = [];
  const unready: string[] = [];
  const check = (name: string): void => {
    const s = statusByName(statuses, name);
    if (!s) unknown.push(name);
    else if (!s.ready) unready.push(name);
  };
  for (const c of pod.spec?.initContainers ?? []) if (isSidecar(c)) check(c.name);
  for (const c of pod.spec?.containers ?? []) check(c.name);
  if (phase === "Succeeded" && unknown.length === 0) return condition(CONTAINERS_READY, "False", generation, POD_COMPLETED);
  if (phase === "Failed") return condition(CONTAINERS_READY, "False", generation, POD_FAILED);
  const messages: string[] = [];
  if (unknown.length > 0) messages.push(`containers with unknown status: ${goList(unknown)}`);
  if (unready.length > 0) messages.push(`containers with unready status: ${goList(unready)}`);
  if (messages.length > 0) return condition(CONTAINERS_READY, "False", generation, CONTAINERS_NOT_READY, messages.join(", "));
  return condition(CONTAINERS_READY, "True", generation);
}

function podReadyCondition(pod: V1Pod, conditions: readonly PodCondition[], statuses: readonly ContainerStatus[], phase: PodPhase, generation: number | undefined): GeneratedCondition {
  const containersReady = containersReadyCondition(pod, statuses, phase, generation);
  if (containersReady.status !== "True") return condition(POD_READY, containersReady.status as "False", generation, containersReady.reason, containersReady.message);
  const messages: string[] = [];
  for (const gate of pod.spec?.readinessGates ?? []) {
    const c = findCondition(conditions, gate.conditionType);
    if (!c) messages.push(`corresponding condition of pod readiness gate ${JSON.stringify(gate.conditionType)} does not exist.`);
    else if (c.status !== "True") messages.push(`the status of pod readiness gate ${JSON.stringify(gate.conditionType)} is not "True", but ${c.status}`);
  }
  if (messages.length > 0) return condition(POD_READY, "False", generation, READINESS_GATES_NOT_READY, messages.join(", "));
  return condition(POD_READY, "True", generation);
}

function hasAnyRegularContainerStarted(pod: V1Pod, statuses: readonly ContainerStatus[]): boolean {
  const names = new Set((pod.spec?.containers ?? []).map((c) => c.name));
  return statuses.some((s) => names.has(s.name) && (s.state.running !== undefined || s.state.terminated !== undefined));
}

function initializedCondition(pod: V1Pod, statuses: readonly ContainerStatus[], phase: PodPhase, generation: number | undefined): GeneratedCondition {
  const unknown: string[] = [];
  const incomplete: string[] = [];
  for (const c of pod.spec?.initContainers ?? []) {
    const s = statusByName(statuses, c.name);
    if (!s) {
      unknown.push(c.name);
      continue;
    }
    const done = isSidecar(c) ? s.started === true : s.ready;
    if (!done) incomplete.push(c.name);
  }
  if (phase === "Succeeded" && unknown.length === 0) return condition(POD_INITIALIZED, "True", generation, POD_COMPLETED);
  // Regular containers ran: the pod was initialized, even if a sidecar is restarting now.
  if (hasAnyRegularContainerStarted(pod, statuses)) return condition(POD_INITIALIZED, "True", generation);
  const messages: string[] = [];
  if (unknown.length > 0) messages.push(`containers with unknown status: ${goList(unknown)}`);
  if (incomplete.length > 0) messages.push(`containers with incomplete status: ${goList(incomplete)}`);
  if (messages.length > 0) return condition(POD_INITIALIZED, "False", generation, CONTAINERS_NOT_INITIALIZED, messages.join(", "));
  return condition(POD_INITIALIZED, "True", generation);
}

/** The transition time: kept from the previous condition of that type when its status did not change. */
function withTransitionTime(c: GeneratedCondition | PodCondition, old: readonly PodCondition[] | undefined, now: string): PodCondition {
  const prev = findCondition(old, c.type);
  const lastTransitionTime = prev !== undefined && prev.status === c.status && prev.lastTransitionTime !== undefined ? normalizeTime(prev.lastTransitionTime) : now;
  const out: PodCondition = { ...c, lastTransitionTime };
  delete out.lastProbeTime;
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// computePodStatus
// ---------------------------------------------------------------------------------------------------------

function positiveGeneration(pod: V1Pod): number | undefined {
  const g = pod.metadata?.generation;
  return typeof g === "number" && g > 0 ? g : undefined;
}

/** Byte-truncates a string without splitting a UTF-8 sequence. */
function truncateBytes(s: string, max: number): string {
  const b = Buffer.from(s, "utf8");
  if (b.length <= max) return s;
  let end = max;
  while (end > 0 && ((b[end] ?? 0) & 0xc0) === 0x80) end--;
  return b.subarray(0, end).toString("utf8");
}

/** The pod's API status from the runtime's view and the previous status. See the module comment. */
export function computePodStatus(input: PodStatusInput): PodStatus {
  const { pod } = input;
  const spec = pod.spec;
  const now = normalizeTime(input.now);
  const apiStatus = toPodStatus(pod.status);
  const old = input.previous ? toPodStatus(input.previous) : apiStatus;
  const generation = positiveGeneration(pod);
  const containers = [...(input.runtime?.containers ?? [])].sort((a, b) => b.createdAt - a.createdAt);
  const ctx: ConvertContext = {
    pod,
    containers,
    waiting: input.waiting,
    runtimeName: input.runtimeName ?? "containerd",
    hasInitContainers: (spec?.initContainers?.length ?? 0) > 0,
  };

  // Addresses: the pod's from its sandbox if it is the newest and ready, the node's.
  const latestSandbox = input.runtime?.sandboxes[0];
  const podIPs = latestSandbox?.state === "ready" ? sortPodIPs(latestSandbox.ips, input.hostIPs) : [];

  const containerStatuses = convertToAPIContainerStatuses(ctx, spec?.containers ?? [], old.containerStatuses, false);
  const initContainerStatuses = convertToAPIContainerStatuses(ctx, spec?.initContainers ?? [], old.initContainerStatuses, true);
  const ephemeralSpecs = (spec?.ephemeralContainers ?? []) as V1Container[];
  const ephemeralContainerStatuses = convertToAPIContainerStatuses(ctx, ephemeralSpecs, old.ephemeralContainerStatuses, false);

  // Phase. A regular container in the current sandbox means the pod went through initialization.
  const activeSince = latestSandbox?.state === "ready" ? latestSandbox.createdAt : undefined;
  const regularNames = new Set((spec?.containers ?? []).map((c) => c.name));
  const podHasInitialized = activeSince !== undefined && containers.some((c) => regularNames.has(c.name) && c.createdAt >= activeSince);
  const podIsTerminal = input.terminal !== undefined || isPodDeleting(pod);
  let phase = getPhase(pod, [...containerStatuses, ...initContainerStatuses], podIsTerminal, podHasInitialized);
  if (!isTerminalPhase(phase)) {
    if (isTerminalPhase(old.phase)) phase = old.phase;
    else if (isTerminalPhase(apiStatus.phase)) phase = apiStatus.phase;
  }
  let reason: string | undefined;
  let message: string | undefined;
  if (phase === old.phase) {
    // The reason and message go with the phase.
    reason = nonEmpty(old.reason) ?? nonEmpty(apiStatus.reason);
    message = nonEmpty(old.message) ?? nonEmpty(apiStatus.message);
  }
  if (input.terminal) {
    phase = input.terminal.phase;
    if (input.terminal.reason !== undefined) reason = nonEmpty(input.terminal.reason);
    if (input.terminal.message !== undefined) message = nonEmpty(input.terminal.message);
  }
  // No way out of a terminal phase the API already shows.
  if (isTerminalPhase(apiStatus.phase) && phase !== apiStatus.phase) phase = apiStatus.phase;

  updateProbeStatus(pod, containerStatuses, initContainerStatuses, { readiness: input.readiness ?? {}, startup: input.startup ?? {} });

  // Conditions: others' from the API as they are, then the kubelet's.
  const conditions: PodCondition[] = [];
  for (const c of apiStatus.conditions ?? []) if (!KUBELET_CONDITIONS.has(c.type)) conditions.push(clone(c));
  const disruption = findCondition(old.conditions, DISRUPTION_TARGET);
  if (disruption) {
    const i = conditions.findIndex((c) => c.type === DISRUPTION_TARGET);
    if (i >= 0) conditions[i] = clone(disruption);
    else conditions.push(clone(disruption));
  }
  // The ending's own conditions (an eviction's DisruptionTarget), kept once set: the old status carries them after.
  for (const c of input.terminal?.conditions ?? []) {
    if (findCondition(conditions, c.type)) continue;
    conditions.push({ ...c, lastTransitionTime: now });
  }
  const all = [...initContainerStatuses, ...containerStatuses];
  const generated: GeneratedCondition[] = [
    condition(POD_READY_TO_START_CONTAINERS, podSandboxChanged(pod, input.runtime).changed ? "False" : "True", generation),
    initializedCondition(pod, all, phase, generation),
    podReadyCondition(pod, conditions, all, phase, generation),
    containersReadyCondition(pod, all, phase, generation),
    condition(POD_SCHEDULED, "True", generation),
  ];
  const ownConditions = generated.map((c) => withTransitionTime(c, old.conditions, now));
  const disruptionIndex = conditions.findIndex((c) => c.type === DISRUPTION_TARGET);
  if (disruptionIndex >= 0) conditions[disruptionIndex] = withTransitionTime(conditions[disruptionIndex]!, old.conditions, now);
  conditions.push(...ownConditions);

  // mergePodStatus: no terminal phase while a container could still run; then never Ready.
  if (!isTerminalPhase(apiStatus.phase) && isTerminalPhase(phase) && containers.some((c) => c.state !== "exited")) {
    phase = apiStatus.phase;
    reason = nonEmpty(apiStatus.reason);
    message = nonEmpty(apiStatus.message);
  }
  if (isTerminalPhase(phase)) {
    const terminalReason = phase === "Failed" ? POD_FAILED : POD_COMPLETED;
    for (const type of [CONTAINERS_READY, POD_READY]) {
      const i = conditions.findIndex((c) => c.type === type);
      const c = conditions[i];
      if (c && c.status === "True") conditions[i] = compact<PodCondition>({ type, status: "False", observedGeneration: c.observedGeneration, reason: terminalReason, lastTransitionTime: now });
    }
  }

  const status: PodStatus = { phase, conditions };
  if (generation !== undefined) status.observedGeneration = generation;
  if (reason !== undefined) status.reason = reason;
  if (message !== undefined) status.message = message;

  // Host and pod addresses; host-network pods have the node's.
  const hostIPs: string[] = [];
  if (input.hostIPs[0] !== undefined) {
    hostIPs.push(input.hostIPs[0]);
    const other = input.hostIPs.slice(1).find((ip) => ipFamily(ip) !== ipFamily(input.hostIPs[0]!));
    if (other !== undefined) hostIPs.push(other);
  }
  let ips = podIPs;
  if (spec?.hostNetwork && hostIPs.length > 0) {
    if (ips.length === 0) ips = [hostIPs[0]!];
    if (hostIPs.length === 2 && ips.length === 1 && ipFamily(ips[0]!) !== ipFamily(hostIPs[1]!)) ips = [...ips, hostIPs[1]!];
  }
  if (hostIPs.length > 0) {
    status.hostIP = hostIPs[0]!;
    status.hostIPs = hostIPs.map((ip) => ({ ip }));
  }
  if (ips.length > 0) {
    status.podIP = ips[0]!;
    status.podIPs = ips.map((ip) => ({ ip }));
  }

  // The start time never changes once reported.
  status.startTime = normalizeTime(old.startTime ?? apiStatus.startTime ?? input.startTime);

  // normalizeStatus: termination messages share 12 KiB across the pod's containers.
  const count = (spec?.containers?.length ?? 0) + (spec?.initContainers?.length ?? 0);
  const bytesPerStatus = count > 0 ? Math.floor(MAX_POD_TERMINATION_MESSAGE_LENGTH / count) : MAX_POD_TERMINATION_MESSAGE_LENGTH;
  for (const s of [...initContainerStatuses, ...containerStatuses]) {
    for (const st of [s.state, s.lastState]) if (st.terminated?.message !== undefined) st.terminated.message = truncateBytes(st.terminated.message, bytesPerStatus);
  }

  if (initContainerStatuses.length > 0) status.initContainerStatuses = initContainerStatuses;
  if (containerStatuses.length > 0) status.containerStatuses = containerStatuses;
  status.qosClass = qosClass(pod);
  if (ephemeralContainerStatuses.length > 0) status.ephemeralContainerStatuses = ephemeralContainerStatuses;
  return status;
}

// ---------------------------------------------------------------------------------------------------------
// Equality and patches
// ---------------------------------------------------------------------------------------------------------

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object" && !Array.isArray(b)) {
    const ak = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
    const bk = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
    return ak.length === bk.length && ak.every((k) => jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return false;
}

/**
 * Whether two statuses are the same for the API, as upstream's isPodStatusByKubeletEqual: the kubelet's
 * conditions (and DisruptionTarget) compare by type, status, reason and message only — transition and
 * probe times and observedGeneration are ignored, and so are other components' conditions; everything else
 * must be equal. A status recomputed from a stale API view (a fresh transition time) is thus not a change.
 */
export function podStatusEqual(a: PodStatus, b: PodStatus): boolean {
  const x = toPodStatus(a);
  const y = toPodStatus(b);
  const owned = (s: PodStatus): Map<string, PodCondition> => {
    const m = new Map<string, PodCondition>();
    for (const c of s.conditions ?? []) if (KUBELET_CONDITIONS.has(c.type) || SHARED_CONDITIONS.has(c.type)) m.set(c.type, c);
    return m;
  };
  const ox = owned(x);
  const oy = owned(y);
  if (ox.size !== oy.size) return false;
  for (const [type, c] of oy) {
    const o = ox.get(type);
    if (!o || o.status !== c.status || (o.message ?? "") !== (c.message ?? "") || (o.reason ?? "") !== (c.reason ?? "")) return false;
  }
  const { conditions: _x, ...restX } = x;
  const { conditions: _y, ...restY } = y;
  return jsonEqual(restX, restY);
}

/** Merge keys of core/v1 PodStatus's lists (the others are atomic: containerStatuses are replaced whole). */
const MERGE_KEYS: Readonly<Record<string, string>> = { conditions: "type", podIPs: "ip", hostIPs: "ip", resourceClaimStatuses: "name" };

/** PodStatus fields the kubelet writes: a patch against an unknown status clears those it does not set. */
const KUBELET_FIELDS = [
  "observedGeneration",
  "phase",
  "conditions",
  "message",
  "reason",
  "hostIP",
  "hostIPs",
  "podIP",
  "podIPs",
  "startTime",
  "initContainerStatuses",
  "containerStatuses",
  "qosClass",
  "ephemeralContainerStatuses",
] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * CreateTwoWayMergePatch for maps: nested maps diffed, lists replaced, except those named in `mergeKeys`
 * (list → merge key), which are diffed item by item (the top level of a pod status).
 */
function diffMap(a: Record<string, unknown>, b: Record<string, unknown>, mergeKeys: Readonly<Record<string, string>> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(a)) if (a[k] !== undefined && b[k] === undefined) out[k] = null;
  for (const [k, bv] of Object.entries(b)) {
    if (bv === undefined) continue;
    const av = a[k];
    if (jsonEqual(av, bv)) continue;
    const key = mergeKeys[k];
    if (key !== undefined && Array.isArray(bv) && Array.isArray(av)) {
      const { items, order } = diffMergeList(key, av, bv);
      if (items.length > 0) out[k] = items;
      if (order) out[`$setElementOrder/${k}`] = order;
    } else out[k] = isObject(av) && isObject(bv) ? diffMap(av, bv) : bv;
  }
  return out;
}

/** diffLists for a list of maps with a merge key: changed items as diffs, new ones whole, deletions last. */
function diffMergeList(key: string, a: readonly unknown[], b: readonly unknown[]): { items: unknown[]; order: unknown[] | undefined } {
  const keyOf = (v: unknown): unknown => (isObject(v) ? v[key] : undefined);
  const items: unknown[] = [];
  for (const y of b) {
    const x = a.find((e) => jsonEqual(keyOf(e), keyOf(y)));
    if (x === undefined) items.push(y);
    else if (!jsonEqual(x, y) && isObject(x) && isObject(y)) items.push({ [key]: keyOf(y), ...diffMap(x, y) });
  }
  for (const x of a) if (!b.some((y) => jsonEqual(keyOf(x), keyOf(y)))) items.push({ [key]: keyOf(x), $patch: "delete" });
  const orderSame = a.length === b.length && a.every((x, i) => jsonEqual(keyOf(x), keyOf(b[i])));
  return { items, order: items.length > 0 || !orderSame ? b.map((y) => ({ [key]: keyOf(y) })) : undefined };
}

/**
 * The strategic merge patch body for pods/status, as upstream's PatchPodStatus builds it: a two-way diff of
 * the status the API holds (`previous`: what it last accepted from us) and the new one, with
 * `metadata.uid` as precondition (a pod re-created under the same name rejects it with 409). Conditions,
 * podIPs and hostIPs merge by their keys (changed items only, `$patch: delete` for removed ones,
 * `$setElementOrder/<list>` whenever a list changes); container status lists are atomic and sent whole.
 *
 * Without `previous` (nothing sent yet, e.g. after a restart) the API's content is unknown: the patch then
 * carries the whole status, `null` for every kubelet-written field it lacks, and replaces the IP lists
 * (`$patch: replace`) so no stale address survives; conditions still merge by type, keeping others'.
 */
export function statusPatch(uid: string, previous: PodStatus | undefined, next: PodStatus): Record<string, unknown> {
  const b = toWire(next) as Record<string, unknown>;
  let status: Record<string, unknown>;
  if (previous !== undefined) status = diffMap(toWire(previous) as Record<string, unknown>, b, MERGE_KEYS);
  else {
    status = diffMap({}, b, MERGE_KEYS);
    for (const k of KUBELET_FIELDS) if (b[k] === undefined) status[k] = null;
    for (const k of ["podIPs", "hostIPs"] as const) {
      const list = b[k];
      if (Array.isArray(list)) {
        status[k] = [...(list as unknown[]), { $patch: "replace" }];
        delete status[`$setElementOrder/${k}`];
      }
    }
  }
  return Object.keys(status).length > 0 ? { metadata: { uid }, status } : { metadata: { uid } };
}
