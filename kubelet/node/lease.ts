/**
 * The node's heartbeat: a Lease in kube-node-lease named after the node, renewed every 10 s (a quarter of
 * its 40 s duration), owned by the Node so it goes with it; on failure retried with upstream's back-off
 * (200 ms doubling to 7 s) — pkg/kubelet/nodelease and component-helpers' lease controller.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import { Backoff } from "../../src-shared/backoff.ts";
import { microTime } from "../../src-shared/time.ts";
import { isApiError, type KubeClient } from "../../src-shared/kube/client.ts";

export const LEASE_NAMESPACE = "kube-node-lease";

interface Lease {
  apiVersion: "coordination.k8s.io/v1";
  kind: "Lease";
  metadata: { name: string; namespace: string; resourceVersion?: string; ownerReferences?: unknown[] };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string };
}


export class NodeLease {
  private readonly client: KubeClient;
  private readonly nodeName: string;
  private readonly durationSeconds: number;
  private readonly renewMs: number;
  private readonly log: Logger;
  private readonly nodeUid: () => string | undefined;
  private lease: Lease | undefined;
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;
  /** Renewals the API accepted. */
  renewals = 0;
  lastRenewed = 0;

  constructor(options: { client: KubeClient; nodeName: string; durationSeconds?: number; logger: Logger; nodeUid: () => string | undefined }) {
    this.client = options.client;
    this.nodeName = options.nodeName;
    this.durationSeconds = options.durationSeconds ?? 40;
    this.renewMs = (this.durationSeconds * 1000) / 4;
    this.log = options.logger.child({ component: "node-lease" });
    this.nodeUid = options.nodeUid;
  }

  start(signal: AbortSignal): void {
    signal.addEventListener("abort", () => this.stop.abort(), { once: true });
    this.loop ??= this.run();
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
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
      spec: { ...(base?.spec ?? {}), holderIdentity: this.nodeName, leaseDurationSeconds: this.durationSeconds, renewTime: microTime(Date.now()) },
    };
  }

  /** One renewal: update the lease we hold, or get/create it when we hold none (or it changed under us). */
  async renew(): Promise<void> {
    const opts = { timeoutMs: this.renewMs, signal: this.stop.signal };
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

  private async run(): Promise<void> {
    const backoff = new Backoff({ initialMs: 200, maxMs: 7000 });
    while (!this.stop.signal.aborted) {
      let wait = this.renewMs;
      try {
        await this.renew();
        this.renewals++;
        this.lastRenewed = Date.now();
        backoff.reset();
      } catch (err) {
        if (this.stop.signal.aborted) break;
        wait = backoff.next();
        this.log.warn({ err: errorMessage(err), retryInMs: wait }, "failed to renew the node lease");
      }
      await sleep(wait, undefined, { signal: this.stop.signal }).catch(() => undefined);
    }
  }
}
