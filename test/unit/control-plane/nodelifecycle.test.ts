import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { ADMIN, Api, resource } from "../../control-plane/api.ts";
import { Authorizer } from "../../control-plane/authz.ts";
import { Store } from "../../control-plane/store.ts";
import { TokenSigner } from "../../control-plane/tokens.ts";
import { loadSchemas } from "../../control-plane/validation.ts";
import type { KubeObject } from "../../control-plane/types.ts";
import { desiredTaints, NodeLifecycleController, reconcileTaints, unknownConditions, type Taint } from "../../control-plane/controllers/nodelifecycle.ts";
import { BinderController, nodeFits } from "../../control-plane/controllers/binder.ts";
import { eventually } from "../../harness/wait.ts";

const nodes = resource("", "nodes");
const pods = resource("", "pods");
const leases = resource("coordination.k8s.io", "leases");
const nss = resource("", "namespaces");
const sas = resource("", "serviceaccounts");
const T0 = Date.parse("2026-12-03T10:00:00Z");

const condition = (type: string, status: string, heartbeat = "2026-12-03T10:00:00Z"): Record<string, unknown> => ({ type, status, reason: `${type}${status}`, message: "", lastHeartbeatTime: heartbeat, lastTransitionTime: "2026-12-03T09:00:00Z" });
const nodeObj = (conditions: Record<string, unknown>[], spec: Record<string, unknown> = {}): KubeObject => ({ metadata: { name: "n1", creationTimestamp: "2026-12-03T08:00:00Z" }, spec, status: { conditions } });
const healthy = (): Record<string, unknown>[] => [condition("Ready", "True"), condition("MemoryPressure", "False"), condition("DiskPressure", "False"), condition("PIDPressure", "False")];

describe("node lifecycle: taints from conditions (pure)", () => {
  it("maps conditions and spec.unschedulable to upstream's NoSchedule taints and Ready to the NoExecute ones", () => {
    expect(desiredTaints(nodeObj(healthy()))).toEqual({ noSchedule: [], noExecute: [] });
    expect(desiredTaints(nodeObj([condition("Ready", "False"), condition("MemoryPressure", "True"), condition("DiskPressure", "True"), condition("PIDPressure", "True"), condition("NetworkUnavailable", "True")], { unschedulable: true }))).toEqual({
      noSchedule: ["node.kubernetes.io/disk-pressure", "node.kubernetes.io/memory-pressure", "node.kubernetes.io/network-unavailable", "node.kubernetes.io/not-ready", "node.kubernetes.io/pid-pressure", "node.kubernetes.io/unschedulable"],
      noExecute: ["node.kubernetes.io/not-ready"],
    });
    expect(desiredTaints(nodeObj([condition("Ready", "Unknown")]))).toEqual({ noSchedule: ["node.kubernetes.io/unreachable"], noExecute: ["node.kubernetes.io/unreachable"] });
  });

  it("adds and removes only the taints it owns, stamping new NoExecute ones, and reports no change as undefined", () => {
    const now = new Date(T0);
    const mine: Taint = { key: "example.com/dedicated", value: "gpu", effect: "NoSchedule" };
    const unreachable = nodeObj([condition("Ready", "Unknown"), condition("MemoryPressure", "True")]);
    const tainted = reconcileTaints([mine], unreachable, now);
    expect(tainted).toEqual([
      mine,
      { key: "node.kubernetes.io/memory-pressure", effect: "NoSchedule" },
      { key: "node.kubernetes.io/unreachable", effect: "NoSchedule" },
      { key: "node.kubernetes.io/unreachable", effect: "NoExecute", timeAdded: "2026-12-03T10:00:00Z" },
    ]);
    expect(reconcileTaints(tainted ?? [], unreachable, now)).toBeUndefined();
    // Back to healthy: the owned taints go, the user's stays.
    expect(reconcileTaints(tainted ?? [], nodeObj(healthy()), now)).toEqual([mine]);
  });

  it("sets every monitored condition Unknown with upstream's reasons, keeping heartbeats and adding those never posted", () => {
    const now = new Date(T0 + 60_000);
    const out = unknownConditions(nodeObj([condition("Ready", "True"), condition("NetworkUnavailable", "False")]), now) as Record<string, unknown>[];
    expect(out.find((c) => c["type"] === "Ready")).toEqual({ type: "Ready", status: "Unknown", reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status.", lastHeartbeatTime: "2026-12-03T10:00:00Z", lastTransitionTime: "2026-12-03T10:01:00Z" });
    expect(out.find((c) => c["type"] === "NetworkUnavailable")).toMatchObject({ status: "False" });
    expect(out.find((c) => c["type"] === "PIDPressure")).toEqual({ type: "PIDPressure", status: "Unknown", reason: "NodeStatusNeverUpdated", message: "Kubelet never posted node status.", lastHeartbeatTime: "2026-12-03T08:00:00Z", lastTransitionTime: "2026-12-03T10:01:00Z" });
    expect(unknownConditions(nodeObj(out), now)).toBeUndefined();
  });
});

describe("NodeLifecycleController and the binder on the API", () => {
  let api: Api;
  let clock = T0;
  const controllers: { close(): void }[] = [];
  beforeAll(async () => {
    await loadSchemas();
  });
  afterEach(() => {
    for (const c of controllers.splice(0)) c.close();
  });

  function setup(): NodeLifecycleController {
    const store = new Store({});
    api = new Api({ store, authorizer: new Authorizer(store), tokens: new TokenSigner({ issuer: "https://kubernetes.default.svc.cluster.local" }), apiAudiences: ["https://kubernetes.default.svc.cluster.local"], serviceCIDR: "10.96.0.0/24", nodePortRange: [30000, 30010] });
    for (const ns of ["default", "kube-node-lease"]) {
      api.create(ADMIN, nss, "", { metadata: { name: ns } });
      api.create(ADMIN, sas, ns, { metadata: { name: "default" } });
    }
    clock = T0;
    const c = new NodeLifecycleController(api, pino({ level: "silent" }), { monitorPeriodMs: 3_600_000, gracePeriodMs: 40_000, now: () => clock });
    controllers.push(c);
    return c;
  }
  const node = (): KubeObject => api.store.get(nodes.storage, undefined, "n1") as KubeObject;
  const taints = (): string[] => ((node().spec as { taints?: Taint[] }).taints ?? []).map((t) => `${t.key}:${t.effect}`);
  const ready = (): unknown => ((node().status as { conditions: { type: string; status: string }[] }).conditions.find((c) => c.type === "Ready") ?? {}).status;

  it("taints a node under memory pressure NoSchedule, and untaints it when the pressure is gone", async () => {
    const c = setup();
    api.create(ADMIN, nodes, "", { metadata: { name: "n1" }, status: { conditions: healthy() } });
    c.start();
    c.monitor();
    expect(taints()).toEqual([]);
    const pressure = healthy().map((x) => (x["type"] === "MemoryPressure" ? { ...x, status: "True" } : x));
    api.patch(ADMIN, nodes, "", "n1", "merge", { status: { conditions: pressure } }, "status");
    await eventually(() => taints().length > 0, { timeoutMs: 5000, message: "the memory-pressure taint" });
    expect(taints()).toEqual(["node.kubernetes.io/memory-pressure:NoSchedule"]);
    api.patch(ADMIN, nodes, "", "n1", "merge", { status: { conditions: healthy() } }, "status");
    await eventually(() => taints().length === 0, { timeoutMs: 5000, message: "the taint to go" });
  });

  it("marks a node whose kubelet stopped posting Unknown and unreachable after the grace period, not before; a renewed Lease counts as posting", async () => {
    const c = setup();
    api.create(ADMIN, nodes, "", { metadata: { name: "n1" }, status: { conditions: healthy() } });
    api.create(ADMIN, leases, "kube-node-lease", { metadata: { name: "n1" }, spec: { holderIdentity: "n1", renewTime: "2026-12-03T10:00:00.000000Z" } });
    c.start();
    c.monitor();
    clock = T0 + 30_000;
    api.patch(ADMIN, leases, "kube-node-lease", "n1", "merge", { spec: { renewTime: "2026-12-03T10:00:30.000000Z" } });
    c.monitor();
    // 45 s after the first sighting, but only 15 s after the Lease's renewal.
    clock = T0 + 45_000;
    c.monitor();
    expect(ready()).toBe("True");
    clock = T0 + 71_000;
    c.monitor();
    expect(ready()).toBe("Unknown");
    expect(taints()).toEqual(["node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute"]);
    // The kubelet is back with a Ready=True status: the taints go.
    api.patch(ADMIN, nodes, "", "n1", "merge", { status: { conditions: healthy().map((x) => ({ ...x, lastHeartbeatTime: "2026-12-03T10:01:11Z" })) } }, "status");
    await eventually(() => taints().length === 0, { timeoutMs: 5000, message: "the taints to go" });
  });

  it("the binder binds to a node only if the pod tolerates its NoSchedule and NoExecute taints", async () => {
    setup();
    const binder = new BinderController(api, pino({ level: "silent" }));
    controllers.push(binder);
    const tainted = nodeObj(healthy(), { taints: [{ key: "node.kubernetes.io/memory-pressure", effect: "NoSchedule" }, { key: "example.com/x", value: "a", effect: "NoExecute" }] });
    const podWith = (tolerations: unknown[]): KubeObject => ({ metadata: { name: "p" }, spec: { tolerations } });
    expect(nodeFits(podWith([]), tainted)).toBe("node(s) had untolerated taint {node.kubernetes.io/memory-pressure: }");
    expect(nodeFits(podWith([{ key: "node.kubernetes.io/memory-pressure", operator: "Exists", effect: "NoSchedule" }]), tainted)).toBe("node(s) had untolerated taint {example.com/x: a}");
    expect(nodeFits(podWith([{ key: "node.kubernetes.io/memory-pressure", operator: "Exists" }, { key: "example.com/x", value: "a" }]), tainted)).toBeUndefined();
    expect(nodeFits(podWith([{ operator: "Exists" }]), tainted)).toBeUndefined();
    // A node not Ready and not yet tainted counts as tainted not-ready, which a pod may tolerate.
    const notReady = nodeObj([condition("Ready", "False")]);
    expect(nodeFits(podWith([]), notReady)).toBe("node(s) had untolerated taint {node.kubernetes.io/not-ready: }");
    expect(nodeFits(podWith([{ key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoSchedule" }]), notReady)).toBeUndefined();

    // End to end on the API: a pod stays pending on the tainted node, and is bound once it tolerates.
    api.create(ADMIN, nodes, "", { metadata: { name: "n1" }, spec: { taints: [{ key: "node.kubernetes.io/disk-pressure", effect: "NoSchedule" }] }, status: { conditions: healthy() } });
    binder.start();
    api.create(ADMIN, pods, "default", { metadata: { name: "p1" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
    api.create(ADMIN, pods, "default", { metadata: { name: "p2" }, spec: { containers: [{ name: "c", image: "busybox" }], tolerations: [{ key: "node.kubernetes.io/disk-pressure", operator: "Exists", effect: "NoSchedule" }] } });
    const get = (n: string): KubeObject => api.store.get(pods.storage, "default", n) as KubeObject;
    // p1's Unschedulable condition shows the binder has decided about it (both are in the same batch).
    await eventually(() => ((get("p1").status as { conditions?: unknown[] }).conditions ?? []).length > 0 && (get("p2").spec as { nodeName?: string }).nodeName !== undefined, { timeoutMs: 5000, message: "the binder's decisions" });
    expect((get("p2").spec as { nodeName?: string }).nodeName).toBe("n1");
    expect((get("p1").spec as { nodeName?: string }).nodeName).toBeUndefined();
    expect((get("p1").status as { conditions?: { message: string }[] }).conditions?.[0]?.message).toContain("1 node(s) had untolerated taint {node.kubernetes.io/disk-pressure: }");
  });
});
