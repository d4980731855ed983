/**
 * Recovery: a restarted kubelet adopts its running pods without restarting any container; a containerd crash
 * turns the Node NotReady and back while pods survive; a 30 s API outage disturbs no pod and the status
 * catches up after it.
 */
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, type ClusterNode } from "../../harness/cluster.ts";
import { eventually } from "../../harness/wait.ts";

const cluster = new TestCluster();
let node: ClusterNode;
const pods = (name?: string) => ({ group: "", version: "v1", resource: "pods", namespace: "default", ...(name ? { name } : {}) });
const POD_COUNT = 20;

beforeAll(async () => {
  await cluster.start();
  node = await cluster.addNode();
});

afterAll(async () => {
  if (node?.kubelet) console.log(`kubelet log tail:\n${await node.kubelet.logTail(Number(process.env["KUBELET_LOG_LINES"] ?? 30))}`);
  await cluster.teardown();
});

function sleeper(name: string): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: { nodeName: node.name, terminationGracePeriodSeconds: 2, containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"] }] },
  };
}

async function containerIds(): Promise<Map<string, string>> {
  const list = await cluster.client.get<{ items: V1Pod[] }>(pods());
  return new Map(list.items.map((p) => [p.metadata?.name ?? "", `${p.status?.containerStatuses?.[0]?.containerID ?? ""}#${p.status?.containerStatuses?.[0]?.restartCount ?? -1}`]));
}

async function allRunning(): Promise<Map<string, string> | undefined> {
  const list = await cluster.client.get<{ items: V1Pod[] }>(pods());
  const ready = list.items.filter((p) => p.status?.phase === "Running" && p.status.containerStatuses?.[0]?.ready);
  return ready.length === POD_COUNT ? containerIds() : undefined;
}

async function readyCondition(): Promise<{ status?: string; reason?: string; message?: string } | undefined> {
  const n = await cluster.client.get<V1Node>({ group: "", version: "v1", resource: "nodes", name: node.name });
  return n.status?.conditions?.find((c) => c.type === "Ready");
}

describe("recovery", () => {
  it(`adopts ${POD_COUNT} running pods after a kubelet restart without restarting any container`, async () => {
    await Promise.all(Array.from({ length: POD_COUNT }, (_, i) => cluster.client.create(pods(), sleeper(`p${i}`))));
    const before = await eventually(allRunning, { timeoutMs: 90_000, message: `${POD_COUNT} pods running` });
    await node.kubelet?.kill();
    await sleep(1000);
    await node.kubelet?.start();
    // Give the new kubelet time to sync every pod, then nothing may have changed.
    await eventually(async () => ((await readyCondition())?.status === "True" ? true : undefined), { timeoutMs: 60_000, message: "the kubelet to report again" });
    await sleep(5000);
    expect(await containerIds()).toEqual(before);
  }, 180_000);

  it("turns the Node NotReady when containerd dies, Ready when it is back, and the pods survive", async () => {
    const before = await containerIds();
    await node.sandbox.killContainerd();
    const down = await eventually(async () => {
      const c = await readyCondition();
      return c?.status === "False" ? c : undefined;
    }, { timeoutMs: 60_000, message: "NotReady" });
    expect(down.reason).toBe("KubeletNotReady");
    expect(down.message).toMatch(/container runtime/);
    await node.sandbox.startContainerd();
    await eventually(async () => ((await readyCondition())?.status === "True" ? true : undefined), { timeoutMs: 60_000, message: "Ready again" });
    await sleep(3000);
    expect(await containerIds()).toEqual(before);
  }, 150_000);

  it("rides out a 30 s API outage: no pod disturbed, status caught up afterwards", async () => {
    const before = await containerIds();
    node.apiLink.cut();
    // During the outage a container dies: the kubelet restarts it, and can tell the API only later.
    const cri = node.sandbox.criClient();
    const { containers } = await cri.runtime("ListContainers", { filter: { state: { state: "CONTAINER_RUNNING" }, label_selector: { "io.kubernetes.pod.name": "p0" } } });
    const victim = containers.find((c) => c.labels["io.kubernetes.container.name"] === "main");
    expect(victim).toBeDefined();
    await cri.runtime("StopContainer", { container_id: victim?.id ?? "", timeout: 0 });
    await sleep(30_000);
    node.apiLink.restore();
    const after = await eventually(async () => {
      const ids = await containerIds();
      return ids.get("p0")?.endsWith("#1") ? ids : undefined;
    }, { timeoutMs: 60_000, message: "p0's restart to be reported" });
    for (const [name, id] of before) if (name !== "p0") expect(after.get(name), name).toBe(id);
    expect((await readyCondition())?.status).toBe("True");
  }, 150_000);
});
