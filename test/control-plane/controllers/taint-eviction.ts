/**
 * The taint eviction controller of kube-controller-manager (pkg/controller/tainteviction): a pod bound to a node
 * with a NoExecute taint it does not tolerate is deleted at once; one that tolerates every such taint, some for a
 * bounded `tolerationSeconds`, is deleted when the shortest of those runs out (counted from when this controller
 * saw the pod under the taints), unless the taints go first. Before the deletion the pod gets the
 * DisruptionTarget condition (reason DeletionByTaintManager) and an event TaintManagerEviction. With the API
 * server's DefaultTolerationSeconds (300 s for not-ready and unreachable), a pod on an unreachable node goes
 * 5 minutes after the node lifecycle controller tainted it, as in a real cluster.
 */
import type { Logger } from "pino";
import { ADMIN, resource, type Api } from "../api.ts";
import type { StoreEvent } from "../store.ts";
import { arr, dig, rfc3339, str, type KubeObject } from "../types.ts";
import { Controller, nsName, splitKey } from "./base.ts";
import { matchingTolerations } from "./tolerations.ts";

const pods = resource("", "pods");
const nodes = resource("", "nodes");
const events = resource("", "events");

/**
 * When a pod must go, given its node's taints (upstream's GetMatchingTolerations + getMinTolerationTime): "now"
 * when a NoExecute taint is not tolerated; else the smallest tolerationSeconds among the tolerations used (0 or
 * less: now); undefined when there is no NoExecute taint or none of the used tolerations is bounded. Pure.
 */
export function evictionDelay(pod: KubeObject, taints: readonly unknown[]): "now" | number | undefined {
  const used = new Set<unknown>();
  for (const taint of taints) {
    if (str(dig(taint, "effect")) !== "NoExecute") continue;
    const matching = matchingTolerations(pod, taint);
    if (matching.length === 0) return "now";
    for (const t of matching) used.add(t);
  }
  let min: number | undefined;
  for (const t of used) {
    const s = dig(t, "tolerationSeconds");
    if (typeof s !== "number") continue;
    if (s <= 0) return "now";
    min = min === undefined ? s : Math.min(min, s);
  }
  return min;
}

export class TaintEvictionController extends Controller {
  protected readonly watches = ["core/nodes", "core/pods"];
  /** Pods waiting out a bounded toleration: when they were first seen under the taints, and their timer. */
  private readonly waiting = new Map<string, { since: number; timer: NodeJS.Timeout }>();
  private readonly now: () => number;

  constructor(api: Api, log: Logger, options: { now?: () => number } = {}) {
    super(api, log);
    this.now = options.now ?? Date.now;
  }

  /** The pods waiting out a bounded toleration (keys `namespace/name`). */
  waitingPods(): string[] {
    return [...this.waiting.keys()].sort();
  }

  override close(): void {
    for (const s of this.waiting.values()) clearTimeout(s.timer);
    this.waiting.clear();
    super.close();
  }

  protected keysFor(ev: StoreEvent): string[] {
    if (ev.storage === "core/nodes") return ev.type === "DELETED" ? [] : [`node:${ev.object.metadata.name ?? ""}`];
    const key = nsName(ev.object.metadata.namespace, ev.object.metadata.name);
    if (ev.type === "DELETED") {
      this.cancel(key);
      return [];
    }
    return (str(dig(ev.object, "spec", "nodeName")) ?? "") === "" ? [] : [key];
  }

  protected initialKeys(): string[] {
    return this.api.store.list(nodes.storage).map((n) => `node:${n.metadata.name ?? ""}`);
  }

  private cancel(key: string): void {
    const s = this.waiting.get(key);
    if (s === undefined) return;
    clearTimeout(s.timer);
    this.waiting.delete(key);
  }

  protected reconcile(key: string): void {
    if (key.startsWith("node:")) {
      const node = key.slice("node:".length);
      for (const p of this.api.store.list(pods.storage)) if (str(dig(p, "spec", "nodeName")) === node) this.enqueue(nsName(p.metadata.namespace, p.metadata.name));
      return;
    }
    const [ns, name] = splitKey(key);
    const pod = this.api.store.get(pods.storage, ns, name);
    if (pod === undefined || pod.metadata.deletionTimestamp !== undefined) return this.cancel(key);
    const node = this.api.store.get(nodes.storage, undefined, str(dig(pod, "spec", "nodeName")) ?? "");
    const delay = evictionDelay(pod, arr(dig(node, "spec", "taints")));
    if (delay === undefined) {
      if (this.waiting.has(key)) this.event(pod, "Cancelling deletion of Pod");
      return this.cancel(key);
    }
    if (delay === "now") return this.evict(key, pod);
    const since = this.waiting.get(key)?.since ?? this.now();
    this.cancel(key);
    const wait = Math.max(0, since + delay * 1000 - this.now());
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      const current = this.api.store.get(pods.storage, ns, name);
      if (current !== undefined && evictionDelay(current, arr(dig(this.api.store.get(nodes.storage, undefined, str(dig(current, "spec", "nodeName")) ?? ""), "spec", "taints"))) !== undefined) this.evict(key, current);
    }, wait);
    timer.unref();
    this.waiting.set(key, { since, timer });
  }

  private evict(key: string, pod: KubeObject): void {
    this.cancel(key);
    const ns = pod.metadata.namespace ?? "";
    const name = pod.metadata.name ?? "";
    this.log.info({ pod: key }, "deleting a pod for a NoExecute taint it does not tolerate");
    this.event(pod, "Marking for deletion Pod");
    const condition = { type: "DisruptionTarget", status: "True", reason: "DeletionByTaintManager", message: "Taint manager: deleting due to NoExecute taint", lastTransitionTime: rfc3339() };
    this.api.patch(ADMIN, pods, ns, name, "strategic", { status: { conditions: [condition] } }, "status");
    this.api.delete(ADMIN, pods, ns, name);
  }

  private event(pod: KubeObject, what: string): void {
    const ns = pod.metadata.namespace ?? "";
    const name = pod.metadata.name ?? "";
    const now = rfc3339();
    this.api.create(ADMIN, events, ns, {
      metadata: { name: `${name}.${Date.now().toString(16)}`, namespace: ns },
      involvedObject: { kind: "Pod", apiVersion: "v1", namespace: ns, name, uid: pod.metadata.uid },
      reason: "TaintManagerEviction",
      message: `${what} ${ns}/${name}`,
      type: "Normal",
      source: { component: "taint-eviction-controller" },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
  }
}
