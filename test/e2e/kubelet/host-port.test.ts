/**
 * hostPort end to end on a sandbox node: the kubelet's conflist chains the reference portmap plugin, which
 * containerd feeds the sandbox's port mappings. A pod's hostPort answers on the node's address, from the
 * node itself (nat OUTPUT) and from another pod (PREROUTING, as traffic from outside arrives); portmap's
 * per-pod chain is gone from the node's nat table once the pod is deleted. Everything happens inside the
 * node's network namespace.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { eventually, eventuallyGone } from "../../harness/wait.ts";
import { clusterWithOneNode, podsRef } from "../../harness/cluster-suite.ts";

const suite = clusterWithOneNode();
const HOST_PORT = 18080;

function busybox(name: string, script: string, extra: Partial<V1Container> = {}): V1Container {
  return { name, image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", script], ...extra };
}

async function runningPod(name: string, container: V1Container): Promise<V1Pod> {
  await suite.cluster.client.create<V1Pod>(podsRef(), {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: { nodeName: suite.node.name, terminationGracePeriodSeconds: 1, containers: [container] },
  });
  return eventually(async () => {
    const p = await suite.cluster.client.get<V1Pod>(podsRef(name));
    return p.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
  }, { message: `pod ${name} running`, timeoutMs: 60_000 });
}

/** The node's nat table as iptables-save prints it. */
async function natRules(): Promise<string> {
  const res = await suite.node.exec("iptables-save", ["-t", "nat"]);
  if (res.code !== 0) throw new Error(res.stderr);
  return res.stdout;
}

describe("hostPort through portmap", () => {
  it("reaches the pod on the node's address, and leaves no rule behind once the pod is deleted", async () => {
    const nodeIP = suite.node.sandbox.nodeIP ?? "";
    expect(nodeIP).not.toBe("");
    await runningPod("web", busybox("web", "mkdir -p /www && echo hello-hostport > /www/index.html && exec httpd -f -p 8080 -h /www", { ports: [{ containerPort: 8080, hostPort: HOST_PORT }] }));
    const client = await runningPod("client", busybox("client", "trap 'exit 0' TERM; while true; do sleep 0.2; done"));
    const url = `http://${nodeIP}:${HOST_PORT}/index.html`;

    const rules = await natRules();
    expect(rules).toMatch(/^:CNI-DN-/m);
    expect(rules).toContain(`--dport ${HOST_PORT}`);

    // From the node itself.
    const fromNode = await eventually(async () => {
      const res = await suite.node.exec("busybox", ["timeout", "5", "busybox", "wget", "-qO-", url]);
      return res.code === 0 ? res.stdout : undefined;
    }, { message: `${url} from the node`, timeoutMs: 15_000 });
    expect(fromNode).toBe("hello-hostport\n");

    // From another pod: the packet arrives on the node's bridge and is DNATed in PREROUTING.
    const clientId = (client.status?.containerStatuses?.[0]?.containerID ?? "").replace(/^containerd:\/\//, "");
    const fromPod = await eventually(async () => {
      const res = await suite.node.sandbox.criClient().runtime("ExecSync", { container_id: clientId, cmd: ["timeout", "5", "wget", "-qO-", url], timeout: 10 });
      return res.exit_code === 0 ? res.stdout.toString() : undefined;
    }, { message: `${url} from another pod`, timeoutMs: 15_000 });
    expect(fromPod).toBe("hello-hostport\n");

    // A graceful delete: the kubelet removes the API object only after stopping the pod's sandbox.
    await suite.cluster.client.delete(podsRef("web"));
    await eventuallyGone(() => suite.cluster.client.get<V1Pod>(podsRef("web")), { message: "pod web deleted", timeoutMs: 30_000 });
    // CNI DEL ran (StopPodSandbox) before the pod left the API: its chain and DNAT rule are gone.
    const after = await natRules();
    expect(after).not.toMatch(/^:CNI-DN-/m);
    expect(after).not.toContain(`--dport ${HOST_PORT}`);
    await suite.cluster.client.delete(podsRef("client"), { gracePeriodSeconds: 0 }).catch(() => undefined);
  });
});
