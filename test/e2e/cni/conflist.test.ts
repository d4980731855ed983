/**
 * The kubelet's side of the pod network on a real containerd: no conflist (so NetworkReady=false, the Node is
 * not Ready) until the control plane assigns the Node a pod CIDR; then the conflist writer makes it and the
 * runtime becomes NetworkReady and runs pods in that CIDR on deckhand-bridge.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CniNode } from "../../harness/cni-node.ts";
import { FakeCluster } from "../../harness/two-nodes.ts";
import { eventually } from "../../harness/wait.ts";
import type { WatchNodes } from "../../../cni/nodes.ts";
import { CniConfigWriter } from "../../../cni/conflist.ts";
import { silentLogger } from "../../../src-shared/log.ts";
import { removeCgroupTree } from "../../../src-shared/cgroups.ts";

const cni = new CniNode({ withoutConflist: true });

beforeAll(async () => {
  await cni.start();
}, 180_000);

afterAll(async () => {
  await cni.teardown();
});

async function networkReady(): Promise<{ status: boolean; reason: string; message: string }> {
  const status = await cni.node.criClient().runtime("Status", {});
  const c = status.status?.conditions.find((x) => x.type === "NetworkReady");
  return { status: c?.status ?? false, reason: c?.reason ?? "", message: c?.message ?? "" };
}

it("keeps NetworkReady false until the Node has a pod CIDR, then runs pods in it", async () => {
  const cluster = new FakeCluster();
  cluster.set({ metadata: { name: "worker-1" }, spec: {}, status: { addresses: [{ type: "InternalIP", address: "192.0.2.10" }] } });
  // The event that proves the negative below: the writer has been told about the Node without a pod CIDR.
  let deliveries = 0;
  const watchNodes: WatchNodes = (signal, onNodes) =>
    cluster.watchNodes(signal, (nodes) => {
      onNodes(nodes);
      deliveries++;
    });
  const writer = new CniConfigWriter({ nodeName: "worker-1", confDir: cni.node.cniConfDir, watchNodes, daemonSocket: cni.daemonSocket, log: silentLogger() });
  const changes: string[] = [];
  writer.onStatus((s) => changes.push(`${String(s.ready)} ${s.reason}`));
  const ac = new AbortController();
  await writer.start(ac.signal);
  try {
    await eventually(() => deliveries > 0, { timeoutMs: 10_000, message: "the writer to see the Node" });
    const before = await networkReady();
    expect(before.status).toBe(false);
    expect(before.message).toMatch(/cni/i);
    expect(writer.status()).toMatchObject({ ready: false, reason: "NoPodCIDR" });

    cluster.set({ metadata: { name: "worker-1" }, spec: { podCIDR: "10.87.4.0/24", podCIDRs: ["10.87.4.0/24"] }, status: { addresses: [{ type: "InternalIP", address: "192.0.2.10" }] } });
    await cni.waitNetworkReady();
    expect(writer.status().ready).toBe(true);
    // Its one and only change: nothing was written while the Node had no pod CIDR.
    expect(changes).toEqual(["true CNIConfigWritten"]);

    const uid = randomUUID();
    const parent = `${cni.node.cgroupRoot}/kubepods/besteffort/pod${uid}`;
    const cri = cni.node.criClient();
    const config = { metadata: { name: "first", namespace: "cl", uid, attempt: 0 }, linux: { cgroup_parent: parent, security_context: { namespace_options: { network: "POD" as const, pid: "CONTAINER" as const, ipc: "POD" as const } } } };
    const { pod_sandbox_id: id } = await cri.runtime("RunPodSandbox", { config });
    try {
      const ip = (await cri.runtime("PodSandboxStatus", { pod_sandbox_id: id })).status?.network?.ip ?? "";
      expect(ip).toMatch(/^10\.87\.4\.\d+$/);
      const ping = await cni.node.exec("busybox", ["ping", "-c", "1", "-W", "2", ip], { allowFailure: true });
      expect(ping.code).toBe(0);
    } finally {
      await cri.runtime("StopPodSandbox", { pod_sandbox_id: id });
      await cri.runtime("RemovePodSandbox", { pod_sandbox_id: id });
      await removeCgroupTree(parent);
    }
  } finally {
    ac.abort();
    await writer.close();
  }
});
