import { describe, expect, it } from "vitest";
import { MetricsStore, metricsDiscovery, parseResourceMetrics } from "../../../test/control-plane/metrics-api.ts";

/** A kubelet's /metrics/resource as the kubelet writes it (cadvisor/summary.ts resourceMetrics), at time t (ms). */
function scrape(t: number, nodeCpu: number, containers: { pod: string; container: string; cpu: number; mem: number; start?: number }[]): string {
  const lines = [
    "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds",
    "# TYPE container_cpu_usage_seconds_total counter",
    ...containers.map((c) => `container_cpu_usage_seconds_total{container="${c.container}",namespace="default",pod="${c.pod}"} ${c.cpu} ${t}`),
    ...containers.map((c) => `container_memory_working_set_bytes{container="${c.container}",namespace="default",pod="${c.pod}"} ${c.mem} ${t}`),
    ...containers.map((c) => `container_start_time_seconds{container="${c.container}",namespace="default",pod="${c.pod}"} ${c.start ?? 1000}`),
    `node_cpu_usage_seconds_total ${nodeCpu} ${t}`,
    `node_memory_working_set_bytes 1073741824 ${t}`,
    "scrape_error 0",
  ];
  return lines.join("\n") + "\n";
}

describe("parseResourceMetrics", () => {
  it("reads the node's and each container's CPU counter with its sample time and working set; a series missing either is dropped", () => {
    const s = parseResourceMetrics(scrape(5000, 12.5, [{ pod: "web", container: "main", cpu: 1.5, mem: 4096 }]) + 'container_cpu_usage_seconds_total{container="lonely",namespace="default",pod="web"} 3 5000\n');
    expect(s.node).toEqual({ cpuSeconds: 12.5, timeMs: 5000, memoryBytes: 1073741824 });
    expect([...(s.containers.get("default/web") ?? new Map()).entries()]).toEqual([["main", { cpuSeconds: 1.5, timeMs: 5000, memoryBytes: 4096, startTime: 1000 }]]);
  });
});

describe("MetricsStore", () => {
  it("serves the CPU rate between the last two distinct samples (a canonical quantity, as metrics-server's nanocores serialise), the latest working set, and the window", () => {
    const m = new MetricsStore();
    m.add("n1", parseResourceMetrics(scrape(10_000, 100, [{ pod: "web", container: "main", cpu: 10, mem: 2 * 1024 * 1024 }])));
    expect(m.node("n1")).toBeUndefined();
    expect(m.pod("default", "web")).toBeUndefined();
    // The same kubelet sample scraped again adds no point.
    m.add("n1", parseResourceMetrics(scrape(10_000, 100, [{ pod: "web", container: "main", cpu: 10, mem: 2 * 1024 * 1024 }])));
    expect(m.node("n1")).toBeUndefined();
    m.add("n1", parseResourceMetrics(scrape(20_000, 105, [{ pod: "web", container: "main", cpu: 12.5, mem: 3 * 1024 * 1024 }])));
    expect(m.node("n1")).toEqual({ usage: { cpu: "500m", memory: "1Gi" }, timestamp: new Date(20_000).toISOString(), window: "10s" });
    expect(m.pod("default", "web")).toEqual({ containers: [{ name: "main", usage: { cpu: "250m", memory: "3Mi" } }], timestamp: new Date(20_000).toISOString(), window: "10s" });
  });

  it("starts a container over when it restarted (new start time or a counter that went back), and drops pods gone from their node's scrape", () => {
    const m = new MetricsStore();
    m.add("n1", parseResourceMetrics(scrape(10_000, 1, [{ pod: "web", container: "main", cpu: 10, mem: 1 }, { pod: "db", container: "main", cpu: 1, mem: 1 }])));
    m.add("n1", parseResourceMetrics(scrape(20_000, 2, [{ pod: "web", container: "main", cpu: 1, mem: 1, start: 2000 }, { pod: "db", container: "main", cpu: 2, mem: 1 }])));
    expect(m.pod("default", "web")).toBeUndefined();
    expect(m.pod("default", "db")?.containers[0]?.usage.cpu).toBe("100m");
    m.add("n1", parseResourceMetrics(scrape(30_000, 3, [{ pod: "web", container: "main", cpu: 2, mem: 1, start: 2000 }])));
    expect(m.pod("default", "web")?.containers[0]?.usage.cpu).toBe("100m");
    expect(m.pod("default", "db")).toBeUndefined();
    m.removeNode("n1");
    expect([m.node("n1"), m.pod("default", "web"), m.nodeNames()]).toEqual([undefined, undefined, []]);
  });
});

describe("metricsDiscovery", () => {
  it("describes metrics.k8s.io/v1beta1 with NodeMetrics and PodMetrics, get and list only", () => {
    expect(metricsDiscovery("/apis/metrics.k8s.io")).toMatchObject({ kind: "APIGroup", name: "metrics.k8s.io", preferredVersion: { groupVersion: "metrics.k8s.io/v1beta1" } });
    expect(metricsDiscovery("/apis/metrics.k8s.io/v1beta1")).toMatchObject({
      resources: [
        { name: "nodes", namespaced: false, kind: "NodeMetrics", verbs: ["get", "list"] },
        { name: "pods", namespaced: true, kind: "PodMetrics", verbs: ["get", "list"] },
      ],
    });
  });
});
