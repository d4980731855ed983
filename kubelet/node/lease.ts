/**
 * The node's heartbeat: a Lease in kube-node-lease named after the node, renewed every 10 s (a quarter of
 * its 40 s duration), owned by the Node so it goes with it; on failure retried with upstream's back-off
 * (200 ms doubling to 7 s) — pkg/kubelet/nodelease and component-helpers' lease controller.
 */
import type { Logger } from "../../src-shared/log.ts";
import { Backoff } from "../../src-shared/backoff.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import { PeriodicLoop } from "../../src-shared/loop.ts";
import { microTime } from "../../src-shared/time.ts";
import { isApiError, type KubeClient } from "../../src-shared/kube/client.ts";

export const LEASE_NAMESPACE = "kube-node-lease";

interface Lease {
  apiVersion: "coordination.k8s.io/v1";
  kind: "Lease";
  metadata: { name: string; namespace: string; resourceVersion?: string; ownerReferences?: unknown[] };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string };
}


/** What the lease needs of the API client (a fake in unit tests). */
export type LeaseClient = Pick<KubeClient, "get" | "create" | "update">;

export interface NodeLeaseOptions {
  client: LeaseClient;
  nodeName: string;
  durationSeconds?: number;
  logger: Logger;
  nodeUid: () => string | undefined;
  clock?: Clock;
}

export class NodeLease {
  private readonly client: LeaseClient;
  private readonly nodeName: string;
  private readonly durationSeconds: number;
  private readonly renewMs: number;
  private readonly log: Logger;
  private readonly nodeUid: () => string | undefined;
  private readonly clock: Clock;
  private lease: Lease | undefined;
  private readonly backoff: Backoff;
  private readonly loop: PeriodicLoop;
  /** Renewals the API accepted. */
  renewals = 0;
  lastRenewed = 0;

  constructor(options: NodeLeaseOptions) {
    this.client = options.client;
    this.nodeName = options.nodeName;
    this.durationSeconds = options.durationSeconds ?? 40;
    this.renewMs = (this.durationSeconds * 1000) / 4;
    this.log = options.logger.child({ component: "node-lease" });
    this.nodeUid = options.nodeUid;
    this.clock = options.clock ?? systemClock;
    this.backoff = new Backoff({ initialMs: 200, maxMs: 7000, now: () => this.clock.now() });
    this.loop = new PeriodicLoop({
      name: "node lease renewal",
      intervalMs: this.renewMs,
      run: (signal) => this.renewOnce(signal),
      errorDelayMs: () => this.backoff.next(),
      logger: this.log,
      clock: this.clock,
    });
  }

  start(signal: AbortSignal): void {
    this.loop.start(signal);
  }

  async close(): Promise<void> {
    await this.loop.close();
  }

  private ref(name?: string): { group: string; version: string; resource: string; namespace: string; name?: string } {
    return { group: "coordination.k8s.io", version: "v1", resource: "leases", namespace: LEASE_NAMESPACE, ...(name ? { name } : {}) };
  }

  private desired(base: Lease | undefined): Lease {
    const uid = this.nodeUid();
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        ...(base?.metadata ?? {}),
        name: this.nodeName,
        namespace: LEASE_NAMESPACE,
        ...(uid ? { ownerReferences: [{ apiVersion: "v1", kind: "Node", name: this.nodeName, uid }] } : {}),
      },
      spec: { ...(base?.spec ?? {}), holderIdentity: this.nodeName, leaseDurationSeconds: this.durationSeconds, renewTime: microTime(this.clock.now()) },
    };
  }

  /** One renewal: update the lease we hold, or get/create it when we hold none (or it changed under us). */
  async renew(signal: AbortSignal = this.loop.signal): Promise<void> {
    const opts = { timeoutMs: this.renewMs, signal };
    if (this.lease) {
      try {
        this.lease = await this.client.update<Lease>(this.ref(this.nodeName), this.desired(this.lease), opts);
        return;
      } catch (err) {
        if (!isApiError(err, 409) && !isApiError(err, 404)) throw err;
        this.lease = undefined; // someone else wrote it, or it is gone: start from what the API has
      }
    }
    try {
      const current = await this.client.get<Lease>(this.ref(this.nodeName), opts);
      this.lease = await this.client.update<Lease>(this.ref(this.nodeName), this.desired(current), opts);
    } catch (err) {
      if (!isApiError(err, 404)) throw err;
      this.lease = await this.client.create<Lease>(this.ref(), this.desired(undefined), opts);
    }
  }

  /** One pass of the loop: renew, then wait renewMs; a failure waits the back-off (PeriodicLoop's errorDelayMs). */
  private async renewOnce(signal: AbortSignal): Promise<number> {
    await this.renew(signal);
    this.renewals++;
    this.lastRenewed = this.clock.now();
    this.backoff.reset();
    return this.renewMs;
  }
}
