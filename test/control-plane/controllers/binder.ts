/**
 * A simple scheduler: pods without nodeName (schedulerName default-scheduler) are bound to a schedulable node
 * whose NoSchedule and NoExecute taints they tolerate (the node lifecycle controller's not-ready, unreachable and
 * pressure taints among them; a node not Ready counts as tainted not-ready even before the controller has acted)
 * and whose labels match their nodeSelector, preferring the node with the fewest pods. Unschedulable pods get the PodScheduled=False condition the scheduler writes.
 */
import { ADMIN, resource } from "../api.ts";
import type { StoreEvent } from "../store.ts";
import { arr, dig, isObject, rfc3339, str, type KubeObject } from "../types.ts";
import { Controller, nsName, splitKey } from "./base.ts";
import { TAINT_NOT_READY, TAINT_UNREACHABLE } from "./nodelifecycle.ts";
import { matchingTolerations } from "./tolerations.ts";

const pods = resource("", "pods");
const ALL_PENDING = "*";

function tolerates(pod: KubeObject, taint: unknown): boolean {
  // The scheduler's TaintToleration filter looks at NoSchedule and NoExecute taints only.
  return str(dig(taint, "effect")) === "PreferNoSchedule" || matchingTolerations(pod, taint).length > 0;
}

export function nodeFits(pod: KubeObject, node: KubeObject): string | undefined {
  if (node.metadata.deletionTimestamp !== undefined) return "node(s) were being deleted";
  const ready = str(dig(arr(dig(node, "status", "conditions")).find((c) => dig(c, "type") === "Ready"), "status"));
  const taints = arr(dig(node, "spec", "taints"));
  // The node lifecycle controller taints a node that is not Ready (not-ready, or unreachable when its status is
  // Unknown); until it has, the condition stands for its taint.
  if (ready !== "True" && !taints.some((t) => [TAINT_NOT_READY, TAINT_UNREACHABLE].includes(str(dig(t, "key")) ?? ""))) {
    taints.push({ key: ready === "Unknown" ? TAINT_UNREACHABLE : TAINT_NOT_READY, effect: "NoSchedule" });
  }
  if (dig(node, "spec", "unschedulable") === true) return "node(s) were unschedulable";
  for (const t of taints) {
    if (!tolerates(pod, t)) return `node(s) had untolerated taint {${str(dig(t, "key")) ?? ""}: ${str(dig(t, "value")) ?? ""}}`;
  }
  const sel = dig(pod, "spec", "nodeSelector");
  if (isObject(sel)) for (const [k, v] of Object.entries(sel)) if (node.metadata.labels?.[k] !== v) return "node(s) didn't match Pod's node affinity/selector";
  return undefined;
}

export class BinderController extends Controller {
  protected readonly watches = ["core/pods", "core/nodes"];

  protected keysFor(ev: StoreEvent): string[] {
    // Node changes and pod deletions may make room: retry every pending pod, once per batch.
    if (ev.storage === "core/nodes" || ev.type === "DELETED") return [ALL_PENDING];
    const o = ev.object;
    return (str(dig(o, "spec", "nodeName")) ?? "") === "" ? [nsName(o.metadata.namespace, o.metadata.name)] : [];
  }

  private pendingKeys(): string[] {
    return this.api.store
      .list(pods.storage)
      .filter((p) => (str(dig(p, "spec", "nodeName")) ?? "") === "")
      .map((p) => nsName(p.metadata.namespace, p.metadata.name));
  }

  protected initialKeys(): string[] {
    return this.pendingKeys();
  }

  protected reconcile(key: string): void {
    if (key === ALL_PENDING) {
      for (const k of this.pendingKeys()) this.enqueue(k);
      return;
    }
    const [ns, name] = splitKey(key);
    const pod = this.api.store.get(pods.storage, ns, name);
    if (pod === undefined || (str(dig(pod, "spec", "nodeName")) ?? "") !== "" || pod.metadata.deletionTimestamp !== undefined) return;
    if ((str(dig(pod, "spec", "schedulerName")) ?? "default-scheduler") !== "default-scheduler") return;
    if (arr(dig(pod, "spec", "schedulingGates")).length > 0) return;
    const allNodes = this.api.store.list("core/nodes");
    const reasons = new Map<string, number>();
    const fits: KubeObject[] = [];
    for (const n of allNodes) {
      const why = nodeFits(pod, n);
      if (why === undefined) fits.push(n);
      else reasons.set(why, (reasons.get(why) ?? 0) + 1);
    }
    if (fits.length === 0) {
      const detail = [...reasons.entries()].map(([r, n]) => `${n} ${r}`).sort().join(", ");
      const message = `0/${allNodes.length} nodes are available${detail === "" ? "" : `: ${detail}`}. preemption: 0/${allNodes.length} nodes are available: ${allNodes.length} Preemption is not helpful for scheduling.`;
      const cur = arr(dig(pod, "status", "conditions")).find((c) => dig(c, "type") === "PodScheduled");
      if (dig(cur, "status") === "False" && dig(cur, "message") === message) return;
      const cond = { type: "PodScheduled", status: "False", reason: "Unschedulable", message, lastProbeTime: null, lastTransitionTime: rfc3339() };
      this.api.patch(ADMIN, pods, ns, name, "strategic", { status: { conditions: [cond] } }, "status");
      return;
    }
    const counts = new Map<string, number>();
    for (const p of this.api.store.list(pods.storage)) {
      const n = str(dig(p, "spec", "nodeName")) ?? "";
      if (n !== "") counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    fits.sort((a, b) => (counts.get(a.metadata.name ?? "") ?? 0) - (counts.get(b.metadata.name ?? "") ?? 0) || (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""));
    const target = fits[0]?.metadata.name ?? "";
    this.api.bind(ADMIN, ns, name, { target: { kind: "Node", name: target } });
    this.log.info({ pod: key, node: target }, "bound pod");
  }
}
