/**
 * `npm run bench -- cri-floor`: the raw CRI floor on this machine, RunPodSandbox + CreateContainer +
 * StartContainer through deckhand's CRI client against a sandbox node's containerd, one pod at a time and many
 * at once. The pod-start benchmark interleaves startFloorPod() with its kubelet pods, so that both see the
 * same load.
 */
import { pathToFileURL } from "node:url";
import type { RuntimeService } from "../kubelet/cri/services.ts";
import { NodeSandbox } from "../test/harness/node-sandbox.ts";
import { testContainerConfig, testPodConfig } from "../test/harness/cri-pods.ts";
import { formatMs, summarize, type Summary } from "./compare.ts";

export interface CriFloor {
  sequential: { total: Summary; runPodSandbox: Summary; createContainer: Summary; startContainer: Summary };
  concurrent: { pods: number; total: Summary; wallMs: number };
}

/** One floor pod: RunPodSandbox + CreateContainer + StartContainer, each phase timed. */
export async function startFloorPod(cri: RuntimeService, cgroupRoot: string, name: string): Promise<{ id: string; phases: [number, number, number] }> {
  const { config } = testPodConfig({ cgroupRoot }, name, "bench");
  const t0 = performance.now();
  const { pod_sandbox_id: id } = await cri.runtime("RunPodSandbox", { config });
  const t1 = performance.now();
  const { container_id } = await cri.runtime("CreateContainer", {
    pod_sandbox_id: id,
    sandbox_config: config,
    config: testContainerConfig("main", ["sleep", "3600"]),
  });
  const t2 = performance.now();
  await cri.runtime("StartContainer", { container_id });
  const t3 = performance.now();
  return { id, phases: [t1 - t0, t2 - t1, t3 - t2] };
}

export async function removeFloorPods(cri: RuntimeService, ids: readonly string[]): Promise<void> {
  await Promise.all(
    ids.map(async (id) => {
      await cri.runtime("StopPodSandbox", { pod_sandbox_id: id, });
      await cri.runtime("RemovePodSandbox", { pod_sandbox_id: id });
    }),
  );
}

/** Measures the floor on a started sandbox node; leaves no pod behind. */
export async function measureCriFloor(node: NodeSandbox, options: { sequential?: number; concurrent?: number } = {}): Promise<CriFloor> {
  const cri = node.criClient();
  const sequentialCount = options.sequential ?? 30;
  const concurrentCount = options.concurrent ?? 20;
  await removeFloorPods(cri, [(await startFloorPod(cri, node.cgroupRoot, "warmup")).id]);

  const phases: [number[], number[], number[]] = [[], [], []];
  const totals: number[] = [];
  const seqIds: string[] = [];
  for (let i = 0; i < sequentialCount; i++) {
    const { id, phases: p } = await startFloorPod(cri, node.cgroupRoot, `seq-${i}`);
    seqIds.push(id);
    p.forEach((ms, k) => phases[k as 0 | 1 | 2].push(ms));
    totals.push(p[0] + p[1] + p[2]);
  }
  await removeFloorPods(cri, seqIds);

  const wall0 = performance.now();
  const results = await Promise.all(
    Array.from({ length: concurrentCount }, async (_, i) => {
      const t0 = performance.now();
      const { id } = await startFloorPod(cri, node.cgroupRoot, `burst-${i}`);
      return { id, ms: performance.now() - t0 };
    }),
  );
  const wallMs = performance.now() - wall0;
  await removeFloorPods(cri, results.map((r) => r.id));

  return {
    sequential: {
      total: summarize(totals),
      runPodSandbox: summarize(phases[0]),
      createContainer: summarize(phases[1]),
      startContainer: summarize(phases[2]),
    },
    concurrent: { pods: concurrentCount, total: summarize(results.map((r) => r.ms)), wallMs },
  };
}

export function printCriFloor(floor: CriFloor, cni = "reference bridge + host-local CNI"): void {
  const row = (name: string, s: Summary): string => `  ${name.padEnd(34)} p50 ${formatMs(s.p50)}  p99 ${formatMs(s.p99)}  (n=${s.n})`;
  console.log(`CRI floor (containerd through deckhand's CRI client, ${cni})`);
  console.log(`one pod at a time:`);
  console.log(row("RunPodSandbox", floor.sequential.runPodSandbox));
  console.log(row("CreateContainer", floor.sequential.createContainer));
  console.log(row("StartContainer", floor.sequential.startContainer));
  console.log(row("sandbox + create + start", floor.sequential.total));
  console.log(`${floor.concurrent.pods} at once:`);
  console.log(row("each pod, sandbox + create + start", floor.concurrent.total));
  console.log(`  all ${floor.concurrent.pods} running after ${formatMs(floor.concurrent.wallMs)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const node = new NodeSandbox();
  try {
    await node.start();
    printCriFloor(await measureCriFloor(node));
  } finally {
    await node.teardown();
  }
}
