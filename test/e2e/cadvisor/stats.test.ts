/**
 * Resource statistics on a sandbox node, read as operators and metrics-server read them: through the control
 * plane's node proxy with real kubectl (`get --raw /api/v1/nodes/<node>/proxy/stats/summary`,
 * `/metrics/resource`). A pod burning one busy loop shows about a core, well above an idle pod; a pod filling
 * 64 MiB of /dev/shm shows its working set rise, then fall when it removes the file; a pod's network figures are
 * its own namespace's eth0; the figures agree with the
 * cgroup files the kernel keeps for the container (the source of truth), on this machine's cgroup v1.
 * /metrics/resource and /metrics/cadvisor carry their upstream names and labels and pass promtool.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { busyboxPod, clusterWithOneNode, createRunningPod, podsRef } from "../../harness/cluster-suite.ts";
import { eventually } from "../../harness/wait.ts";
import { hasPromtool, promtoolCheck } from "../../harness/promtool.ts";
import type { ContainerStats, NetworkStats, PodStats, Summary } from "../../../cadvisor/summary.ts";

// Filesystem figures every 2 s (upstream's default volumeStatsAggPeriod is a minute).
const suite = clusterWithOneNode({ config: { volumeStatsAggPeriod: "2s" } });
const cluster = suite.cluster;
const MiB = 1024 * 1024;

function runningPod(name: string, script: string, cpuRequest?: string, scratch = false): Promise<V1Pod> {
  return createRunningPod(
    cluster,
    busyboxPod(name, suite.node.name, script, {
      container: { ...(cpuRequest ? { resources: { requests: { cpu: cpuRequest } } } : {}), ...(scratch ? { volumeMounts: [{ name: "scratch", mountPath: "/scratch" }] } : {}) },
      ...(scratch ? { spec: { volumes: [{ name: "scratch", emptyDir: {} }] } } : {}),
    }),
  );
}

async function raw(path: string): Promise<string> {
  const r = await cluster.kubectl(["get", "--raw", `/api/v1/nodes/${suite.node.name}/proxy${path}`]);
  if (r.code !== 0) throw new Error(`get --raw ${path}: ${r.stderr}`);
  return r.stdout;
}

async function summary(only = false): Promise<Summary> {
  return JSON.parse(await raw(`/stats/summary${only ? "?only_cpu_and_memory=true" : ""}`)) as Summary;
}

function podIn(s: Summary, name: string): PodStats | undefined {
  return s.pods.find((p) => p.podRef.name === name && p.podRef.namespace === "default");
}

function mainOf(s: Summary, name: string): ContainerStats | undefined {
  return podIn(s, name)?.containers.find((c) => c.name === "main");
}

/** The pod's cgroup path (Burstable or BestEffort). */
function podCgroup(pod: V1Pod): string {
  return `${suite.node.sandbox.cgroupRoot}/kubepods/${(pod.status?.qosClass ?? "BestEffort").toLowerCase()}/pod${pod.metadata?.uid ?? ""}`;
}

/** The container's cgroup directory in a v1 hierarchy, as the host sees it. */
function containerCgroup(pod: V1Pod, controller: string): string {
  const id = (pod.status?.containerStatuses?.[0]?.containerID ?? "").replace(/^containerd:\/\//, "");
  return `/sys/fs/cgroup/${controller}${podCgroup(pod)}/${id}`;
}

describe("/stats/summary through the control plane", () => {
  it("a busy loop shows about one core, far above an idle pod, and agrees with cpuacct.usage", async () => {
    // A CPU request of one core gives it the shares of a core: a BestEffort pod (shares 2) starves on a busy machine.
    const burner = await runningPod("burner", "while :; do :; done", "1");
    await runningPod("idle", "exec sleep 3600");
    // Two housekeeping passes (10 s apart) after both started give a rate over a full window.
    const s = await eventually(async () => {
      const x = await summary();
      const b = mainOf(x, "burner");
      const i = mainOf(x, "idle");
      const started = Date.parse(b?.startTime ?? "") + 1000;
      return b?.cpu?.usageNanoCores !== undefined && i?.cpu?.usageNanoCores !== undefined && Date.parse(b.cpu.time) - 10_000 >= started ? x : undefined;
    }, { timeoutMs: 60_000, intervalMs: 2000, message: "CPU rates for the burner and the idle pod" });
    const burning = mainOf(s, "burner")?.cpu?.usageNanoCores ?? 0;
    const idle = mainOf(s, "idle")?.cpu?.usageNanoCores ?? 0;
    // One thread cannot exceed a core; on a 2-core machine shared with other test runs it gets a good part of one.
    expect(burning).toBeGreaterThan(0.25e9);
    expect(burning).toBeLessThan(1.1e9);
    expect(idle).toBeLessThan(0.05e9);
    expect(burning).toBeGreaterThan(10 * idle);
    // The pod's cgroup holds the container: its rate is at least the container's (minus rounding).
    expect(podIn(s, "burner")?.cpu?.usageNanoCores ?? 0).toBeGreaterThanOrEqual(burning * 0.95);
    // The cumulative figure is the kernel's cpuacct.usage, read a little later.
    const kernelNs = Number((await readFile(join(containerCgroup(burner, "cpuacct"), "cpuacct.usage"), "utf8")).trim());
    const reported = mainOf(s, "burner")?.cpu?.usageCoreNanoSeconds ?? 0;
    expect(reported).toBeGreaterThan(0);
    expect(reported).toBeLessThanOrEqual(kernelNs);
    // The node's figures, podRef and shape.
    expect(s.node.nodeName).toBe(suite.node.name);
    expect(s.node.cpu?.usageNanoCores ?? 0).toBeGreaterThanOrEqual(burning * 0.9);
    expect(s.node.memory?.availableBytes).toBeGreaterThan(0);
    // The kubelet's own cgroup (no --kubelet-cgroups: the one it runs in) and the pods root; no runtime cgroup given.
    expect(s.node.systemContainers?.map((c) => c.name)).toEqual(["kubelet", "pods"]);
    expect(s.node.systemContainers?.[0]?.cpu?.usageCoreNanoSeconds).toBeGreaterThan(0);
    expect(s.node.systemContainers?.[0]?.memory?.workingSetBytes).toBeGreaterThan(0);
    expect(s.node.rlimit?.maxpid).toBeGreaterThan(0);
    expect(podIn(s, "burner")?.podRef.uid).toBe(burner.metadata?.uid);
    expect(podIn(s, "burner")?.process_stats?.process_count).toBeGreaterThanOrEqual(1);
  });

  it("a pod filling 64 MiB of /dev/shm shows its working set rise, then fall when it lets go, as memory.usage_in_bytes does", async () => {
    const eater = await runningPod("eater", "sleep 12; dd if=/dev/zero of=/dev/shm/fill bs=1M count=64 2>/dev/null; sleep 24; rm /dev/shm/fill; exec sleep 3600");
    const ws = async (): Promise<number | undefined> => mainOf(await summary(true), "eater")?.memory?.workingSetBytes;
    const before = await eventually(ws, { timeoutMs: 30_000, intervalMs: 1000, message: "a first working set for the eater" });
    expect(before).toBeLessThan(32 * MiB);
    const peak = await eventually(async () => {
      const v = await ws();
      return v !== undefined && v >= before + 60 * MiB ? v : undefined;
    }, { timeoutMs: 45_000, intervalMs: 1000, message: "the working set rising by 64 MiB" });
    // The kernel's own usage for the container, at the same time: the tmpfs pages are charged to it.
    const usage = Number((await readFile(join(containerCgroup(eater, "memory"), "memory.usage_in_bytes"), "utf8")).trim());
    expect(usage).toBeGreaterThanOrEqual(64 * MiB);
    expect(Math.abs(usage - peak)).toBeLessThan(16 * MiB);
    await eventually(async () => {
      const v = await ws();
      return v !== undefined && v < peak - 48 * MiB;
    }, { timeoutMs: 60_000, intervalMs: 1000, message: "the working set falling after the file is removed" });
  });

  it("a pod's network figures are its own namespace's eth0, and move with traffic between two pods as the kernel's counters", async () => {
    const target = await runningPod("net-target", "exec sleep 3600");
    await runningPod("net-pinger", "exec sleep 3600");
    const targetIP = target.status?.podIP ?? (await cluster.client.get<V1Pod>(podsRef("net-target"))).status?.podIP;
    expect(targetIP).toBeTruthy();
    const nets = async (): Promise<{ target: NetworkStats | undefined; pinger: NetworkStats | undefined }> => {
      const s = await summary();
      return { target: podIn(s, "net-target")?.network, pinger: podIn(s, "net-pinger")?.network };
    };
    const before = await eventually(async () => {
      const n = await nets();
      return n.target !== undefined && n.pinger !== undefined ? { target: n.target, pinger: n.pinger } : undefined;
    }, { timeoutMs: 30_000, intervalMs: 1000, message: "network figures for both pods" });
    // The pod's namespace has lo (left out) and eth0 only: not the node's interfaces.
    expect(before.target.interfaces?.map((i) => i.name)).toEqual(["eth0"]);
    expect(before.target.name).toBe("eth0");
    // 5 echo requests of 16000 bytes, each answered in full: at least 80 kB each way, inside the node's netns.
    const ping = await cluster.kubectl(["exec", "net-pinger", "--", "ping", "-c", "5", "-s", "16000", targetIP ?? ""]);
    expect(ping.stdout).toContain("5 packets received");
    const sent = 5 * 16000;
    const after = await eventually(async () => {
      const n = await nets();
      return n.target !== undefined && (n.target.rxBytes ?? 0) >= (before.target.rxBytes ?? Infinity) + sent && n.pinger !== undefined && (n.pinger.txBytes ?? 0) >= (before.pinger.txBytes ?? Infinity) + sent ? { target: n.target, pinger: n.pinger } : undefined;
    }, { timeoutMs: 30_000, intervalMs: 1000, message: "the counters moving by the pings' bytes" });
    expect(after.target.txBytes ?? 0).toBeGreaterThanOrEqual((before.target.txBytes ?? Infinity) + sent);
    expect(after.pinger.rxBytes ?? 0).toBeGreaterThanOrEqual((before.pinger.rxBytes ?? Infinity) + sent);
    // The kernel's counter, read afterwards through the pod's process, is at least what was reported.
    const pid = (await readFile(join(containerCgroup(target, "memory"), "cgroup.procs"), "utf8")).split("\n")[0] ?? "";
    const eth0 = /^\s*eth0:\s*(\d+)/m.exec(await readFile(`/proc/${pid}/net/dev`, "utf8"))?.[1];
    expect(Number(eth0)).toBeGreaterThanOrEqual(after.target.rxBytes ?? Infinity);
    // The same counter on /metrics/cadvisor, on the pod's series (container="").
    const text = await raw("/metrics/cadvisor");
    const m = new RegExp(`^container_network_receive_bytes_total\\{container="",id="${podCgroup(target)}",image="",interface="eth0",name="",namespace="default",pod="net-target"\\} (\\d+) \\d{13}$`, "m").exec(text);
    expect(Number(m?.[1])).toBeGreaterThanOrEqual((before.target.rxBytes ?? Infinity) + sent);
  });

  it("the node's network figures are the node's own namespace's interfaces (the kubelet's /proc/<pid>/net/dev)", async () => {
    const s = await summary();
    const pid = suite.node.kubelet?.pid;
    const kernel = (await readFile(`/proc/${pid}/net/dev`, "utf8")).split("\n").slice(2).map((l) => l.split(":")[0]?.trim() ?? "").filter((n) => n !== "" && !/^(lo|veth|docker)/.test(n));
    expect(s.node.network?.interfaces?.map((i) => i.name).sort()).toEqual(kernel.sort());
    expect(kernel).toContain("eth0");
    expect(s.node.network?.name).toBe("eth0");
  });

  it("log usage grows with output, an emptyDir's usedBytes and the rootfs with what the pod writes, all in its ephemeral storage", async () => {
    await runningPod("writer", "exec sleep 3600", undefined, true);
    const fsOf = async (): Promise<PodStats | undefined> => {
      const p = podIn(await summary(), "writer");
      return p?.containers[0]?.logs !== undefined && p.containers[0].rootfs !== undefined && p.volume !== undefined ? p : undefined;
    };
    const before = await eventually(fsOf, { timeoutMs: 40_000, intervalMs: 1000, message: "filesystem figures for the writer" });
    expect(before.volume?.map((v) => v.name).sort()).toContain("scratch");
    const scratch = (p: PodStats): number => p.volume?.find((v) => v.name === "scratch")?.usedBytes ?? 0;
    // 300 kB on the container's stdout (its pid 1's), 2 MiB in the emptyDir, 1 MiB in its writable layer.
    const out = await cluster.kubectl(["exec", "writer", "--", "sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x | fold -w 100 > /proc/1/fd/1; dd if=/dev/zero of=/scratch/f bs=1k count=2048 2>/dev/null; dd if=/dev/zero of=/tmp/f bs=1k count=1024 2>/dev/null; sync; du -sk /scratch"]);
    expect(out.code).toBe(0);
    const duScratch = Number(/^(\d+)/.exec(out.stdout)?.[1]) * 1024;
    const grown = (p: PodStats): boolean =>
      (p.containers[0]?.logs?.usedBytes ?? 0) >= (before.containers[0]?.logs?.usedBytes ?? Infinity) + 300_000 &&
      scratch(p) >= scratch(before) + 2 * MiB &&
      (p.containers[0]?.rootfs?.usedBytes ?? 0) >= (before.containers[0]?.rootfs?.usedBytes ?? Infinity) + MiB;
    const after = await eventually(async () => {
      const p = await fsOf();
      return p !== undefined && grown(p) ? p : undefined;
    }, { timeoutMs: 40_000, intervalMs: 1000, message: "logs, the emptyDir and the rootfs growing" });
    // The emptyDir as du sees it inside the pod (the kubelet's figure counts the directory too).
    expect(Math.abs(scratch(after) - duScratch)).toBeLessThanOrEqual(64 * 1024);
    // The log file holds at least what the API serves of it.
    const logs = await cluster.kubectl(["logs", "writer"]);
    expect(after.containers[0]?.logs?.usedBytes ?? 0).toBeGreaterThanOrEqual(logs.stdout.length);
    const c = after.containers[0];
    const eph = after["ephemeral-storage"];
    const volumes = (after.volume ?? []).reduce((a, v) => a + (v.usedBytes ?? 0), 0);
    expect(eph?.usedBytes ?? 0).toBeGreaterThanOrEqual((c?.rootfs?.usedBytes ?? Infinity) + (c?.logs?.usedBytes ?? 0) + volumes);
    expect(eph?.capacityBytes).toBeGreaterThan(0);
    // The runtime's image store: its own usage on a filesystem with room.
    const s = await summary();
    expect(s.node.runtime?.imageFs?.usedBytes).toBeGreaterThan(0);
    expect(s.node.runtime?.imageFs?.usedBytes ?? Infinity).toBeLessThanOrEqual(s.node.runtime?.imageFs?.capacityBytes ?? 0);
    expect(s.node.runtime?.imageFs?.inodesUsed).toBeGreaterThan(0);
    // The writable layer on /metrics/cadvisor.
    const id = ((await cluster.client.get<V1Pod>(podsRef("writer"))).status?.containerStatuses?.[0]?.containerID ?? "").replace(/^containerd:\/\//, "");
    const m = new RegExp(`^container_fs_usage_bytes\\{container="main",device="[^"]*",id="[^"]*/${id}",[^}]*pod="writer"\\} (\\d+)`, "m").exec(await raw("/metrics/cadvisor"));
    expect(Number(m?.[1])).toBeGreaterThanOrEqual(MiB);
  });

  it("only_cpu_and_memory leaves out fs, runtime and rlimit", async () => {
    const s = await summary(true);
    expect(s.node.cpu).toBeDefined();
    expect(s.node.memory).toBeDefined();
    expect(s.node).not.toHaveProperty("fs");
    expect(s.node).not.toHaveProperty("runtime");
    expect(s.node).not.toHaveProperty("rlimit");
    const full = await summary();
    expect(full.node.fs?.capacityBytes).toBeGreaterThan(0);
    expect(full.node.runtime?.imageFs?.capacityBytes).toBeGreaterThan(0);
  });
});

describe("/metrics/resource through the control plane", () => {
  it("has the metrics metrics-server reads for the node, the pods and their containers", async () => {
    const text = await raw("/metrics/resource");
    expect(text).toMatch(/^node_cpu_usage_seconds_total [0-9.e+]+ \d{13}$/m);
    expect(text).toMatch(/^node_memory_working_set_bytes [0-9.e+]+ \d{13}$/m);
    expect(text).toMatch(/^container_cpu_usage_seconds_total\{container="main",namespace="default",pod="burner"\} [0-9.e+]+ \d{13}$/m);
    expect(text).toMatch(/^container_memory_working_set_bytes\{container="main",namespace="default",pod="burner"\} [0-9.e+]+ \d{13}$/m);
    expect(text).toMatch(/^container_start_time_seconds\{container="main",namespace="default",pod="burner"\} [0-9.e+]+$/m);
    expect(text).toMatch(/^pod_cpu_usage_seconds_total\{namespace="default",pod="burner"\} [0-9.e+]+ \d{13}$/m);
    expect(text).toMatch(/^pod_memory_working_set_bytes\{namespace="default",pod="burner"\} [0-9.e+]+ \d{13}$/m);
    expect(text).toContain("\nscrape_error 0\n");
    expect(text).toContain("\nresource_scrape_error 0\n");
  });

  it.skipIf(!hasPromtool)("passes promtool check metrics", async () => {
    await promtoolCheckOf("/metrics/resource");
  });
});

describe("/metrics/cadvisor through the control plane", () => {
  it("has cAdvisor's names with the kubelet's labels for the node, a pod and its container, and the machine", async () => {
    const burner = await cluster.client.get<V1Pod>(podsRef("burner"));
    const id = (burner.status?.containerStatuses?.[0]?.containerID ?? "").replace(/^containerd:\/\//, "");
    const cgroup = podCgroup(burner);
    const text = await raw("/metrics/cadvisor");
    const labels = `container="main",id="${cgroup}/${id}",image="localhost/busybox:1",name="${id}",namespace="default",pod="burner"`;
    expect(text).toContain(`container_cpu_usage_seconds_total{container="main",cpu="total",id="${cgroup}/${id}",image="localhost/busybox:1",name="${id}",namespace="default",pod="burner"} `);
    for (const m of ["container_memory_working_set_bytes", "container_memory_rss", "container_memory_usage_bytes", "container_memory_cache", "container_processes", "container_last_seen"]) expect(text).toContain(`${m}{${labels}} `);
    expect(text).toContain(`container_spec_memory_limit_bytes{${labels}} 0\n`);
    expect(text).toContain(`container_memory_working_set_bytes{container="",id="${cgroup}",image="",name="",namespace="default",pod="burner"} `);
    expect(text).toMatch(/^container_cpu_usage_seconds_total\{container="",cpu="total",id="\/",image="",name="",namespace="",pod=""\} [0-9.e+]+ \d{13}$/m);
    expect(text).toMatch(/^machine_cpu_cores\{boot_id="[^"]+",machine_id="[^"]*",system_uuid="[^"]*"\} [1-9]\d*$/m);
    expect(text).toMatch(/^machine_memory_bytes\{[^}]*\} [1-9][0-9.e+]*$/m);
  });

  it.skipIf(!hasPromtool)("passes promtool check metrics", async () => {
    await promtoolCheckOf("/metrics/cadvisor");
  });
});

async function promtoolCheckOf(path: string): Promise<void> {
  expect(promtoolCheck(await raw(path))).toEqual({ output: "", code: 0 });
}
