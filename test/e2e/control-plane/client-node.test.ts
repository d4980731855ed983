/**
 * Conformance-style checks of the control plane through @kubernetes/client-node: the calls the node agents
 * make, over HTTPS with client certificates, as a real cluster answers them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CoordinationV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  PatchStrategy,
  Watch,
  makeInformer,
  setHeaderOptions,
  type KubeConfig,
  type V1ConfigMap,
  type V1Pod,
} from "@kubernetes/client-node";
import type { ControlPlane } from "../../control-plane/control-plane.ts";
import { eventually } from "../../harness/wait.ts";
import { rejects, startControlPlane, statusOf } from "./helpers.ts";

let cp: ControlPlane;
let stop: () => Promise<void>;
let kc: KubeConfig;
let core: CoreV1Api;

const ns = "default";
const patchAs = (s: string) => setHeaderOptions("Content-Type", s);

function podBody(name: string, extra: Partial<V1Pod["spec"]> = {}, labels: Record<string, string> = { app: "web" }): V1Pod {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, labels }, spec: { containers: [{ name: "c", image: "busybox:1.36", ports: [{ name: "http", containerPort: 8080 }] }], ...extra } };
}

beforeAll(async () => {
  ({ cp, stop } = await startControlPlane({ historyLimit: 200, bookmarkIntervalMs: 100 }));
  kc = cp.adminKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
});

afterAll(async () => {
  await stop();
});

describe("basics", () => {
  it("serves discovery and version", async () => {
    const v = await core.getAPIResources();
    expect(v.resources.map((r) => r.name)).toEqual(expect.arrayContaining(["pods", "pods/status", "nodes", "nodes/status", "services", "configmaps", "secrets", "serviceaccounts/token", "events", "pods/eviction", "pods/binding"]));
    const nsList = await core.listNamespace();
    expect(nsList.items.map((n) => n.metadata?.name)).toEqual(["default", "kube-node-lease", "kube-public", "kube-system"]);
  });

  it("rejects requests without credentials with 401 Unauthorized", async () => {
    const https = await import("node:https");
    const body = await new Promise<{ code: number; text: string }>((resolve, reject) => {
      https
        .get(`${cp.url}/api/v1/pods`, { ca: cp.caPem }, (r) => {
          let text = "";
          r.on("data", (d: Buffer) => (text += d.toString()));
          r.on("end", () => resolve({ code: r.statusCode ?? 0, text }));
        })
        .on("error", reject);
    });
    expect(body.code).toBe(401);
    expect(JSON.parse(body.text)).toEqual({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: "Unauthorized", reason: "Unauthorized", code: 401 });
  });
});

describe("verbs", () => {
  it("create, get, update with optimistic concurrency, and NotFound/AlreadyExists", async () => {
    const created = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "cc" }, data: { a: "1" } } });
    expect(created.metadata?.uid).toBeDefined();
    const dup = statusOf(await rejects(core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "cc" } } })));
    expect([dup.code, dup.reason]).toEqual([409, "AlreadyExists"]);
    const updated = await core.replaceNamespacedConfigMap({ name: "cc", namespace: ns, body: { ...created, data: { a: "2" } } });
    expect(updated.data).toEqual({ a: "2" });
    const stale = statusOf(await rejects(core.replaceNamespacedConfigMap({ name: "cc", namespace: ns, body: { ...created, data: { a: "3" } } })));
    expect([stale.code, stale.reason]).toEqual([409, "Conflict"]);
    const nf = statusOf(await rejects(core.readNamespacedConfigMap({ name: "nope", namespace: ns })));
    expect([nf.code, nf.reason, nf.message]).toEqual([404, "NotFound", 'configmaps "nope" not found']);
  });

  it("applies each patch type", async () => {
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "pp", labels: { a: "1" } }, data: { k: "v" } } });
    const j = await core.patchNamespacedConfigMap({ name: "pp", namespace: ns, body: [{ op: "add", path: "/data/j", value: "json" }] }, patchAs(PatchStrategy.JsonPatch));
    expect(j.data).toEqual({ k: "v", j: "json" });
    const m = await core.patchNamespacedConfigMap({ name: "pp", namespace: ns, body: { data: { k: null, m: "merge" } } }, patchAs(PatchStrategy.MergePatch));
    expect(m.data).toEqual({ j: "json", m: "merge" });
    const s = await core.patchNamespacedConfigMap({ name: "pp", namespace: ns, body: { metadata: { labels: { b: "2" } } } }, patchAs(PatchStrategy.StrategicMergePatch));
    expect(s.metadata?.labels).toEqual({ a: "1", b: "2" });
    const bad = statusOf(await rejects(core.patchNamespacedConfigMap({ name: "pp", namespace: ns, body: [{ op: "test", path: "/data/m", value: "x" }] }, patchAs(PatchStrategy.JsonPatch))));
    expect(bad.code).toBe(422);
  });

  it("kubelet-style status patches: strategic merge of conditions by type; malformed status is 422 naming the field", async () => {
    await core.createNamespacedPod({ namespace: ns, body: podBody("st", { nodeName: "n-status" }) });
    const patch = (body: object) => core.patchNamespacedPodStatus({ name: "st", namespace: ns, body }, patchAs(PatchStrategy.StrategicMergePatch));
    await patch({ status: { conditions: [{ type: "Initialized", status: "True" }, { type: "Ready", status: "False" }] } });
    const p = await patch({ status: { phase: "Running", podIP: "10.244.0.9", podIPs: [{ ip: "10.244.0.9" }], conditions: [{ type: "Ready", status: "True" }] } });
    expect(p.status?.conditions?.map((c) => `${c.type}=${c.status}`)).toEqual(["Initialized=True", "Ready=True"]);
    expect(p.status?.phase).toBe("Running");
    const bad = statusOf(await rejects(patch({ status: { phase: "Sleeping" } })));
    expect(bad.code).toBe(422);
    expect(bad.reason).toBe("Invalid");
    expect(bad.details?.causes?.[0]?.field).toBe("status.phase");
    expect(bad.message).toBe('Pod "st" is invalid: status.phase: Unsupported value: "Sleeping": supported values: "Failed", "Pending", "Running", "Succeeded", "Unknown"');
  });

  it("drops unknown fields (fieldValidation Warn), as the real decoder does", async () => {
    const body = { metadata: { name: "uf" }, data: { a: "b" }, datta: { x: "y" } } as unknown as V1ConfigMap;
    const created = await core.createNamespacedConfigMap({ namespace: ns, body });
    expect(created).not.toHaveProperty("datta");
    await core.createNamespacedPod({ namespace: ns, body: podBody("uf-pod", { nodeName: "n-uf" }) });
    const p = await core.patchNamespacedPodStatus({ name: "uf-pod", namespace: ns, body: { status: { podIp: "10.0.0.1", phase: "Running" } } }, patchAs(PatchStrategy.MergePatch));
    expect(p.status?.phase).toBe("Running");
    expect(p.status).not.toHaveProperty("podIp");
  });

  it("graceful deletion of bound pods; immediate for unbound", async () => {
    await core.createNamespacedPod({ namespace: ns, body: podBody("gd", { nodeName: "n-gd", terminationGracePeriodSeconds: 30 }) });
    const d = await core.deleteNamespacedPod({ name: "gd", namespace: ns });
    expect(d.metadata?.deletionGracePeriodSeconds).toBe(30);
    expect(d.metadata?.deletionTimestamp).toBeDefined();
    const still = await core.readNamespacedPod({ name: "gd", namespace: ns });
    expect(still.metadata?.deletionTimestamp).toBeDefined();
    await core.deleteNamespacedPod({ name: "gd", namespace: ns, gracePeriodSeconds: 0 });
    expect(statusOf(await rejects(core.readNamespacedPod({ name: "gd", namespace: ns }))).code).toBe(404);
    await core.createNamespacedPod({ namespace: ns, body: podBody("ud", { schedulerName: "none" }) });
    await core.deleteNamespacedPod({ name: "ud", namespace: ns });
    expect(statusOf(await rejects(core.readNamespacedPod({ name: "ud", namespace: ns }))).code).toBe(404);
  });
});

describe("watch", () => {
  it("an informer follows changes, and relists after 410 Gone", async () => {
    const path = "/api/v1/namespaces/default/configmaps";
    const informer = makeInformer<V1ConfigMap>(kc, path, () => core.listNamespacedConfigMap({ namespace: ns, labelSelector: "inf=yes" }), "inf=yes");
    const seen: string[] = [];
    informer.on("add", (o) => seen.push(`add ${o.metadata?.name ?? ""}`));
    informer.on("update", (o) => seen.push(`update ${o.metadata?.name ?? ""}=${o.data?.["v"] ?? ""}`));
    informer.on("delete", (o) => seen.push(`delete ${o.metadata?.name ?? ""}`));
    informer.on("error", () => undefined);
    await informer.start();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "i1", labels: { inf: "yes" } }, data: { v: "1" } } });
    await core.patchNamespacedConfigMap({ name: "i1", namespace: ns, body: { data: { v: "2" } } }, patchAs(PatchStrategy.MergePatch));
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "other" } } });
    await eventually(() => seen.includes("update i1=2"), { timeoutMs: 10_000, message: "informer update" });
    // Stop the informer, change things, compact the history: the resumed watch gets 410 and relists.
    await informer.stop();
    const rvBefore = (await core.listNamespacedConfigMap({ namespace: ns, labelSelector: "inf=yes" })).metadata?.resourceVersion ?? "";
    await core.deleteNamespacedConfigMap({ name: "i1", namespace: ns });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "i2", labels: { inf: "yes" } } } });
    cp.compact();
    const watchErr: unknown[] = [];
    await new Promise<void>((resolve) => {
      void new Watch(kc).watch(path, { resourceVersion: rvBefore }, (phase, obj: { code?: number; reason?: string }) => {
        if (phase === "ERROR") watchErr.push(obj);
      }, () => resolve());
    });
    expect(watchErr).toMatchObject([{ code: 410, reason: "Expired" }]);
    await informer.start();
    await eventually(() => informer.list().map((o) => o.metadata?.name).join() === "i2", { timeoutMs: 10_000, message: "relist after 410" });
    await informer.stop();
  });

  it("watch filters with field selectors, sends bookmarks and ends at timeoutSeconds", async () => {
    const events: string[] = [];
    let done = false;
    await new Watch(kc).watch(
      "/api/v1/pods",
      { fieldSelector: "spec.nodeName=n-watch", allowWatchBookmarks: true, timeoutSeconds: 1 },
      (phase, obj: { metadata?: { name?: string } }) => events.push(`${phase} ${obj.metadata?.name ?? ""}`),
      () => {
        done = true;
      },
    );
    await core.createNamespacedPod({ namespace: ns, body: podBody("w1", { nodeName: "n-watch" }) });
    await core.createNamespacedPod({ namespace: ns, body: podBody("w2", { nodeName: "n-elsewhere" }) });
    await eventually(() => done, { timeoutMs: 5_000, message: "watch timeout" });
    expect(events).toContain("ADDED w1");
    expect(events).not.toContain("ADDED w2");
    expect(events.some((e) => e.startsWith("BOOKMARK"))).toBe(true);
  });
});

describe("node identity", () => {
  it("a node kubeconfig can write its own Node, Lease and pod status but not others'", async () => {
    const nkc = await cp.nodeKubeConfig("node-a");
    const ncore = nkc.makeApiClient(CoreV1Api);
    const coord = nkc.makeApiClient(CoordinationV1Api);
    await ncore.createNode({ body: { metadata: { name: "node-a" } } });
    const other = statusOf(await rejects(ncore.createNode({ body: { metadata: { name: "node-b" } } })));
    expect([other.code, other.reason]).toEqual([403, "Forbidden"]);
    await coord.createNamespacedLease({ namespace: "kube-node-lease", body: { metadata: { name: "node-a" }, spec: { holderIdentity: "node-a", leaseDurationSeconds: 40 } } });
    await core.createNamespacedPod({ namespace: ns, body: podBody("np-a", { nodeName: "node-a" }) });
    await core.createNamespacedPod({ namespace: ns, body: podBody("np-b", { nodeName: "node-b" }) });
    await ncore.patchNamespacedPodStatus({ name: "np-a", namespace: ns, body: { status: { phase: "Running" } } }, patchAs(PatchStrategy.MergePatch));
    const denied = statusOf(await rejects(ncore.patchNamespacedPodStatus({ name: "np-b", namespace: ns, body: { status: { phase: "Running" } } }, patchAs(PatchStrategy.MergePatch))));
    expect(denied.code).toBe(403);
    // TokenRequest for a pod on this node; the token authenticates against the API.
    const tr = await ncore.createNamespacedServiceAccountToken({
      name: "default",
      namespace: ns,
      body: { spec: { audiences: [], expirationSeconds: 3600, boundObjectRef: { kind: "Pod", apiVersion: "v1", name: "np-a" } } },
    });
    const parts = (tr.status?.token ?? "").split(".");
    expect(parts).toHaveLength(3);
    const claims = JSON.parse(Buffer.from(parts[1] ?? "", "base64url").toString()) as { aud: string[]; exp: number; sub: string };
    expect(claims.sub).toBe("system:serviceaccount:default:default");
    expect(claims.aud).toEqual(["https://kubernetes.default.svc.cluster.local"]);
    const sakc = cp.adminKubeConfig();
    sakc.loadFromOptions({
      clusters: sakc.clusters,
      users: [{ name: "sa", token: tr.status?.token ?? "" }],
      contexts: [{ name: "sa", cluster: sakc.clusters[0]?.name ?? "", user: "sa" }],
      currentContext: "sa",
    });
    const saErr = statusOf(await rejects(sakc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: ns })));
    expect(saErr.message).toContain('User "system:serviceaccount:default:default" cannot list resource "pods"');
  });
});

describe("controllers", () => {
  it("binds pods, allocates podCIDRs, cluster IPs and node ports, and maintains EndpointSlices", async () => {
    await core.createNode({
      body: { metadata: { name: "ready-node", labels: { "topology.kubernetes.io/zone": "zone-a" } }, status: { conditions: [{ type: "Ready", status: "True" }] } },
    });
    await eventually(async () => (await core.readNode({ name: "ready-node" })).spec?.podCIDR !== undefined, { timeoutMs: 5_000, message: "podCIDR" });
    const node = await core.readNode({ name: "ready-node" });
    expect(node.spec?.podCIDR).toMatch(/^10\.244\.\d+\.0\/24$/);
    expect(node.spec?.podCIDRs).toEqual([node.spec?.podCIDR]);

    await core.createNamespacedPod({ namespace: ns, body: podBody("ep-1", {}, { app: "eps" }) });
    await eventually(async () => (await core.readNamespacedPod({ name: "ep-1", namespace: ns })).spec?.nodeName !== undefined, { timeoutMs: 5_000, message: "binding" });
    const bound = await core.readNamespacedPod({ name: "ep-1", namespace: ns });
    expect(bound.spec?.nodeName).toBe("ready-node");
    expect(bound.status?.conditions?.find((c) => c.type === "PodScheduled")?.status).toBe("True");

    const svc = await core.createNamespacedService({ namespace: ns, body: { metadata: { name: "eps" }, spec: { type: "NodePort", selector: { app: "eps" }, ports: [{ name: "http", port: 80, targetPort: "http" }] } } });
    expect(svc.spec?.clusterIP).toMatch(/^10\.(9[6-9]|10\d|11[01])\./);
    expect(svc.spec?.ports?.[0]?.nodePort).toBeGreaterThanOrEqual(30000);

    const disc = kc.makeApiClient(DiscoveryV1Api);
    const slices = async () => (await disc.listNamespacedEndpointSlice({ namespace: ns, labelSelector: "kubernetes.io/service-name=eps" })).items;
    await eventually(async () => (await slices()).length === 1, { timeoutMs: 5_000, message: "slice" });
    expect((await slices())[0]?.endpoints).toEqual([]);

    await core.patchNamespacedPodStatus(
      { name: "ep-1", namespace: ns, body: { status: { phase: "Running", podIP: "10.244.0.10", podIPs: [{ ip: "10.244.0.10" }], conditions: [{ type: "Ready", status: "True" }] } } },
      patchAs(PatchStrategy.StrategicMergePatch),
    );
    await eventually(async () => (await slices())[0]?.endpoints.length === 1, { timeoutMs: 5_000, message: "endpoint" });
    const s = (await slices())[0];
    expect(s?.ports).toEqual([{ name: "http", port: 8080, protocol: "TCP" }]);
    expect(s?.endpoints[0]).toMatchObject({ addresses: ["10.244.0.10"], conditions: { ready: true, serving: true, terminating: false }, nodeName: "ready-node", zone: "zone-a" });

    await core.deleteNamespacedPod({ name: "ep-1", namespace: ns });
    await eventually(async () => (await slices())[0]?.endpoints[0]?.conditions?.terminating === true, { timeoutMs: 5_000, message: "terminating endpoint" });
    expect((await slices())[0]?.endpoints[0]?.conditions).toEqual({ ready: false, serving: true, terminating: true });
    await core.deleteNamespacedPod({ name: "ep-1", namespace: ns, gracePeriodSeconds: 0 });
    await eventually(async () => (await slices())[0]?.endpoints.length === 0, { timeoutMs: 5_000, message: "endpoint removed" });
  });
});
