/**
 * The node lifecycle controller with a real kubelet (periods shortened: a 1 s Lease renewal, a 5 s grace):
 * a node cut off from the API goes Unknown with the unreachable NoSchedule and NoExecute taints after the grace
 * period, not before; the binder holds back pods that do not tolerate them and binds those that do; when the
 * kubelet is back it sets Ready right and the taints go. A pod tolerating unreachable for 2 s is evicted by the
 * taint eviction controller. A pressure condition (written here by hand: the
 * eviction manager is another part's) brings its NoSchedule taint, which goes with the condition.
 */
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { clusterWithOneNode, podsRef } from "../../harness/cluster-suite.ts";
import { eventually, eventuallyGone } from "../../harness/wait.ts";

const GRACE_MS = 5000;
const suite = clusterWithOneNode({ config: { nodeLeaseDurationSeconds: 4, nodeStatusUpdateFrequency: "1s" } }, { nodeLifecycle: { monitorPeriodMs: 500, gracePeriodMs: GRACE_MS } });
const cluster = suite.cluster;
const run = Date.now().toString(36);

const nodeRef = (): { group: string; version: string; resource: string; name: string } => ({ group: "", version: "v1", resource: "nodes", name: suite.node.name });
const getNode = (): Promise<V1Node> => cluster.client.get<V1Node>(nodeRef());
const condition = (n: V1Node, type: string) => n.status?.conditions?.find((c) => c.type === type);
const taints = (n: V1Node): string[] => (n.spec?.taints ?? []).map((t) => `${t.key}:${t.effect}`).sort();

function pod(name: string, tolerations: NonNullable<V1Pod["spec"]>["tolerations"] = [], nodeName?: string): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: { ...(nodeName ? { nodeName } : {}), terminationGracePeriodSeconds: 1, tolerations, containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"] }] },
  };
}

async function ready(): Promise<V1Node> {
  return eventually(async () => {
    const n = await getNode();
    return condition(n, "Ready")?.status === "True" && taints(n).length === 0 ? n : undefined;
  }, { timeoutMs: 60_000, message: "the node Ready and untainted" });
}

describe("node lifecycle controller", () => {
  it("marks a node cut off from the API Unknown and unreachable after the grace period; the binder respects the taints; all is undone when it is back", async () => {
    await ready();
    // Running on the node, tolerating unreachable for 2 s only: the taint eviction controller deletes it.
    const short = `short-${run}`;
    await cluster.client.create(podsRef(), pod(short, [{ key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 2 }], suite.node.name));
    await eventually(async () => (await cluster.client.get<V1Pod>(podsRef(short))).status?.phase === "Running", { timeoutMs: 30_000, message: `${short} to run` });
    const cutAt = Date.now();
    suite.node.apiLink.cut();
    try {
      const lost = await eventually(async () => {
        const n = await getNode();
        return condition(n, "Ready")?.status === "Unknown" && taints(n).length === 2 ? n : undefined;
      }, { timeoutMs: 30_000, message: "the node to be Unknown and tainted" });
      // Not before the grace period after the last heartbeat, which came at most one Lease renewal (1 s) before the cut.
      expect(Date.now() - cutAt).toBeGreaterThanOrEqual(GRACE_MS - 1000);
      expect(condition(lost, "Ready")).toMatchObject({ reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status." });
      expect(condition(lost, "MemoryPressure")?.status).toBe("Unknown");
      expect(taints(lost)).toEqual(["node.kubernetes.io/unreachable:NoExecute", "node.kubernetes.io/unreachable:NoSchedule"]);
      expect(lost.spec?.taints?.find((t) => t.effect === "NoExecute")?.timeAdded).toBeDefined();

      const evicted = await eventually(async () => {
        const p = await cluster.client.get<V1Pod>(podsRef(short));
        return p.metadata?.deletionTimestamp ? p : undefined;
      }, { timeoutMs: 15_000, message: `${short} to be evicted 2 s after the taint` });
      expect(evicted.status?.conditions?.find((c) => c.type === "DisruptionTarget")).toMatchObject({ status: "True", reason: "DeletionByTaintManager" });

      // The binder: a pod without tolerations waits, one tolerating unreachable is bound.
      await cluster.client.create(podsRef(), pod(`waits-${run}`));
      await cluster.client.create(podsRef(), pod(`tolerates-${run}`, [{ key: "node.kubernetes.io/unreachable", operator: "Exists" }]));
      const waiting = await eventually(async () => {
        const p = await cluster.client.get<V1Pod>(podsRef(`waits-${run}`));
        return p.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False") ? p : undefined;
      }, { timeoutMs: 15_000, message: "the pod without tolerations to be unschedulable" });
      expect(waiting.status?.conditions?.find((c) => c.type === "PodScheduled")?.message).toContain("untolerated taint {node.kubernetes.io/unreachable: }");
      const bound = await eventually(async () => (await cluster.client.get<V1Pod>(podsRef(`tolerates-${run}`))).spec?.nodeName, { timeoutMs: 15_000, message: "the tolerating pod to be bound" });
      expect(bound).toBe(suite.node.name);
    } finally {
      suite.node.apiLink.restore();
    }
    // Back: the kubelet puts Ready right (the controller never does), the taints go, the waiting pod is bound.
    const back = await ready();
    expect(condition(back, "Ready")?.reason).toBe("KubeletReady");
    expect(condition(back, "MemoryPressure")?.status).toBe("False");
    const bound = await eventually(async () => (await cluster.client.get<V1Pod>(podsRef(`waits-${run}`))).spec?.nodeName, { timeoutMs: 15_000, message: "the waiting pod to be bound" });
    expect(bound).toBe(suite.node.name);
    // Back, the kubelet finishes the evicted pod's deletion.
    await eventuallyGone(() => cluster.client.get(podsRef(short)), { timeoutMs: 30_000, message: `${short} to go` });
    for (const name of [`waits-${run}`, `tolerates-${run}`]) await cluster.client.delete(podsRef(name), { gracePeriodSeconds: 0 });
  }, 120_000);

  it("taints a node NoSchedule under a pressure condition, and untaints it when the condition clears", async () => {
    const n = await ready();
    const withDisk = (status: "True" | "False"): unknown[] =>
      (n.status?.conditions ?? []).map((c) => (c.type === "DiskPressure" ? { ...c, status, reason: status === "True" ? "KubeletHasDiskPressure" : "KubeletHasNoDiskPressure" } : c));
    await cluster.client.patch({ ...nodeRef(), subresource: "status" }, "merge", { status: { conditions: withDisk("True") } });
    await eventually(async () => (taints(await getNode()).includes("node.kubernetes.io/disk-pressure:NoSchedule") ? true : undefined), { timeoutMs: 15_000, message: "the disk-pressure taint" });
    await cluster.client.patch({ ...nodeRef(), subresource: "status" }, "merge", { status: { conditions: withDisk("False") } });
    await ready();
  }, 60_000);
});
