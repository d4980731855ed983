/** REST semantics of the Api, in-process (no HTTP): what a real kube-apiserver does for each verb. */
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ADMIN, Api, resource, type RequestContext, type WatchEvent } from "../../control-plane/api.ts";
import { Authorizer } from "../../control-plane/authz.ts";
import { Store } from "../../control-plane/store.ts";
import { TokenSigner } from "../../control-plane/tokens.ts";
import { Authenticator } from "../../control-plane/authn.ts";
import { ApiError } from "../../control-plane/status.ts";
import { loadSchemas } from "../../control-plane/validation.ts";
import { toTable } from "../../control-plane/tables.ts";
import type { KubeObject } from "../../control-plane/types.ts";

const pods = resource("", "pods");
const nodes = resource("", "nodes");
const cms = resource("", "configmaps");
const svcs = resource("", "services");
const leases = resource("coordination.k8s.io", "leases");
const nss = resource("", "namespaces");
const sas = resource("", "serviceaccounts");
const events = resource("", "events");
const eventsV1 = resource("events.k8s.io", "events");

let api: Api;
let signer: TokenSigner;

function setup(historyLimit?: number): Api {
  const store = new Store(historyLimit === undefined ? {} : { historyLimit });
  signer = new TokenSigner({ issuer: "https://kubernetes.default.svc.cluster.local" });
  const a = new Api({ store, authorizer: new Authorizer(store), tokens: signer, apiAudiences: ["https://kubernetes.default.svc.cluster.local"], serviceCIDR: "10.96.0.0/24", nodePortRange: [30000, 30010] });
  const authn = new Authenticator(store, signer, a.apiAudiences);
  a.tokenAuthenticator = (t, aud) => authn.authenticateToken(t, aud);
  for (const ns of ["default", "kube-node-lease"]) {
    a.create(ADMIN, nss, "", { metadata: { name: ns } });
    a.create(ADMIN, sas, ns, { metadata: { name: "default" } });
  }
  return a;
}

function pod(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, labels: { app: "x" } }, spec: { containers: [{ name: "c", image: "busybox:1.36" }] }, ...extra };
}

function apiErr(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error("expected an ApiError");
}

const node1: RequestContext = { user: { username: "system:node:n1", groups: ["system:nodes", "system:authenticated"] } };

beforeAll(async () => {
  await loadSchemas();
});

beforeEach(() => {
  api = setup();
});

describe("create", () => {
  it("sets uid, creationTimestamp, resourceVersion, generation, defaults and pod status", () => {
    const p = api.create(ADMIN, pods, "default", pod("a"));
    expect(p.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(p.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Number(p.metadata.resourceVersion)).toBeGreaterThan(0);
    expect(p.metadata.generation).toBe(1);
    expect(p["status"]).toEqual({ phase: "Pending", qosClass: "BestEffort" });
    expect(p).toMatchObject({
      spec: { restartPolicy: "Always", dnsPolicy: "ClusterFirst", terminationGracePeriodSeconds: 30, serviceAccountName: "default", schedulerName: "default-scheduler" },
    });
    const spec = p["spec"] as { containers: { imagePullPolicy: string; volumeMounts: { mountPath: string }[] }[]; volumes: { name: string }[]; tolerations: unknown[] };
    expect(spec.containers[0]?.imagePullPolicy).toBe("IfNotPresent");
    expect(spec.volumes[0]?.name).toMatch(/^kube-api-access-[a-z0-9]{5}$/);
    expect(spec.containers[0]?.volumeMounts[0]?.mountPath).toBe("/var/run/secrets/kubernetes.io/serviceaccount");
    expect(spec.tolerations).toHaveLength(2);
  });

  it("generateName, AlreadyExists, namespace checks", () => {
    const g = api.create(ADMIN, cms, "default", { metadata: { generateName: "cfg-" } });
    expect(g.metadata.name).toMatch(/^cfg-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    api.create(ADMIN, cms, "default", { metadata: { name: "x" } });
    const e = apiErr(() => api.create(ADMIN, cms, "default", { metadata: { name: "x" } }));
    expect([e.code, e.reason, e.message]).toEqual([409, "AlreadyExists", 'configmaps "x" already exists']);
    expect(apiErr(() => api.create(ADMIN, cms, "nope", { metadata: { name: "y" } })).message).toBe('namespaces "nope" not found');
    expect(apiErr(() => api.create(ADMIN, cms, "default", { metadata: { name: "y", namespace: "other" } })).code).toBe(400);
  });

  it("validation errors are 422 Invalid with field causes", () => {
    const e = apiErr(() => api.create(ADMIN, pods, "default", { metadata: { name: "Bad_Name" }, spec: { containers: [{ name: "c" }] } }));
    expect(e.code).toBe(422);
    expect(e.reason).toBe("Invalid");
    expect(e.message).toMatch(/^Pod "Bad_Name" is invalid: \[metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);
    expect(e.details?.causes?.map((c) => c.field)).toEqual(["metadata.name", "spec.containers[0].image"]);
    const t = apiErr(() => api.create(ADMIN, pods, "default", { metadata: { name: "t" }, spec: { containers: "nope" } }));
    expect(t.code).toBe(400);
    expect(t.message).toMatch(/cannot be handled as a Pod/);
  });
});

describe("update and patch", () => {
  it("a stale resourceVersion is 409 Conflict; no-op updates keep the resourceVersion", () => {
    const c = api.create(ADMIN, cms, "default", { metadata: { name: "c" }, data: { a: "1" } });
    const u = api.update(ADMIN, cms, "default", "c", { ...c, data: { a: "2" } });
    expect(Number(u.metadata.resourceVersion)).toBeGreaterThan(Number(c.metadata.resourceVersion));
    const e = apiErr(() => api.update(ADMIN, cms, "default", "c", { ...c, data: { a: "3" } }));
    expect([e.code, e.reason, e.message]).toEqual([
      409,
      "Conflict",
      'Operation cannot be fulfilled on configmaps "c": the object has been modified; please apply your changes to the latest version and try again',
    ]);
    const same = api.update(ADMIN, cms, "default", "c", u);
    expect(same.metadata.resourceVersion).toBe(u.metadata.resourceVersion);
    const noRV = { ...u, metadata: { ...u.metadata } };
    delete noRV.metadata.resourceVersion;
    expect(api.update(ADMIN, cms, "default", "c", { ...noRV, data: { a: "4" } })["data"]).toEqual({ a: "4" });
  });

  it("main resource updates ignore status; status updates ignore everything else; generation counts spec changes", () => {
    const p = api.create(ADMIN, pods, "default", pod("p"));
    const withStatus = api.update(ADMIN, pods, "default", "p", { ...p, metadata: { ...p.metadata, labels: { app: "y" } }, status: { phase: "Running" } }, "status");
    expect(withStatus["status"]).toEqual({ phase: "Running" });
    expect(withStatus.metadata.labels).toEqual({ app: "x" });
    expect(withStatus.metadata.generation).toBe(1);
    const relabeled = api.patch(ADMIN, pods, "default", "p", "merge", { metadata: { labels: { app: "z" } }, status: { phase: "Failed" } });
    expect(relabeled.metadata.labels).toEqual({ app: "z" });
    expect(relabeled["status"]).toEqual({ phase: "Running" });
    expect(relabeled.metadata.generation).toBe(1);
    const newImage = api.patch(ADMIN, pods, "default", "p", "strategic", { spec: { containers: [{ name: "c", image: "busybox:1.37" }] } });
    expect(newImage.metadata.generation).toBe(2);
    const forbidden = apiErr(() => api.patch(ADMIN, pods, "default", "p", "merge", { spec: { nodeName: "elsewhere" } }));
    expect(forbidden.code).toBe(422);
    expect(forbidden.details?.causes?.[0]?.field).toBe("spec");
  });

  it("JSON patch test failures are 422; a patch carrying a stale resourceVersion is 409", () => {
    const c = api.create(ADMIN, cms, "default", { metadata: { name: "c" }, data: { a: "1" } });
    expect(apiErr(() => api.patch(ADMIN, cms, "default", "c", "json", [{ op: "test", path: "/data/a", value: "2" }])).code).toBe(422);
    api.patch(ADMIN, cms, "default", "c", "merge", { data: { a: "2" } });
    expect(apiErr(() => api.patch(ADMIN, cms, "default", "c", "merge", { metadata: { resourceVersion: c.metadata.resourceVersion }, data: { a: "3" } })).reason).toBe("Conflict");
    expect(apiErr(() => api.patch(ADMIN, cms, "default", "missing", "merge", {})).reason).toBe("NotFound");
  });

  it("rejects terminal pod phase transitions and malformed pod IPs in status", () => {
    api.create(ADMIN, pods, "default", pod("s"));
    const bad = apiErr(() => api.patch(ADMIN, pods, "default", "s", "merge", { status: { podIP: "10.0.0.300", podIPs: [{ ip: "10.0.0.300" }] } }, "status"));
    expect(bad.code).toBe(422);
    expect(bad.details?.causes?.map((c) => c.field)).toContain("status.podIPs[0].ip");
    api.patch(ADMIN, pods, "default", "s", "merge", { status: { phase: "Succeeded" } }, "status");
    const back = apiErr(() => api.patch(ADMIN, pods, "default", "s", "merge", { status: { phase: "Running" } }, "status"));
    expect(back.message).toContain("status.phase: Forbidden: may not transition from Succeeded to Running");
  });
});

describe("delete", () => {
  it("unbound pods go at once; bound pods are deleted gracefully and finished with grace 0", () => {
    api.create(ADMIN, pods, "default", pod("unbound"));
    const gone = api.delete(ADMIN, pods, "default", "unbound");
    expect(gone.code).toBe(200);
    expect(api.store.get("core/pods", "default", "unbound")).toBeUndefined();

    api.create(ADMIN, pods, "default", pod("bound", { spec: { nodeName: "n1", containers: [{ name: "c", image: "busybox:1.36" }], terminationGracePeriodSeconds: 20 } }));
    const r = api.delete(ADMIN, pods, "default", "bound");
    const o = r.body as KubeObject;
    expect(o.metadata.deletionGracePeriodSeconds).toBe(20);
    expect(o.metadata.deletionTimestamp).toBeDefined();
    expect(api.store.get("core/pods", "default", "bound")).toBeDefined();
    // A shorter grace period shortens, a longer one does not lengthen.
    expect((api.delete(ADMIN, pods, "default", "bound", { gracePeriodSeconds: 5 }).body as KubeObject).metadata.deletionGracePeriodSeconds).toBe(5);
    expect((api.delete(ADMIN, pods, "default", "bound", { gracePeriodSeconds: 50 }).body as KubeObject).metadata.deletionGracePeriodSeconds).toBe(5);
    api.delete(node1, pods, "default", "bound", { gracePeriodSeconds: 0 });
    expect(api.store.get("core/pods", "default", "bound")).toBeUndefined();
  });

  it("finalizers hold objects until removed; preconditions are checked", () => {
    const c = api.create(ADMIN, cms, "default", { metadata: { name: "f", finalizers: ["example.com/hold"] } });
    const d = api.delete(ADMIN, cms, "default", "f");
    expect(d.code).toBe(200);
    expect((d.body as KubeObject).metadata.deletionTimestamp).toBeDefined();
    const held = api.store.get("core/configmaps", "default", "f");
    expect(held?.metadata.deletionTimestamp).toBeDefined();
    expect(apiErr(() => api.patch(ADMIN, cms, "default", "f", "merge", { metadata: { finalizers: ["example.com/hold", "more"] } })).code).toBe(422);
    api.patch(ADMIN, cms, "default", "f", "json", [{ op: "remove", path: "/metadata/finalizers" }]);
    expect(api.store.get("core/configmaps", "default", "f")).toBeUndefined();
    api.create(ADMIN, cms, "default", { metadata: { name: "g" } });
    expect(apiErr(() => api.delete(ADMIN, cms, "default", "g", { preconditions: { uid: c.metadata.uid ?? "" } })).reason).toBe("Conflict");
    expect(apiErr(() => api.delete(ADMIN, cms, "default", "missing")).message).toBe('configmaps "missing" not found');
  });

  it("deletecollection deletes what the selectors match", () => {
    for (const n of ["a", "b", "c"]) api.create(ADMIN, cms, "default", { metadata: { name: n, labels: { keep: n === "c" ? "yes" : "no" } } });
    const res = api.deleteCollection(ADMIN, cms, "default", { labelSelector: "keep=no" });
    expect(res.items.map((i) => i.metadata.name)).toEqual(["a", "b"]);
    expect(api.list(ADMIN, cms, "default").items.map((i) => i.metadata.name)).toEqual(["c"]);
  });
});

describe("list and watch", () => {
  it("filters by label and field selectors, paginates with continue, and serves older snapshots", () => {
    for (let i = 0; i < 5; i++) api.create(ADMIN, pods, "default", pod(`p${i}`, { spec: { nodeName: i % 2 === 0 ? "n1" : "n2", containers: [{ name: "c", image: "busybox:1.36" }] } }));
    expect(api.list(ADMIN, pods, "", { fieldSelector: "spec.nodeName=n1" }).items.map((p) => p.metadata.name)).toEqual(["p0", "p2", "p4"]);
    expect(api.list(ADMIN, pods, "default", { fieldSelector: "status.phase=Pending,metadata.name!=p0", labelSelector: "app in (x)" }).items).toHaveLength(4);
    expect(apiErr(() => api.list(ADMIN, pods, "", { fieldSelector: "spec.bogus=1" })).message).toBe("field label not supported: spec.bogus");
    const page1 = api.list(ADMIN, pods, "default", { limit: 2 });
    expect(page1.items.map((p) => p.metadata.name)).toEqual(["p0", "p1"]);
    expect(page1.remainingItemCount).toBe(3);
    api.create(ADMIN, pods, "default", pod("p10"));
    const page2 = api.list(ADMIN, pods, "default", { limit: 10, continue: page1.continue ?? "" });
    expect(page2.items.map((p) => p.metadata.name)).toEqual(["p2", "p3", "p4"]);
    expect(page2.resourceVersion).toBe(page1.resourceVersion);
    const exact = api.list(ADMIN, pods, "default", { resourceVersion: page1.resourceVersion, resourceVersionMatch: "Exact" });
    expect(exact.items).toHaveLength(5);
    api.store.compact();
    expect(apiErr(() => api.list(ADMIN, pods, "default", { limit: 10, continue: page1.continue ?? "" })).code).toBe(410);
  });

  it("watch replays from a resourceVersion, filters with transitions, and is 410 when too old", () => {
    api = setup(5);
    const a = api.create(ADMIN, pods, "default", pod("a"));
    api.create(ADMIN, pods, "default", pod("b"));
    const seen: string[] = [];
    const sink = (ev: WatchEvent) => seen.push(`${ev.type} ${String((ev.object as KubeObject).metadata.name)} ${String((ev.object as KubeObject).metadata.resourceVersion)}`);
    const w = api.watch(ADMIN, pods, "default", { resourceVersion: a.metadata.resourceVersion ?? "", labelSelector: "app=x" }, sink);
    const b2 = api.patch(ADMIN, pods, "default", "b", "merge", { metadata: { labels: { app: "other" } } });
    api.patch(ADMIN, pods, "default", "b", "merge", { metadata: { labels: { app: "x" } } });
    w.stop();
    api.patch(ADMIN, pods, "default", "a", "merge", { metadata: { labels: { z: "1" } } });
    expect(seen).toEqual([
      `ADDED b ${Number(a.metadata.resourceVersion) + 1}`,
      `DELETED b ${b2.metadata.resourceVersion ?? ""}`,
      `ADDED b ${Number(b2.metadata.resourceVersion) + 1}`,
    ]);
    for (let i = 0; i < 6; i++) api.create(ADMIN, cms, "default", { metadata: { name: `c${i}` } });
    const e = apiErr(() => api.watch(ADMIN, pods, "default", { resourceVersion: a.metadata.resourceVersion ?? "" }, () => undefined));
    expect([e.code, e.reason]).toEqual([410, "Expired"]);
  });

  it("watch without a resourceVersion starts with ADDED for every object; sendInitialEvents ends with a bookmark", () => {
    api.create(ADMIN, pods, "default", pod("a"));
    const seen: WatchEvent[] = [];
    api.watch(ADMIN, pods, "", { sendInitialEvents: true, resourceVersionMatch: "NotOlderThan", allowWatchBookmarks: true }, (e) => seen.push(e)).stop();
    expect(seen.map((e) => e.type)).toEqual(["ADDED", "BOOKMARK"]);
    expect((seen[1]?.object as KubeObject).metadata.annotations).toEqual({ "k8s.io/initial-events-end": "true" });
  });
});

describe("authorization: node identities", () => {
  beforeEach(() => {
    api.create(ADMIN, nodes, "", { metadata: { name: "n1" } });
    api.create(ADMIN, nodes, "", { metadata: { name: "n2" } });
    api.create(ADMIN, pods, "default", pod("mine", { spec: { nodeName: "n1", containers: [{ name: "c", image: "i:1", env: [{ name: "S", valueFrom: { secretKeyRef: { name: "s1", key: "k" } } }] }] } }));
    api.create(ADMIN, pods, "default", pod("theirs", { spec: { nodeName: "n2", containers: [{ name: "c", image: "i:1" }] } }));
    api.create(ADMIN, resource("", "secrets"), "default", { metadata: { name: "s1" }, data: { k: "dg==" } });
    api.create(ADMIN, resource("", "secrets"), "default", { metadata: { name: "s2" } });
  });

  it("may write only its own Node, Lease and the status of its pods", () => {
    expect(api.patch(node1, nodes, "", "n1", "strategic", { status: { conditions: [{ type: "Ready", status: "True" }] } }, "status")).toBeDefined();
    expect(apiErr(() => api.patch(node1, nodes, "", "n2", "merge", { metadata: { labels: { a: "b" } } })).code).toBe(403);
    expect(api.patch(node1, pods, "default", "mine", "merge", { status: { phase: "Running" } }, "status")).toBeDefined();
    const e = apiErr(() => api.patch(node1, pods, "default", "theirs", "merge", { status: { phase: "Running" } }, "status"));
    expect([e.code, e.reason]).toEqual([403, "Forbidden"]);
    expect(apiErr(() => api.patch(node1, pods, "default", "mine", "merge", { metadata: { labels: { a: "b" } } })).code).toBe(403);
    expect(api.create(node1, leases, "kube-node-lease", { metadata: { name: "n1" }, spec: { holderIdentity: "n1", leaseDurationSeconds: 40 } })).toBeDefined();
    expect(apiErr(() => api.create(node1, leases, "kube-node-lease", { metadata: { name: "n2" }, spec: {} })).code).toBe(403);
    expect(apiErr(() => api.create(node1, pods, "default", pod("new"))).code).toBe(403);
  });

  it("may read only the secrets its pods use", () => {
    expect(api.get(node1, resource("", "secrets"), "default", "s1").metadata.name).toBe("s1");
    const e = apiErr(() => api.get(node1, resource("", "secrets"), "default", "s2"));
    expect(e.message).toBe(
      `secrets "s2" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'n1' and this object`,
    );
    expect(api.list(node1, resource("", "secrets"), "default", { fieldSelector: "metadata.name=s1" }).items).toHaveLength(1);
    expect(apiErr(() => api.list(node1, resource("", "secrets"), "default", {})).code).toBe(403);
  });

  it("token requests are bound to its pods, and the tokens authenticate", () => {
    const mine = api.store.get("core/pods", "default", "mine");
    const tr = api.requestToken(node1, "default", "default", { spec: { audiences: ["api"], expirationSeconds: 3600, boundObjectRef: { kind: "Pod", apiVersion: "v1", name: "mine", uid: mine?.metadata.uid } } });
    const token = (tr["status"] as { token: string }).token;
    const review = api.tokenReview(ADMIN, { spec: { token, audiences: ["api"] } });
    expect(review["status"]).toMatchObject({ authenticated: true, user: { username: "system:serviceaccount:default:default" }, audiences: ["api"] });
    expect(api.tokenReview(ADMIN, { spec: { token, audiences: ["other"] } })["status"]).toMatchObject({ authenticated: false });
    expect(apiErr(() => api.requestToken(node1, "default", "default", { spec: { boundObjectRef: { kind: "Pod", apiVersion: "v1", name: "theirs" } } })).code).toBe(403);
    expect(apiErr(() => api.requestToken(ADMIN, "default", "default", { spec: { expirationSeconds: 60 } })).code).toBe(422);
    api.delete(ADMIN, pods, "default", "mine", { gracePeriodSeconds: 0 });
    expect(api.tokenReview(ADMIN, { spec: { token, audiences: ["api"] } })["status"]).toMatchObject({ authenticated: false });
  });
});

describe("services and events", () => {
  it("allocates cluster IPs and node ports, rejecting taken or out-of-range ones", () => {
    const s = api.create(ADMIN, svcs, "default", { metadata: { name: "s" }, spec: { type: "NodePort", selector: { app: "x" }, ports: [{ port: 80 }] } });
    const spec = s["spec"] as { clusterIP: string; clusterIPs: string[]; ports: { nodePort: number; targetPort: number; protocol: string }[] };
    expect(spec.clusterIP).toMatch(/^10\.96\.0\.\d+$/);
    expect(spec.clusterIPs).toEqual([spec.clusterIP]);
    expect(spec.ports[0]?.nodePort).toBeGreaterThanOrEqual(30000);
    expect(spec.ports[0]).toMatchObject({ targetPort: 80, protocol: "TCP" });
    const dup = apiErr(() => api.create(ADMIN, svcs, "default", { metadata: { name: "t" }, spec: { clusterIP: spec.clusterIP, ports: [{ port: 80 }] } }));
    expect(dup.message).toContain("provided IP is already allocated");
    expect(apiErr(() => api.create(ADMIN, svcs, "default", { metadata: { name: "u" }, spec: { clusterIP: "10.1.0.1", ports: [{ port: 80 }] } })).code).toBe(422);
    expect(apiErr(() => api.create(ADMIN, svcs, "default", { metadata: { name: "v" }, spec: { type: "NodePort", ports: [{ port: 80, nodePort: spec.ports[0]?.nodePort }] } })).message).toContain(
      "provided port is already allocated",
    );
    const updated = api.patch(ADMIN, svcs, "default", "s", "merge", { metadata: { labels: { a: "b" } } });
    expect((updated["spec"] as typeof spec).clusterIP).toBe(spec.clusterIP);
  });

  it("serves core events as events.k8s.io/v1 and back", () => {
    api.create(ADMIN, events, "default", { metadata: { name: "e1" }, involvedObject: { kind: "Pod", name: "p", namespace: "default" }, reason: "Started", message: "hi", type: "Normal", count: 2 });
    const v1 = api.get(ADMIN, eventsV1, "default", "e1");
    expect(v1).toMatchObject({ apiVersion: "events.k8s.io/v1", regarding: { name: "p" }, note: "hi", deprecatedCount: 2 });
    api.create(ADMIN, eventsV1, "default", { metadata: { name: "e2" }, regarding: { kind: "Node", name: "n" }, note: "x", reason: "R", type: "Warning", action: "A", reportingController: "c", reportingInstance: "i", eventTime: "2025-01-01T00:00:00.000000Z" });
    expect(api.get(ADMIN, events, "default", "e2")).toMatchObject({ apiVersion: "v1", involvedObject: { name: "n" }, message: "x", reportingComponent: "c" });
  });

  it("prints pod tables like kubectl", () => {
    api.create(ADMIN, pods, "default", pod("t", { spec: { nodeName: "n1", containers: [{ name: "c", image: "i:1" }] } }));
    api.patch(ADMIN, pods, "default", "t", "merge", { status: { phase: "Running", podIP: "10.244.1.5", podIPs: [{ ip: "10.244.1.5" }], containerStatuses: [{ name: "c", ready: true, restartCount: 2, image: "i:1", imageID: "", state: { running: {} } }] } }, "status");
    const t = toTable(pods, [api.get(ADMIN, pods, "default", "t")], {});
    const rows = t["rows"] as { cells: unknown[] }[];
    expect((t["columnDefinitions"] as { name: string }[]).map((c) => c.name)).toEqual(["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]);
    expect(rows[0]?.cells.slice(0, 4)).toEqual(["t", "1/1", "Running", "2"]);
    expect(rows[0]?.cells.slice(5)).toEqual(["10.244.1.5", "n1", "<none>", "<none>"]);
  });
});
