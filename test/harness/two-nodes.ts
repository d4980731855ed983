/**
 * Two sandbox nodes on one machine, each with its own containerd and deckhand-bridge (CniNode), joined by the
 * underlay (underlay.ts: a switch namespace of the test's own, eth0 on 192.0.2.0/24 in each node, no default
 * route anywhere). A tiny in-memory cluster holds the Node objects (podCIDR + InternalIP) and feeds each
 * node's pod-route controller, running here against that node's namespace, as the kubelet will run it.
 */
import { silentLogger } from "../../src-shared/log.ts";
import { IpRouteTable, PodRouteController } from "../../cni/routes.ts";
import type { NodeLike, WatchNodes } from "../../cni/nodes.ts";
import { CniNode } from "./cni-node.ts";
import { Underlay, UNDERLAY_PREFIX_LENGTH, underlayAddress } from "./underlay.ts";

/** Node objects as the API server would hold them, with a level-triggered watch for the controllers. */
export class FakeCluster {
  private nodes: NodeLike[] = [];
  private readonly subscribers = new Set<(nodes: readonly NodeLike[]) => void>();

  set(node: NodeLike): void {
    this.nodes = [...this.nodes.filter((n) => n.metadata?.name !== node.metadata?.name), node];
    this.publish();
  }

  remove(name: string): void {
    this.nodes = this.nodes.filter((n) => n.metadata?.name !== name);
    this.publish();
  }

  list(): readonly NodeLike[] {
    return this.nodes;
  }

  private publish(): void {
    for (const s of this.subscribers) s(this.nodes);
  }

  readonly watchNodes: WatchNodes = (signal, onNodes) =>
    new Promise<void>((resolve) => {
      onNodes(this.nodes);
      this.subscribers.add(onNodes);
      signal.addEventListener("abort", () => {
        this.subscribers.delete(onNodes);
        resolve();
      }, { once: true });
    });
}

export interface ClusterNode {
  name: string;
  cni: CniNode;
  underlayIp: string;
  podCidr: string;
  routes: PodRouteController;
}

export class TwoNodes {
  readonly cluster = new FakeCluster();
  readonly underlay = new Underlay();
  readonly nodes: ClusterNode[] = [];
  private readonly controller = new AbortController();

  async start(): Promise<void> {
    try {
      await this.underlay.start();
      const specs = [
        { name: "node-a", podCidr: "10.244.1.0/24", underlayIp: underlayAddress(1) },
        { name: "node-b", podCidr: "10.244.2.0/24", underlayIp: underlayAddress(2) },
      ];
      // Both sandboxes start at once: each boots its own containerd.
      const cnis = specs.map((s) => new CniNode({ podSubnet: s.podCidr }));
      const started = await Promise.allSettled(cnis.map((c) => c.start()));
      const failed = started.find((r) => r.status === "rejected");
      for (const [i, r] of started.entries()) {
        const spec = specs[i];
        const cni = cnis[i];
        if (r.status === "fulfilled" && spec && cni) {
          this.nodes.push({ ...spec, cni, routes: new PodRouteController({ nodeName: spec.name, watchNodes: this.cluster.watchNodes, table: new IpRouteTable({ netns: cni.node.netnsPath }), log: silentLogger(), resyncMs: 2_000 }) });
        }
      }
      if (failed) throw failed.reason;
      for (const n of this.nodes) await this.underlay.attach(n.cni.node.name, `${n.underlayIp}/${UNDERLAY_PREFIX_LENGTH}`);
      for (const n of this.nodes) this.register(n);
      for (const n of this.nodes) await n.routes.start(this.controller.signal);
    } catch (err) {
      await this.teardown().catch(() => undefined);
      throw err;
    }
  }

  /** (Re)registers a node's Node object: name, podCIDR, InternalIP. */
  register(n: ClusterNode): void {
    this.cluster.set({ metadata: { name: n.name }, spec: { podCIDR: n.podCidr, podCIDRs: [n.podCidr] }, status: { addresses: [{ type: "InternalIP", address: n.underlayIp }, { type: "Hostname", address: n.name }] } });
  }

  node(name: string): ClusterNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  async teardown(): Promise<void> {
    this.controller.abort();
    const problems: string[] = [];
    for (const n of this.nodes) await n.routes.close().catch((e: unknown) => problems.push(String(e)));
    const results = await Promise.allSettled(this.nodes.map((n) => n.cni.teardown()));
    for (const r of results) if (r.status === "rejected") problems.push(String(r.reason));
    await this.underlay.teardown().catch((e: unknown) => problems.push(String(e)));
    if (problems.length > 0) throw new Error(`two-node teardown: ${problems.join("\n")}`);
  }
}
