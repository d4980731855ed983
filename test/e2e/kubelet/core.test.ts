/**
 * The kubelet's core on a real node: static pods of the same full name never run at once across a manifest
 * edit (judged from CRI's own timestamps); a mirror pod whose manifest was removed while the kubelet was down is
 * deleted once it is back; and after a restart, pods are admitted in creation order, not in list order.
 * (Per-pod cancellation of an image pull is pull-cancel.test.ts.)
 */
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { eventually } from "../../harness/wait.ts";
import { clusterWithOneNode, podsRef } from "../../harness/cluster-suite.ts";
import { nsToMs } from "../../../kubelet/runtime/runtime-manager.ts";

const suite = clusterWithOneNode();
const cluster = suite.cluster;
const pods = podsRef;

async function getPod(name: string): Promise<V1Pod | undefined> {
  return cluster.client.get<V1Pod>(pods(name)).catch(() => undefined);
}

async function nodeReady(): Promise<V1Node | undefined> {
  const n = await cluster.client.get<V1Node>({ group: "", version: "v1", resource: "nodes", name: suite.node.name });
  return n.status?.conditions?.find((c) => c.type === "Ready")?.status === "True" ? n : undefined;
}

/** A static pod whose container takes `stopSeconds` to stop after SIGTERM; `version` changes its uid. */
function manifest(name: string, version: string, stopSeconds = 0): string {
  const script = stopSeconds > 0 ? `trap 'sleep ${stopSeconds}; exit 0' TERM; while true; do sleep 1; done` : "exec sleep 3600";
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { version } },
    spec: { terminationGracePeriodSeconds: 10, containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", script] }] },
  });
}

interface Seen {
  uid: string;
  startedAt: number;
  finishedAt: number;
}

describe("static pods", () => {
  it("starts the pod of an edited manifest only once the previous one, of the same full name, has stopped", async () => {
    const file = join(suite.node.sandbox.dir, "manifests", "serial.json");
    const podName = `serial-${suite.node.name}`;
    await writeFile(file, manifest("serial", "1", 3));
    const first = await eventually(async () => {
      const p = await getPod(podName);
      return p?.status?.phase === "Running" && p.status.containerStatuses?.[0]?.ready ? p : undefined;
    }, { message: "the first version to run", timeoutMs: 60_000 });
    const cri = suite.node.sandbox.criClient();
    // Watch the node's containers of that pod name through the change, as CRI reports them.
    const seen = new Map<string, Seen>();
    const sandboxCreated = new Map<string, number>();
    const sample = async (): Promise<void> => {
      const { containers } = await cri.runtime("ListContainers", { filter: { label_selector: { "io.kubernetes.pod.name": podName } } });
      for (const c of containers) {
        const st = await cri.runtime("ContainerStatus", { container_id: c.id }).catch(() => undefined);
        if (!st?.status) continue;
        seen.set(c.id, { uid: c.labels["io.kubernetes.pod.uid"] ?? "", startedAt: nsToMs(st.status.started_at), finishedAt: nsToMs(st.status.finished_at) });
      }
      const { items } = await cri.runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.name": podName } } });
      for (const s of items) sandboxCreated.set(s.labels["io.kubernetes.pod.uid"] ?? "", nsToMs(s.created_at));
    };
    await sample();
    const oldUid = [...seen.values()][0]?.uid;
    expect(oldUid).toBeTruthy();

    await writeFile(file, manifest("serial", "2", 3));
    const newContainer = await eventually(async () => {
      await sample();
      const c = [...seen.values()].find((s) => s.uid !== oldUid && s.startedAt > 0);
      return c;
    }, { message: "the second version's container to run", timeoutMs: 60_000, intervalMs: 100 });
    const oldContainer = [...seen.values()].find((s) => s.uid === oldUid);
    // The old container's end was seen (it takes 3 s to stop, and stays until its pod is cleaned up).
    expect(oldContainer?.finishedAt, "the old container's finishedAt as CRI reported it").toBeGreaterThan(0);
    const newSandboxCreated = sandboxCreated.get(newContainer.uid) ?? 0;
    expect(newSandboxCreated).toBeGreaterThanOrEqual(oldContainer?.finishedAt ?? Infinity);
    expect(newContainer.startedAt).toBeGreaterThanOrEqual(oldContainer?.finishedAt ?? Infinity);
    expect(first.metadata?.uid).toBeTruthy();
    await rm(file);
    await eventually(async () => {
      const { items } = await cri.runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.name": podName } } });
      return items.length === 0 ? true : undefined;
    }, { message: "the static pod's sandboxes to go", timeoutMs: 60_000 });
  }, 180_000);

  it("deletes a mirror pod whose manifest was removed while the kubelet was down, and stops its pod", async () => {
    const file = join(suite.node.sandbox.dir, "manifests", "orphan.json");
    const podName = `orphan-${suite.node.name}`;
    await writeFile(file, manifest("orphan", "1"));
    const mirror = await eventually(async () => {
      const p = await getPod(podName);
      return p?.status?.phase === "Running" ? p : undefined;
    }, { message: "the mirror pod to report Running", timeoutMs: 60_000 });
    await suite.node.kubelet?.stop();
    await rm(file);
    await suite.node.kubelet?.start();
    await eventually(async () => {
      const p = await getPod(podName);
      return p?.metadata?.uid === mirror.metadata?.uid ? undefined : true;
    }, { message: "the orphaned mirror pod to be deleted", timeoutMs: 60_000 });
    expect((await getPod(podName))?.metadata?.uid).not.toBe(mirror.metadata?.uid);
    await eventually(async () => {
      const { items } = await suite.node.sandbox.criClient().runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.name": podName } } });
      return items.length === 0 ? true : undefined;
    }, { message: "the static pod's sandbox to go", timeoutMs: 60_000 });
  }, 150_000);
});

describe("admission after a restart", () => {
  it("admits the pods it finds in creation order: on a full node the newest is refused, whatever the list order", async () => {
    const n = await eventually(nodeReady, { message: "the node to be Ready", timeoutMs: 60_000 });
    const allocatable = String(n.status?.allocatable?.["cpu"] ?? "0");
    const milli = allocatable.endsWith("m") ? Number(allocatable.slice(0, -1)) : Number(allocatable) * 1000;
    expect(milli).toBeGreaterThan(0);
    // Two of these fit exactly; a third does not.
    const request = `${Math.floor(milli / 2)}m`;
    await suite.node.kubelet?.stop();
    // Created oldest first under names the API lists the other way round (the creation time has 1 s steps).
    const names = ["c-oldest", "b-middle", "a-newest"];
    for (const [i, name] of names.entries()) {
      if (i > 0) await sleep(1100);
      await cluster.client.create(pods(), {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: "default" },
        spec: { nodeName: suite.node.name, terminationGracePeriodSeconds: 1, containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"], resources: { requests: { cpu: request } } }] },
      });
    }
    await suite.node.kubelet?.start();
    const refused = await eventually(async () => {
      const p = await getPod("a-newest");
      return p?.status?.phase === "Failed" ? p : undefined;
    }, { message: "a-newest to be refused", timeoutMs: 60_000 });
    expect(refused.status?.reason).toBe("OutOfcpu");
    for (const name of ["c-oldest", "b-middle"]) {
      await eventually(async () => ((await getPod(name))?.status?.phase === "Running" ? true : undefined), { message: `${name} to run`, timeoutMs: 60_000 });
    }
    // The refused pod never reached the runtime.
    const { items } = await suite.node.sandbox.criClient().runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.name": "a-newest" } } });
    expect(items).toHaveLength(0);
  }, 150_000);
});
