/**
 * The API server as the proxier's source: three informers (src-shared/kube: list + watch, relist on 410,
 * back-off), as upstream's kube-proxy sets them up — Services and EndpointSlices without the
 * `service.kubernetes.io/service-proxy-name` label (those belong to another proxy), EndpointSlices of
 * headless Services left out, and this node's own Node — each event handed to a WatchEventDispatcher, and each
 * kind marked synced once its first list is in.
 */
import type { V1EndpointSlice, V1Node, V1Service } from "@kubernetes/client-node";
import type { Logger } from "../src-shared/log.ts";
import type { KubeClient } from "../src-shared/kube/client.ts";
import { Informer } from "../src-shared/kube/informer.ts";
import { WatchEventDispatcher, type ProxyEventHandler, type ProxySource, type ResourceKind } from "./source.ts";

export class ApiSource implements ProxySource {
  private readonly client: KubeClient;
  private readonly nodeName: string;
  private readonly log: Logger;
  private informers: Informer<V1Service | V1EndpointSlice | V1Node>[] = [];

  constructor(options: { client: KubeClient; nodeName: string; logger: Logger }) {
    this.client = options.client;
    this.nodeName = options.nodeName;
    this.log = options.logger.child({ component: "api-source" });
  }

  async start(handler: ProxyEventHandler, signal: AbortSignal): Promise<void> {
    const dispatcher = new WatchEventDispatcher(handler);
    const make = (kind: ResourceKind, informer: Informer<V1Service | V1EndpointSlice | V1Node>): Informer<V1Service | V1EndpointSlice | V1Node> => {
      informer.on({
        added: (o) => dispatcher.event(kind, "ADDED", o),
        updated: (_old, o) => dispatcher.event(kind, "MODIFIED", o),
        deleted: (o) => dispatcher.event(kind, "DELETED", o),
      });
      return informer;
    };
    const logger = this.log;
    const services = make("Service", new Informer({ client: this.client, resource: { group: "", version: "v1", resource: "services" }, labelSelector: "!service.kubernetes.io/service-proxy-name", logger }));
    const slices = make(
      "EndpointSlice",
      new Informer({ client: this.client, resource: { group: "discovery.k8s.io", version: "v1", resource: "endpointslices" }, labelSelector: "!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name", logger }),
    );
    const node = make("Node", new Informer({ client: this.client, resource: { group: "", version: "v1", resource: "nodes" }, fieldSelector: `metadata.name=${this.nodeName}`, logger }));
    this.informers = [services, slices, node];
    for (const i of this.informers) i.start(signal);
    await Promise.all(
      ([["Service", services], ["EndpointSlice", slices], ["Node", node]] as const).map(async ([kind, informer]) => {
        await informer.waitForSync(signal);
        dispatcher.synced(kind);
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.close()));
    this.client.close();
  }
}
