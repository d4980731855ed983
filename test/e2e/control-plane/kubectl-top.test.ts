/**
 * `kubectl top` on a sandbox node: the control plane serves metrics.k8s.io as metrics-server does, from the
 * kubelet's /metrics/resource scraped through the kubelet proxy. A pod running a busy loop shows well above an
 * idle one; the figures agree with the kubelet's own Summary (the collector both are built from).
 */
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { busyboxPod, clusterWithOneNode, createRunningPod } from "../../harness/cluster-suite.ts";
import { eventually } from "../../harness/wait.ts";
import { parseQuantity } from "../../../src-shared/quantity.ts";

const suite = clusterWithOneNode({}, { metricsResolutionMs: 2000 });
const cluster = suite.cluster;

function runningPod(name: string, script: string): Promise<V1Pod> {
  return createRunningPod(cluster, busyboxPod(name, suite.node.name, script, { labels: { app: name } }));
}

async function kubectl(args: string[]): Promise<string> {
  const r = await cluster.kubectl(args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** `kubectl top pod` rows by pod name: [cpu millicores, memory bytes (kubectl rounds to Mi)]. */
async function topPods(): Promise<Map<string, [number, number]>> {
  const out = await kubectl(["top", "pod", "--no-headers"]);
  return new Map(
    out
      .trim()
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => l.split(/\s+/))
      .map(([name, cpu, mem]) => [name ?? "", [parseQuantity(cpu ?? "0").milliValue(), parseQuantity(mem ?? "0").value()]]),
  );
}

describe("kubectl top", () => {
  it("shows a busy pod well above an idle one, and the node, from the kubelets' /metrics/resource", async () => {
    await runningPod("burner", "while :; do :; done");
    await runningPod("idle", "exec sleep 3600");
    // Two kubelet samples (10 s apart) after both started give each container a rate.
    const rows = await eventually(async () => {
      const t = await topPods();
      return t.has("burner") && t.has("idle") ? t : undefined;
    }, { timeoutMs: 60_000, intervalMs: 2000, message: "both pods in kubectl top" });
    const [burnerCpu] = rows.get("burner") ?? [0, 0];
    const [idleCpu] = rows.get("idle") ?? [0, 0];
    expect(burnerCpu).toBeGreaterThan(200);
    expect(idleCpu).toBeLessThan(50);

    const node = (await kubectl(["top", "node", "--no-headers"])).trim().split(/\s+/);
    expect(node[0]).toBe(suite.node.name);
    expect(parseQuantity(node[1] ?? "0").milliValue()).toBeGreaterThan(200);

    const metrics = JSON.parse(await kubectl(["get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/idle"])) as { kind: string; metadata: { labels?: Record<string, string> }; window: string; containers: { name: string; usage: { memory: string } }[] };
    expect(metrics).toMatchObject({ kind: "PodMetrics", metadata: { labels: { app: "idle" } }, containers: [{ name: "main" }] });
    // The working set is the kubelet's own figure (the Summary the resource metrics come from).
    const summary = JSON.parse(await kubectl(["get", "--raw", `/api/v1/nodes/${suite.node.name}/proxy/stats/summary`])) as { pods: { podRef: { name: string }; containers: { name: string; memory?: { workingSetBytes?: number } }[] }[] };
    const fromKubelet = summary.pods.find((p) => p.podRef.name === "idle")?.containers.find((c) => c.name === "main")?.memory?.workingSetBytes;
    expect(fromKubelet).toBeDefined();
    expect(Math.abs(parseQuantity(metrics.containers[0]?.usage.memory ?? "0").value() - (fromKubelet ?? 0))).toBeLessThan(1024 * 1024);

    // A label selector, and a pod with no metrics is NotFound as metrics-server answers.
    expect((await kubectl(["top", "pod", "-l", "app=idle", "--no-headers"])).trim().split(/\s+/)[0]).toBe("idle");
    const missing = await cluster.kubectl(["get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/NotFound|not found/);
  });
});
