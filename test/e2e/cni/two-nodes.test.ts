/**
 * Routable pod IPs across two sandbox nodes: a pod on node A reaches a pod on node B by its IP, the server
 * sees the client pod's own address (no NAT), pods reach themselves and their neighbours, and a node that
 * leaves the cluster takes its route on the other node with it.
 */
import { randomUUID } from "node:crypto";
import { eventually } from "../../harness/wait.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TwoNodes, type ClusterNode } from "../../harness/two-nodes.ts";
import type { Input, PodSandboxConfig } from "../../../kubelet/cri/types.ts";
import { removeCgroupTree } from "../../../src-shared/cgroups.ts";

const cluster = new TwoNodes();

beforeAll(async () => {
  await cluster.start();
}, 180_000);

afterAll(async () => {
  await cluster.teardown();
});

interface Pod {
  node: ClusterNode;
  id: string;
  ip: string;
  config: Input<PodSandboxConfig>;
}

async function runPod(node: ClusterNode, name: string, serve?: string): Promise<Pod> {
  const uid = randomUUID();
  const config: Input<PodSandboxConfig> = {
    metadata: { name, namespace: "two", uid, attempt: 0 },
    hostname: name,
    log_directory: `/var/log/pods/two_${name}_${uid}`,
    linux: { cgroup_parent: `${node.cni.node.cgroupRoot}/kubepods/besteffort/pod${uid}`, security_context: { namespace_options: { network: "POD", pid: "CONTAINER", ipc: "POD" } } },
  };
  const cri = node.cni.node.criClient();
  const { pod_sandbox_id: id } = await cri.runtime("RunPodSandbox", { config });
  if (serve) {
    const { container_id } = await cri.runtime("CreateContainer", {
      pod_sandbox_id: id,
      sandbox_config: config,
      config: {
        metadata: { name: "server", attempt: 0 },
        image: { image: "localhost/busybox:1" },
        command: ["sh", "-c", serve],
        linux: { security_context: { namespace_options: { network: "POD", pid: "CONTAINER", ipc: "POD" } } },
      },
    });
    await cri.runtime("StartContainer", { container_id });
  }
  const status = await cri.runtime("PodSandboxStatus", { pod_sandbox_id: id });
  return { node, id, ip: status.status?.network?.ip ?? "", config };
}

async function removePod(pod: Pod): Promise<void> {
  const cri = pod.node.cni.node.criClient();
  await cri.runtime("StopPodSandbox", { pod_sandbox_id: pod.id });
  await cri.runtime("RemovePodSandbox", { pod_sandbox_id: pod.id });
  await removeCgroupTree(pod.config.linux?.cgroup_parent ?? "/nonexistent");
}

async function ping(from: Pod, ip: string): Promise<boolean> {
  const res = await from.node.cni.node.execInPod(from.id, "busybox", ["ping", "-c", "1", "-W", "2", ip], { allowFailure: true });
  return res.code === 0;
}

async function routesOf(node: ClusterNode): Promise<string> {
  return (await node.cni.node.exec("ip", ["route", "show", "proto", "209"])).stdout;
}

// A CGI script answering with the address the connection came from, served by busybox httpd.
const WHO_AM_I = `mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n' > /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && exec httpd -f -p 8080 -h /www`;

describe("two nodes, routable pod IPs", () => {
  it("routes each node's pod CIDR via the other node's InternalIP", async () => {
    const a = cluster.node("node-a");
    const b = cluster.node("node-b");
    await eventually(async () => (await routesOf(a)).includes("10.244.2.0/24 via 192.0.2.2") && (await routesOf(b)).includes("10.244.1.0/24 via 192.0.2.1"), { message: "routes on both nodes" });
    // Only the other node's CIDR, nothing for its own.
    expect((await routesOf(a)).trim().split("\n")).toHaveLength(1);
  });

  it("pod on A reaches pod on B by IP and B sees A's own pod IP; pods reach themselves and neighbours", async () => {
    const a = cluster.node("node-a");
    const b = cluster.node("node-b");
    const server = await runPod(b, "server", WHO_AM_I);
    const client = await runPod(a, "client");
    const neighbour = await runPod(a, "neighbour");
    try {
      expect(client.ip).toMatch(/^10\.244\.1\.\d+$/);
      expect(server.ip).toMatch(/^10\.244\.2\.\d+$/);
      expect(await ping(client, server.ip)).toBe(true);
      expect(await ping(server, client.ip)).toBe(true);
      expect(await ping(client, client.ip)).toBe(true);
      expect(await ping(client, neighbour.ip)).toBe(true);

      let seen = "";
      await eventually(async () => {
        const res = await client.node.cni.node.execInPod(client.id, "timeout", ["5", "busybox", "wget", "-q", "-O", "-", `http://${server.ip}:8080/cgi-bin/ip`], { allowFailure: true });
        seen = res.stdout.trim();
        return res.code === 0;
      }, { message: "the server to answer" });
      // No NAT anywhere on the path: the server sees the client pod's own address (busybox httpd listens on
      // IPv6 and prints IPv4 peers mapped: [::ffff:a.b.c.d]).
      expect(seen.replace(/^\[::ffff:(.*)\]$/, "$1")).toBe(client.ip);
    } finally {
      await Promise.all([removePod(server), removePod(client), removePod(neighbour)]);
    }
  });

  it("removes a node's route on the other node when it leaves, and restores it when it comes back", async () => {
    const a = cluster.node("node-a");
    const b = cluster.node("node-b");
    const server = await runPod(b, "leaver");
    const client = await runPod(a, "stayer");
    try {
      expect(await ping(client, server.ip)).toBe(true);
      cluster.cluster.remove("node-b");
      await eventually(async () => !(await routesOf(a)).includes("10.244.2.0/24"), { message: "A's route to B's pods to go" });
      expect(await ping(client, server.ip)).toBe(false);
      cluster.register(b);
      await eventually(async () => (await routesOf(a)).includes("10.244.2.0/24 via 192.0.2.2"), { message: "A's route to B's pods to return" });
      expect(await ping(client, server.ip)).toBe(true);
      // Drift is repaired too: a route removed behind the controller's back comes back at the next resync.
      await a.cni.node.exec("ip", ["route", "del", "10.244.2.0/24"]);
      await eventually(async () => (await routesOf(a)).includes("10.244.2.0/24 via 192.0.2.2"), { message: "the resync to restore the route" });
    } finally {
      await Promise.all([removePod(server), removePod(client)]);
    }
  });
});
