/**
 * Recovery: a restarted kubelet adopts its running pods without restarting any container; a containerd crash
 * turns the Node NotReady and back while pods survive; a 30 s API outage disturbs no pod and the status
 * catches up after it. "Not restarted" is judged by CRI (container ids and start times), once an event shows
 * the kubelet has caught up, never after a pause.
 */
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { clusterWithOneNode, podsRef } from "../../harness/cluster-suite.ts";
import { eventually, pollUntil } from "../../harness/wait.ts";
import { criContainers } from "../../harness/cri-pods.ts";

const suite = clusterWithOneNode();
const cluster = suite.cluster;
const pods = podsRef;
const POD_COUNT = 20;

function sleeper(name: string): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: { nodeName: suite.node.name, terminationGracePeriodSeconds: 2, containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"] }] },
  };
}

const isWorkload = (name: string): boolean => /^p\d+$/.test(name);

/** The API's view: container id and restart count per workload pod. */
async function containerIds(): Promise<Map<string, string>> {
  const list = await cluster.client.get<{ items: V1Pod[] }>(pods());
  return new Map(list.items.filter((p) => isWorkload(p.metadata?.name ?? "")).map((p) => [p.metadata?.name ?? "", `${p.status?.containerStatuses?.[0]?.containerID ?? ""}#${p.status?.containerStatuses?.[0]?.restartCount ?? -1}`]));
}

/** The runtime's view, the source of truth: the running container of each workload pod, its id and start time. */
async function runtimeContainers(): Promise<Map<string, string>> {
  const facts = await criContainers(suite.node.sandbox.criClient());
  const running = facts.filter((f) => isWorkload(f.podName) && f.containerName === "main" && f.state === "CONTAINER_RUNNING");
  return new Map(running.map((f) => [f.podName, `containerd://${f.id} started ${f.startedAt}`]));
}

async function allRunning(): Promise<Map<string, string> | undefined> {
  const list = await cluster.client.get<{ items: V1Pod[] }>(pods());
  const ready = list.items.filter((p) => isWorkload(p.metadata?.name ?? "") && p.status?.phase === "Running" && p.status.containerStatuses?.[0]?.ready);
  return ready.length === POD_COUNT ? containerIds() : undefined;
}

async function readyCondition(): Promise<{ status?: string; reason?: string; message?: string } | undefined> {
  const n = await cluster.client.get<V1Node>({ group: "", version: "v1", resource: "nodes", name: suite.node.name });
  return n.status?.conditions?.find((c) => c.type === "Ready");
}

/** Each API container id is the one CRI runs, and nothing else runs. */
function expectSameContainers(api: Map<string, string>, runtime: Map<string, string>): void {
  expect([...runtime.keys()].sort()).toEqual([...api.keys()].sort());
  for (const [name, id] of api) expect(runtime.get(name)?.startsWith(`${id.split("#")[0] ?? "?"} `), name).toBe(true);
}

/**
 * Restarts the witness pod's container behind the kubelet's back and waits until the API shows the new one:
 * proof that the kubelet has relisted the runtime and acted on what it found since the moment of the call.
 */
async function witnessRestart(): Promise<void> {
  const cri = suite.node.sandbox.criClient();
  const [current] = (await criContainers(cri, { "io.kubernetes.pod.name": "witness" })).filter((f) => f.state === "CONTAINER_RUNNING");
  if (!current) throw new Error("the witness pod runs no container");
  await cri.runtime("StopContainer", { container_id: current.id, timeout: 0 });
  await eventually(async () => {
    const [next] = (await criContainers(cri, { "io.kubernetes.pod.name": "witness" })).filter((f) => f.state === "CONTAINER_RUNNING");
    const w = await cluster.client.get<V1Pod>(pods("witness"));
    return next && next.id !== current.id && w.status?.containerStatuses?.[0]?.containerID === `containerd://${next.id}` && w.status.containerStatuses[0].ready;
  }, { timeoutMs: 60_000, message: "the witness pod's restart to be reported" });
}

describe("recovery", () => {
  it(`adopts ${POD_COUNT} running pods after a kubelet restart without restarting any container`, async () => {
    await Promise.all([...Array.from({ length: POD_COUNT }, (_, i) => cluster.client.create(pods(), sleeper(`p${i}`))), cluster.client.create(pods(), sleeper("witness"))]);
    const before = await eventually(allRunning, { timeoutMs: 90_000, message: `${POD_COUNT} pods running` });
    const runtimeBefore = await runtimeContainers();
    expectSameContainers(before, runtimeBefore);
    await suite.node.kubelet?.kill();
    // While no kubelet runs, every pod is marked not Ready in the API (as the node lifecycle controller does to
    // the pods of an unreachable node). Only a kubelet that has synced a pod sets its Ready back: the event
    // that proves the new kubelet has looked at every pod, after which nothing may have changed.
    for (let i = 0; i < POD_COUNT; i++) {
      await cluster.client.patch({ ...pods(`p${i}`), subresource: "status" }, "strategic", {
        status: { conditions: [{ type: "Ready", status: "False", reason: "KubeletRestartWitness", message: "set by the test while the kubelet was down" }] },
      });
    }
    await suite.node.kubelet?.start();
    await pollUntil(() => cluster.client.get<{ items: V1Pod[] }>(pods()), (list) => {
      const workload = list.items.filter((p) => isWorkload(p.metadata?.name ?? ""));
      return workload.length === POD_COUNT && workload.every((p) => p.status?.conditions?.find((c) => c.type === "Ready")?.status === "True");
    }, { timeoutMs: 60_000, message: "the restarted kubelet to report every pod Ready again" });
    expect(await runtimeContainers()).toEqual(runtimeBefore);
    expect(await containerIds()).toEqual(before);
  }, 180_000);

  it("turns the Node NotReady when containerd dies, Ready when it is back, and the pods survive", async () => {
    // Ready first: right after the previous test's restart the Node may still show the restart's NotReady
    // (PLEG not yet relisted), which the check below would take for the runtime's outage.
    await eventually(async () => ((await readyCondition())?.status === "True" ? true : undefined), { timeoutMs: 60_000, message: "Ready before the outage" });
    const before = await containerIds();
    const runtimeBefore = await runtimeContainers();
    await suite.node.sandbox.killContainerd();
    const down = await eventually(async () => {
      const c = await readyCondition();
      return c?.status === "False" ? c : undefined;
    }, { timeoutMs: 60_000, message: "NotReady" });
    expect(down.reason).toBe("KubeletNotReady");
    expect(down.message).toMatch(/container runtime/);
    await suite.node.sandbox.startContainerd();
    await eventually(async () => ((await readyCondition())?.status === "True" ? true : undefined), { timeoutMs: 60_000, message: "Ready again" });
    // The kubelet has relisted the runtime that came back and acted on it; the pods' containers are the same.
    await witnessRestart();
    expect(await runtimeContainers()).toEqual(runtimeBefore);
    expect(await containerIds()).toEqual(before);
  }, 150_000);

  it("rides out a 30 s API outage: no pod disturbed, status caught up afterwards", async () => {
    const before = await containerIds();
    const runtimeBefore = await runtimeContainers();
    const cutAt = Date.now();
    suite.node.apiLink.cut();
    // During the outage a container dies: the kubelet restarts it (CRI shows it), and can tell the API only later.
    const cri = suite.node.sandbox.criClient();
    const victim = (await criContainers(cri, { "io.kubernetes.pod.name": "p0" })).find((f) => f.containerName === "main" && f.state === "CONTAINER_RUNNING");
    expect(victim).toBeDefined();
    await cri.runtime("StopContainer", { container_id: victim?.id ?? "", timeout: 0 });
    const replacement = await pollUntil(
      async () => (await criContainers(cri, { "io.kubernetes.pod.name": "p0" })).find((f) => f.containerName === "main" && f.state === "CONTAINER_RUNNING"),
      (f) => f !== undefined && f.id !== victim?.id,
      { timeoutMs: 30_000, message: "the kubelet to restart p0's container during the outage" },
    );
    expect(replacement?.attempt).toBe(1);
    // The outage lasts its full 30 s (the length the test is about, not a wait for something).
    await new Promise((r) => setTimeout(r, Math.max(0, cutAt + 30_000 - Date.now())));
    suite.node.apiLink.restore();
    const after = await eventually(async () => {
      const ids = await containerIds();
      return ids.get("p0") === `containerd://${replacement?.id ?? "?"}#1` ? ids : undefined;
    }, { timeoutMs: 60_000, message: "p0's restart to be reported" });
    for (const [name, id] of before) if (name !== "p0") expect(after.get(name), name).toBe(id);
    const runtimeAfter = await runtimeContainers();
    for (const [name, c] of runtimeBefore) if (name !== "p0") expect(runtimeAfter.get(name), name).toBe(c);
    expectSameContainers(after, runtimeAfter);
    expect((await readyCondition())?.status).toBe("True");
  }, 150_000);
});
