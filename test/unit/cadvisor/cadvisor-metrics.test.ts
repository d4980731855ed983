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
    podCgroups: new Map([["u1", { uid: "u1", path: "/kubepods/besteffort/podu1", stats: stats(10e9, 100e6, undefined, 2), containers: new Map([["c1", stats(9e9, 90e6, 200e6, 1)], ["pause", stats(1e6, 1e6)]]), network: [{ name: "eth0", rxBytes: 1000, rxPackets: 10, rxErrors: 1, rxDropped: 2, txBytes: 500, txPackets: 5, txErrors: 0, txDropped: 0 }] }]]),
    nodeNetwork: [{ name: "eth0", rxBytes: 9000, rxPackets: 90, rxErrors: 0, rxDropped: 0, txBytes: 8000, txPackets: 80, txErrors: 0, txDropped: 0 }],
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

  it("has CFS throttling counters for a cgroup with a CPU quota only, as cAdvisor", () => {
    const limited = stats(9e9, 90e6, 200e6, 1);
    limited.sample.cpu = { usageNanos: 9e9, cfs: { periods: 400, throttledPeriods: 25, throttledNanos: 1.5e9 } };
    const unlimited = stats(1e9, 1e6);
    unlimited.sample.cpu = { usageNanos: 1e9, cfs: { periods: 0, throttledPeriods: 0, throttledNanos: 0 } };
    const pod = input.snapshot?.podCgroups.get("u1");
    if (pod === undefined) throw new Error("fixture");
    const t = cadvisorMetrics({ ...input, snapshot: { ...input.snapshot!, podCgroups: new Map([["u1", { ...pod, stats: unlimited, containers: new Map([["c1", limited]]) }]]) } });
    const labels = 'container="main",id="/kubepods/besteffort/podu1/c1",image="localhost/busybox:1",name="c1",namespace="default",pod="web"';
    expect(t).toContain(`container_cpu_cfs_periods_total{${labels}} 400 ${T}\n`);
    expect(t).toContain(`container_cpu_cfs_throttled_periods_total{${labels}} 25 ${T}\n`);
    expect(t).toContain(`container_cpu_cfs_throttled_seconds_total{${labels}} 1.5 ${T}\n`);
    expect(t.match(/^container_cpu_cfs_periods_total\{/gm)).toHaveLength(1);
  });

  it("has the pod (container=\"\"), the pods root and the node root (id=\"/\"), not the sandbox", () => {
    expect(text).toContain(`container_memory_working_set_bytes{container="",id="/kubepods/besteffort/podu1",image="",name="",namespace="default",pod="web"} 100000000 ${T}\n`);
    expect(text).toContain(`container_spec_memory_limit_bytes{container="",id="/kubepods/besteffort/podu1",image="",name="",namespace="default",pod="web"} 0\n`);
    expect(text).toContain(`container_processes{container="",id="/kubepods",image="",name="",namespace="",pod=""} 9 ${T}\n`);
    expect(text).toContain(`container_cpu_usage_seconds_total{container="",cpu="total",id="/",image="",name="",namespace="",pod=""} 900 ${T}\n`);
    expect(text).not.toContain("pause");
  });

  it("has the network counters per interface on the pod's series and the node's, not repeated per container", () => {
    const pod = 'container="",id="/kubepods/besteffort/podu1",image="",interface="eth0",name="",namespace="default",pod="web"';
    expect(text).toContain(`# HELP container_network_receive_bytes_total Cumulative count of bytes received\n# TYPE container_network_receive_bytes_total counter\n`);
    expect(text).toContain(`container_network_receive_bytes_total{${pod}} 1000 ${T}\n`);
    expect(text).toContain(`container_network_receive_packets_total{${pod}} 10 ${T}\n`);
    expect(text).toContain(`container_network_receive_errors_total{${pod}} 1 ${T}\n`);
    expect(text).toContain(`container_network_receive_packets_dropped_total{${pod}} 2 ${T}\n`);
    expect(text).toContain(`container_network_transmit_bytes_total{${pod}} 500 ${T}\n`);
    expect(text).toContain(`container_network_transmit_bytes_total{container="",id="/",image="",interface="eth0",name="",namespace="",pod=""} 8000 ${T}\n`);
    expect(text.match(/^container_network_receive_bytes_total\{/gm)).toHaveLength(2);
  });

  it("has block I/O per device, named as the kernel names it, else MAJ:MIN", () => {
    const c = stats(9e9, 90e6, 200e6, 1);
    c.sample.io = [{ major: 254, minor: 0, device: "/dev/vda", readBytes: 4096, writeBytes: 8192, reads: 1, writes: 2 }, { major: 7, minor: 1, readBytes: 0, writeBytes: 0, reads: 0, writes: 0 }];
    const snap = input.snapshot;
    const pod = snap?.podCgroups.get("u1");
    if (snap === undefined || pod === undefined) throw new Error("fixture");
    const t = cadvisorMetrics({ ...input, snapshot: { ...snap, podCgroups: new Map([["u1", { ...pod, containers: new Map([["c1", c]]) }]]) } });
    const l = (device: string): string => `container="main",device="${device}",id="/kubepods/besteffort/podu1/c1",image="localhost/busybox:1",name="c1",namespace="default",pod="web"`;
    expect(t).toContain(`container_fs_reads_bytes_total{${l("/dev/vda")}} 4096 ${T}\n`);
    expect(t).toContain(`container_fs_writes_bytes_total{${l("/dev/vda")}} 8192 ${T}\n`);
    expect(t).toContain(`container_fs_reads_total{${l("/dev/vda")}} 1 ${T}\n`);
    expect(t).toContain(`container_fs_writes_total{${l("7:1")}} 0 ${T}\n`);
    if (hasPromtool) expect(promtoolCheck(t)).toEqual({ output: "", code: 0 });
  });

  it("has the container's writable layer and the node's filesystems by device", () => {
    const disk = { path: "/", capacityBytes: 1000, availableBytes: 400, usedBytes: 600, inodes: 100, inodesFree: 30, inodesUsed: 70 };
    const t = cadvisorMetrics({
      ...input,
      fs: { timeMs: T, rootFs: disk, rootFsDevice: "/dev/vda1", imageFs: { fs: disk, timeMs: T, device: "/dev/vda1" }, writableLayers: new Map([["c1", { usedBytes: 8192, inodesUsed: 3, timeMs: T, fs: disk, device: "/dev/vda1" }]]), pods: new Map() },
    });
    const c = 'container="main",device="/dev/vda1",id="/kubepods/besteffort/podu1/c1",image="localhost/busybox:1",name="c1",namespace="default",pod="web"';
    expect(t).toContain(`# HELP container_fs_usage_bytes Number of bytes that are consumed by the container on this filesystem.\n# TYPE container_fs_usage_bytes gauge\n`);
    expect(t).toContain(`container_fs_usage_bytes{${c}} 8192 ${T}\n`);
    expect(t).toContain(`container_fs_limit_bytes{${c}} 1000 ${T}\n`);
    expect(t).toContain(`container_fs_inodes_free{${c}} 30 ${T}\n`);
    if (hasPromtool) expect(promtoolCheck(t)).toEqual({ output: "", code: 0 });
    // One series for a device shared by the root and image filesystems.
    expect(t.match(/^container_fs_usage_bytes\{container="",device="\/dev\/vda1",id="\/"/gm)).toHaveLength(1);
    expect(t).toContain(`container_fs_usage_bytes{container="",device="/dev/vda1",id="/",image="",name="",namespace="",pod=""} 600 ${T}\n`);
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
