import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { ADMIN, Api, resource } from "../../control-plane/api.ts";
import { Authorizer } from "../../control-plane/authz.ts";
import { Store } from "../../control-plane/store.ts";
import { TokenSigner } from "../../control-plane/tokens.ts";
import { loadSchemas } from "../../control-plane/validation.ts";
import type { KubeObject } from "../../control-plane/types.ts";
import { evictionDelay, TaintEvictionController } from "../../control-plane/controllers/taint-eviction.ts";
import { eventually } from "../../harness/wait.ts";

const nodes = resource("", "nodes");
const pods = resource("", "pods");
const events = resource("", "events");
const nss = resource("", "namespaces");
const sas = resource("", "serviceaccounts");
const UNREACHABLE = { key: "node.kubernetes.io/unreachable", effect: "NoExecute" };

describe("evictionDelay (upstream's getMinTolerationTime over the tolerations used)", () => {
  const pod = (tolerations: unknown[]): KubeObject => ({ metadata: { name: "p" }, spec: { tolerations } });
  it("is now for an untolerated NoExecute taint, the smallest bounded toleration, or never", () => {
    expect(evictionDelay(pod([]), [UNREACHABLE])).toBe("now");
    expect(evictionDelay(pod([]), [{ key: "x", effect: "NoSchedule" }])).toBeUndefined();
    expect(evictionDelay(pod([{ key: UNREACHABLE.key, operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 }]), [UNREACHABLE])).toBe(300);
    expect(evictionDelay(pod([{ operator: "Exists" }]), [UNREACHABLE])).toBeUndefined();
    expect(evictionDelay(pod([{ operator: "Exists" }, { key: UNREACHABLE.key, operator: "Exists", tolerationSeconds: 30 }]), [UNREACHABLE])).toBe(30);
    expect(evictionDelay(pod([{ key: UNREACHABLE.key, operator: "Exists", tolerationSeconds: 0 }]), [UNREACHABLE])).toBe("now");
    expect(evictionDelay(pod([{ key: UNREACHABLE.key, operator: "Exists", tolerationSeconds: 30 }]), [UNREACHABLE, { key: "other", effect: "NoExecute" }])).toBe("now");
  });
});

describe("TaintEvictionController on the API", () => {
  let api: Api;
  let clock = 0;
  const controllers: TaintEvictionController[] = [];
  beforeAll(async () => {
    await loadSchemas();
  });
  afterEach(() => {
    for (const c of controllers.splice(0)) c.close();
  });

  function setup(taints: unknown[]): TaintEvictionController {
    const store = new Store({});
    api = new Api({ store, authorizer: new Authorizer(store), tokens: new TokenSigner({ issuer: "https://kubernetes.default.svc.cluster.local" }), apiAudiences: ["https://kubernetes.default.svc.cluster.local"], serviceCIDR: "10.96.0.0/24", nodePortRange: [30000, 30010] });
    for (const ns of ["default", "kube-node-lease"]) {
      api.create(ADMIN, nss, "", { metadata: { name: ns } });
      api.create(ADMIN, sas, ns, { metadata: { name: "default" } });
    }
    api.create(ADMIN, nodes, "", { metadata: { name: "n1" }, spec: { taints } });
    clock = 1_000_000;
    const c = new TaintEvictionController(api, pino({ level: "silent" }), { now: () => clock });
    controllers.push(c);
    return c;
  }
  const createPod = (name: string, tolerations: unknown[]): void => {
    api.create(ADMIN, pods, "default", { metadata: { name }, spec: { nodeName: "n1", tolerations, containers: [{ name: "c", image: "busybox" }] } });
  };
  const get = (name: string): KubeObject | undefined => api.store.get(pods.storage, "default", name);

  it("deletes at once a pod that does not tolerate the node's NoExecute taint, with DisruptionTarget and an event", async () => {
    const c = setup([{ key: "example.com/broken", effect: "NoExecute" }]);
    // The API server gives every pod the default 300 s tolerations of not-ready and unreachable: not this taint's.
    createPod("p", []);
    c.start();
    const p = await eventually(() => get("p")?.metadata.deletionTimestamp !== undefined && get("p"), { timeoutMs: 5000, message: "p to be deleted" });
    expect((p.status as { conditions?: unknown[] }).conditions).toContainEqual(expect.objectContaining({ type: "DisruptionTarget", status: "True", reason: "DeletionByTaintManager" }));
    expect(api.store.list(events.storage, "default").map((e) => (e as unknown as { reason: string; message: string }).message)).toContain("Marking for deletion Pod default/p");
  });

  it("waits out a bounded toleration, counted from when it first saw the pod under the taint; cancels when the taint goes", async () => {
    const c = setup([UNREACHABLE]);
    createPod("p", []); // the default 300 s toleration
    createPod("q", []);
    c.start();
    await eventually(() => c.waitingPods().length === 2, { timeoutMs: 5000, message: "both pods to wait out their toleration" });
    expect(get("p")?.metadata.deletionTimestamp).toBeUndefined();
    clock += 300_000;
    api.patch(ADMIN, pods, "default", "p", "merge", { metadata: { labels: { touched: "yes" } } });
    await eventually(() => get("p")?.metadata.deletionTimestamp !== undefined, { timeoutMs: 5000, message: "p to be deleted once its 300 s are over" });
    // The node recovers before q's time: q's wait is cancelled, and q stays.
    api.patch(ADMIN, nodes, "", "n1", "merge", { spec: { taints: [] } });
    await eventually(() => c.waitingPods().length === 0, { timeoutMs: 5000, message: "q's wait to be cancelled" });
    expect(get("q")?.metadata.deletionTimestamp).toBeUndefined();
  });
});
