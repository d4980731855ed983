/**
 * A Service across two kubelet nodes: the test cluster's nodes share an underlay (test/harness/underlay.ts),
 * each kubelet routes the other node's pod CIDR over it (cni/routes.ts), and the real `bin/kube-proxy` on
 * each node programs the ClusterIP. A client pod on node A asks the ClusterIP; the only endpoint is a pod on
 * node B, which answers with its own name (the pod's hostname) and IP (the downward API), and whose web server's log names the
 * client pod's IP as the peer: pod to pod across nodes, DNAT on A, no masquerade on the way. Node A's own
 * namespace reaches the ClusterIP too (the harness routes the Service CIDR on the underlay, where a real node's
 * default route would take it).
 */
import type { ChildProcess } from "node:child_process";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, type ClusterNode } from "../../harness/cluster.ts";
import { busyboxPod, createClusterIPService } from "../../harness/cluster-suite.ts";
import { eventually } from "../../harness/wait.ts";
import { contains, parseCidr, parseIp } from "../../../cni/ip.ts";

const cluster = new TestCluster();
let nodeA: ClusterNode;
let nodeB: ClusterNode;
const proxies: { child: ChildProcess; log: () => string; node: string }[] = [];
const core = (resource: string, name?: string) => ({ group: "", version: "v1", resource, namespace: "default", ...(name ? { name } : {}) });

function pod(name: string, node: ClusterNode, labels: Record<string, string>, script: string): V1Pod {
  return busyboxPod(name, node.name, script, { labels, container: { env: [{ name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } }], ports: [{ containerPort: 8080 }] } });
}

beforeAll(async () => {
  await cluster.start();
  // Both sandboxes boot their containerd at once.
  [nodeA, nodeB] = await Promise.all<[Promise<ClusterNode>, Promise<ClusterNode>]>([cluster.addNode(), cluster.addNode()]);
}, 180_000);

afterAll(async () => {
  for (const p of proxies) {
    p.child.kill("SIGKILL");
    if (p.log()) console.log(`kube-proxy of ${p.node}, log tail:\n${p.log().split("\n").slice(-10).join("\n")}`);
  }
  for (const n of cluster.nodes) if (n.kubelet) console.log(`kubelet of ${n.name}, log tail:\n${await n.kubelet.logTail(15)}`);
  await cluster.teardown();
});

describe("a Service across two kubelet nodes", () => {
  it("routes a ClusterIP request from a pod on node A to the Service's pod on node B", async () => {
    await cluster.client.create(core("pods"), pod("server", nodeB, { app: "web" }, 'mkdir -p /www && echo "$(hostname) $POD_IP" > /www/index.html && exec httpd -f -vv -p 8080 -h /www'));
    await cluster.client.create(core("pods"), pod("client", nodeA, { app: "client" }, "exec sleep 3600"));
    const vip = await createClusterIPService(cluster, "web", { app: "web" }, 80, 8080);
    expect(vip).toMatch(/^10\.96\./);
    const pods = await eventually(async () => {
      const { items } = await cluster.client.get<{ items: V1Pod[] }>(core("pods"));
      const ready = items.filter((p) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
      return ready.length === 2 ? new Map(ready.map((p) => [p.metadata?.name ?? "", p])) : undefined;
    }, { timeoutMs: 60_000, message: "both pods Ready" });
    const serverIP = pods.get("server")?.status?.podIP ?? "";
    const clientIP = pods.get("client")?.status?.podIP ?? "";
    // Each pod has its IP from its own node's pod CIDR (the control plane's node IPAM gave them distinct ones).
    const cidrOf = async (n: ClusterNode): Promise<string> => (await cluster.client.get<V1Node>({ group: "", version: "v1", resource: "nodes", name: n.name })).spec?.podCIDR ?? "";
    const [cidrA, cidrB] = [await cidrOf(nodeA), await cidrOf(nodeB)];
    expect(cidrA).not.toBe(cidrB);
    const within = (cidr: string, ip: string): boolean => {
      const net = parseCidr(cidr);
      const addr = parseIp(ip);
      return net !== undefined && addr !== undefined && contains(net, addr);
    };
    expect(within(cidrB, serverIP)).toBe(true);
    expect(within(cidrA, clientIP)).toBe(true);

    for (const n of [nodeA, nodeB]) proxies.push({ ...(await n.startKubeProxy()), node: n.name });

    const { items } = await nodeA.sandbox.criClient().runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.name": "client" }, state: { state: "SANDBOX_READY" } } });
    const clientSandbox = items[0]?.id ?? "";
    const answer = await eventually(async () => {
      const r = await nodeA.sandbox.execInPod(clientSandbox, "timeout", ["2", "busybox", "wget", "-q", "-O", "-", `http://${vip}/`], { allowFailure: true });
      return r.stdout.trim() || undefined;
    }, { timeoutMs: 30_000, message: `the ClusterIP ${vip} to answer the client on node A` });
    expect(answer).toBe(`server ${serverIP}`);

    // From node A itself (its own network namespace, as a host-network process): the same pod answers.
    const fromNode = await nodeA.exec("timeout", ["2", "busybox", "wget", "-q", "-O", "-", `http://${vip}/`]);
    expect(fromNode.stdout.trim()).toBe(`server ${serverIP}`);

    // The server saw the client pod itself as a peer (routed across the underlay, not masqueraded) and node A
    // by its underlay address (kube-proxy masquerades traffic from outside the cluster CIDR).
    const logs = await cluster.kubectl(["logs", "server"]);
    expect(logs.code).toBe(0);
    // busybox httpd -vv logs `<peer>:<port>: url:/`, the peer as an IPv4-mapped address when it listens on [::].
    const peers = [...logs.stdout.matchAll(/^\[?(?:::ffff:)?([\d.]+)\]?:\d+: url:\//gm)].map((m) => m[1]);
    expect(peers).toContain(clientIP);
    expect(peers).toContain(nodeA.sandbox.nodeIP);
  }, 180_000);
});
