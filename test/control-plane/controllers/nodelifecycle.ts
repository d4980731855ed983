/**
 * The node lifecycle controller of kube-controller-manager (pkg/controller/nodelifecycle), its parts a test
 * cluster needs to behave as a real one:
 *
 * - monitorNodeHealth: a node whose kubelet stopped posting (neither the Ready condition's heartbeat nor its
 *   Lease in kube-node-lease renewed) for nodeMonitorGracePeriod (50 s; nodeStartupGracePeriod, 60 s, for a node
 *   that never posted Ready) gets Ready, MemoryPressure, DiskPressure and PIDPressure set to Unknown, with
 *   upstream's reasons (NodeStatusUnknown, "Kubelet stopped posting node status."; NodeStatusNeverUpdated).
 *   Checked every nodeMonitorPeriod (5 s). Times are the controller's own observations, as upstream's
 *   probeTimestamp: clocks of the nodes do not matter.
 * - doNoScheduleTaintingPass (TaintNodesByCondition): NoSchedule taints from the conditions — Ready False
 *   `node.kubernetes.io/not-ready`, Ready Unknown `unreachable`, MemoryPressure/DiskPressure/PIDPressure/
 *   NetworkUnavailable True `memory-pressure`/`disk-pressure`/`pid-pressure`/`network-unavailable` — and
 *   `unschedulable` from spec.unschedulable; added and removed as the conditions change.
 * - doNoExecuteTaintingPass: Ready False `not-ready:NoExecute`, Ready Unknown `unreachable:NoExecute` (with
 *   timeAdded), removed once Ready is True.
 *
 * Pods under a NoExecute taint are the taint eviction controller's (taint-eviction.ts). Not done: zone
 * disruption rate limiting.
 */
import type { Logger } from "pino";
import { ADMIN, resource, type Api } from "../api.ts";
import type { StoreEvent } from "../store.ts";
import { arr, dig, isObject, rfc3339, str, type KubeObject } from "../types.ts";
import { Controller } from "./base.ts";

const nodes = resource("", "nodes");
const leases = resource("coordination.k8s.io", "leases");
const NODE_LEASE_NAMESPACE = "kube-node-lease";

export const TAINT_NOT_READY = "node.kubernetes.io/not-ready";
export const TAINT_UNREACHABLE = "node.kubernetes.io/unreachable";
export const TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable";
export const TAINT_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure";
export const TAINT_DISK_PRESSURE = "node.kubernetes.io/disk-pressure";
export const TAINT_PID_PRESSURE = "node.kubernetes.io/pid-pressure";
export const TAINT_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable";

/** nodeConditionToTaintKeyStatusMap: condition type → status → taint key (NoSchedule). */
const CONDITION_TAINTS: Record<string, Record<string, string>> = {
  Ready: { False: TAINT_NOT_READY, Unknown: TAINT_UNREACHABLE },
  MemoryPressure: { True: TAINT_MEMORY_PRESSURE },
  OutOfDisk: {},
  DiskPressure: { True: TAINT_DISK_PRESSURE },
  NetworkUnavailable: { True: TAINT_NETWORK_UNAVAILABLE },
  PIDPressure: { True: TAINT_PID_PRESSURE },
};
/** The NoSchedule taint keys this controller owns (the others on a node are left alone). */
const NO_SCHEDULE_KEYS = new Set([...Object.values(CONDITION_TAINTS).flatMap((m) => Object.values(m)), TAINT_UNSCHEDULABLE]);
const NO_EXECUTE_KEYS = new Set([TAINT_NOT_READY, TAINT_UNREACHABLE]);
/** The conditions set to Unknown when the kubelet stops posting (nodeConditionTypes + Ready). */
const MONITORED_CONDITIONS = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

export interface Taint {
  key: string;
  value?: string;
  effect: string;
  timeAdded?: string;
}

function conditionStatus(node: KubeObject, type: string): string | undefined {
  return str(dig(arr(dig(node, "status", "conditions")).find((c) => dig(c, "type") === type), "status"));
}

/** The taints the node's conditions and spec call for, by effect. Pure. */
export function desiredTaints(node: KubeObject): { noSchedule: string[]; noExecute: string[] } {
  const noSchedule: string[] = [];
  for (const c of arr(dig(node, "status", "conditions"))) {
    const key = CONDITION_TAINTS[str(dig(c, "type")) ?? ""]?.[str(dig(c, "status")) ?? ""];
    if (key !== undefined) noSchedule.push(key);
  }
  if (dig(node, "spec", "unschedulable") === true) noSchedule.push(TAINT_UNSCHEDULABLE);
  const ready = conditionStatus(node, "Ready");
  const noExecute = ready === "False" ? [TAINT_NOT_READY] : ready === "Unknown" ? [TAINT_UNREACHABLE] : [];
  return { noSchedule: [...new Set(noSchedule)].sort(), noExecute };
}

/**
 * The node's taints with the owned ones brought in line with `desiredTaints` (others kept, in order); undefined
 * when nothing changes. New NoExecute taints get timeAdded = `now`. Pure.
 */
export function reconcileTaints(current: readonly Taint[], node: KubeObject, now: Date): Taint[] | undefined {
  const want = desiredTaints(node);
  const owned = (t: Taint): boolean => (t.effect === "NoSchedule" && NO_SCHEDULE_KEYS.has(t.key)) || (t.effect === "NoExecute" && NO_EXECUTE_KEYS.has(t.key));
  const wanted = (t: Taint): boolean => (t.effect === "NoSchedule" ? want.noSchedule.includes(t.key) : want.noExecute.includes(t.key));
  const kept = current.filter((t) => !owned(t) || wanted(t));
  const has = (key: string, effect: string): boolean => kept.some((t) => t.key === key && t.effect === effect);
  const added: Taint[] = [
    ...want.noSchedule.filter((k) => !has(k, "NoSchedule")).map((key) => ({ key, effect: "NoSchedule" })),
    ...want.noExecute.filter((k) => !has(k, "NoExecute")).map((key) => ({ key, effect: "NoExecute", timeAdded: rfc3339(now) })),
  ];
  if (added.length === 0 && kept.length === current.length) return undefined;
  return [...kept, ...added];
}

/**
 * tryUpdateNodeHealth's status change for a node that stopped posting: every monitored condition Unknown (those
 * already Unknown untouched, those never posted added), or undefined when all already are. Pure.
 */
export function unknownConditions(node: KubeObject, now: Date): unknown[] | undefined {
  const conditions = arr(dig(node, "status", "conditions"));
  let changed = false;
  const out: unknown[] = conditions.map((c) => {
    const type = str(dig(c, "type")) ?? "";
    if (!MONITORED_CONDITIONS.includes(type) || dig(c, "status") === "Unknown" || !isObject(c)) return c;
    changed = true;
    return { ...c, status: "Unknown", reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status.", lastTransitionTime: rfc3339(now) };
  });
  for (const type of MONITORED_CONDITIONS) {
    if (conditions.some((c) => dig(c, "type") === type)) continue;
    changed = true;
    const created = node.metadata.creationTimestamp ?? rfc3339(now);
    out.push({ type, status: "Unknown", reason: "NodeStatusNeverUpdated", message: "Kubelet never posted node status.", lastHeartbeatTime: created, lastTransitionTime: rfc3339(now) });
  }
  return changed ? out : undefined;
}

export interface NodeLifecycleOptions {
  /** nodeMonitorPeriod (5 s). */
  monitorPeriodMs?: number;
  /** nodeMonitorGracePeriod (50 s since v1.32). */
  gracePeriodMs?: number;
  /** nodeStartupGracePeriod (60 s): the grace of a node that never posted Ready. */
  startupGracePeriodMs?: number;
  /** The clock (ms since the epoch). */
  now?: () => number;
}

export class NodeLifecycleController extends Controller {
  protected readonly watches = ["core/nodes", leases.storage];
  private readonly monitorPeriodMs: number;
  private readonly gracePeriodMs: number;
  private readonly startupGracePeriodMs: number;
  private readonly now: () => number;
  /** Per node: the last heartbeat seen (Ready's lastHeartbeatTime + Lease renewTime) and when it was seen. */
  private readonly probes = new Map<string, { heartbeat: string; seenAt: number }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(api: Api, log: Logger, options: NodeLifecycleOptions = {}) {
    super(api, log);
    this.monitorPeriodMs = options.monitorPeriodMs ?? 5000;
    this.gracePeriodMs = options.gracePeriodMs ?? 50_000;
    this.startupGracePeriodMs = options.startupGracePeriodMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  override start(signal?: AbortSignal): void {
    super.start(signal);
    this.timer ??= setInterval(() => this.monitor(), this.monitorPeriodMs);
    this.timer.unref();
  }

  override close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    super.close();
  }

  /** monitorNodeHealth: every node looked at again now (the passage of time is a change). */
  monitor(): void {
    for (const n of this.api.store.list(nodes.storage)) {
      try {
        this.reconcile(n.metadata.name ?? "");
      } catch (err) {
        this.log.warn({ err, node: n.metadata.name }, "node health check failed; retrying at the next period");
      }
    }
  }

  protected keysFor(ev: StoreEvent): string[] {
    if (ev.storage === leases.storage) return ev.object.metadata.namespace === NODE_LEASE_NAMESPACE ? [ev.object.metadata.name ?? ""] : [];
    if (ev.type === "DELETED") {
      this.probes.delete(ev.object.metadata.name ?? "");
      return [];
    }
    return [ev.object.metadata.name ?? ""];
  }

  protected initialKeys(): string[] {
    return this.api.store.list(nodes.storage).map((n) => n.metadata.name ?? "");
  }

  protected reconcile(name: string): void {
    let node = this.api.store.get(nodes.storage, undefined, name);
    if (node === undefined) return;
    const now = this.now();
    const ready = arr(dig(node, "status", "conditions")).find((c) => dig(c, "type") === "Ready");
    const lease = this.api.store.get(leases.storage, NODE_LEASE_NAMESPACE, name);
    const heartbeat = `${str(dig(ready, "lastHeartbeatTime")) ?? ""}|${str(dig(lease, "spec", "renewTime")) ?? ""}`;
    const probe = this.probes.get(name);
    if (probe === undefined || probe.heartbeat !== heartbeat) this.probes.set(name, { heartbeat, seenAt: now });
    const seenAt = this.probes.get(name)?.seenAt ?? now;
    const grace = ready === undefined ? this.startupGracePeriodMs : this.gracePeriodMs;
    if (now - seenAt > grace) {
      const conditions = unknownConditions(node, new Date(now));
      if (conditions !== undefined) {
        this.log.info({ node: name, silentForMs: now - seenAt }, "node stopped posting status: conditions Unknown");
        node = this.api.patch(ADMIN, nodes, "", name, "merge", { status: { conditions } }, "status");
      }
    }
    const taints = reconcileTaints(arr(dig(node, "spec", "taints")) as Taint[], node, new Date(now));
    if (taints !== undefined) {
      this.log.info({ node: name, taints: taints.map((t) => `${t.key}:${t.effect}`) }, "node taints updated");
      this.api.patch(ADMIN, nodes, "", name, "merge", { spec: { taints } });
    }
  }
}
