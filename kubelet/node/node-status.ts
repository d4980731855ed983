/**
 * The Node the kubelet registers and the status it reports, as pure functions of what the kubelet knows
 * (machine facts, configuration, runtime and PLEG health, images, the clock). They follow upstream's
 * pkg/kubelet/kubelet_node_status.go (initialNode, nodeStatusHasChanged), pkg/kubelet/nodestatus/setters.go
 * (NodeAddress, MachineInfo, VersionInfo, DaemonEndpoints, Images, GoRuntime, the pressure and Ready
 * conditions), pkg/kubelet/runtime.go + kubelet.go updateRuntimeUp (the Ready errors),
 * pkg/kubelet/cm/node_container_manager_linux.go (allocatable) and pkg/util/node PatchNodeStatus (the patch).
 *
 * We claim Kubernetes v1.33 (KUBELET_VERSION): with its defaults kubeProxyVersion is left empty
 * (DisableNodeKubeProxyVersion is on from 1.33), nodeInfo.swap is reported (NodeSwap on from 1.30), and the
 * Ready message carries no ". AppArmor enabled" suffix (dropped in 1.30).
 *
 * Wire types are local JSON shapes (RFC 3339 strings for times, quantity strings for resources), not
 * client-node's Date-typed models.
 */
import type { RuntimeCondition } from "../cri/types.ts";
import type { MachineInfo } from "../../cadvisor/machine.ts";
import { DeckhandError } from "../../src-shared/errors.ts";
import { parseQuantity, quantitiesEqual, Quantity } from "../../src-shared/quantity.ts";

// ---------------------------------------------------------------------------------------------
// Constants

/**
 * The Kubernetes version we claim. Build metadata ("+deckhand") rather than a pre-release suffix, so that
 * semver comparisons made against nodeInfo.kubeletVersion (version-skew checks, feature gating in
 * controllers) see exactly v1.33.0, as distributions such as k3s do ("v1.33.1+k3s1").
 */
export const KUBELET_VERSION = "v1.33.0+deckhand";
export const DEFAULT_KUBELET_PORT = 10250;
export const DEFAULT_MAX_PODS = 110;
export const DEFAULT_NODE_STATUS_MAX_IMAGES = 50;
/** setters.go MaxNamesPerImageInNodeStatus. */
export const MAX_NAMES_PER_IMAGE = 5;
/** kubelet.go genericPlegRelistThreshold. */
export const PLEG_RELIST_THRESHOLD_MS = 3 * 60_000;
/** kubelet.go maxWaitForContainerRuntime: the runtimeState's baseRuntimeSyncThreshold. */
export const RUNTIME_SYNC_THRESHOLD_MS = 30_000;
/** Linux DefaultEvictionHard, used when evictionHard is not configured at all (defined with the configuration). */
import { DEFAULT_EVICTION_HARD } from "../config/types.ts";
import { rfc3339 } from "../../src-shared/time.ts";
export { DEFAULT_EVICTION_HARD };
/** The annotation initialNode sets when controller attach/detach is on (volume/util ControllerManagedAttachAnnotation). */
export const CONTROLLER_MANAGED_ATTACH_ANNOTATION = "volumes.kubernetes.io/controller-managed-attach-detach";

// ---------------------------------------------------------------------------------------------
// Wire types (JSON as the API server sends and takes it)

export type ConditionStatus = "True" | "False" | "Unknown";

export type NodeCondition = {
  type: string;
  status: ConditionStatus;
  lastHeartbeatTime: string;
  lastTransitionTime: string;
  reason: string;
  message: string;
};

export type NodeAddress = { type: "Hostname" | "InternalIP" | "ExternalIP" | "InternalDNS" | "ExternalDNS"; address: string };

export type NodeSystemInfo = {
  machineID: string;
  systemUUID: string;
  bootID: string;
  kernelVersion: string;
  osImage: string;
  containerRuntimeVersion: string;
  kubeletVersion: string;
  /** Deprecated; empty from v1.33 (DisableNodeKubeProxyVersion). */
  kubeProxyVersion: string;
  operatingSystem: string;
  architecture: string;
  swap?: { capacity?: number };
};

export type ContainerImage = { names: string[]; sizeBytes: number };

export type NodeStatus = {
  capacity: Record<string, string>;
  allocatable: Record<string, string>;
  conditions: NodeCondition[];
  addresses: NodeAddress[];
  daemonEndpoints: { kubeletEndpoint: { Port: number } };
  nodeInfo: NodeSystemInfo;
  /** Absent when the node has no images (Go's omitempty). */
  images?: ContainerImage[];
};

export type Taint = { key: string; value?: string; effect: "NoSchedule" | "PreferNoSchedule" | "NoExecute"; timeAdded?: string };

export type NodeSpec = { podCIDR?: string; podCIDRs?: string[]; providerID?: string; unschedulable?: boolean; taints?: Taint[] };

export type Node = {
  apiVersion: "v1";
  kind: "Node";
  metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> };
  spec: NodeSpec;
  status: NodeStatus;
};

/** A strategic merge patch body for nodes/status. */
export type NodeStatusPatch = { status: Record<string, unknown> };

// ---------------------------------------------------------------------------------------------
// Inputs

export interface NodeStatusConfig {
  /** kubernetes.io/hostname and the Hostname address (lower-cased hostnameOverride or the OS hostname). */
  hostname: string;
  /** InternalIP addresses, primary first (at most one per family, as --node-ip allows). */
  nodeIPs: readonly string[];
  /** maxPods, default 110. */
  maxPods?: number;
  /** podsPerCore, default 0 (off): pods = min(cores × podsPerCore, maxPods). */
  podsPerCore?: number;
  /** systemReserved / kubeReserved: resource name → quantity ("cpu": "100m", "memory": "256Mi"…). */
  systemReserved?: Readonly<Record<string, string>>;
  kubeReserved?: Readonly<Record<string, string>>;
  /** evictionHard signal → "<quantity>" or "<n>%"; DEFAULT_EVICTION_HARD when absent, none when {}. */
  evictionHard?: Readonly<Record<string, string>>;
  /** The kubelet's port, default 10250. */
  kubeletPort?: number;
  /** nodeStatusMaxImages, default 50; -1 for no cap. */
  nodeStatusMaxImages?: number;
  /** localStorageCapacityIsolation, default true: report ephemeral-storage and require it for Ready. */
  localStorageCapacityIsolation?: boolean;
}

/** What the kubelet has seen of the container runtime (the inputs of upstream's runtimeState). */
export interface RuntimeFacts {
  /** Conditions of the last CRI Status call that answered; undefined while none has (network state unknown). */
  conditions?: readonly RuntimeCondition[] | undefined;
  /** When a Status call last found RuntimeReady=true (ms since the epoch): lastBaseRuntimeSync. */
  lastReadyAt?: number | undefined;
  /** VersionResponse.runtime_name, e.g. "containerd". */
  name: string;
  /** VersionResponse.runtime_version, e.g. "v1.6.20"; undefined when Version failed (reported "Unknown"). */
  version?: string | undefined;
}

export interface PlegHealth {
  /** When the PLEG last completed a relist (ms since the epoch); undefined before the first. */
  lastRelistAt: number | undefined;
  /** Default 3 minutes. */
  thresholdMs?: number;
}

/** An image as the runtime lists it (kubecontainer.Image). */
export interface ImageFacts {
  id: string;
  repoTags: readonly string[];
  repoDigests: readonly string[];
  sizeBytes: number;
}

export interface PressureFlags {
  memory?: boolean;
  disk?: boolean;
  pid?: boolean;
}

export interface NodeStatusInput {
  config: NodeStatusConfig;
  machine: MachineInfo;
  runtime: RuntimeFacts;
  pleg: PlegHealth;
  images: readonly ImageFacts[];
  /** The clock, ms since the epoch. */
  now: number;
  /** From the eviction manager; all false when absent. */
  pressure?: PressureFlags;
  /** Default KUBELET_VERSION. */
  kubeletVersion?: string;
  /** Further Ready errors in upstream's order: storage errors, then the shutdown manager's ("node is shutting down"). */
  otherErrors?: readonly string[];
  /** Unmet container-manager soft requirements, appended to the Ready message as ". WARNING: …". */
  containerManagerWarning?: string;
}

export interface NodeRegistration {
  nodeName: string;
  /** nodeLabels: added to, and overriding, the default labels. */
  nodeLabels?: Readonly<Record<string, string>>;
  registerWithTaints?: readonly Taint[];
  /** registerSchedulable, default true; false registers unschedulable with the node.kubernetes.io/unschedulable taint. */
  registerSchedulable?: boolean;
  providerID?: string;
  /** spec.podCIDR(s) when this node's range is configured locally (upstream leaves them to the node IPAM controller). */
  podCIDRs?: readonly string[];
  /** enableControllerAttachDetach, default true. */
  enableControllerAttachDetach?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Small helpers


/** Go's time.Duration.String() for a duration in milliseconds ("3m5s", "3m0s", "1h0m0s", "250ms"). */
export function goDuration(ms: number): string {
  let v = Math.round(Math.abs(ms));
  const sign = ms < 0 && v > 0 ? "-" : "";
  if (v === 0) return "0s";
  if (v < 1000) return `${sign}${v}ms`;
  const h = Math.floor(v / 3_600_000);
  v -= h * 3_600_000;
  const m = Math.floor(v / 60_000);
  v -= m * 60_000;
  const s = Math.floor(v / 1000);
  const frac = v % 1000;
  let out = `${s}${frac ? `.${String(frac).padStart(3, "0").replace(/0+$/, "")}` : ""}s`;
  if (h > 0 || m > 0) out = `${m}m${out}`;
  if (h > 0) out = `${h}h${out}`;
  return `${sign}${out}`;
}

const VERSION = /^\s*v?(\d+(?:\.\d+)*)(.*)$/;
const EXTRA = /^(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?\s*$/;

/**
 * A runtime version as the kubelet prints it (k8s.io/apimachinery util/version: semantic, else generic, without
 * the "v"): "v1.6.20" → "1.6.20", "1.7.0-rc.1" → "1.7.0-rc.1", "1.6.20~ds1" → "1.6.20"; undefined when neither parses.
 */
export function normalizeRuntimeVersion(raw: string): string | undefined {
  const m = VERSION.exec(raw);
  if (!m?.[1]) return undefined;
  const comps = m[1].split(".");
  const extra = m[2] ?? "";
  const zeroPrefixed = (c: string): boolean => c.length > 1 && c.startsWith("0");
  const numbers = comps.map((c) => String(Number(c)));
  if (comps.length === 3 && !comps.some(zeroPrefixed)) {
    const x = EXTRA.exec(extra);
    const pre = x?.[1];
    if (x && !(pre?.split(".").some((c) => /^\d+$/.test(c) && zeroPrefixed(c)) ?? false)) {
      return `${numbers.join(".")}${pre ? `-${pre}` : ""}${x[2] ? `+${x[2]}` : ""}`;
    }
  }
  if (comps.length >= 2 && !zeroPrefixed(comps[0] ?? "")) return numbers.join(".");
  return undefined;
}

/** nodeInfo.containerRuntimeVersion: "<type>://<version>", "Unknown" when the version is. */
export function containerRuntimeVersion(name: string, version: string | undefined): string {
  return `${name}://${(version === undefined ? undefined : normalizeRuntimeVersion(version)) ?? "Unknown"}`;
}

/** CRI images as the Images setter takes them (sizes come as decimal strings). */
export function imagesFromCri(images: readonly { id: string; repo_tags: readonly string[]; repo_digests: readonly string[]; size: string }[]): ImageFacts[] {
  return images.map((i) => ({ id: i.id, repoTags: i.repo_tags, repoDigests: i.repo_digests, sizeBytes: Number(i.size) }));
}

// ---------------------------------------------------------------------------------------------
// Capacity and allocatable

type Resources = Map<string, Quantity>;

function sortedRecord(resources: Resources): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [...resources.keys()].sort()) {
    const r = resources.get(name);
    if (r) out[name] = r.toString();
  }
  return out;
}

/** The hugepages-<size> resource name for a page size in KiB ("hugepages-2Mi", "hugepages-1Gi"). */
export function hugePageResourceName(pageSizeKiB: number): string {
  return `hugepages-${Quantity.of(pageSizeKiB * 1024, "BinarySI").toString()}`;
}

function capacityOf(machine: MachineInfo, config: NodeStatusConfig): Resources {
  const c: Resources = new Map();
  // cadvisor.CapacityFromMachineInfo: cpu in millicores (DecimalSI), memory in bytes (BinarySI), hugepages.
  c.set("cpu", Quantity.ofMilli(machine.numCores * 1000, "DecimalSI"));
  c.set("memory", Quantity.of(machine.memoryCapacity, "BinarySI"));
  for (const hp of machine.hugePages) {
    c.set(hugePageResourceName(hp.pageSizeKiB), Quantity.of(BigInt(hp.pageSizeKiB) * 1024n * BigInt(hp.numPages), "BinarySI"));
  }
  const maxPods = config.maxPods ?? DEFAULT_MAX_PODS;
  const podsPerCore = config.podsPerCore ?? 0;
  c.set("pods", Quantity.of(podsPerCore > 0 ? Math.min(machine.numCores * podsPerCore, maxPods) : maxPods, "DecimalSI"));
  // ContainerManager.GetCapacity: the kubelet root dir's filesystem size.
  if ((config.localStorageCapacityIsolation ?? true) && machine.rootFs) {
    c.set("ephemeral-storage", Quantity.of(machine.rootFs.capacityBytes, "BinarySI"));
  }
  return c;
}

/** An eviction threshold value: an absolute quantity or a fraction of capacity (float32, as upstream). */
export type EvictionThresholdValue = { quantity: Quantity } | { percentage: number };

/**
 * One evictionHard value as eviction/helpers.go parseThresholdStatement reads it: "0%" and "100%" mean no
 * threshold (undefined); other percentages must lie in [0, 100]; quantities must be positive.
 */
export function parseEvictionThreshold(signal: string, value: string): EvictionThresholdValue | undefined {
  if (value.endsWith("%")) {
    if (value === "0%" || value === "100%") return undefined;
    const n = Number(value.slice(0, -1));
    if (value.length < 2 || !Number.isFinite(n)) throw new DeckhandError("InvalidConfig", `evictionHard ${signal}: invalid percentage ${JSON.stringify(value)}`);
    // ParseFloat(…, 32) then float32 division by 100.
    const percentage = Math.fround(Math.fround(n) / 100);
    if (percentage < 0) throw new DeckhandError("InvalidConfig", `eviction percentage threshold ${signal} must be >= 0%: ${value}`);
    if (percentage > 1) throw new DeckhandError("InvalidConfig", `eviction percentage threshold ${signal} must be <= 100%: ${value}`);
    return { percentage };
  }
  let quantity: Quantity;
  try {
    quantity = parseQuantity(value);
  } catch (err) {
    throw new DeckhandError("InvalidConfig", `evictionHard ${signal}: ${(err as Error).message}`, { cause: err });
  }
  if (quantity.sign() <= 0) throw new DeckhandError("InvalidConfig", `eviction threshold ${signal} must be positive: ${value}`);
  return { quantity };
}

/** evictionapi.GetThresholdQuantity: the quantity, or int64(float64(capacity) × float64(float32 percentage)). */
function thresholdQuantity(value: EvictionThresholdValue, capacity: Quantity): Quantity {
  if ("quantity" in value) return value.quantity;
  return Quantity.of(Math.trunc(capacity.value() * value.percentage), "BinarySI");
}

const ZERO = Quantity.of(0, "DecimalSI");

function reservedOf(map: Readonly<Record<string, string>> | undefined, name: string, what: string): Quantity {
  const v = map?.[name];
  if (v === undefined) return ZERO;
  try {
    return parseQuantity(v);
  } catch (err) {
    throw new DeckhandError("InvalidConfig", `${what}[${name}]: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * ContainerManager.GetNodeAllocatableReservation: per capacity resource, systemReserved + kubeReserved + the
 * hard eviction threshold (memory.available → memory, nodefs.available → ephemeral-storage).
 */
function reservationOf(capacity: Resources, config: NodeStatusConfig): Resources {
  const eviction: Resources = new Map();
  for (const [signal, raw] of Object.entries(config.evictionHard ?? DEFAULT_EVICTION_HARD)) {
    const resource = signal === "memory.available" ? "memory" : signal === "nodefs.available" ? "ephemeral-storage" : undefined;
    const value = parseEvictionThreshold(signal, raw);
    if (resource === undefined || value === undefined) continue;
    eviction.set(resource, thresholdQuantity(value, capacity.get(resource) ?? ZERO));
  }
  const out: Resources = new Map();
  for (const name of capacity.keys()) {
    const r = reservedOf(config.systemReserved, name, "systemReserved")
      .add(reservedOf(config.kubeReserved, name, "kubeReserved"))
      .add(eviction.get(name) ?? ZERO);
    if (!r.isZero()) out.set(name, r);
  }
  return out;
}

/** A remainder clamped at zero, printed in the capacity's format. */
function nonNegative(capacity: Quantity, v: Quantity): Quantity {
  return Quantity.ofNanos(v.sign() < 0 ? 0n : v.nanos, capacity.format);
}

function allocatableOf(capacity: Resources, config: NodeStatusConfig): Resources {
  const reservation = reservationOf(capacity, config);
  const a: Resources = new Map();
  for (const [name, cap] of capacity) a.set(name, nonNegative(cap, cap.sub(reservation.get(name) ?? ZERO)));
  // Pre-allocated huge pages are not available as ordinary memory.
  for (const [name, cap] of capacity) {
    const memory = a.get("memory");
    if (!name.startsWith("hugepages-") || !memory) continue;
    a.set("memory", nonNegative(memory, memory.sub(cap)));
  }
  return a;
}

/** Capacity and allocatable as the MachineInfo setter reports them. */
export function nodeResources(machine: MachineInfo, config: NodeStatusConfig): { capacity: Record<string, string>; allocatable: Record<string, string> } {
  const capacity = capacityOf(machine, config);
  return { capacity: sortedRecord(capacity), allocatable: sortedRecord(allocatableOf(capacity, config)) };
}

/**
 * What the node allocatable cgroup (`kubepods`) carries, upstream's getNodeAllocatableInternalAbsolute: the
 * internal capacity (the Node's, plus `pid` when `maxPID` is known) − systemReserved − kubeReserved, without the
 * eviction thresholds (those are for the eviction manager to act on before the kernel's limit). With `enforce`
 * false (enforceNodeAllocatable without "pods") the capacity itself, as upstream.
 */
export function nodeAllocatableAbsolute(machine: MachineInfo, config: NodeStatusConfig, internal: { maxPID?: number; enforce?: boolean } = {}): Record<string, string> {
  const capacity = capacityOf(machine, config);
  if (internal.maxPID !== undefined) capacity.set("pid", Quantity.of(internal.maxPID, "DecimalSI"));
  const out: Resources = new Map();
  for (const [name, cap] of capacity) {
    if (internal.enforce === false) {
      out.set(name, cap);
      continue;
    }
    const v = cap.sub(reservedOf(config.systemReserved, name, "systemReserved")).sub(reservedOf(config.kubeReserved, name, "kubeReserved"));
    out.set(name, nonNegative(cap, v));
  }
  return sortedRecord(out);
}

// ---------------------------------------------------------------------------------------------
// Conditions

function conditionString(c: RuntimeCondition | undefined): string {
  return c === undefined ? "<nil>" : `${c.type}=${String(c.status)} reason:${c.reason} message:${c.message}`;
}

/**
 * The errors that make the node NotReady, grouped as upstream aggregates them: runtimeErrors() (runtime sync,
 * PLEG health, RuntimeReady), networkErrors() (NetworkReady), the other errors, the missing capacities.
 */
function readyErrorGroups(input: NodeStatusInput, capacity: Record<string, string>): string[][] {
  const { runtime, pleg, now } = input;
  const runtimeErrors: string[] = [];
  if (runtime.lastReadyAt === undefined) runtimeErrors.push("container runtime status check may not have completed yet");
  else if (runtime.lastReadyAt + RUNTIME_SYNC_THRESHOLD_MS <= now) runtimeErrors.push("container runtime is down");
  const threshold = pleg.thresholdMs ?? PLEG_RELIST_THRESHOLD_MS;
  if (pleg.lastRelistAt === undefined) runtimeErrors.push("PLEG is not healthy: pleg has yet to be successful");
  else if (now - pleg.lastRelistAt > threshold) {
    runtimeErrors.push(`PLEG is not healthy: pleg was last seen active ${goDuration(now - pleg.lastRelistAt)} ago; threshold is ${goDuration(threshold)}`);
  }
  const networkErrors: string[] = [];
  if (runtime.conditions === undefined) {
    networkErrors.push("network state unknown");
  } else {
    const runtimeReady = runtime.conditions.find((c) => c.type === "RuntimeReady");
    if (!runtimeReady?.status) runtimeErrors.push(`container runtime not ready: ${conditionString(runtimeReady)}`);
    const networkReady = runtime.conditions.find((c) => c.type === "NetworkReady");
    if (!networkReady?.status) networkErrors.push(`container runtime network not ready: ${conditionString(networkReady)}`);
  }
  const required = ["cpu", "memory", "pods", ...((input.config.localStorageCapacityIsolation ?? true) ? ["ephemeral-storage"] : [])];
  const missing = required.filter((r) => capacity[r] === undefined);
  return [runtimeErrors, networkErrors, ...(input.otherErrors ?? []).map((e) => [e]), missing.length > 0 ? [`missing node capacity for resources: ${missing.join(", ")}`] : []];
}

/** utilerrors.NewAggregate(...).Error(): one message alone, else "[a, b]" flattened and de-duplicated. */
function aggregateMessage(groups: string[][]): string | undefined {
  const present = groups.filter((g) => g.length > 0);
  if (present.length === 0) return undefined;
  const unique = [...new Set(present.flat())];
  return unique.length === 1 ? unique[0] : `[${unique.join(", ")}]`;
}

function findCondition(previous: NodeStatus | undefined, type: string): NodeCondition | undefined {
  return previous?.conditions.find((c) => c.type === type);
}

/** setters.go ReadyCondition: the transition time moves only when the status does; reason and message are always fresh. */
function readyCondition(input: NodeStatusInput, capacity: Record<string, string>, previous: NodeStatus | undefined): NodeCondition {
  const now = rfc3339(input.now);
  const error = aggregateMessage(readyErrorGroups(input, capacity));
  const status: ConditionStatus = error === undefined ? "True" : "False";
  let message = error ?? "kubelet is posting ready status";
  if (input.containerManagerWarning) message = `${message}. WARNING: ${input.containerManagerWarning}`;
  const prev = findCondition(previous, "Ready");
  return {
    type: "Ready",
    status,
    lastHeartbeatTime: now,
    lastTransitionTime: prev && prev.status === status ? prev.lastTransitionTime : now,
    reason: status === "True" ? "KubeletReady" : "KubeletNotReady",
    message,
  };
}

const PRESSURE = {
  MemoryPressure: { true: ["KubeletHasInsufficientMemory", "kubelet has insufficient memory available"], false: ["KubeletHasSufficientMemory", "kubelet has sufficient memory available"] },
  DiskPressure: { true: ["KubeletHasDiskPressure", "kubelet has disk pressure"], false: ["KubeletHasNoDiskPressure", "kubelet has no disk pressure"] },
  PIDPressure: { true: ["KubeletHasInsufficientPID", "kubelet has insufficient PID available"], false: ["KubeletHasSufficientPID", "kubelet has sufficient PID available"] },
} as const;

/** setters.go Memory/Disk/PIDPressureCondition: only the heartbeat moves unless the status flips. */
function pressureCondition(type: keyof typeof PRESSURE, underPressure: boolean, nowMs: number, previous: NodeStatus | undefined): NodeCondition {
  const now = rfc3339(nowMs);
  const status: ConditionStatus = underPressure ? "True" : "False";
  const prev = findCondition(previous, type);
  if (prev && prev.status === status) return { ...prev, lastHeartbeatTime: now };
  const [reason, message] = PRESSURE[type][underPressure ? "true" : "false"];
  return { type, status, lastHeartbeatTime: now, lastTransitionTime: now, reason, message };
}

// ---------------------------------------------------------------------------------------------
// The status and the Node

/** setters.go NodeAddress without a cloud provider: an InternalIP per node IP (primary first), then the Hostname. */
export function nodeAddresses(config: NodeStatusConfig): NodeAddress[] {
  const ips = config.nodeIPs.filter((ip) => ip !== "" && ip !== "0.0.0.0" && ip !== "::");
  return [...ips.map((address): NodeAddress => ({ type: "InternalIP", address })), { type: "Hostname", address: config.hostname }];
}

/** setters.go Images: largest first (ties by ID, descending), at most nodeStatusMaxImages, ≤ 5 names each (digests first). */
export function nodeImages(images: readonly ImageFacts[], maxImages = DEFAULT_NODE_STATUS_MAX_IMAGES): ContainerImage[] {
  const sorted = [...images].sort((a, b) => (a.sizeBytes === b.sizeBytes ? (a.id < b.id ? 1 : a.id > b.id ? -1 : 0) : b.sizeBytes - a.sizeBytes));
  const kept = maxImages > -1 && maxImages < sorted.length ? sorted.slice(0, maxImages) : sorted;
  return kept.map((i) => ({ names: [...i.repoDigests, ...i.repoTags].slice(0, MAX_NAMES_PER_IMAGE), sizeBytes: i.sizeBytes }));
}

/**
 * The node's status now. `previous` is the status last reported: its conditions' transition times (and the
 * pressure conditions' reasons) are kept while their status holds. Throws InvalidConfig on unparsable
 * reservations or eviction thresholds.
 */
export function nodeStatus(input: NodeStatusInput, previous?: NodeStatus): NodeStatus {
  const { machine, config } = input;
  const { capacity, allocatable } = nodeResources(machine, config);
  const pressure = input.pressure ?? {};
  const images = nodeImages(input.images, config.nodeStatusMaxImages ?? DEFAULT_NODE_STATUS_MAX_IMAGES);
  return {
    capacity,
    allocatable,
    // Upstream's setter order on a fresh Node: the pressure conditions, then Ready last.
    conditions: [
      pressureCondition("MemoryPressure", pressure.memory ?? false, input.now, previous),
      pressureCondition("DiskPressure", pressure.disk ?? false, input.now, previous),
      pressureCondition("PIDPressure", pressure.pid ?? false, input.now, previous),
      readyCondition(input, capacity, previous),
    ],
    addresses: nodeAddresses(config),
    daemonEndpoints: { kubeletEndpoint: { Port: config.kubeletPort ?? DEFAULT_KUBELET_PORT } },
    nodeInfo: {
      machineID: machine.machineID,
      systemUUID: machine.systemUUID,
      bootID: machine.bootID,
      kernelVersion: machine.kernelVersion,
      osImage: machine.osImage,
      containerRuntimeVersion: containerRuntimeVersion(input.runtime.name, input.runtime.version),
      kubeletVersion: input.kubeletVersion ?? KUBELET_VERSION,
      kubeProxyVersion: "",
      operatingSystem: machine.operatingSystem,
      architecture: machine.architecture,
      swap: { capacity: machine.swapCapacity },
    },
    ...(images.length > 0 ? { images } : {}),
  };
}

/** kubelet_node_status.go initialNode: the Node to create, with its default labels, taints, annotation and a first status. */
export function initialNode(input: NodeStatusInput & { registration: NodeRegistration }): Node {
  const reg = input.registration;
  const { operatingSystem: os, architecture: arch } = input.machine;
  const labels: Record<string, string> = {
    "kubernetes.io/hostname": input.config.hostname,
    "kubernetes.io/os": os,
    "kubernetes.io/arch": arch,
    "beta.kubernetes.io/os": os,
    "beta.kubernetes.io/arch": arch,
    ...reg.nodeLabels,
  };
  const annotations: Record<string, string> = (reg.enableControllerAttachDetach ?? true) ? { [CONTROLLER_MANAGED_ATTACH_ANNOTATION]: "true" } : {};
  const taints = [...(reg.registerWithTaints ?? [])];
  const unschedulable = !(reg.registerSchedulable ?? true);
  // Taint an unschedulable node from the start, so nothing lands on it before the controller would (#63897).
  if (unschedulable && !taints.some((t) => t.key === "node.kubernetes.io/unschedulable" && t.effect === "NoSchedule")) {
    taints.push({ key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" });
  }
  const cidrs = reg.podCIDRs ?? [];
  const spec: NodeSpec = {
    ...(cidrs[0] !== undefined ? { podCIDR: cidrs[0], podCIDRs: [...cidrs] } : {}),
    ...(reg.providerID ? { providerID: reg.providerID } : {}),
    ...(unschedulable ? { unschedulable: true } : {}),
    ...(taints.length > 0 ? { taints } : {}),
  };
  return { apiVersion: "v1", kind: "Node", metadata: { name: reg.nodeName, labels, annotations }, spec, status: nodeStatus(input) };
}

// ---------------------------------------------------------------------------------------------
// Change detection and the patch

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  if (!isObject(a) || !isObject(b)) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (!deepEqual(a[k], b[k])) return false;
  return true;
}

function resourcesEqual(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const x = a[k];
    const y = b[k];
    if (x === undefined || y === undefined ? x !== y : !quantitiesEqual(x, y)) return false;
  }
  return true;
}

/**
 * kubelet_node_status.go nodeStatusHasChanged: anything but the conditions' heartbeat times (conditions
 * compared by type regardless of order, quantities by value).
 */
export function nodeStatusChanged(previous: NodeStatus | undefined, next: NodeStatus): boolean {
  if (previous === undefined) return true;
  if (previous.conditions.length !== next.conditions.length) return true;
  const byType = (cs: NodeCondition[]): NodeCondition[] => [...cs].sort((x, y) => (x.type < y.type ? -1 : x.type > y.type ? 1 : 0));
  const [pc, nc] = [byType(previous.conditions), byType(next.conditions)];
  for (let i = 0; i < nc.length; i++) {
    if (!deepEqual({ ...pc[i], lastHeartbeatTime: "" }, { ...nc[i], lastHeartbeatTime: "" })) return true;
  }
  if (!resourcesEqual(previous.capacity, next.capacity) || !resourcesEqual(previous.allocatable, next.allocatable)) return true;
  const rest = (s: NodeStatus): Record<string, unknown> => ({ ...s, conditions: undefined, capacity: undefined, allocatable: undefined });
  return !deepEqual(rest(previous), rest(next));
}

/**
 * The status the API holds when the node lifecycle controller overwrote ours (a condition Unknown that we report
 * otherwise; `node` is the Node as read), else `sent`: what the next patch must be made against. Only Unknown
 * counts, since a Node read from a watch may lag our own last patch.
 */
export function heldNodeStatus(sent: NodeStatus, node: unknown): NodeStatus {
  const held = (node as { status?: { conditions?: NodeCondition[] } } | undefined)?.status?.conditions;
  if (held === undefined) return sent;
  const overwritten = sent.conditions.some((c) => c.status !== "Unknown" && held.find((h) => h.type === c.type)?.status === "Unknown");
  return overwritten ? { ...sent, conditions: held } : sent;
}

/** Two-way strategic-merge diff of plain objects: changed and added keys, null for removed ones; lists replace. */
function diffObjects(prev: Record<string, unknown>, next: Record<string, unknown>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(prev), ...Object.keys(next)])) {
    const p = prev[key];
    const n = next[key];
    if (n === undefined) {
      if (p !== undefined) patch[key] = null;
    } else if (isObject(p) && isObject(n)) {
      const sub = diffObjects(p, n);
      if (Object.keys(sub).length > 0) patch[key] = sub;
    } else if (!deepEqual(p, n)) {
      patch[key] = n;
    }
  }
  return patch;
}

/** The diff of a list merged by `key` (patchStrategy=merge): changed elements, new ones, deletions, the order. */
function diffMergeList(prev: readonly Record<string, unknown>[], next: readonly Record<string, unknown>[], key: string): { list: unknown[]; order: unknown[] } {
  const list: unknown[] = [];
  for (const n of next) {
    const p = prev.find((x) => x[key] === n[key]);
    if (p === undefined) {
      list.push(n);
      continue;
    }
    const d = diffObjects(p, n);
    if (Object.keys(d).length > 0) list.push({ ...d, [key]: n[key] });
  }
  for (const p of prev) if (!next.some((n) => n[key] === p[key])) list.push({ $patch: "delete", [key]: p[key] });
  const sameOrder = prev.length === next.length && prev.every((p, i) => p[key] === next[i]?.[key]);
  return { list, order: list.length > 0 || !sameOrder ? next.map((n) => ({ [key]: n[key] })) : [] };
}

/** Every object's keys in sorted order, as Go's encoding/json writes the maps of a patch. */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (!isObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) out[k] = sortKeys(v[k]);
  return out;
}

/**
 * The strategic merge patch for nodes/status from `previous` (what we last reported; undefined when unknown,
 * e.g. right after registering or adopting an existing Node) to `next`, as upstream's PatchNodeStatus builds
 * it with CreateTwoWayMergePatch:
 *   - conditions merge by type: only the fields that changed (usually just lastHeartbeatTime) plus `type`,
 *     new conditions whole, removed ones as {"$patch":"delete"}, and `$setElementOrder/conditions`;
 *   - addresses, wrongly declared patchStrategy=merge by type upstream (two InternalIPs on a dual-stack node
 *     would collapse), are sent whole and closed with {"$patch":"replace"} whenever they changed;
 *   - images (atomic) whole when they changed; capacity, allocatable, nodeInfo, daemonEndpoints by key.
 * With `previous` undefined everything is sent, addresses with the replace directive and images: null when
 * there are none.
 */
export function nodeStatusPatch(previous: NodeStatus | undefined, next: NodeStatus): NodeStatusPatch {
  const strip = (s: NodeStatus | undefined): Record<string, unknown> => (s === undefined ? {} : { ...s, conditions: undefined, addresses: undefined });
  const patch = diffObjects(strip(previous), strip(next));
  const { list, order } = diffMergeList(previous?.conditions ?? [], next.conditions, "type");
  if (list.length > 0) patch["conditions"] = list;
  if (order.length > 0) patch["$setElementOrder/conditions"] = order;
  if (previous === undefined || !deepEqual(previous.addresses, next.addresses)) patch["addresses"] = [...next.addresses, { $patch: "replace" }];
  // Unknown previous: clear images a former run may have left, as a diff against the API object would.
  if (previous === undefined && next.images === undefined) patch["images"] = null;
  return { status: sortKeys(patch) as Record<string, unknown> };
}
