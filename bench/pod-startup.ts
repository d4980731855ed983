/**
 * `npm run bench -- pod-startup`: pod start through deckhand's kubelet, from the API create call to the pod
 * seen Running in a watch, against the raw CRI floor (RunPodSandbox + CreateContainer + StartContainer through
 * our CRI client, same node, same CNI: the floor's sandboxes carry no kubelet labels, so the kubelet leaves
 * them alone). The two are interleaved, after a warm-up: one floor pod, one kubelet pod, one floor pod...
 * (each removed before the next, so every sample starts from an empty node), then alternating bursts of
 * `BENCH_BURST` pods (floor burst, kubelet burst, ...). Then the kubelet's CPU and RSS at rest with a burst's
 * pods and at `BENCH_TOTAL` pods.
 *
 * A third sequential series, interleaved with the two: a pod with a ConfigMap, a Secret, an emptyDir and the
 * service account token volume, against the plain pod (which has no volume at all).
 *
 * Targets (issue 9): p50 overhead over the floor ≤ 20 ms; the burst ≤ 1.1× the floor's burst; kubelet RSS
 * ≤ 150 MiB at 100 pods. Issue 11: volumes add ≤ 30 ms at p50. This prints the figures beside the targets; it
 * asserts nothing.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { V1Pod } from "@kubernetes/client-node";
import { TestCluster } from "../test/harness/cluster.ts";
import { eventually } from "../test/harness/wait.ts";
import { Informer } from "../src-shared/kube/informer.ts";
import { silentLogger } from "../src-shared/log.ts";
import { run } from "../src-shared/exec.ts";
import { removeFloorPods, startFloorPod } from "./cri-floor.ts";
import { procStats } from "./proc.ts";
import { compare, formatMs, interleave, printComparison } from "./compare.ts";

const SEQUENTIAL = Number(process.env["BENCH_SEQUENTIAL"] ?? 30);
const BURST = Number(process.env["BENCH_BURST"] ?? 50);
const BURST_ROUNDS = Number(process.env["BENCH_BURST_ROUNDS"] ?? 3);
const TOTAL = Number(process.env["BENCH_TOTAL"] ?? 100);
const WARMUP = 2;

const verdict = (ok: boolean): string => (ok ? "met" : "NOT met");

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
    return res.stdout === "True";
  }, { timeoutMs: 60_000, message: "the node to be Ready" });
  const pid = kubelet.pid ?? 0;
  const cri = node.sandbox.criClient();
  const podsRef = { group: "", version: "v1", resource: "pods", namespace: "bench" };

  // Pod phases as a watch delivers them.
  const runningAt = new Map<string, number>();
  const informer = new Informer<V1Pod>({ client: cluster.client, resource: podsRef, logger: silentLogger() });
  const seen = (p: V1Pod): void => {
    const name = p.metadata?.name ?? "";
    if (p.status?.phase === "Running" && !runningAt.has(name)) runningAt.set(name, performance.now());
  };
  informer.on({ added: seen, updated: (_o, p) => seen(p) });
  const stop = new AbortController();
  await cluster.client.create({ group: "", version: "v1", resource: "namespaces" }, { apiVersion: "v1", kind: "Namespace", metadata: { name: "bench" } });
  informer.start(stop.signal);
  await informer.waitForSync();

  // A plain pod: no volume at all (the API server would add the service account token's; the variant below has it).
  const podBody = (name: string): V1Pod => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "bench" },
    spec: { nodeName: node.name, terminationGracePeriodSeconds: 1, automountServiceAccountToken: false, containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"] }] },
  });
  // Issue 11's variant: a ConfigMap, a Secret, an emptyDir and the token volume the API server injects.
  const volumePodBody = (name: string): V1Pod => {
    const pod = podBody(name);
    const spec = pod.spec as NonNullable<V1Pod["spec"]>;
    delete spec.automountServiceAccountToken;
    spec.volumes = [
      { name: "config", configMap: { name: "bench-config" } },
      { name: "secret", secret: { secretName: "bench-secret" } },
      { name: "scratch", emptyDir: {} },
    ];
    spec.containers[0] = { ...spec.containers[0]!, volumeMounts: [{ name: "config", mountPath: "/etc/config" }, { name: "secret", mountPath: "/etc/secret" }, { name: "scratch", mountPath: "/scratch" }] };
    return pod;
  };
  const kubeletPod = async (name: string, body: (name: string) => V1Pod = podBody): Promise<number> => {
    const t0 = performance.now();
    await cluster.client.create(podsRef, body(name));
    const t1 = await eventually(() => runningAt.get(name), { timeoutMs: 60_000, intervalMs: 2, message: `${name} Running` });
    return t1 - t0;
  };
  /** Deletes kubelet pods and waits until the API and the runtime have none left (the next sample starts clean). */
  const removeKubeletPods = async (names: readonly string[]): Promise<void> => {
    await Promise.all(names.map((name) => cluster.client.delete({ ...podsRef, name }, { gracePeriodSeconds: 0 })));
    await eventually(async () => (await cluster.client.get<{ items: unknown[] }>(podsRef)).items.length === 0, { timeoutMs: 120_000, message: "the kubelet's pods to be gone from the API" });
    await eventually(async () => (await cri.runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.namespace": "bench" } } })).items.length === 0, {
      timeoutMs: 120_000,
      message: "the kubelet's sandboxes to be gone from the runtime",
    });
  };
  const floorPod = async (name: string): Promise<{ id: string; ms: number }> => {
    const t0 = performance.now();
    const { id } = await startFloorPod(cri, node.sandbox.cgroupRoot, name);
    return { id, ms: performance.now() - t0 };
  };

  await cluster.client.create({ group: "", version: "v1", resource: "configmaps", namespace: "bench" }, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "bench-config", namespace: "bench" }, data: { "app.conf": "level=info\n" } });
  await cluster.client.create({ group: "", version: "v1", resource: "secrets", namespace: "bench" }, { apiVersion: "v1", kind: "Secret", metadata: { name: "bench-secret", namespace: "bench" }, data: { password: Buffer.from("hunter2").toString("base64") } });

  // One at a time, interleaved: floor, plain pod, pod with volumes.
  const floorSeq: number[] = [];
  const kubeletSeq: number[] = [];
  const volumeSeq: number[] = [];
  await interleave({ rounds: SEQUENTIAL, warmup: WARMUP }, [
    async (i, record) => {
      const { id, ms } = await floorPod(`floor-seq-${i + WARMUP}`);
      await removeFloorPods(cri, [id]);
      if (record) floorSeq.push(ms);
    },
    async (i, record) => {
      const name = `seq-${i + WARMUP}`;
      const ms = await kubeletPod(name);
      await removeKubeletPods([name]);
      if (record) kubeletSeq.push(ms);
    },
    async (i, record) => {
      const name = `vol-${i + WARMUP}`;
      const ms = await kubeletPod(name, volumePodBody);
      await removeKubeletPods([name]);
      if (record) volumeSeq.push(ms);
    },
  ]);

  // Bursts, alternating; the last kubelet burst's pods stay for the at-rest figures.
  const floorWalls: number[] = [];
  const kubeletWalls: number[] = [];
  const floorEach: number[] = [];
  const kubeletEach: number[] = [];
  let burstCpuMs = 0;
  let peakRss = 0;
  const lastBurst: string[] = [];
  await interleave({ rounds: BURST_ROUNDS, warmup: 0 }, [
    async (r) => {
      const wall0 = performance.now();
      const started = await Promise.all(Array.from({ length: BURST }, (_, i) => floorPod(`floor-burst-${r}-${i}`)));
      floorWalls.push(performance.now() - wall0);
      floorEach.push(...started.map((s) => s.ms));
      await removeFloorPods(cri, started.map((s) => s.id));
    },
    async (r) => {
      const names = Array.from({ length: BURST }, (_, i) => `burst-${r}-${i}`);
      const cpu0 = await procStats(pid);
      peakRss = Math.max(peakRss, cpu0.rssMiB);
      const sampler = setInterval(() => {
        void procStats(pid).then((s) => (peakRss = Math.max(peakRss, s.rssMiB)), () => undefined);
      }, 100);
      const wall0 = performance.now();
      kubeletEach.push(...(await Promise.all(names.map((n) => kubeletPod(n)))));
      kubeletWalls.push(performance.now() - wall0);
      clearInterval(sampler);
      burstCpuMs += (await procStats(pid)).cpuMs - cpu0.cpuMs;
      if (r < BURST_ROUNDS - 1) await removeKubeletPods(names);
      else lastBurst.push(...names);
    },
  ]);

  // Measurement windows, not waits for an event: PLEG and status at rest with the last burst's pods.
  await sleep(20_000);
  const rest0 = await procStats(pid);
  await sleep(10_000);
  const rest1 = await procStats(pid);
  for (let i = lastBurst.length; i < TOTAL; i++) await kubeletPod(`more-${i}`);
  await sleep(5000);
  const atTotal = await procStats(pid);

  const seq = compare(floorSeq, kubeletSeq);
  const volumes = compare(kubeletSeq, volumeSeq);
  const walls = compare(floorWalls, kubeletWalls);
  const each = compare(floorEach, kubeletEach);
  console.log(`\npod start, deckhand's kubelet (create call → Running seen in a watch) against the CRI floor (RunPodSandbox +`);
  console.log(`CreateContainer + StartContainer through our CRI client), same node, same CNI, interleaved after ${WARMUP} warm-up rounds\n`);
  printComparison("one pod at a time:", { reference: "CRI floor", ours: "kubelet" }, seq, "p50 overhead ≤ 20 ms");
  printComparison("\none at a time, a pod with a ConfigMap, a Secret, an emptyDir and the token volume against the plain pod:", { reference: "plain pod", ours: "with volumes" }, volumes, "p50 added ≤ 30 ms");
  printComparison(`\n${BURST} pods at once, until all run (${BURST_ROUNDS} rounds, alternating):`, { reference: "CRI floor burst", ours: "kubelet burst" }, walls, "≤ 1.1× the floor");
  printComparison(`\n${BURST} pods at once, each pod:`, { reference: "CRI floor", ours: "kubelet" }, each);
  const burstWallTotal = kubeletWalls.reduce((a, b) => a + b, 0);
  console.log(`\nkubelet process (pid ${pid}):`);
  console.log(`  during its bursts: CPU ${((burstCpuMs / burstWallTotal) * 100).toFixed(0)}% of one core, peak RSS ${peakRss.toFixed(1)} MiB`);
  console.log(`  at rest with ${lastBurst.length} pods: CPU ${(((rest1.cpuMs - rest0.cpuMs) / 10_000) * 100).toFixed(1)}% of one core, RSS ${rest1.rssMiB.toFixed(1)} MiB`);
  console.log(`  with ${TOTAL} pods: RSS ${atTotal.rssMiB.toFixed(1)} MiB`);
  console.log(`\ntargets (issue 9):`);
  console.log(`  p50 overhead over the floor ≤ 20 ms:   ${formatMs(seq.overheadP50)} (paired ${formatMs(seq.pairedOverheadP50)})  ${verdict(seq.overheadP50 <= 20)}`);
  console.log(`  ${BURST}-pod burst ≤ 1.1× the floor's:       ${walls.ratioP50.toFixed(2)}×  ${verdict(walls.ratioP50 <= 1.1)}`);
  console.log(`  RSS at ${TOTAL} pods ≤ 150 MiB:             ${atTotal.rssMiB.toFixed(0)} MiB  ${verdict(atTotal.rssMiB <= 150)}`);
  console.log(`\ntarget (issue 11):`);
  console.log(`  volumes add ≤ 30 ms at p50:            ${formatMs(volumes.overheadP50)} (paired ${formatMs(volumes.pairedOverheadP50)})  ${verdict(volumes.overheadP50 <= 30)}`);
  stop.abort();
  await informer.close();
} catch (err) {
  console.error(`pod-startup failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
} finally {
  await cluster.teardown();
}
