/**
 * What metrics-server does for `kubectl top` (sigs.k8s.io/metrics-server, served as the aggregated API
 * `metrics.k8s.io/v1beta1`): every `--metric-resolution` (15 s there) each Node's kubelet `/metrics/resource` is
 * scraped through the kubelet proxy; the last two points of each series are kept, and the usage served is the
 * CPU rate between them (nanocores, over `window`) and the latest working set. A pod is listed only once every
 * container of it has a rate; a counter that went back (a restarted container, a new start time) starts over.
 *
 * Pure parts (`parseResourceMetrics`, `MetricsStore`) are unit tested; `MetricsScraper` is the loop.
 */
import type { Logger } from "pino";
import { Quantity } from "../../src-shared/quantity.ts";
import type { Api, RequestContext } from "./api.ts";
import { matchesLabels, parseLabelSelector } from "./selectors.ts";
import { methodNotAllowed, notFound, pathNotFound } from "./status.ts";
import type { Store } from "./store.ts";
import type { KubeObject } from "./types.ts";

/** A point of a cumulative CPU counter (core-seconds) with the working set, at the kubelet's sample time. */
interface Point {
  cpuSeconds: number;
  /** The CPU sample's time, ms. */
  timeMs: number;
  memoryBytes: number;
  /** A container's start time (s since the epoch), to tell a restart from a counter. */
  startTime?: number;
}

export interface ScrapedNode {
  node?: Point;
  /** By `namespace/pod`, then container name. */
  containers: Map<string, Map<string, Point>>;
}

/**
 * The figures metrics-server reads from a kubelet's /metrics/resource text (exposition format with sample
 * timestamps): node_cpu_usage_seconds_total, node_memory_working_set_bytes, container_cpu_usage_seconds_total,
 * container_memory_working_set_bytes, container_start_time_seconds. A series without both CPU and memory is
 * dropped, as metrics-server's decoder does. Pure.
 */
export function parseResourceMetrics(text: string): ScrapedNode {
  const cpu = new Map<string, { v: number; t: number }>();
  const mem = new Map<string, number>();
  const start = new Map<string, number>();
  let nodeCpu: { v: number; t: number } | undefined;
  let nodeMem: number | undefined;
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?$/.exec(line);
    if (m === null) continue;
    const [, name, labelText, valueText, tsText] = m;
    const value = Number(valueText);
    if (!Number.isFinite(value)) continue;
    const t = tsText === undefined ? Date.now() : Number(tsText);
    if (name === "node_cpu_usage_seconds_total") nodeCpu = { v: value, t };
    else if (name === "node_memory_working_set_bytes") nodeMem = value;
    else if (name === "container_cpu_usage_seconds_total" || name === "container_memory_working_set_bytes" || name === "container_start_time_seconds") {
      const labels = parseLabels(labelText ?? "");
      const key = `${labels.get("namespace") ?? ""}/${labels.get("pod") ?? ""}/${labels.get("container") ?? ""}`;
      if (name === "container_cpu_usage_seconds_total") cpu.set(key, { v: value, t });
      else if (name === "container_memory_working_set_bytes") mem.set(key, value);
      else start.set(key, value);
    }
  }
  const out: ScrapedNode = { containers: new Map() };
  if (nodeCpu !== undefined && nodeMem !== undefined) out.node = { cpuSeconds: nodeCpu.v, timeMs: nodeCpu.t, memoryBytes: nodeMem };
  for (const [key, c] of cpu) {
    const memory = mem.get(key);
    if (memory === undefined) continue;
    const [ns, pod, container] = key.split("/") as [string, string, string];
    const podKey = `${ns}/${pod}`;
    const containers = out.containers.get(podKey) ?? new Map<string, Point>();
    const s = start.get(key);
    containers.set(container, { cpuSeconds: c.v, timeMs: c.t, memoryBytes: memory, ...(s === undefined ? {} : { startTime: s }) });
    out.containers.set(podKey, containers);
  }
  return out;
}

function parseLabels(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) out.set(m[1] ?? "", (m[2] ?? "").replace(/\\(.)/g, (_x, c: string) => (c === "n" ? "\n" : c)));
  return out;
}

export interface Usage {
  cpu: string;
  memory: string;
}

/** A rate between two points, or undefined when there is none (one point, a reset, no time between them). */
function usageOf(prev: Point | undefined, last: Point): { usage: Usage; windowMs: number } | undefined {
  if (prev === undefined || last.timeMs <= prev.timeMs || last.cpuSeconds < prev.cpuSeconds) return undefined;
  if (prev.startTime !== undefined && last.startTime !== undefined && prev.startTime !== last.startTime) return undefined;
  const windowMs = last.timeMs - prev.timeMs;
  const nanocores = Math.round(((last.cpuSeconds - prev.cpuSeconds) * 1e9) / (windowMs / 1000));
  return { usage: { cpu: Quantity.ofNanos(BigInt(nanocores), "DecimalSI").toString(), memory: Quantity.of(last.memoryBytes, "BinarySI").toString() }, windowMs };
}

/** A series' last two distinct samples after `point`: the same kubelet sample scraped again adds none. */
function advance(before: { prev?: Point; last: Point } | undefined, point: Point): { prev?: Point; last: Point } {
  if (before === undefined) return { last: point };
  if (before.last.timeMs !== point.timeMs) return { prev: before.last, last: point };
  return { ...(before.prev ? { prev: before.prev } : {}), last: point };
}

const windowText = (ms: number): string => `${Number((ms / 1000).toFixed(3))}s`;

/** The last two points per node and container, as metrics-server's storage keeps them. Pure. */
export class MetricsStore {
  private readonly nodes = new Map<string, { prev?: Point; last: Point }>();
  private readonly pods = new Map<string, Map<string, { prev?: Point; last: Point }>>();
  /** Which node each pod was last seen on (a scrape replaces that node's pods). */
  private readonly podNode = new Map<string, string>();

  /** Stores a node's scrape; its pods not in it are gone. */
  add(nodeName: string, scraped: ScrapedNode): void {
    if (scraped.node !== undefined) {
      this.nodes.set(nodeName, advance(this.nodes.get(nodeName), scraped.node));
    }
    for (const [podKey, node] of this.podNode) if (node === nodeName && !scraped.containers.has(podKey)) {
      this.podNode.delete(podKey);
      this.pods.delete(podKey);
    }
    for (const [podKey, containers] of scraped.containers) {
      this.podNode.set(podKey, nodeName);
      const before = this.pods.get(podKey) ?? new Map<string, { prev?: Point; last: Point }>();
      const next = new Map<string, { prev?: Point; last: Point }>();
      for (const [name, point] of containers) {
        next.set(name, advance(before.get(name), point));
      }
      this.pods.set(podKey, next);
    }
  }

  nodeNames(): string[] {
    return [...new Set([...this.nodes.keys(), ...this.podNode.values()])];
  }

  removeNode(nodeName: string): void {
    this.nodes.delete(nodeName);
    for (const [podKey, node] of this.podNode) if (node === nodeName) {
      this.podNode.delete(podKey);
      this.pods.delete(podKey);
    }
  }

  node(nodeName: string): { usage: Usage; timestamp: string; window: string } | undefined {
    const n = this.nodes.get(nodeName);
    const u = n && usageOf(n.prev, n.last);
    return n && u ? { usage: u.usage, timestamp: new Date(n.last.timeMs).toISOString(), window: windowText(u.windowMs) } : undefined;
  }

  /** A pod's containers with their usage, once every one of them has a rate. */
  pod(namespace: string, name: string): { containers: { name: string; usage: Usage }[]; timestamp: string; window: string } | undefined {
    const containers = this.pods.get(`${namespace}/${name}`);
    if (containers === undefined || containers.size === 0) return undefined;
    const out: { name: string; usage: Usage }[] = [];
    let lastMs = 0;
    let windowMs = 0;
    for (const [c, s] of [...containers].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const u = usageOf(s.prev, s.last);
      if (u === undefined) return undefined;
      out.push({ name: c, usage: u.usage });
      lastMs = Math.max(lastMs, s.last.timeMs);
      windowMs = Math.max(windowMs, u.windowMs);
    }
    return { containers: out, timestamp: new Date(lastMs).toISOString(), window: windowText(windowMs) };
  }
}

/** How the scraper reaches a kubelet: GET of a path on the node's kubelet, the body as text. */
export type KubeletGet = (nodeName: string, path: string, signal: AbortSignal) => Promise<string>;

export interface MetricsScraperOptions {
  store: Store;
  get: KubeletGet;
  /** metrics-server's --metric-resolution. */
  resolutionMs: number;
  log: Logger;
}

/** The scrape loop: every node at each resolution tick, all at once, each bounded by the tick. */
export class MetricsScraper {
  readonly metrics = new MetricsStore();
  private readonly o: MetricsScraperOptions;
  private timer: NodeJS.Timeout | undefined;
  private readonly stop = new AbortController();
  private pass: Promise<void> | undefined;

  constructor(o: MetricsScraperOptions) {
    this.o = o;
  }

  start(signal?: AbortSignal): void {
    signal?.addEventListener("abort", () => void this.close(), { once: true });
    const tick = (): void => {
      this.pass = this.scrapeAll().finally(() => {
        if (!this.stop.signal.aborted) this.timer = setTimeout(tick, this.o.resolutionMs);
      });
    };
    tick();
  }

  async close(): Promise<void> {
    this.stop.abort();
    clearTimeout(this.timer);
    await this.pass;
  }

  private async scrapeAll(): Promise<void> {
    const nodes = this.o.store.list("core/nodes").map((n: KubeObject) => n.metadata.name ?? "");
    const known = new Set(nodes);
    const signal = AbortSignal.any([this.stop.signal, AbortSignal.timeout(Math.max(1000, this.o.resolutionMs))]);
    await Promise.all(
      nodes.map(async (name) => {
        try {
          this.metrics.add(name, parseResourceMetrics(await this.o.get(name, "/metrics/resource", signal)));
        } catch (err) {
          // As metrics-server: a node that cannot be scraped keeps its last points until it answers or goes.
          this.o.log.debug({ node: name, err: err instanceof Error ? err.message : String(err) }, "scrape failed");
        }
      }),
    );
    for (const n of this.metrics.nodeNames()) if (!known.has(n)) this.metrics.removeNode(n);
  }
}

export const METRICS_GROUP = "metrics.k8s.io";
export const METRICS_VERSION = "v1beta1";
const API_VERSION = `${METRICS_GROUP}/${METRICS_VERSION}`;

/** The group's discovery documents (APIGroup and APIResourceList), as metrics-server registers them. */
export function metricsDiscovery(path: string): unknown {
  const versions = [{ groupVersion: API_VERSION, version: METRICS_VERSION }];
  if (path === `/apis/${METRICS_GROUP}`) return { kind: "APIGroup", apiVersion: "v1", name: METRICS_GROUP, versions, preferredVersion: versions[0] };
  if (path === `/apis/${API_VERSION}`)
    return {
      kind: "APIResourceList",
      apiVersion: "v1",
      groupVersion: API_VERSION,
      resources: [
        { name: "nodes", singularName: "", namespaced: false, kind: "NodeMetrics", verbs: ["get", "list"] },
        { name: "pods", singularName: "", namespaced: true, kind: "PodMetrics", verbs: ["get", "list"] },
      ],
    };
  return undefined;
}

/**
 * GET of `/apis/metrics.k8s.io/v1beta1/...`: NodeMetrics and PodMetrics (single or list, `labelSelector` on
 * the Node's or Pod's labels), authorized as any resource of the group. Objects without metrics yet are left
 * out of lists and NotFound when named, as metrics-server answers.
 */
export function serveMetrics(ctx: RequestContext, api: Api, store: Store, metrics: MetricsStore, method: string, segs: readonly string[], q: URLSearchParams): unknown {
  const rest = segs.slice(3);
  let namespace = "";
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1] ?? "";
    rest.splice(0, 2);
  }
  const [resource, name = "", extra] = rest;
  if ((resource !== "nodes" && resource !== "pods") || extra !== undefined || (resource === "nodes" && namespace !== "")) throw pathNotFound();
  if (method !== "GET") throw methodNotAllowed();
  api.authorize(ctx, { group: METRICS_GROUP, plural: resource }, name === "" ? "list" : "get", "", namespace, name);
  const selector = parseLabelSelector(q.get("labelSelector") ?? "");
  const now = new Date().toISOString();
  const meta = (o: KubeObject) => ({ name: o.metadata.name, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}), creationTimestamp: now, ...(o.metadata.labels ? { labels: o.metadata.labels } : {}) });
  if (resource === "nodes") {
    const doc = (n: KubeObject) => {
      const m = metrics.node(n.metadata.name ?? "");
      return m && { kind: "NodeMetrics", apiVersion: API_VERSION, metadata: meta(n), timestamp: m.timestamp, window: m.window, usage: m.usage };
    };
    if (name !== "") {
      const n = store.get("core/nodes", undefined, name);
      const d = n && doc(n);
      if (!d) throw notFound(METRICS_GROUP, "nodes", name);
      return d;
    }
    const items = store.list("core/nodes").filter((n) => matchesLabels(selector, n.metadata.labels)).map(doc).filter((d) => d !== undefined);
    return { kind: "NodeMetricsList", apiVersion: API_VERSION, metadata: {}, items };
  }
  const doc = (p: KubeObject) => {
    const m = metrics.pod(p.metadata.namespace ?? "", p.metadata.name ?? "");
    return m && { kind: "PodMetrics", apiVersion: API_VERSION, metadata: meta(p), timestamp: m.timestamp, window: m.window, containers: m.containers };
  };
  if (name !== "") {
    const p = store.get("core/pods", namespace, name);
    const d = p && doc(p);
    if (!d) throw notFound(METRICS_GROUP, "pods", name);
    return d;
  }
  const items = store.list("core/pods", namespace === "" ? undefined : namespace).filter((p) => matchesLabels(selector, p.metadata.labels)).map(doc).filter((d) => d !== undefined);
  return { kind: "PodMetricsList", apiVersion: API_VERSION, metadata: {}, items };
}
