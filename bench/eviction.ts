/**
 * `npm run bench -- eviction [--runs N] [--pods P] [--window S] [--from-source]`: the eviction manager's
 * reaction and its cost at rest, on a sandbox node running the kubelet (compiled, as systemd runs it, unless
 * --from-source).
 *
 * - Reaction (N runs, default 20): the node's allocatable is made small (kubeReserved = MemTotal − 400 Mi) with a
 *   hard `memory.available` of 250Mi (copied to allocatableMemory.available), so the pods' working set crosses it
 *   at 150 Mi. Each run starts a best-effort pod that, once told, fills a memory emptyDir to just past the
 *   threshold (the pods' working set is read from the kubepods cgroup first, so the crossing is the write's last
 *   MiB), stamps the time (busybox `adjtimex`, the kernel's clock) when the write is done, and stamps it again in
 *   its SIGTERM trap: the difference is from the crossing to the first kill. Both stamps come from the container's
 *   log. Between runs, the MemoryPressure condition is let clear (a best-effort pod is refused while it holds).
 * - Cost at rest (P pods, default 100, idle): the eviction manager, its figures and its memory watch run in this
 *   process against the node's real cgroup tree and filesystems, with the kubelet's thresholds and nothing to
 *   evict, for S seconds (default 60); their CPU (process.cpuUsage) over the window, as a share of one core,
 *   against an idle window of the same length.
 *
 * Upstream's reference: synchronize every 10 s (evictionMonitoringPeriod), so a crossing waits 0–10 s for the
 * next pass (p50 ≈ 5 s, p99 ≈ 10 s) unless kernelMemcgNotification is on (cgroup v1 only). Targets (issue 14):
 * ≤ 2 s p99 from crossing to kill, ≤ 0.5% of one core at rest. This prints; it asserts nothing.
 */
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { TestCluster } from "../test/harness/cluster.ts";
import { eventually } from "../test/harness/wait.ts";
import { run } from "../src-shared/exec.ts";
import { silentLogger } from "../src-shared/log.ts";
import { EvictionManager } from "../kubelet/eviction/eviction-manager.ts";
import { MemoryWatch } from "../kubelet/eviction/memory-watch.ts";
import { NodeStats } from "../kubelet/eviction/node-stats.ts";
import { parseThresholdConfig } from "../kubelet/eviction/thresholds.ts";
import { ADJTIMEX_STAMP, parseStamps, summarize, summaryRow } from "./compare.ts";

const { values: args } = parseArgs({
  options: { runs: { type: "string", default: "20" }, pods: { type: "string", default: "100" }, window: { type: "string", default: "60" }, "from-source": { type: "boolean", default: false } },
});
const RUNS = Number(args.runs);
const PODS = Number(args.pods);
const WINDOW_MS = Number(args.window) * 1000;
const NS = "bench";
const Mi = 1024 * 1024;
const STAMP = ADJTIMEX_STAMP;
const memTotal = Number(/MemTotal:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? "0") * 1024;
const config = { kubeReserved: { memory: `${memTotal - 400 * Mi}` }, evictionHard: { "memory.available": "250Mi" }, evictionPressureTransitionPeriod: "5s" };
/** The pods' working set at which allocatableMemory.available crosses 250Mi: 400 Mi − 250 Mi. */
const CROSSING = 150 * Mi;


const cluster = new TestCluster();
try {
  if (!args["from-source"]) await run("npm", ["run", "--silent", "build"], { timeoutMs: 300_000 });
  await cluster.start();
  const node = await cluster.addNode({ compiled: !args["from-source"], config });
  const cri = node.sandbox.criClient();
  const podsRef = { group: "", version: "v1", resource: "pods", namespace: NS };
  await cluster.client.create({ group: "", version: "v1", resource: "namespaces" }, { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
  const kubepods = `/sys/fs/cgroup/memory${node.sandbox.cgroupRoot}/kubepods`;
  const podsWorkingSet = (): number => {
    const usage = Number(readFileSync(`${kubepods}/memory.usage_in_bytes`, "utf8"));
    const inactive = Number(/^total_inactive_file (\d+)$/m.exec(readFileSync(`${kubepods}/memory.stat`, "utf8"))?.[1] ?? 0);
    return usage - inactive;
  };
  const get = (name: string): Promise<V1Pod> => cluster.client.get<V1Pod>({ ...podsRef, name });

  console.log(`eviction benchmark: ${RUNS} runs of a pod crossing allocatableMemory.available, then ${PODS} idle pods for ${WINDOW_MS / 1000} s`);
  const reactions: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const name = `hog-${i}`;
    const hog: V1Pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: NS },
      spec: {
        nodeName: node.name,
        terminationGracePeriodSeconds: 1,
        automountServiceAccountToken: false,
        volumes: [{ name: "fill", emptyDir: { medium: "Memory", sizeLimit: "300Mi" } }],
        containers: [{
          name: "hog",
          image: "localhost/busybox:1",
          imagePullPolicy: "IfNotPresent",
          volumeMounts: [{ name: "fill", mountPath: "/fill" }],
          command: ["sh", "-c", `trap 'echo KILLED; ${STAMP}; exit 0' TERM; while [ ! -e /fill/go ]; do sleep 0.05; done; dd if=/dev/zero of=/fill/data bs=1M count=$(cat /fill/go) 2>/dev/null; echo FILLED; ${STAMP}; while true; do sleep 1 & wait $!; done`],
        }],
      },
    };
    await cluster.client.create(podsRef, hog);
    await eventually(async () => (await get(name)).status?.phase === "Running", { timeoutMs: 60_000, intervalMs: 200, message: `${name} Running` });
    const uid = (await get(name)).metadata?.uid ?? "";
    const { containers } = await cri.runtime("ListContainers", { filter: { label_selector: { "io.kubernetes.pod.uid": uid } } });
    const id = containers.find((c) => c.state === "CONTAINER_RUNNING")?.id ?? "";
    // Just past the threshold: the crossing is in the write's last MiB.
    const mib = Math.ceil((CROSSING - podsWorkingSet()) / Mi) + 2;
    await cri.runtime("ExecSync", { container_id: id, cmd: ["sh", "-c", `echo ${mib} > /fill/go`], timeout: 10 });
    await eventually(async () => (await get(name)).status?.reason === "Evicted", { timeoutMs: 30_000, intervalMs: 100, message: `${name} evicted` });
    const logPath = (await cri.runtime("ContainerStatus", { container_id: id, verbose: false })).status?.log_path ?? "";
    const log = await eventually(async () => {
      const text = (await node.sandbox.exec("cat", [logPath], { allowFailure: true })).stdout;
      return text.includes("KILLED") ? text : undefined;
    }, { timeoutMs: 10_000, message: `${name}'s kill stamp` });
    const [filled, killed] = parseStamps(log);
    if (filled !== undefined && killed !== undefined) {
      reactions.push(killed - filled);
      console.log(`  run ${i + 1}: ${(killed - filled).toFixed(1)} ms`);
    }
    await cluster.client.delete({ ...podsRef, name }, { gracePeriodSeconds: 0 });
    await eventually(() => podsWorkingSet() < CROSSING - 50 * Mi, { timeoutMs: 60_000, intervalMs: 200, message: "the hog's memory freed" });
    // A best-effort pod is refused while MemoryPressure holds (the transition period, 5 s here).
    await eventually(async () => (await cluster.client.get<V1Node>({ group: "", version: "v1", resource: "nodes", name: node.name })).status?.conditions?.find((c) => c.type === "MemoryPressure")?.status === "False", { timeoutMs: 60_000, intervalMs: 500, message: "MemoryPressure cleared" });
  }
  console.log("threshold crossing → first kill (SIGTERM in the container)");
  console.log(summaryRow("deckhand (100 ms memory watch)", summarize(reactions)));
  console.log(`  ${"upstream (10 s evictionMonitoringPeriod)".padEnd(40)} p50 ≈ 5000 ms, p99 ≈ 10000 ms (uniform wait for the next pass)   target: ≤ 2000 ms p99`);

  // Cost at rest: P idle pods; the manager, figures and watch in this process against the node's cgroups.
  for (let i = 0; i < PODS; i++) {
    await cluster.client.create(podsRef, { apiVersion: "v1", kind: "Pod", metadata: { name: `idle-${i}`, namespace: NS }, spec: { nodeName: node.name, terminationGracePeriodSeconds: 0, automountServiceAccountToken: false, containers: [{ name: "c", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"] }] } });
  }
  await eventually(async () => (await cluster.client.get<{ items: V1Pod[] }>(podsRef)).items.filter((p) => p.status?.phase === "Running").length >= PODS, { timeoutMs: 60_000 + PODS * 2000, intervalMs: 1000, message: `${PODS} pods Running` });
  const pods = (await cluster.client.get<{ items: V1Pod[] }>(podsRef)).items;
  const thresholds = parseThresholdConfig({ evictionHard: config.evictionHard, evictionSoft: {}, evictionSoftGracePeriod: {}, evictionMinimumReclaim: {}, enforceNodeAllocatable: ["pods"] });
  const stats = new NodeStats({ cgroupRoot: node.sandbox.cgroupRoot, rootDir: "/var/lib/kubelet", imageFsDir: "/var/lib/containerd", podLogsDir: "/var/log/pods", memoryCapacityBytes: () => memTotal, allocatableMemoryBytes: () => 400 * Mi, containerNames: () => new Map() });
  await stats.init();
  const manager = new EvictionManager({ thresholds, pressureTransitionPeriodMs: 5000, maxPodGracePeriodSeconds: 0, localStorageCapacityIsolation: true, stats, activePods: () => pods, evictor: { evict: () => false, isCleanedUp: () => true }, events: { node: () => undefined, pod: () => undefined }, logger: silentLogger() });
  const watch = new MemoryWatch({ read: () => stats.memoryFigures(), readUpperBound: () => stats.memoryUpperBound(), thresholds, onCrossed: () => manager.wake(), logger: silentLogger() });
  const cpuOver = async (f: () => Promise<void>): Promise<number> => {
    const a = process.cpuUsage();
    await f();
    const b = process.cpuUsage(a);
    return (b.user + b.system) / 1000;
  };
  const idleMs = await cpuOver(() => sleep(WINDOW_MS));
  const stop = new AbortController();
  const busyMs = await cpuOver(async () => {
    manager.start(stop.signal);
    watch.start(stop.signal);
    await sleep(WINDOW_MS);
    stop.abort();
    await watch.close();
    await manager.close();
  });
  const share = ((busyMs - idleMs) / WINDOW_MS) * 100;
  console.log(`eviction manager at rest with ${pods.length} pods: ${(busyMs - idleMs).toFixed(1)} ms CPU over ${WINDOW_MS / 1000} s = ${share.toFixed(3)}% of one core (${watch.polls} memory polls, ${manager.passes} passes; idle window ${idleMs.toFixed(1)} ms)   target: ≤ 0.5%`);
  console.log(`  ${"upstream".padEnd(40)} one synchronize every 10 s (a full Summary from cAdvisor), no memory watch`);
} finally {
  await cluster.teardown();
}
