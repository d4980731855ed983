import { describe, expect, it } from "vitest";
import { hasPromtool, promtoolCheck } from "../../harness/promtool.ts";
import type { CgroupStats, StatsSnapshot } from "../../../cadvisor/collector.ts";
import { buildSummary, metaTime, resourceMetrics, type SummaryInput } from "../../../cadvisor/summary.ts";
import type { InterfaceSample } from "../../../cadvisor/cgroup-stats.ts";
import type { FsSnapshot } from "../../../cadvisor/fs-collector.ts";
import { parseBootTime, parseLoadavgProcs } from "../../../cadvisor/node-facts.ts";

const T = Date.parse("2026-12-03T16:00:10.500Z");
const GiB = 1024 ** 3;

function stats(usageNanos: number, workingSet: number, o: { rate?: number; limit?: number; pids?: number } = {}): CgroupStats {
  return {
    sample: {
      timeMs: T,
      cpu: { usageNanos },
      memory: { usageBytes: workingSet + 1000, workingSetBytes: workingSet, rssBytes: workingSet - 10, cacheBytes: 1000, pageFaults: 7, majorPageFaults: 1, ...(o.limit ? { limitBytes: o.limit } : {}) },
      ...(o.pids ? { pids: { current: o.pids } } : {}),
    },
    ...(o.rate !== undefined ? { usageNanoCores: o.rate } : {}),
    creationMs: T - 60_000,
  };
}

function snapshot(): StatsSnapshot {
  return {
    timeMs: T,
    version: 1,
    node: stats(900e9, 3 * GiB, { rate: 1_200_000_000 }),
    pods: stats(20e9, GiB),
    podCgroups: new Map([
      [
        "uid-1",
        {
          uid: "uid-1",
          path: "/kubepods/besteffort/poduid-1",
          stats: stats(10e9, 100e6, { rate: 990_000_000, pids: 4 }),
          containers: new Map([["c1", stats(9.5e9, 90e6, { rate: 980_000_000, limit: 200e6 })], ["sandbox", stats(1e6, 1e6)]]),
          network: [iface("eth0", 1000, 0, 500, 1), iface("net1", 7, 0, 8, 0)],
        },
      ],
      ["uid-gone", { uid: "uid-gone", path: "/kubepods/poduid-gone", stats: stats(1, 1), containers: new Map() }],
    ]),
    nodeNetwork: [iface("eth0", 5000, 2, 4000, 0), iface("cni0", 10, 0, 20, 0)],
  };
}

function iface(name: string, rxBytes: number, rxErrors: number, txBytes: number, txErrors: number): InterfaceSample {
  return { name, rxBytes, rxPackets: 3, rxErrors, rxDropped: 0, txBytes, txPackets: 4, txErrors, txDropped: 0 };
}

function input(o: Partial<SummaryInput> = {}): SummaryInput {
  return {
    nodeName: "node-a",
    bootTimeMs: Date.parse("2026-12-03T02:14:00Z"),
    memoryCapacityBytes: 8 * GiB,
    snapshot: snapshot(),
    pods: [{ uid: "uid-1", name: "burner", namespace: "default", startTimeMs: Date.parse("2026-12-03T15:59:00Z"), containers: [{ name: "main", id: "c1", startTimeMs: Date.parse("2026-12-03T15:59:01.700Z") }] }],
    rootFs: { path: "/var/lib/kubelet", capacityBytes: 100, availableBytes: 40, usedBytes: 60, inodes: 10, inodesFree: 4, inodesUsed: 6 },
    imageFs: { path: "/var/lib/containerd", capacityBytes: 100, availableBytes: 40, usedBytes: 60, inodes: 10, inodesFree: 4, inodesUsed: 6 },
    rlimit: { maxpid: 32768, curproc: 438 },
    onlyCpuAndMemory: false,
    ...o,
  };
}

describe("the Summary (stats/v1alpha1)", () => {
  it("has upstream's keys: node with pods system container, fs, imageFs, rlimit; pods with podRef, startTime, containers", () => {
    const s = buildSummary(input());
    const time = "2026-12-03T16:00:10Z";
    expect(s.node).toEqual({
      nodeName: "node-a",
      startTime: "2026-12-03T02:14:00Z",
      systemContainers: [
        { name: "pods", startTime: "2026-12-03T15:59:10Z", cpu: { time, usageCoreNanoSeconds: 20e9 }, memory: { time, usageBytes: GiB + 1000, workingSetBytes: GiB, rssBytes: GiB - 10, pageFaults: 7, majorPageFaults: 1 } },
      ],
      // The node's limit is MemTotal: availableBytes = capacity − working set.
      cpu: { time, usageNanoCores: 1_200_000_000, usageCoreNanoSeconds: 900e9 },
      memory: { time, availableBytes: 5 * GiB, usageBytes: 3 * GiB + 1000, workingSetBytes: 3 * GiB, rssBytes: 3 * GiB - 10, pageFaults: 7, majorPageFaults: 1 },
      // The kubelet's namespace's interfaces, eth0 inline.
      network: {
        time,
        name: "eth0",
        rxBytes: 5000,
        rxErrors: 2,
        txBytes: 4000,
        txErrors: 0,
        interfaces: [{ name: "eth0", rxBytes: 5000, rxErrors: 2, txBytes: 4000, txErrors: 0 }, { name: "cni0", rxBytes: 10, rxErrors: 0, txBytes: 20, txErrors: 0 }],
      },
      fs: { time, availableBytes: 40, capacityBytes: 100, usedBytes: 60, inodesFree: 4, inodes: 10, inodesUsed: 6 },
      runtime: { imageFs: { time, availableBytes: 40, capacityBytes: 100, usedBytes: 60, inodesFree: 4, inodes: 10, inodesUsed: 6 } },
      rlimit: { time, maxpid: 32768, curproc: 438 },
    });
    // Only the pods the kubelet knows, only the containers it names (not the sandbox).
    expect(s.pods).toEqual([
      {
        podRef: { name: "burner", namespace: "default", uid: "uid-1" },
        startTime: "2026-12-03T15:59:00Z",
        containers: [
          {
            name: "main",
            startTime: "2026-12-03T15:59:01Z",
            cpu: { time, usageNanoCores: 980_000_000, usageCoreNanoSeconds: 9.5e9 },
            // A limit: availableBytes = limit − working set.
            memory: { time, availableBytes: 110e6, usageBytes: 90e6 + 1000, workingSetBytes: 90e6, rssBytes: 90e6 - 10, pageFaults: 7, majorPageFaults: 1 },
          },
        ],
        cpu: { time, usageNanoCores: 990_000_000, usageCoreNanoSeconds: 10e9 },
        // No limit: no availableBytes key at all (upstream's nil pointer).
        memory: { time, usageBytes: 100e6 + 1000, workingSetBytes: 100e6, rssBytes: 100e6 - 10, pageFaults: 7, majorPageFaults: 1 },
        // eth0 inline (upstream's default interface), every interface in the list.
        network: {
          time,
          name: "eth0",
          rxBytes: 1000,
          rxErrors: 0,
          txBytes: 500,
          txErrors: 1,
          interfaces: [{ name: "eth0", rxBytes: 1000, rxErrors: 0, txBytes: 500, txErrors: 1 }, { name: "net1", rxBytes: 7, rxErrors: 0, txBytes: 8, txErrors: 0 }],
        },
        process_stats: { process_count: 4 },
      },
    ]);
    expect(JSON.stringify(s)).not.toContain("null");
  });

  it("takes rootfs, logs, volumes, ephemeral storage and the image fs from the fs collector, as upstream's CRI provider", () => {
    const disk = { path: "/", capacityBytes: 1000e6, availableBytes: 400e6, usedBytes: 600e6, inodes: 1000, inodesFree: 300, inodesUsed: 700 };
    const fsT = Date.parse("2026-12-03T16:00:05Z");
    const fs: FsSnapshot = {
      timeMs: fsT,
      rootFs: disk,
      imageFs: { fs: disk, usage: { usedBytes: 50e6, inodesUsed: 40 }, timeMs: fsT - 3000 },
      writableLayers: new Map([["c1", { usedBytes: 8192, inodesUsed: 3, timeMs: fsT - 1000, fs: disk }]]),
      pods: new Map([
        [
          "uid-1",
          {
            volumes: [{ name: "scratch", usedBytes: 4096, inodesUsed: 2, fs: disk }, { name: "conf", usedBytes: 100, inodesUsed: 5 }],
            containerLogs: new Map([["main", { usedBytes: 1000, inodesUsed: 2 }]]),
            podLogs: { usedBytes: 4096, inodesUsed: 1 },
            etcHosts: { usedBytes: 4096, inodesUsed: 1 },
          },
        ],
      ]),
    };
    const s = buildSummary(input({ fs }));
    const statfs = { availableBytes: 400e6, capacityBytes: 1000e6, inodesFree: 300, inodes: 1000 };
    expect(s.node.fs).toEqual({ time: "2026-12-03T16:00:05Z", ...statfs, usedBytes: 600e6, inodesUsed: 700 });
    // The mount point's capacity and free space, the runtime's own usage.
    expect(s.node.runtime?.imageFs).toEqual({ time: "2026-12-03T16:00:02Z", ...statfs, usedBytes: 50e6, inodesUsed: 40 });
    const main = s.pods[0]?.containers[0];
    expect(main?.rootfs).toEqual({ time: "2026-12-03T16:00:04Z", ...statfs, usedBytes: 8192, inodesUsed: 3 });
    expect(main?.logs).toEqual({ time: "2026-12-03T16:00:05Z", ...statfs, usedBytes: 1000, inodesUsed: 2 });
    expect(s.pods[0]?.volume).toEqual([
      { time: "2026-12-03T16:00:05Z", ...statfs, usedBytes: 4096, inodesUsed: 2, name: "scratch" },
      { time: "2026-12-03T16:00:05Z", usedBytes: 100, inodesUsed: 5, name: "conf" },
    ]);
    // rootfs + logs + volumes + the pod's other log files + etc-hosts.
    expect(s.pods[0]?.["ephemeral-storage"]).toEqual({ time: "2026-12-03T16:00:05Z", ...statfs, usedBytes: 8192 + 1000 + 4096 + 100 + 4096 + 4096, inodesUsed: 3 + 2 + 2 + 5 + 1 + 1 });
    // Upstream's key order.
    expect(Object.keys(s.pods[0] ?? {})).toEqual(["podRef", "startTime", "containers", "cpu", "memory", "network", "volume", "ephemeral-storage", "process_stats"]);
    expect(Object.keys(s.node)).toEqual(["nodeName", "systemContainers", "startTime", "cpu", "memory", "network", "fs", "runtime", "rlimit"]);
    // CPU and memory only: none of it.
    const only = buildSummary(input({ fs, onlyCpuAndMemory: true }));
    expect(only.pods[0]).not.toHaveProperty("volume");
    expect(only.pods[0]).not.toHaveProperty("ephemeral-storage");
    expect(only.pods[0]?.containers[0]).not.toHaveProperty("rootfs");
  });

  it("lists the kubelet and runtime system containers before pods, and swap where the kernel accounts it", () => {
    const snap = snapshot();
    const withSwap = (c: CgroupStats, swapBytes: number): CgroupStats => ({ ...c, sample: { ...c.sample, ...(c.sample.memory ? { memory: { ...c.sample.memory, swapBytes } } : {}) } });
    snap.node = withSwap(stats(900e9, 3 * GiB), 100);
    snap.systemContainers = { kubelet: { path: "/system.slice/kubelet.service", stats: withSwap(stats(5e9, 50e6), 0) }, runtime: { path: "/system.slice/containerd.service", stats: stats(6e9, 60e6) } };
    const s = buildSummary(input({ snapshot: snap, swapCapacityBytes: 1000 }));
    expect(s.node.systemContainers?.map((c) => c.name)).toEqual(["kubelet", "runtime", "pods"]);
    expect(s.node.systemContainers?.[0]).toMatchObject({ name: "kubelet", startTime: "2026-12-03T15:59:10Z", cpu: { usageCoreNanoSeconds: 5e9 }, swap: { time: "2026-12-03T16:00:10Z", swapUsageBytes: 0 } });
    expect(s.node.systemContainers?.[1]).not.toHaveProperty("swap");
    // The node's limit is SwapTotal.
    expect(s.node.swap).toEqual({ time: "2026-12-03T16:00:10Z", swapAvailableBytes: 900, swapUsageBytes: 100 });
    expect(Object.keys(s.node).at(-1)).toBe("swap");
    expect(buildSummary(input({ snapshot: snap })).node.swap).toEqual({ time: "2026-12-03T16:00:10Z", swapUsageBytes: 100 });
    expect(buildSummary(input({ snapshot: snap, onlyCpuAndMemory: true })).node).not.toHaveProperty("swap");
  });

  it("only_cpu_and_memory leaves out fs, runtime, rlimit, network and process stats", () => {
    const s = buildSummary(input({ onlyCpuAndMemory: true }));
    expect(Object.keys(s.node).sort()).toEqual(["cpu", "memory", "nodeName", "startTime", "systemContainers"]);
    expect(s.pods[0]).not.toHaveProperty("process_stats");
    expect(s.pods[0]).not.toHaveProperty("network");
  });

  it("before the first pass: the node without figures and no pods", () => {
    const s = buildSummary(input({ snapshot: undefined }));
    expect(s.node).not.toHaveProperty("cpu");
    expect(s.node).not.toHaveProperty("memory");
    expect(s.pods).toEqual([]);
  });

  it("metav1.Time is RFC 3339 to the second", () => {
    expect(metaTime(Date.parse("2026-01-02T03:04:05.999Z"))).toBe("2026-01-02T03:04:05Z");
  });
});

describe("/metrics/resource", () => {
  const text = resourceMetrics(buildSummary(input({ onlyCpuAndMemory: true })));

  it("has metrics-server's names, labels sorted, counters in seconds, stats time stamps in ms", () => {
    const ts = Date.parse("2026-12-03T16:00:10Z");
    expect(text).toContain(`# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total 900 ${ts}\n`);
    expect(text).toContain(`node_memory_working_set_bytes ${3 * GiB} ${ts}\n`);
    expect(text).toContain(`container_cpu_usage_seconds_total{container="main",namespace="default",pod="burner"} 9.5 ${ts}\n`);
    expect(text).toContain(`container_memory_working_set_bytes{container="main",namespace="default",pod="burner"} 90000000 ${ts}\n`);
    expect(text).toContain(`container_start_time_seconds{container="main",namespace="default",pod="burner"} ${Date.parse("2026-12-03T15:59:01Z") / 1000}\n`);
    expect(text).toContain(`pod_cpu_usage_seconds_total{namespace="default",pod="burner"} 10 ${ts}\n`);
    expect(text).toContain(`pod_memory_working_set_bytes{namespace="default",pod="burner"} 100000000 ${ts}\n`);
    expect(text).toContain("# HELP scrape_error [ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE scrape_error gauge\nscrape_error 0\n");
    expect(text).toContain("resource_scrape_error 0\n");
    const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
    expect(names).toEqual([...names].sort());
  });

  it("says scrape_error 1 when there are no stats yet", () => {
    expect(resourceMetrics(undefined)).toBe(
      "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 1\n# HELP scrape_error [ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE scrape_error gauge\nscrape_error 1\n",
    );
  });

  it.skipIf(!hasPromtool)("passes promtool check metrics", () => {
    expect(promtoolCheck(text)).toEqual({ output: "", code: 0 });
  });
});

describe("node facts", () => {
  it("boot time from /proc/stat btime and the process count from /proc/loadavg", () => {
    expect(parseBootTime("cpu  1 2 3\nbtime 1764728040\nprocesses 5\n")).toBe(1764728040_000);
    expect(parseLoadavgProcs("0.10 0.20 0.30 2/3518 12345\n")).toBe(3518);
    expect(parseLoadavgProcs("garbage")).toBeUndefined();
  });
});
