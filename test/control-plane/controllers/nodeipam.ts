/** Node IPAM (allocate-node-cidrs): each Node gets a podCIDR from the cluster CIDR. */
import type { Logger } from "pino";
import { ADMIN, resource, type Api } from "../api.ts";
import type { StoreEvent } from "../store.ts";
import { parseCidr, subnet, subnetCount, type Cidr } from "../allocators.ts";
import { arr, dig } from "../types.ts";
import { Controller } from "./base.ts";

const nodes = resource("", "nodes");

export class NodeIpamController extends Controller {
  protected readonly watches = ["core/nodes"];
  private readonly cluster: Cidr;
  private readonly maskSize: number;

  constructor(api: Api, log: Logger, clusterCIDR: string, maskSize: number) {
    super(api, log);
    this.cluster = parseCidr(clusterCIDR);
    this.maskSize = maskSize;
  }

  protected keysFor(ev: StoreEvent): string[] {
    return ev.type === "DELETED" ? [] : [ev.object.metadata.name ?? ""];
  }

  protected initialKeys(): string[] {
    return this.api.store.list(nodes.storage).map((n) => n.metadata.name ?? "");
  }

  protected reconcile(name: string): void {
    const node = this.api.store.get(nodes.storage, undefined, name);
    if (node === undefined || arr(dig(node, "spec", "podCIDRs")).length > 0) return;
    const used = new Set<string>();
    for (const n of this.api.store.list(nodes.storage)) for (const c of arr(dig(n, "spec", "podCIDRs"))) used.add(String(c));
    const count = subnetCount(this.cluster, this.maskSize);
    for (let i = 0; i < count; i++) {
      const c = subnet(this.cluster, this.maskSize, i);
      if (c === undefined) break;
      if (used.has(c)) continue;
      this.api.patch(ADMIN, nodes, "", name, "merge", { spec: { podCIDR: c, podCIDRs: [c] } });
      this.log.info({ node: name, podCIDR: c }, "allocated podCIDR");
      return;
    }
    this.log.warn({ node: name }, "cluster CIDR is full: no podCIDR for node");
  }
}
