/**
 * The QoS cgroups and node allocatable on a real node, read from the kernel's cgroup files: a node whose
 * allocatable is made small with kubeReserved/systemReserved (kubepods = 400 MiB), `enforceNodeAllocatable:
 * [pods]`, `podPidsLimit`, and no eviction thresholds, so that only the kernel acts:
 *
 * - kubepods carries capacity − reserved (memory, cpu shares, pids), besteffort the minimum shares, burstable its
 *   pods' cpu requests as they come and go; pod cgroups carry podPidsLimit and their class's limits;
 * - when the pods together exhaust kubepods, the kernel's OOM killer kills by oom_score_adj, so by QoS class:
 *   the best-effort pod first, then a burstable one, never the guaranteed one. (containerd runs with
 *   restrict_oom_score_adj here: guaranteed containers get containerd's own 0 rather than -997, still the lowest.)
 *   The memory that runs kubepods out is a memory-backed emptyDir's (charged to its writer's cgroup, but in no
 *   process's RSS), so the kernel's choice among the holders is made by their scores, not by who allocates;
 * - a pod forking past podPidsLimit is refused by the kernel;
 * - enforceNodeAllocatable system-reserved puts systemReserved on an existing systemReservedCgroup.
 */
import { readFileSync } from "node:fs";
import { mkdir, readFile, rmdir } from "node:fs/promises";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { join } from "node:path";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { clusterWithOneNode, podsRef } from "../../harness/cluster-suite.ts";
import { eventually, eventuallyGone } from "../../harness/wait.ts";
import { parseMeminfo } from "../../../cadvisor/cgroup-stats.ts";
import { quantityValue } from "../../../src-shared/quantity.ts";
import { cgroupHierarchies } from "../../../src-shared/cgroups.ts";
import { uniqueName } from "../../harness/leaks.ts";

const Mi = 1024 ** 2;
const KUBEPODS_BYTES = 400 * Mi;
const MEM_TOTAL = parseMeminfo(readFileSync("/proc/meminfo", "utf8")).get("MemTotal") ?? 0;
const PID_MAX = Math.min(Number(readFileSync("/proc/sys/kernel/pid_max", "utf8")), Number(readFileSync("/proc/sys/kernel/threads-max", "utf8")));

const suite = clusterWithOneNode({
  config: {
    kubeReserved: { memory: "100Mi", cpu: "200m", pid: "1000" },
    systemReserved: { memory: String(MEM_TOTAL - 100 * Mi - KUBEPODS_BYTES), cpu: "300m" },
    enforceNodeAllocatable: ["pods"],
    evictionHard: {},
    podPidsLimit: 200,
  },
});
const cluster = suite.cluster;
const run = Date.now().toString(36);
const execFileAsync = promisify(execFile);

const cgroupFile = (controller: string, path: string, file: string): Promise<string> =>
  readFile(join("/sys/fs/cgroup", controller, suite.node.sandbox.cgroupRoot, path, file), "utf8").then((s) => s.trim());

type Container = NonNullable<V1Pod["spec"]>["containers"][number];

function pod(name: string, script: string, resources: Container["resources"] = {}, extra: Partial<NonNullable<V1Pod["spec"]>> = {}, container: Partial<Container> = {}): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      nodeName: suite.node.name,
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", script], resources, ...container }],
      ...extra,
    },
  };
}

async function running(name: string): Promise<V1Pod> {
  return eventually(async () => {
    const p = await cluster.client.get<V1Pod>(podsRef(name));
    return p.status?.phase === "Running" ? p : undefined;
  }, { timeoutMs: 60_000, message: `pod ${name} to run` });
}

async function remove(...names: string[]): Promise<void> {
  await Promise.all(names.map((n) => cluster.client.delete(podsRef(n), { gracePeriodSeconds: 0 }).catch(() => undefined)));
  await Promise.all(names.map((n) => eventuallyGone(() => cluster.client.get(podsRef(n)), { timeoutMs: 60_000, message: `pod ${n} to go` })));
}

/** The kernel's oom-kill records of this node's cgroups, oldest first (from its log: `dmesg`). */
async function oomKills(): Promise<{ oomMemcg: string; taskMemcg: string; pid: number }[]> {
  const { stdout } = await execFileAsync("dmesg", [], { maxBuffer: 64 * Mi });
  const out: { oomMemcg: string; taskMemcg: string; pid: number }[] = [];
  for (const line of stdout.split("\n")) {
    const i = line.indexOf("oom-kill:");
    if (i < 0) continue;
    const fields = new Map(line.slice(i + "oom-kill:".length).split(",").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)] as const));
    const taskMemcg = fields.get("task_memcg") ?? "";
    if (!taskMemcg.startsWith(`${suite.node.sandbox.cgroupRoot}/`)) continue;
    out.push({ oomMemcg: fields.get("oom_memcg") ?? "", taskMemcg, pid: Number(fields.get("pid")) });
  }
  return out;
}

describe("QoS cgroups and node allocatable", () => {
  it("puts capacity − reserved on kubepods, the minimum shares on besteffort, and its pods' requests on burstable as they come and go", async () => {
    const node = await eventually(async () => {
      const n = await cluster.client.get<V1Node>({ group: "", version: "v1", resource: "nodes", name: suite.node.name });
      return n.status?.capacity?.["memory"] ? n : undefined;
    }, { timeoutMs: 60_000, message: "the node's capacity" });
    const capacityMilli = quantityValue(node.status?.capacity?.["cpu"] ?? "0") * 1000;
    expect(quantityValue(node.status?.capacity?.["memory"] ?? "0")).toBe(MEM_TOTAL);
    expect(await cgroupFile("memory", "kubepods", "memory.limit_in_bytes")).toBe(String(KUBEPODS_BYTES));
    expect(await cgroupFile("cpu", "kubepods", "cpu.shares")).toBe(String(Math.trunc(((capacityMilli - 500) * 1024) / 1000)));
    expect(await cgroupFile("pids", "kubepods", "pids.max")).toBe(String(PID_MAX - 1000));
    expect(await cgroupFile("cpu", "kubepods/besteffort", "cpu.shares")).toBe("2");
    expect(await cgroupFile("cpu", "kubepods/burstable", "cpu.shares")).toBe("2");

    // A burstable pod whose init container asks more than its app container: the larger counts.
    const b1 = `qos-b1-${run}`;
    const b2 = `qos-b2-${run}`;
    const g = `qos-g-${run}`;
    await cluster.client.create(podsRef(), pod(b1, "exec sleep 3600", { requests: { cpu: "250m" } }, { initContainers: [{ name: "init", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["true"], resources: { requests: { cpu: "500m" } } }] }));
    await cluster.client.create(podsRef(), pod(b2, "exec sleep 3600", { requests: { cpu: "100m", memory: "16Mi" }, limits: { memory: "32Mi" } }));
    await cluster.client.create(podsRef(), pod(g, "exec sleep 3600", { requests: { cpu: "100m", memory: "32Mi" }, limits: { cpu: "100m", memory: "32Mi" } }));
    const [p1, p2, pg] = await Promise.all([running(b1), running(b2), running(g)]);
    expect(await cgroupFile("cpu", "kubepods/burstable", "cpu.shares")).toBe(String(Math.trunc((600 * 1024) / 1000)));
    // Pod-level limits: podPidsLimit on every pod, a Burstable pod's memory limit (its only container has one),
    // a Guaranteed pod's quota and memory limit.
    expect(await cgroupFile("pids", `kubepods/burstable/pod${p1.metadata?.uid ?? ""}`, "pids.max")).toBe("200");
    expect(await cgroupFile("memory", `kubepods/burstable/pod${p2.metadata?.uid ?? ""}`, "memory.limit_in_bytes")).toBe(String(32 * Mi));
    expect(await cgroupFile("cpu", `kubepods/pod${pg.metadata?.uid ?? ""}`, "cpu.cfs_quota_us")).toBe("10000");
    expect(await cgroupFile("memory", `kubepods/pod${pg.metadata?.uid ?? ""}`, "memory.limit_in_bytes")).toBe(String(32 * Mi));
    expect(await cgroupFile("pids", `kubepods/pod${pg.metadata?.uid ?? ""}`, "pids.max")).toBe("200");

    await remove(b1);
    await eventually(async () => (await cgroupFile("cpu", "kubepods/burstable", "cpu.shares")) === String(Math.trunc((100 * 1024) / 1000)), { timeoutMs: 30_000, message: "burstable's shares to drop with the pod" });
    await remove(b2, g);
  });

  it("when kubepods runs out of memory, the kernel kills the best-effort pod first, then a burstable one, never the guaranteed one", async () => {
    // Each holder keeps 60 MiB of anonymous memory: dd's buffer, blocked writing into a FIFO nobody reads.
    const hold = "mkfifo /tmp/f; sleep 3600 < /tmp/f & exec dd if=/dev/zero of=/tmp/f bs=60M count=1";
    const bestEffort = `oom-be-${run}`;
    const burstable = `oom-bu-${run}`;
    const guaranteed = `oom-gu-${run}`;
    const filler = `oom-fill-${run}`;
    await cluster.client.create(podsRef(), pod(bestEffort, hold));
    // A request big enough to lower its score clearly below best effort's 1000 (1000 − 1000 × request / capacity).
    await cluster.client.create(podsRef(), pod(burstable, hold, { requests: { memory: "200Mi" } }));
    await cluster.client.create(podsRef(), pod(guaranteed, hold, { requests: { cpu: "100m", memory: "100Mi" }, limits: { cpu: "100m", memory: "100Mi" } }));
    const holders = await Promise.all([running(bestEffort), running(burstable), running(guaranteed)]);
    const root = suite.node.sandbox.cgroupRoot;
    const podPath = (p: V1Pod): string => {
      const qos = p.status?.qosClass === "Guaranteed" ? "" : `${(p.status?.qosClass ?? "").toLowerCase()}/`;
      return `kubepods/${qos}pod${p.metadata?.uid ?? ""}`;
    };
    for (const p of holders) {
      await eventually(async () => Number(await cgroupFile("memory", podPath(p), "memory.usage_in_bytes")) >= 60 * Mi, { timeoutMs: 30_000, message: `${p.metadata?.name ?? ""} to hold its memory` });
    }
    // The score each container process runs with (what the kernel ranks by).
    const scores: number[] = [];
    for (const p of holders) {
      const cid = (p.status?.containerStatuses?.[0]?.containerID ?? "").replace(/^containerd:\/\//, "");
      const pid = (await cgroupFile("memory", `${podPath(p)}/${cid}`, "cgroup.procs")).split("\n")[0] ?? "";
      scores.push(Number((await readFile(`/proc/${pid}/oom_score_adj`, "utf8")).trim()));
    }
    expect(scores[0]).toBe(1000);
    expect(scores[1]).toBeGreaterThanOrEqual(3);
    expect(scores[1]).toBeLessThan(1000);
    expect(scores[2]).toBeLessThan(scores[1] ?? 0);

    // 180 MiB held; the filler puts 250 MiB in tmpfs (over 400 MiB: one holder must go), then 60 MiB more.
    const fill = "dd if=/dev/zero of=/data/a bs=1M count=250 && sleep 3 && dd if=/dev/zero of=/data/b bs=1M count=60 && exec sleep 3600";
    await cluster.client.create(podsRef(), pod(filler, fill, { requests: { memory: "10Mi" } }, { volumes: [{ name: "data", emptyDir: { medium: "Memory" } }] }, { volumeMounts: [{ name: "data", mountPath: "/data" }] }));
    const terminated = async (name: string): Promise<{ reason: string; exitCode: number } | undefined> => {
      const t = (await cluster.client.get<V1Pod>(podsRef(name))).status?.containerStatuses?.[0]?.state?.terminated;
      return t ? { reason: t.reason ?? "", exitCode: t.exitCode } : undefined;
    };
    const be = await eventually(() => terminated(bestEffort), { timeoutMs: 60_000, message: "the best-effort pod to be OOM-killed" });
    const bu = await eventually(() => terminated(burstable), { timeoutMs: 60_000, message: "the burstable pod to be OOM-killed" });
    expect(be).toEqual({ reason: "OOMKilled", exitCode: 137 });
    expect(bu).toEqual({ reason: "OOMKilled", exitCode: 137 });
    // The kernel's own account, in the order it killed: which memcg ran out (kubepods: node allocatable, not a
    // pod's limit) and whose task it killed.
    const kills = await oomKills();
    expect(kills.map((k) => k.oomMemcg)).toEqual([`${root}/kubepods`, `${root}/kubepods`]);
    expect(kills.map((k) => k.taskMemcg.split("/").slice(0, -1).join("/"))).toEqual([`${root}/${podPath(holders[0])}`, `${root}/${podPath(holders[1])}`]);
    // The filler finished its writes (the kills made room), and the guaranteed pod was never touched.
    await eventually(async () => Number(await cgroupFile("memory", podPath(await cluster.client.get<V1Pod>(podsRef(filler))), "memory.usage_in_bytes")) >= 310 * Mi, { timeoutMs: 30_000, message: "the filler's 310 MiB" });
    const g = await cluster.client.get<V1Pod>(podsRef(guaranteed));
    expect(g.status?.containerStatuses?.[0]?.state?.running).toBeDefined();
    expect(g.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    expect(Number(await cgroupFile("memory", "kubepods", "memory.failcnt"))).toBeGreaterThan(0);
    await remove(bestEffort, burstable, guaranteed, filler);
  });

  it("holds a pod to podPidsLimit: forks past it fail in the kernel", async () => {
    const name = `forker-${run}`;
    // 300 sleepers asked for, under a limit of 200 processes for the whole pod (its pause process included). The
    // inner shell gives up at its first refused fork; the outer one stays.
    await cluster.client.create(podsRef(), pod(name, "sh -c 'i=0; while [ $i -lt 300 ]; do sleep 3600 & i=$((i+1)); done'; exec sleep 3600"));
    const p = await running(name);
    const path = `kubepods/besteffort/pod${p.metadata?.uid ?? ""}`;
    // cgroup v1 counts a refused fork in the forking process's cgroup (the container's), under the pod's limit.
    const container = `${path}/${(p.status?.containerStatuses?.[0]?.containerID ?? "").replace(/^containerd:\/\//, "")}`;
    const refused = async (): Promise<number> => Number(/^max (\d+)$/m.exec(await cgroupFile("pids", container, "pids.events"))?.[1] ?? "0");
    await eventually(async () => (await refused()) >= 1, { timeoutMs: 30_000, message: "the kernel to refuse a fork past the limit" });
    expect(await cgroupFile("pids", path, "pids.max")).toBe("200");
    // At the refusal the pod held 200 processes; the shell that gave up is gone since.
    await eventually(async () => (await cgroupFile("pids", path, "pids.current")) === "199", { timeoutMs: 10_000, message: "the pod's 199 processes" });
    await remove(name);
  });

  it("puts systemReserved on the existing systemReservedCgroup when enforceNodeAllocatable has system-reserved", async () => {
    // The system's cgroup for its daemons (systemd's system.slice on a real node): made here, as the system would.
    const name = uniqueName();
    const hierarchies = await cgroupHierarchies();
    for (const h of hierarchies) await mkdir(join(h.mountPoint, name));
    try {
      await cluster.addNode({ config: { enforceNodeAllocatable: ["pods", "system-reserved"], systemReserved: { memory: "300Mi", cpu: "250m", pid: "500" }, systemReservedCgroup: `/${name}` } });
      const read = (controller: string, file: string): Promise<string> => readFile(join("/sys/fs/cgroup", controller, name, file), "utf8").then((t) => t.trim());
      await eventually(async () => ((await read("memory", "memory.limit_in_bytes")) === String(300 * Mi) ? true : undefined), { timeoutMs: 60_000, message: "the system-reserved memory limit" });
      expect(await read("cpu", "cpu.shares")).toBe("256");
      expect(await read("pids", "pids.max")).toBe("500");
    } finally {
      for (const h of hierarchies) await rmdir(join(h.mountPoint, name)).catch(() => undefined);
    }
  });
});
