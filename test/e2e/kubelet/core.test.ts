/**
 * The kubelet's core on a real node: deleting a pod interrupts its image pull under way at once (as containerd
 * records it); static pods of the same full name never run at once
 * across a manifest edit (judged from CRI's own timestamps); a mirror pod whose manifest was removed while the
 * kubelet was down is deleted once it is back; and after a restart, pods are admitted in creation order, not
 * in list order.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { eventually } from "../../harness/cluster.ts";
import { clusterWithOneNode, podsRef } from "../../harness/cluster-suite.ts";
import { nsToMs } from "../../../kubelet/runtime/runtime-manager.ts";

const REPO = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
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

describe("pod deletion", () => {
  it("interrupts an image pull under way within a second of the pod's deletion", async () => {
    // A registry that accepts connections and never answers, reached from the node at 127.0.0.1:5999 through
    // the harness's forwarder: the pull hangs until the kubelet cancels it.
    const socketPath = join(suite.node.sandbox.dir, "hanging-registry.sock");
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => undefined);
    });
    server.listen(socketPath);
    await once(server, "listening");
    const forwarder = spawn("nsenter", [`--net=${suite.node.sandbox.netnsPath}`, join(REPO, "node_modules", ".bin", "node"), join(REPO, "test", "harness", "netns-forwarder.ts"), "127.0.0.1", "5999", socketPath], { stdio: ["ignore", "pipe", "inherit"] });
    const image = "127.0.0.1:5999/hang/busybox:1";
    try {
      await once(forwarder.stdout, "data");
      await cluster.client.create(pods(), {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "hung-pull", namespace: "default" },
        spec: { nodeName: suite.node.name, containers: [{ name: "main", image, imagePullPolicy: "Always", command: ["sleep", "3600"] }] },
      });
      await eventually("the pull to reach the registry", () => Promise.resolve(sockets.size > 0 ? true : undefined), 60_000, 20);
      const deletedAt = Date.now();
      await cluster.client.delete(pods("hung-pull"), { gracePeriodSeconds: 30 });
      // Without the interruption the sync would wait on the pull (up to runtimeRequestTimeout) and the pod stay.
      await eventually("the pod to be gone", async () => ((await getPod("hung-pull")) ? undefined : true), 15_000);
      // containerd's own record of the pull: given up, cancelled by its caller, within a second of the delete.
      // (Its connection to the registry may outlive the pull: Go's HTTP transport finishes a dial under way.)
      const cancelledAt = await eventually("containerd to record the cancelled pull", async () => {
        const log = await readFile(join(suite.node.sandbox.dir, "containerd.log"), "utf8");
        const line = log.split("\n").find((l) => l.includes(`PullImage \\"${image}\\" failed`) && l.includes("code = Canceled"));
        const time = line?.match(/^time="([^"]+)"/)?.[1];
        return time ? Date.parse(time) : undefined;
      }, 10_000);
      expect(cancelledAt - deletedAt).toBeLessThan(1000);
    } finally {
      forwarder.kill("SIGKILL");
      for (const s of sockets) s.destroy();
      server.close();
      await rm(socketPath, { force: true });
    }
  }, 120_000);
});

describe("static pods", () => {
  it("starts the pod of an edited manifest only once the previous one, of the same full name, has stopped", async () => {
    const file = join(suite.node.sandbox.dir, "manifests", "serial.json");
    const podName = `serial-${suite.node.name}`;
    await writeFile(file, manifest("serial", "1", 3));
    const first = await eventually("the first version to run", async () => {
      const p = await getPod(podName);
      return p?.status?.phase === "Running" && p.status.containerStatuses?.[0]?.ready ? p : undefined;
    }, 60_000);
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
    const newContainer = await eventually("the second version's container to run", async () => {
      await sample();
      const c = [...seen.values()].find((s) => s.uid !== oldUid && s.startedAt > 0);
      return c;
    }, 60_000, 100);
    const oldContainer = [...seen.values()].find((s) => s.uid === oldUid);
    // The old container's end was seen (it takes 3 s to stop, and stays until its pod is cleaned up).
    expect(oldContainer?.finishedAt, "the old container's finishedAt as CRI reported it").toBeGreaterThan(0);
    const newSandboxCreated = sandboxCreated.get(newContainer.uid) ?? 0;
    expect(newSandboxCreated).toBeGreaterThanOrEqual(oldContainer?.finishedAt ?? Infinity);
    expect(newContainer.startedAt).toBeGreaterThanOrEqual(oldContainer?.finishedAt ?? Infinity);
    expect(first.metadata?.uid).toBeTruthy();
    await rm(file);
    await eventually("the static pod's sandboxes to go", async () => {
      const { items } = await cri.runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.name": podName } } });
      return items.length === 0 ? true : undefined;
    }, 60_000);
  }, 180_000);

  it("deletes a mirror pod whose manifest was removed while the kubelet was down, and stops its pod", async () => {
    const file = join(suite.node.sandbox.dir, "manifests", "orphan.json");
    const podName = `orphan-${suite.node.name}`;
    await writeFile(file, manifest("orphan", "1"));
    const mirror = await eventually("the mirror pod to report Running", async () => {
      const p = await getPod(podName);
      return p?.status?.phase === "Running" ? p : undefined;
    }, 60_000);
    await suite.node.kubelet?.stop();
    await rm(file);
    await suite.node.kubelet?.start();
    await eventually("the orphaned mirror pod to be deleted", async () => {
      const p = await getPod(podName);
      return p?.metadata?.uid === mirror.metadata?.uid ? undefined : true;
    }, 60_000);
    expect((await getPod(podName))?.metadata?.uid).not.toBe(mirror.metadata?.uid);
    await eventually("the static pod's sandbox to go", async () => {
      const { items } = await suite.node.sandbox.criClient().runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.name": podName } } });
      return items.length === 0 ? true : undefined;
    }, 60_000);
  }, 150_000);
});

describe("admission after a restart", () => {
  it("admits the pods it finds in creation order: on a full node the newest is refused, whatever the list order", async () => {
    const n = await eventually("the node to be Ready", nodeReady, 60_000);
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
    const refused = await eventually("a-newest to be refused", async () => {
      const p = await getPod("a-newest");
      return p?.status?.phase === "Failed" ? p : undefined;
    }, 60_000);
    expect(refused.status?.reason).toBe("OutOfcpu");
    for (const name of ["c-oldest", "b-middle"]) {
      await eventually(`${name} to run`, async () => ((await getPod(name))?.status?.phase === "Running" ? true : undefined), 60_000);
    }
    // The refused pod never reached the runtime.
    const { items } = await suite.node.sandbox.criClient().runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.name": "a-newest" } } });
    expect(items).toHaveLength(0);
  }, 150_000);
});
