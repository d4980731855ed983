/**
 * `npm run bench -- stats`: the cost of resource statistics with `BENCH_PODS` pods (100 by default) on a node.
 *
 * 1. `/stats/summary` latency, as operators and metrics-server fetch it (through the API server's node proxy),
 *    interleaved with `/healthz` fetched the same way: the difference is the summary's own cost.
 * 2. The collector's CPU per housekeeping pass (cadvisor/collector.ts on the node's real cgroup tree, run in this
 *    process and timed with process.cpuUsage), interleaved with the floor: reading the same cgroup files once
 *    (the file list found beforehand, so the floor pays no directory listing), and the same per second at the
 *    kubelet's 10 s interval as a share of one core.
 *
 * Targets (issue 13): summary ≤ 30 ms p50, collection ≤ 1% of one core at a 10 s interval, ≤ 1.5× the floor.
 * Knobs: BENCH_PODS, BENCH_ROUNDS (summary and housekeeping rounds, 200), BENCH_FROM_SOURCE=1 (run the kubelet
 * from the TypeScript source, no build). Prints the figures beside the targets; asserts nothing.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { TestCluster } from "../test/harness/cluster.ts";
import { eventually } from "../test/harness/wait.ts";
import { silentLogger } from "../src-shared/log.ts";
import { run } from "../src-shared/exec.ts";
import { cgroupHierarchies } from "../src-shared/cgroups.ts";
import { StatsCollector, kubepodsPath, DEFAULT_HOUSEKEEPING_INTERVAL_MS } from "../cadvisor/collector.ts";
import { cgroupLayout, listPodCgroups, processCgroup, type CgroupRef } from "../cadvisor/cgroup-reader.ts";
import { compare, interleave, printComparison, summarize } from "./compare.ts";

const PODS = Number(process.env["BENCH_PODS"] ?? 100);
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 200);
const FROM_SOURCE = process.env["BENCH_FROM_SOURCE"] === "1";
const verdict = (ok: boolean): string => (ok ? "met" : "NOT met");

/**
 * Every file the collector reads in a pass (v1 or v2), found once: the cgroups' stats files (the kubelet system
 * container's too: here this process's cgroups, as the in-process collector finds them), each pod's first
 * container's cgroup.procs and that process's net/dev, the kubelet's own net/dev and cgroup. The floor reads
 * exactly these, without the directory listing that finds the pods.
 */
function filesOf(cgroupRoot: string, layout: NonNullable<ReturnType<typeof cgroupLayout>>): string[] {
  const kubepods = kubepodsPath(cgroupRoot);
  const paths: CgroupRef[] = ["", kubepods];
  // The "kubelet" system container: this process's cgroups (one per v1 hierarchy).
  const own = processCgroup(layout);
  if (own !== undefined) paths.push(own);
  const files: string[] = ["/proc/self/net/dev", "/proc/self/cgroup"];
  const listing = layout.version === 1 ? layout.mounts.memory : layout.mounts.unified;
  for (const pod of listPodCgroups(layout, kubepods)) {
    paths.push(pod.path);
    for (const id of pod.containerIds) paths.push(`${pod.path}/${id}`);
    const first = pod.containerIds[0];
    if (listing === undefined || first === undefined) continue;
    const procs = join(listing, pod.path, first, "cgroup.procs");
    files.push(procs);
    const pid = readFileSync(procs, "utf8").split("\n")[0]?.trim();
    if (pid) files.push(`/proc/${pid}/net/dev`);
  }
  const { cpuacct, memory, pids, blkio, unified } = layout.mounts;
  for (const ref of paths) {
    const p = (c: "cpuacct" | "memory" | "pids" | "blkio"): string => (typeof ref === "string" ? ref : (ref[c] ?? "/"));
    if (layout.version === 1) {
      if (cpuacct) files.push(join(cpuacct, p("cpuacct"), "cpuacct.usage"), join(cpuacct, p("cpuacct"), "cpuacct.stat"));
      if (memory) files.push(join(memory, p("memory"), "memory.usage_in_bytes"), join(memory, p("memory"), "memory.limit_in_bytes"), join(memory, p("memory"), "memory.stat"));
      if (pids) files.push(join(pids, p("pids"), "pids.current"));
      if (blkio) files.push(join(blkio, p("blkio"), "blkio.throttle.io_service_bytes_recursive"), join(blkio, p("blkio"), "blkio.throttle.io_serviced_recursive"));
    } else if (unified) {
      for (const f of ["cpu.stat", "memory.current", "memory.max", "memory.stat", "memory.swap.current", "pids.current", "io.stat"]) files.push(join(unified, p("memory"), f));
    }
  }
  return files;
}

function readAll(files: readonly string[]): void {
  for (const f of files) {
    try {
      readFileSync(f, "utf8");
    } catch {
      // absent (the root's pids.current): the collector pays the same failed open
    }
  }
}

function cpuMs(f: () => void | Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  return Promise.resolve(f()).then(() => {
    const d = process.cpuUsage(before);
    return (d.user + d.system) / 1000;
  });
}

const cluster = new TestCluster();
try {
  if (!FROM_SOURCE) await run("npm", ["run", "--silent", "build"], { timeoutMs: 300_000 });
  await cluster.start();
  const node = await cluster.addNode({ compiled: !FROM_SOURCE });
  await eventually(async () => {
    const res = await cluster.kubectl(["get", "node", node.name, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]);
    return res.stdout === "True";
  }, { timeoutMs: 60_000, message: "the node to be Ready" });
  const podsRef = { group: "", version: "v1", resource: "pods", namespace: "bench" };
  await cluster.client.create({ group: "", version: "v1", resource: "namespaces" }, { apiVersion: "v1", kind: "Namespace", metadata: { name: "bench" } });
  const body = (name: string): V1Pod => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "bench" },
    spec: { nodeName: node.name, terminationGracePeriodSeconds: 1, automountServiceAccountToken: false, containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"] }] },
  });
  for (let i = 0; i < PODS; i += 10) await Promise.all(Array.from({ length: Math.min(10, PODS - i) }, (_, j) => cluster.client.create(podsRef, body(`stats-${i + j}`))));
  await eventually(async () => (await cluster.client.get<{ items: V1Pod[] }>(podsRef)).items.filter((p) => p.status?.phase === "Running").length === PODS, {
    timeoutMs: 300_000,
    intervalMs: 1000,
    message: `${PODS} pods Running`,
  });
  // One housekeeping pass of the kubelet's with every pod in it.
  const proxy = (path: string): string => `/api/v1/nodes/${node.name}/proxy${path}`;
  await eventually(async () => (await cluster.client.request<{ pods: unknown[] }>("GET", proxy("/stats/summary"))).pods.length === PODS, { timeoutMs: 60_000, intervalMs: 1000, message: "every pod in the summary" });
  console.log(`stats benchmark: ${PODS} pods, ${ROUNDS} rounds${FROM_SOURCE ? " (kubelet from source)" : ""}`);

  // 1. /stats/summary against /healthz, both through the API server's node proxy.
  const healthz: number[] = [];
  const summaryMs: number[] = [];
  const timed = async (path: string, into: number[], record: boolean): Promise<void> => {
    const t0 = performance.now();
    await cluster.client.request("GET", proxy(path));
    if (record) into.push(performance.now() - t0);
  };
  await interleave({ rounds: ROUNDS, warmup: 5 }, [(_r, rec) => timed("/healthz", healthz, rec), (_r, rec) => timed("/stats/summary", summaryMs, rec)]);
  const s = compare(healthz, summaryMs);
  printComparison("/stats/summary through the node proxy, against /healthz the same way", { reference: "/healthz", ours: "/stats/summary" }, s, "summary ≤ 30 ms p50");
  console.log(`  summary ${verdict(s.ours.p50 <= 30)} (p50 ${s.ours.p50.toFixed(1)} ms; its own cost over /healthz, paired p50 ${s.pairedOverheadP50.toFixed(1)} ms)`);

  // 2. A collector's housekeeping pass on the node's real cgroups, against reading the same files once.
  const layout = cgroupLayout(await cgroupHierarchies());
  if (layout === undefined) throw new Error("no cgroup hierarchy mounted");
  const files = filesOf(node.sandbox.cgroupRoot, layout);
  const collector = new StatsCollector({ cgroupRoot: node.sandbox.cgroupRoot, log: silentLogger() });
  await collector.housekeep();
  const floor: number[] = [];
  const ours: number[] = [];
  await interleave({ rounds: ROUNDS, warmup: 5 }, [
    async (_r, rec) => {
      const ms = await cpuMs(() => readAll(files));
      if (rec) floor.push(ms);
    },
    async (_r, rec) => {
      const ms = await cpuMs(() => collector.housekeep());
      if (rec) ours.push(ms);
    },
  ]);
  const c = compare(floor, ours);
  printComparison(`collector CPU per housekeeping pass (${files.length} files), against reading them once`, { reference: "floor: the same files read once", ours: "StatsCollector.housekeep()" }, c, "≤ 1.5× the floor");
  const share = c.ours.p50 / DEFAULT_HOUSEKEEPING_INTERVAL_MS;
  const pct = summarize(ours.map((v) => (100 * v) / DEFAULT_HOUSEKEEPING_INTERVAL_MS));
  console.log(`  ${"CPU per second at a 10 s interval".padEnd(40)} p50 ${pct.p50.toFixed(4)}% of a core  p99 ${pct.p99.toFixed(4)}%`);
  console.log(`  collection ${verdict(share <= 0.01)} at ${(100 * share).toFixed(3)}% of a core (target ≤ 1%); ${verdict(c.ratioP50 <= 1.5)} at ${c.ratioP50.toFixed(2)}× the floor (target ≤ 1.5×)`);
} finally {
  await cluster.teardown();
}
