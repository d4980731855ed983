/**
 * kube-proxy with real pods: a sandbox node (its own netns + containerd, the reference bridge CNI with
 * hairpin mode) runs busybox pods through CRI; the proxier programs the node's iptables and is fed the pods'
 * IPs as EndpointSlices. (The kubelet will create the pods once it exists; until then the test drives CRI
 * directly, as the kubelet would.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CriClient } from "../../../kubelet/cri/client.ts";
import { resolveConfig } from "../../../proxy/config.ts";
import { netnsExec } from "../../../proxy/iptables.ts";
import { Proxier } from "../../../proxy/proxier.ts";
import { removeCgroupTree } from "../../../src-shared/cgroups.ts";
import { silentLogger } from "../../../src-shared/log.ts";
import { NodeSandbox } from "../../harness/node-sandbox.ts";
import { testContainerConfig, testPodConfig } from "../../harness/cri-pods.ts";
import { NODE_BIN, ROOT, type ProbeResult } from "./helpers/net.ts";
import { node as nodeObject, service, slice } from "./helpers/objects.ts";
import { settled } from "./helpers/settled.ts";
import { eventually } from "../../harness/wait.ts";

const PROBE = `${ROOT}test/e2e/proxy/helpers/probe.ts`;
const NODE = "sandbox-node";
const sandbox = new NodeSandbox();
let cri: CriClient;
let proxier: Proxier;
const pods: { name: string; id: string; ip: string; cgroupParent: string }[] = [];

async function runPod(name: string, script: string): Promise<{ name: string; id: string; ip: string; cgroupParent: string }> {
  const { config, cgroupParent } = testPodConfig(sandbox, name, "e2e");
  const { pod_sandbox_id: id } = await cri.runtime("RunPodSandbox", { config });
  const { container_id } = await cri.runtime("CreateContainer", {
    pod_sandbox_id: id,
    sandbox_config: config,
    config: testContainerConfig("main", ["sh", "-c", script]),
  });
  await cri.runtime("StartContainer", { container_id });
  const status = await cri.runtime("PodSandboxStatus", { pod_sandbox_id: id });
  return { name, id, ip: status.status?.network?.ip ?? "", cgroupParent };
}

async function probeFrom(podId: string, args: string[]): Promise<ProbeResult> {
  const r = await sandbox.execInPod(podId, NODE_BIN, [PROBE, ...args], { timeoutMs: 60_000 });
  return JSON.parse(r.stdout) as ProbeResult;
}

async function waitServing(ip: string): Promise<void> {
  await eventually(async () => (await sandbox.exec(NODE_BIN, [PROBE, "get", `http://${ip}:8080/`], { allowFailure: true })).stdout.includes('"status":200'), { timeoutMs: 15_000, message: `pod ${ip} to serve` });
}

beforeAll(async () => {
  try {
    await sandbox.start();
    cri = sandbox.criClient();
    for (const name of ["web-1", "web-2", "web-3"]) {
      const pod = await runPod(name, `mkdir -p /www && echo ${name} > /www/index.html && exec httpd -f -p 8080 -h /www`);
      pods.push(pod);
    }
    pods.push(await runPod("client", "exec sleep 3600"));
    for (const p of pods.slice(0, 3)) await waitServing(p.ip);
    const config = resolveConfig({ apiVersion: "kubeproxy.config.k8s.io/v1alpha1", kind: "KubeProxyConfiguration", clusterCIDR: sandbox.podSubnet, iptables: { syncPeriod: "3s" } });
    proxier = new Proxier({ config, nodeName: NODE, log: silentLogger(), exec: netnsExec(sandbox.name) });
    await proxier.start();
    proxier.onNodeAdd(nodeObject(NODE, "192.168.60.1"));
    proxier.onServicesSynced();
    proxier.onEndpointSlicesSynced();
    await settled(proxier);
  } catch (err) {
    await proxier?.close();
    await sandbox.teardown();
    throw err;
  }
}, 180_000);

afterAll(async () => {
  try {
    await proxier?.close();
    for (const p of pods) await removeCgroupTree(p.cgroupParent).catch(() => undefined);
  } finally {
    await sandbox.teardown();
  }
});

describe("kube-proxy with real pods on a sandbox node", () => {
  const webSlice = (names: string[]) =>
    slice(
      "web",
      pods.filter((p) => names.includes(p.name)).map((p) => ({ ip: p.ip, node: NODE })),
      [{ name: "http", port: 8080 }],
    );

  it("spreads a ClusterIP over the pods, hairpin included", async () => {
    proxier.onServiceAdd(service("web", { type: "NodePort", clusterIP: "10.96.0.10", ports: [{ name: "http", port: 80, targetPort: "http", nodePort: 30080, protocol: "TCP" }] }));
    proxier.onEndpointSliceAdd(webSlice(["web-1", "web-2", "web-3"]));
    await settled(proxier);
    const client = pods[3]?.id ?? "";
    const r = await probeFrom(client, ["http", "http://10.96.0.10/", "150"]);
    expect(r.errors).toEqual({});
    for (const name of ["web-1", "web-2", "web-3"]) expect(r.counts[name]).toBeGreaterThan(20);
    const hairpin = await probeFrom(pods[0]?.id ?? "", ["http", "http://10.96.0.10/", "30"]);
    expect(hairpin.errors).toEqual({});
    expect(hairpin.counts["web-1"]).toBeGreaterThan(0);
  });

  it("answers the NodePort on the node's localhost (route_localnet)", async () => {
    const r = await sandbox.exec(NODE_BIN, [PROBE, "http", "http://127.0.0.1:30080/", "20"]);
    const result = JSON.parse(r.stdout) as ProbeResult;
    expect(result.errors).toEqual({});
    expect(Object.keys(result.counts).length).toBeGreaterThan(1);
  });

  it("stops routing to a pod that is removed", async () => {
    const gone = pods[2];
    if (!gone) throw new Error("no pod");
    await cri.runtime("StopPodSandbox", { pod_sandbox_id: gone.id });
    proxier.onEndpointSliceUpdate(webSlice(["web-1", "web-2", "web-3"]), webSlice(["web-1", "web-2"]));
    await settled(proxier);
    const r = await probeFrom(pods[3]?.id ?? "", ["http", "http://10.96.0.10/", "60"]);
    expect(r.errors).toEqual({});
    expect(r.counts["web-3"]).toBeUndefined();
  });
});
