/**
 * kube-proxy with the kubelet in place: on a sandbox node of the test cluster, the kubelet runs two web pods
 * and a client pod, the control plane gives the Service a ClusterIP and an EndpointSlice from the pods' status,
 * and the real `bin/kube-proxy` process inside the node, fed from the API with the node's credentials, routes
 * the client pod's requests to the VIP across both pods.
 */
import type { ChildProcess } from "node:child_process";
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, type ClusterNode } from "../../harness/cluster.ts";
import { busyboxPod, createClusterIPService } from "../../harness/cluster-suite.ts";
import { eventually } from "../../harness/wait.ts";

const cluster = new TestCluster();
let node: ClusterNode;
let proxy: ChildProcess | undefined;
let proxyLog: () => string = () => "";
const core = (resource: string, name?: string) => ({ group: "", version: "v1", resource, namespace: "default", ...(name ? { name } : {}) });

function pod(name: string, labels: Record<string, string>, script: string): V1Pod {
  return busyboxPod(name, node.name, script, { labels, container: { ports: [{ containerPort: 8080 }] } });
}

beforeAll(async () => {
  await cluster.start();
  node = await cluster.addNode();
}, 120_000);

afterAll(async () => {
  proxy?.kill("SIGKILL");
  if (proxyLog()) console.log(`kube-proxy log tail:\n${proxyLog().split("\n").slice(-15).join("\n")}`);
  await cluster.teardown();
});

describe("kube-proxy with the kubelet", () => {
  it("routes a client pod's requests for a ClusterIP to the kubelet's pods, across both", async () => {
    for (const name of ["web-a", "web-b"]) {
      await cluster.client.create(core("pods"), pod(name, { app: "web" }, `mkdir -p /www && echo ${name} > /www/index.html && exec httpd -f -p 8080 -h /www`));
    }
    await cluster.client.create(core("pods"), pod("client", { app: "client" }, "exec sleep 3600"));
    const vip = await createClusterIPService(cluster, "web", { app: "web" }, 80, 8080);
    expect(vip).toMatch(/^10\.96\./);
    await eventually(async () => {
      const { items } = await cluster.client.get<{ items: V1Pod[] }>(core("pods"));
      return items.length === 3 && items.every((p) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) ? true : undefined;
    }, { timeoutMs: 60_000, message: "all pods Ready" });

    // The real process, inside the node, with the node's credentials, as a DaemonSet or a unit would run it.
    const started = await node.startKubeProxy();
    proxy = started.child;
    proxyLog = started.log;

    const cri = node.sandbox.criClient();
    const { items } = await cri.runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.name": "client" }, state: { state: "SANDBOX_READY" } } });
    const clientSandbox = items[0]?.id ?? "";
    const get = async (): Promise<string> =>
      (await node.sandbox.execInPod(clientSandbox, "timeout", ["2", "busybox", "wget", "-q", "-O", "-", `http://${vip}/`], { allowFailure: true })).stdout.trim();
    await eventually(async () => ((await get()) ? true : undefined), { timeoutMs: 30_000, message: "the VIP to answer" });
    const seen = new Set<string>();
    for (let i = 0; i < 40 && seen.size < 2; i++) seen.add(await get());
    expect([...seen].sort()).toEqual(["web-a", "web-b"]);
  }, 180_000);
});
