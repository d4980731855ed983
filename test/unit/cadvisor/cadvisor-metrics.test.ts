import { describe, expect, it } from "vitest";
import { hasPromtool, promtoolCheck } from "../../harness/promtool.ts";
import { cadvisorMetrics, type CadvisorMetricsInput } from "../../../cadvisor/cadvisor-metrics.ts";
import type { CgroupStats } from "../../../cadvisor/collector.ts";

const T = Date.parse("2026-12-03T16:00:10.500Z");
const NOW = T + 2000;

function stats(cpuNs: number, ws: number, limit?: number, pids?: number): CgroupStats {
  return {
    sample: {
      timeMs: T,
      cpu: { usageNanos: cpuNs, userNanos: cpuNs * 0.75, systemNanos: cpuNs * 0.25 },
      memory: { usageBytes: ws + 4096, workingSetBytes: ws, rssBytes: ws - 4096, cacheBytes: 8192, pageFaults: 1, majorPageFaults: 0, swapBytes: 0, ...(limit ? { limitBytes: limit } : {}) },
      ...(pids ? { pids: { current: pids } } : {}),
    },
    creationMs: T - 60_000,
  };
}

const input: CadvisorMetricsInput = {
  snapshot: {
    timeMs: T,
    version: 1,
    node: stats(900e9, 3e9),
    pods: stats(20e9, 1e9, undefined, 9),
    podCgroups: new Map([["u1", { uid: "u1", path: "/kubepods/besteffort/podu1", stats: stats(10e9, 100e6, undefined, 2), containers: new Map([["c1", stats(9e9, 90e6, 200e6, 1)], ["pause", stats(1e6, 1e6)]]) }]]),
  },
  pods: [{ uid: "u1", name: "web", namespace: "default", containers: [{ name: "main", id: "c1", startTimeMs: T - 50_000, image: "localhost/busybox:1" }] }],
  machine: { numCores: 2, memoryCapacity: 8e9, bootID: "b", machineID: "m", systemUUID: "s" },
  kubepodsPath: "/kubepods",
  nowMs: NOW,
};

describe("/metrics/cadvisor", () => {
  const text = cadvisorMetrics(input);

  it("labels containers as the kubelet does: container, id (cgroup), image, name (runtime id), namespace, pod", () => {
    const labels = 'container="main",id="/kubepods/besteffort/podu1/c1",image="localhost/busybox:1",name="c1",namespace="default",pod="web"';
    expect(text).toContain(`container_cpu_usage_seconds_total{container="main",cpu="total",id="/kubepods/besteffort/podu1/c1",image="localhost/busybox:1",name="c1",namespace="default",pod="web"} 9 ${T}\n`);
    expect(text).toContain(`container_memory_working_set_bytes{${labels}} 90000000 ${T}\n`);
    expect(text).toContain(`container_memory_rss{${labels}} ${90e6 - 4096} ${T}\n`);
    expect(text).toContain(`container_memory_cache{${labels}} 8192 ${T}\n`);
    expect(text).toContain(`container_memory_usage_bytes{${labels}} ${90e6 + 4096} ${T}\n`);
    expect(text).toContain(`container_spec_memory_limit_bytes{${labels}} 200000000\n`);
    expect(text).toContain(`container_processes{${labels}} 1 ${T}\n`);
    expect(text).toContain(`container_last_seen{${labels}} ${Math.floor(NOW / 1000)} ${NOW}\n`);
    expect(text).toContain(`container_start_time_seconds{${labels}} ${Math.floor((T - 60_000) / 1000)}\n`);
  });

  it("has the pod (container=\"\"), the pods root and the node root (id=\"/\"), not the sandbox", () => {
    expect(text).toContain(`container_memory_working_set_bytes{container="",id="/kubepods/besteffort/podu1",image="",name="",namespace="default",pod="web"} 100000000 ${T}\n`);
    expect(text).toContain(`container_spec_memory_limit_bytes{container="",id="/kubepods/besteffort/podu1",image="",name="",namespace="default",pod="web"} 0\n`);
    expect(text).toContain(`container_processes{container="",id="/kubepods",image="",name="",namespace="",pod=""} 9 ${T}\n`);
    expect(text).toContain(`container_cpu_usage_seconds_total{container="",cpu="total",id="/",image="",name="",namespace="",pod=""} 900 ${T}\n`);
    expect(text).not.toContain("pause");
  });

  it("has the machine's cores and memory, and a scrape error gauge", () => {
    expect(text).toContain('# HELP machine_cpu_cores Number of logical CPU cores.\n# TYPE machine_cpu_cores gauge\nmachine_cpu_cores{boot_id="b",machine_id="m",system_uuid="s"} 2\n');
    expect(text).toContain('machine_memory_bytes{boot_id="b",machine_id="m",system_uuid="s"} 8000000000\n');
    expect(text).toMatch(/\ncontainer_scrape_error 0\n$/);
    expect(cadvisorMetrics({ ...input, snapshot: undefined })).toMatch(/\ncontainer_scrape_error 1\n$/);
  });

  it.skipIf(!hasPromtool)("passes promtool check metrics", () => {
    expect(promtoolCheck(text)).toEqual({ output: "", code: 0 });
  });
});
