/**
 * Registers the Node and keeps its status, as upstream's kubelet_node_status.go: create the Node (or adopt
 * the existing one and reconcile the labels the kubelet owns), retrying with back-off until the API takes
 * it; then compute the status every nodeStatusUpdateFrequency (10 s) and patch nodes/status when it changed,
 * or anyway every nodeStatusReportFrequency (5 min). The computation itself is pure and injected.
 */
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import { Backoff } from "../../src-shared/backoff.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import { PeriodicLoop } from "../../src-shared/loop.ts";
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
  /**
   * What the API holds where someone else overwrote what we reported (the node lifecycle controller sets the
   * conditions Unknown while the kubelet could not post), from `node` (the Node a patch returned) or, without
   * it, from the source's own view of the Node; `sent` itself when nothing was overwritten. The next patch is
   * made against it, so that it sets the status right: upstream's kubelet patches against the Node it reads.
   */
  held?(sent: S, node?: unknown): S;
}

/** What the manager needs of the API client (a fake in unit tests). */
export type NodeClient = Pick<KubeClient, "get" | "create" | "patch">;

export interface NodeStatusManagerOptions<S> {
  client: NodeClient;
  nodeName: string;
  source: NodeStatusSource<S>;
  logger: Logger;
  updateFrequencyMs?: number;
  reportFrequencyMs?: number;
  clock?: Clock;
}

/**
 * One PeriodicLoop does both jobs: while the Node is not registered a pass tries to register it and, failing,
 * asks for the back-off's delay; once registered a pass updates the status and asks for updateFrequencyMs.
 */
export class NodeStatusManager<S> {
  private readonly o: NodeStatusManagerOptions<S>;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly loop: PeriodicLoop;
  private readonly registerBackoff: Backoff;
  private isRegistered = false;
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
    this.clock = options.clock ?? systemClock;
    this.registerBackoff = new Backoff({ initialMs: 100, maxMs: 7000, now: () => this.clock.now() });
    this.registered = new Promise((resolve) => {
      this.registeredResolve = resolve;
    });
    this.loop = new PeriodicLoop({
      name: "node status update",
      intervalMs: options.updateFrequencyMs ?? 10_000,
      run: (signal) => this.pass(signal),
      logger: this.log,
      clock: this.clock,
    });
  }

  get uid(): string | undefined {
    return this.nodeUid;
  }

  start(signal: AbortSignal): void {
    this.loop.start(signal);
  }

  async close(): Promise<void> {
    await this.loop.close();
  }

  /** Compute and report now (something the Ready condition depends on changed). */
  poke(): void {
    this.loop.wake();
  }

  private ref(name?: string, subresource?: string): { group: string; version: string; resource: string; name?: string; subresource?: string } {
    return { group: "", version: "v1", resource: "nodes", ...(name ? { name } : {}), ...(subresource ? { subresource } : {}) };
  }

  private async register(signal: AbortSignal): Promise<void> {
    const node = await this.o.source.initialNode();
    try {
      const created = await this.o.client.create<NodeObject>(this.ref(), node, { signal });
      this.nodeUid = created.metadata?.uid;
      this.log.info({ node: this.o.nodeName }, "registered the node");
    } catch (err) {
      if (!isApiError(err, "AlreadyExists")) throw err;
      // The node was registered before (a restart): keep it, and bring back the labels the kubelet owns.
      const existing = await this.o.client.get<NodeObject>(this.ref(this.o.nodeName), { signal });
      this.nodeUid = existing.metadata?.uid;
      const want = node.metadata?.labels ?? {};
      const have = existing.metadata?.labels ?? {};
      const missing = Object.fromEntries(Object.entries(want).filter(([k, v]) => have[k] !== v));
      if (Object.keys(missing).length > 0) await this.o.client.patch(this.ref(this.o.nodeName), "strategic", { metadata: { labels: missing } }, { signal });
      this.log.info({ node: this.o.nodeName }, "node was already registered");
    }
    this.isRegistered = true;
    this.registerBackoff.reset();
    this.registeredResolve?.();
  }

  /** One status update: computed always, sent when changed or due. */
  async update(signal: AbortSignal = this.loop.signal): Promise<void> {
    if (this.reported !== undefined && this.o.source.held) this.reported = this.o.source.held(this.reported);
    const next = await this.o.source.status(this.reported);
    const due = this.clock.now() - this.lastReport >= (this.o.reportFrequencyMs ?? 5 * 60_000);
    if (this.reported !== undefined && !due && !this.o.source.changed(this.reported, next)) return;
    let node = await this.o.client.patch(this.ref(this.o.nodeName, "status"), "strategic", this.o.source.patch(this.reported, next), { signal, timeoutMs: 10_000 });
    let held = this.o.source.held?.(next, node) ?? next;
    // Overwritten between our read and our patch: set right at once.
    if (held !== next) {
      node = await this.o.client.patch(this.ref(this.o.nodeName, "status"), "strategic", this.o.source.patch(held, next), { signal, timeoutMs: 10_000 });
      held = this.o.source.held?.(next, node) ?? next;
    }
    this.reported = held;
    this.lastReport = this.clock.now();
    this.reports++;
  }

  /** One pass of the loop; returns the delay before the next (undefined: updateFrequencyMs). */
  private async pass(signal: AbortSignal): Promise<number | undefined> {
    if (!this.isRegistered) {
      try {
        await this.register(signal);
      } catch (err) {
        if (signal.aborted) return undefined;
        const wait = this.registerBackoff.next();
        this.log.warn({ err: errorMessage(err), retryInMs: wait }, "unable to register the node");
        return wait;
      }
    }
    try {
      await this.update(signal);
    } catch (err) {
      if (!isApiError(err, 404)) throw err;
      // Someone deleted our Node: register it again at once, as upstream does.
      this.log.warn("the node is gone from the API; registering again");
      this.reported = undefined;
      this.isRegistered = false;
      return 0;
    }
    return undefined;
  }
}
