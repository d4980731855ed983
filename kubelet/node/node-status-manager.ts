/**
 * Registers the Node and keeps its status, as upstream's kubelet_node_status.go: create the Node (or adopt
 * the existing one and reconcile the labels the kubelet owns), retrying with back-off until the API takes
 * it; then compute the status every nodeStatusUpdateFrequency (10 s) and patch nodes/status when it changed,
 * or anyway every nodeStatusReportFrequency (5 min). The computation itself is pure and injected.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import { Backoff } from "../../src-shared/backoff.ts";
import { isApiError, type KubeClient } from "../../src-shared/kube/client.ts";

export interface NodeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion?: string };
  spec?: Record<string, unknown> & { podCIDR?: string; podCIDRs?: string[] };
  status?: Record<string, unknown>;
}

export interface NodeStatusSource<S> {
  /** The Node to register (metadata, spec, and a first status). */
  initialNode(): Promise<NodeObject>;
  /** The status now, given the last one reported. */
  status(previous: S | undefined): Promise<S>;
  /** Whether the status changed in a way worth reporting before the report period (heartbeat times aside). */
  changed(previous: S, next: S): boolean;
  /** Strategic merge patch body for nodes/status. */
  patch(previous: S | undefined, next: S): unknown;
}

export interface NodeStatusManagerOptions<S> {
  client: KubeClient;
  nodeName: string;
  source: NodeStatusSource<S>;
  logger: Logger;
  updateFrequencyMs?: number;
  reportFrequencyMs?: number;
}

export class NodeStatusManager<S> {
  private readonly o: NodeStatusManagerOptions<S>;
  private readonly log: Logger;
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private reported: S | undefined;
  private lastReport = 0;
  private nodeUid: string | undefined;
  private registeredResolve: (() => void) | undefined;
  /** Resolves once the Node exists in the API. */
  readonly registered: Promise<void>;
  /** Status patches the API accepted. */
  reports = 0;

  constructor(options: NodeStatusManagerOptions<S>) {
    this.o = options;
    this.log = options.logger.child({ component: "node-status" });
    this.registered = new Promise((resolve) => {
      this.registeredResolve = resolve;
    });
  }

  get uid(): string | undefined {
    return this.nodeUid;
  }

  start(signal: AbortSignal): void {
    signal.addEventListener("abort", () => this.stop.abort(), { once: true });
    this.loop ??= this.run();
  }

  async close(): Promise<void> {
    this.stop.abort();
    this.wake?.();
    await this.loop;
  }

  /** Compute and report now (something the Ready condition depends on changed). */
  poke(): void {
    this.wake?.();
  }

  private ref(name?: string, subresource?: string): { group: string; version: string; resource: string; name?: string; subresource?: string } {
    return { group: "", version: "v1", resource: "nodes", ...(name ? { name } : {}), ...(subresource ? { subresource } : {}) };
  }

  private async register(): Promise<void> {
    const backoff = new Backoff({ initialMs: 100, maxMs: 7000 });
    while (!this.stop.signal.aborted) {
      try {
        const node = await this.o.source.initialNode();
        try {
          const created = await this.o.client.create<NodeObject>(this.ref(), node, { signal: this.stop.signal });
          this.nodeUid = created.metadata?.uid;
          this.log.info({ node: this.o.nodeName }, "registered the node");
        } catch (err) {
          if (!isApiError(err, "AlreadyExists")) throw err;
          // The node was registered before (a restart): keep it, and bring back the labels the kubelet owns.
          const existing = await this.o.client.get<NodeObject>(this.ref(this.o.nodeName), { signal: this.stop.signal });
          this.nodeUid = existing.metadata?.uid;
          const want = node.metadata?.labels ?? {};
          const have = existing.metadata?.labels ?? {};
          const missing = Object.fromEntries(Object.entries(want).filter(([k, v]) => have[k] !== v));
          if (Object.keys(missing).length > 0) await this.o.client.patch(this.ref(this.o.nodeName), "strategic", { metadata: { labels: missing } }, { signal: this.stop.signal });
          this.log.info({ node: this.o.nodeName }, "node was already registered");
        }
        this.registeredResolve?.();
        return;
      } catch (err) {
        if (this.stop.signal.aborted) return;
        const wait = backoff.next();
        this.log.warn({ err: errorMessage(err), retryInMs: wait }, "unable to register the node");
        await sleep(wait, undefined, { signal: this.stop.signal }).catch(() => undefined);
      }
    }
  }

  /** One status update: computed always, sent when changed or due. */
  async update(): Promise<void> {
    const next = await this.o.source.status(this.reported);
    const due = Date.now() - this.lastReport >= (this.o.reportFrequencyMs ?? 5 * 60_000);
    if (this.reported !== undefined && !due && !this.o.source.changed(this.reported, next)) return;
    await this.o.client.patch(this.ref(this.o.nodeName, "status"), "strategic", this.o.source.patch(this.reported, next), { signal: this.stop.signal, timeoutMs: 10_000 });
    this.reported = next;
    this.lastReport = Date.now();
    this.reports++;
  }

  private async run(): Promise<void> {
    await this.register();
    const every = this.o.updateFrequencyMs ?? 10_000;
    while (!this.stop.signal.aborted) {
      try {
        await this.update();
      } catch (err) {
        if (this.stop.signal.aborted) break;
        if (isApiError(err, 404)) {
          // Someone deleted our Node: register it again, as upstream does.
          this.log.warn("the node is gone from the API; registering again");
          this.reported = undefined;
          await this.register();
          continue;
        }
        this.log.warn({ err: errorMessage(err) }, "unable to update node status");
      }
      await Promise.race([
        new Promise<void>((resolve) => {
          this.wake = resolve;
        }),
        sleep(every, undefined, { signal: this.stop.signal }).catch(() => undefined),
      ]);
      this.wake = undefined;
    }
  }
}
