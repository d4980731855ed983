/**
 * The proxy's API source against the local control plane: a Service with a selector, a ready pod behind it
 * (the control plane's EndpointSlice controller makes the slice), and this node's Node reach the proxier's
 * handler through the shared informers, each kind marked synced; headless Services' slices and Services of
 * another proxy are left out.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1EndpointSlice, V1Service } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../harness/wait.ts";
import { ControlPlane } from "../../control-plane/control-plane.ts";
import { KubeClient } from "../../../src-shared/kube/client.ts";
import { silentLogger } from "../../../src-shared/log.ts";
import { ApiSource } from "../../../proxy/api-source.ts";
import type { ProxyEventHandler } from "../../../proxy/source.ts";

let dir = "";
let cp: ControlPlane;
let admin: KubeClient;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "deckhand-proxy-api-"));
  cp = new ControlPlane({ dir, log: silentLogger() });
  await cp.start();
  admin = KubeClient.fromFile(cp.adminKubeconfigPath);
});

afterAll(async () => {
  admin.close();
  await cp.close();
  await rm(dir, { recursive: true, force: true });
});

describe("ApiSource", () => {
  it("feeds Services, EndpointSlices and its Node from the API, and says when each is synced", async () => {
    const seen: string[] = [];
    const handler: ProxyEventHandler = {
      onServiceAdd: (s) => seen.push(`svc+ ${s.metadata?.name ?? ""}`),
      onServiceUpdate: (_o, s) => seen.push(`svc~ ${s.metadata?.name ?? ""}`),
      onServiceDelete: (s) => seen.push(`svc- ${s.metadata?.name ?? ""}`),
      onServicesSynced: () => seen.push("svc synced"),
      onEndpointSliceAdd: (e) => seen.push(`eps+ ${e.metadata?.labels?.["kubernetes.io/service-name"] ?? ""} ${(e.endpoints ?? []).map((x) => x.addresses.join()).join()}`),
      onEndpointSliceUpdate: (_o, e) => seen.push(`eps~ ${e.metadata?.labels?.["kubernetes.io/service-name"] ?? ""} ${(e.endpoints ?? []).map((x) => x.addresses.join()).join()}`),
      onEndpointSliceDelete: (e) => seen.push(`eps- ${e.metadata?.labels?.["kubernetes.io/service-name"] ?? ""}`),
      onEndpointSlicesSynced: () => seen.push("eps synced"),
      onNodeAdd: (n) => seen.push(`node+ ${n.metadata?.name ?? ""}`),
      onNodeUpdate: () => undefined,
      onNodeDelete: () => undefined,
      onNodeSynced: () => seen.push("node synced"),
    };
    await admin.create({ group: "", version: "v1", resource: "nodes" }, { apiVersion: "v1", kind: "Node", metadata: { name: "proxy-node" } });
    const source = new ApiSource({ client: KubeClient.fromFile(await cp.mintNodeKubeconfig("proxy-node")), nodeName: "proxy-node", logger: silentLogger() });
    const stop = new AbortController();
    await source.start(handler, stop.signal);
    expect(seen).toEqual(expect.arrayContaining(["svc synced", "eps synced", "node synced", "node+ proxy-node"]));

    const svc = (name: string, extra: Partial<V1Service> = {}): V1Service => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: "default", ...(extra.metadata ?? {}) },
      spec: { selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }], ...(extra.spec ?? {}) },
    });
    await admin.create({ group: "", version: "v1", resource: "services", namespace: "default" }, svc("web"));
    await admin.create({ group: "", version: "v1", resource: "services", namespace: "default" }, svc("other-proxy", { metadata: { name: "other-proxy", labels: { "service.kubernetes.io/service-proxy-name": "foo" } } }));
    // Created after other-proxy: once the source delivers it, other-proxy's event (one watch, in order) would
    // have come before it if it were not filtered out.
    await admin.create({ group: "", version: "v1", resource: "services", namespace: "default" }, svc("sentinel", { spec: { selector: { app: "none" }, ports: [{ port: 80 }] } }));
    const pod = await admin.create<{ metadata: { name: string } }>({ group: "", version: "v1", resource: "pods", namespace: "default" }, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "web-1", namespace: "default", labels: { app: "web" } },
      spec: { nodeName: "proxy-node", containers: [{ name: "c", image: "x", ports: [{ containerPort: 8080 }] }] },
    });
    await admin.patch({ group: "", version: "v1", resource: "pods", namespace: "default", name: pod.metadata.name, subresource: "status" }, "merge", {
      status: { phase: "Running", podIP: "10.244.0.5", podIPs: [{ ip: "10.244.0.5" }], conditions: [{ type: "Ready", status: "True" }] },
    });
    await eventually(() => seen.includes("svc+ sentinel") && seen.some((s) => /^eps[+~] web 10\.244\.0\.5$/.test(s)), { timeoutMs: 5000, intervalMs: 20, message: "the sentinel Service and web's endpoint", diagnose: () => `seen: ${seen.join(", ")}` });
    expect(seen).toContain("svc+ web");
    expect(seen.join("\n")).not.toContain("other-proxy");
    const slices = await admin.get<{ items: V1EndpointSlice[] }>({ group: "discovery.k8s.io", version: "v1", resource: "endpointslices", namespace: "default" });
    expect(slices.items.length).toBeGreaterThan(0);
    stop.abort();
    await source.close();
  });
});
