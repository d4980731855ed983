/**
 * `npm run bench -- pod-startup`: pod start through deckhand's kubelet, from the API create call to the pod
 * seen Running in a watch, one at a time ×30 and 50 at once, beside the raw CRI floor measured on the same
 * node, with the same CNI, in the same run (the floor's sandboxes carry no kubelet labels, so the kubelet
 * leaves them alone); and
 * the kubelet's RSS and CPU during the burst, at rest with 50 pods, and at 100 pods.
 *
 * Targets (issue 5): p99 under 1 s for a single pod, overhead over the CRI floor under 100 ms at p50, RSS under
 * 150 MiB at 100 pods. This prints the figures; it asserts nothing.
 */
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { V1Pod } from "@kubernetes/client-node";
import { TestCluster } from "../test/harness/cluster.ts";
import { eventually } from "../test/harness/wait.ts";
import { Informer } from "../src-shared/kube/informer.ts";
import { silentLogger } from "../src-shared/log.ts";
import { run } from "../src-shared/exec.ts";
import { measureCriFloor, printCriFloor } from "./cri-floor.ts";
import { formatMs, summarize, type Summary } from "./stats.ts";

const SEQUENTIAL = Number(process.env["BENCH_SEQUENTIAL"] ?? 30);
const BURST = Number(process.env["BENCH_BURST"] ?? 50);
const TOTAL = Number(process.env["BENCH_TOTAL"] ?? 100);

async function procStats(pid: number): Promise<{ rssMiB: number; cpuMs: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]?.split(" ") ?? [];
  const ticks = Number(stat[11] ?? 0) + Number(stat[12] ?? 0); // utime + stime, in clock ticks (100 Hz)
  return { rssMiB: rssKiB / 1024, cpuMs: ticks * 10 };
}

const cluster = new TestCluster();
try {
  // The kubelet runs as systemd runs it: compiled.
  await run("npm", ["run", "--silent", "build"], { timeoutMs: 300_000 });
  await cluster.start();
  const node = await cluster.addNode({ compiled: true });
  const kubelet = node.kubelet;
  if (!kubelet) throw new Error("no kubelet");
  await eventually(async () => {
    const res = await cluster.kubectl(["get", "node", node.name, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]);
    return res.stdout === "True" ? true : undefined;
  }, { timeoutMs: 60_000, message: "the node to be Ready" });
  const floor = await measureCriFloor(node.sandbox, { sequential: SEQUENTIAL, concurrent: BURST });
  const pid = kubelet.pid ?? 0;

  // Pod phases as a watch delivers them.
  const runningAt = new Map<string, number>();
  const informer = new Informer<V1Pod>({ client: cluster.client, resource: { group: "", version: "v1", resource: "pods", namespace: "bench" }, logger: silentLogger() });
  const seen = (p: V1Pod): void => {
    const name = p.metadata?.name ?? "";
    if (p.status?.phase === "Running" && !runningAt.has(name)) runningAt.set(name, performance.now());
  };
  informer.on({ added: seen, updated: (_o, p) => seen(p) });
  const stop = new AbortController();
  await cluster.client.create({ group: "", version: "v1", resource: "namespaces" }, { apiVersion: "v1", kind: "Namespace", metadata: { name: "bench" } });
  informer.start(stop.signal);
  await informer.waitForSync();

  const podBody = (name: string): V1Pod => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "bench" },
    spec: { nodeName: node.name, terminationGracePeriodSeconds: 1, containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"] }] },
  });
  const startPod = async (name: string): Promise<number> => {
    const t0 = performance.now();
    await cluster.client.create({ group: "", version: "v1", resource: "pods", namespace: "bench" }, podBody(name));
    const t1 = await eventually(() => Promise.resolve(runningAt.get(name)), { timeoutMs: 60_000, intervalMs: 2, message: `${name} Running` });
    return t1 - t0;
  };

  const sequential: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) sequential.push(await startPod(`seq-${i}`));
  // Back to no pods for the burst, so it starts from the same state as the floor's.
  const seqNames = Array.from({ length: SEQUENTIAL }, (_, i) => `seq-${i}`);
  await Promise.all(seqNames.map((n) => cluster.client.delete({ group: "", version: "v1", resource: "pods", namespace: "bench", name: n })));
  await eventually(async () => ((await cluster.client.get<{ items: unknown[] }>({ group: "", version: "v1", resource: "pods", namespace: "bench" })).items.length === 0 ? true : undefined), { timeoutMs: 120_000, message: "the sequential pods to be gone" });

  const cpu0 = await procStats(pid);
  const wall0 = performance.now();
  let peakRss = cpu0.rssMiB;
  const sampler = setInterval(() => {
    void procStats(pid).then((s) => (peakRss = Math.max(peakRss, s.rssMiB)), () => undefined);
  }, 100);
  const burst = await Promise.all(Array.from({ length: BURST }, (_, i) => startPod(`burst-${i}`)));
  const burstWall = performance.now() - wall0;
  clearInterval(sampler);
  const cpu1 = await procStats(pid);

  await sleep(20_000); // settle: PLEG and status at rest
  const rest0 = await procStats(pid);
  await sleep(10_000);
  const rest1 = await procStats(pid);

  for (let i = BURST; i < TOTAL; i++) await startPod(`more-${i}`);
  await sleep(5000);
  const at100 = await procStats(pid);

  const row = (name: string, s: Summary): string => `  ${name.padEnd(34)} p50 ${formatMs(s.p50)}  p99 ${formatMs(s.p99)}  (n=${s.n})`;
  printCriFloor(floor, "deckhand-bridge through its daemon, as the kubelet's pods");
  console.log(`\nthrough deckhand's kubelet (create call → Running seen in a watch):`);
  const seqS = summarize(sequential);
  const burstS = summarize(burst);
  console.log(row("one pod at a time", seqS));
  console.log(row(`${BURST} at once, each`, burstS));
  console.log(`  all ${BURST} running after ${formatMs(burstWall)}   (CRI floor: ${formatMs(floor.concurrent.wallMs)})`);
  console.log(`  overhead over the CRI floor at p50: ${formatMs(seqS.p50 - floor.sequential.total.p50)} one at a time, ${formatMs(burstS.p50 - floor.concurrent.total.p50)} in the burst`);
  console.log(`\nkubelet process (pid ${pid}):`);
  console.log(`  burst of ${BURST}: CPU ${((cpu1.cpuMs - cpu0.cpuMs) / burstWall * 100).toFixed(0)}% of one core, peak RSS ${peakRss.toFixed(1)} MiB`);
  console.log(`  at rest with ${BURST} pods: CPU ${((rest1.cpuMs - rest0.cpuMs) / 10_000 * 100).toFixed(1)}% of one core, RSS ${rest1.rssMiB.toFixed(1)} MiB`);
  console.log(`  with ${TOTAL} pods: RSS ${at100.rssMiB.toFixed(1)} MiB`);
  console.log(`\ntargets: single-pod p99 < 1000 ms: ${seqS.p99.toFixed(0)} ms; p50 overhead < 100 ms: ${(seqS.p50 - floor.sequential.total.p50).toFixed(0)} ms; RSS at ${TOTAL} pods < 150 MiB: ${at100.rssMiB.toFixed(0)} MiB`);
  stop.abort();
  await informer.close();
} catch (err) {
  console.error(`pod-startup failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  await cluster.teardown();
}
