import { describe, expect, it } from "vitest";
import type { V1Pod, V1PodCondition } from "@kubernetes/client-node";
import { EvictionManager, type EvictionStats } from "../../../../kubelet/eviction/eviction-manager.ts";
import { MemoryWatch } from "../../../../kubelet/eviction/memory-watch.ts";
import { parseThresholdConfig } from "../../../../kubelet/eviction/thresholds.ts";
import type { NodeFigures } from "../../../../kubelet/eviction/signals.ts";
import type { PodUsage } from "../../../../kubelet/eviction/ranking.ts";
import { silentLogger } from "../../../../src-shared/log.ts";
import { FakeClock, flush } from "../../../harness/fake-clock.ts";

const Mi = 1024 * 1024;

function pod(name: string, o: { memReq?: string; critical?: boolean; sizeLimit?: string } = {}): V1Pod {
  return {
    metadata: { name, namespace: "default", uid: name },
    spec: {
      ...(o.critical ? { priority: 2_000_000_000 } : {}),
      ...(o.sizeLimit ? { volumes: [{ name: "scratch", emptyDir: { sizeLimit: o.sizeLimit } }] } : {}),
      containers: [{ name: "c", resources: o.memReq ? { requests: { memory: o.memReq } } : {} }],
    },
  };
}

function fixture(config: { hard?: Record<string, string>; soft?: Record<string, string>; grace?: Record<string, number>; transitionMs?: number; reclaimFrees?: boolean } = {}) {
  const clock = new FakeClock();
  const state = {
    figures: { memoryCapacityBytes: 1000 * Mi, nodeWorkingSetBytes: 100 * Mi, nodeFs: { availableBytes: 50 * Mi, capacityBytes: 100 * Mi, inodesFree: 100, inodes: 100 } } as Omit<NodeFigures, "timeMs">,
    usage: new Map<string, PodUsage>(),
    pods: [] as V1Pod[],
  };
  const evicted: { name: string; grace: number; reason: string; message: string; conditions: V1PodCondition[] }[] = [];
  const events: string[] = [];
  const reclaimed: string[] = [];
  const conditionsSeen: string[][] = [];
  const stats: EvictionStats = {
    figures: () => Promise.resolve({ ...state.figures, timeMs: clock.now() }),
    podUsage: (pods) => Promise.resolve(new Map(pods.map((p) => [p.metadata!.uid!, state.usage.get(p.metadata!.uid!)!]).filter(([, u]) => u !== undefined) as [string, PodUsage][])),
  };
  const manager = new EvictionManager({
    thresholds: parseThresholdConfig({ evictionHard: config.hard ?? { "memory.available": "100Mi" }, evictionSoft: config.soft ?? {}, evictionSoftGracePeriod: config.grace ?? {}, evictionMinimumReclaim: {}, enforceNodeAllocatable: [] }),
    pressureTransitionPeriodMs: config.transitionMs ?? 300_000,
    maxPodGracePeriodSeconds: 7,
    localStorageCapacityIsolation: true,
    stats,
    activePods: () => state.pods.filter((p) => !evicted.some((e) => e.name === p.metadata?.name)),
    evictor: {
      evict: (p, grace, s) => {
        evicted.push({ name: p.metadata!.name!, grace, ...s });
        return true;
      },
      isCleanedUp: () => true,
    },
    reclaimer: {
      deleteAllUnusedContainers: () => {
        reclaimed.push("containers");
        return Promise.resolve();
      },
      deleteUnusedImages: () => {
        reclaimed.push("images");
        if (config.reclaimFrees) state.figures.nodeFs = { availableBytes: 90 * Mi, capacityBytes: 100 * Mi, inodesFree: 100, inodes: 100 };
        return Promise.resolve();
      },
    },
    events: { node: (type, reason, message) => events.push(`node ${type} ${reason} ${message}`), pod: (p, type, reason, message) => events.push(`${p.metadata?.name} ${type} ${reason} ${message}`) },
    onConditions: (c) => conditionsSeen.push([...c]),
    logger: silentLogger(),
    clock,
  });
  return { clock, state, manager, evicted, events, reclaimed, conditionsSeen };
}

describe("EvictionManager", () => {
  it("evicts the best-effort pod over its request first, one per pass, with grace 1 s, upstream's status, condition and events", async () => {
    const f = fixture();
    f.state.pods = [pod("guaranteed", { memReq: "500Mi" }), pod("hog"), pod("quiet")];
    f.state.usage.set("guaranteed", { memoryWorkingSetBytes: 400 * Mi, containers: [{ name: "c", memoryWorkingSetBytes: 400 * Mi }], volumes: [] });
    f.state.usage.set("hog", { memoryWorkingSetBytes: 450 * Mi, containers: [{ name: "c", memoryWorkingSetBytes: 450 * Mi }], volumes: [] });
    f.state.usage.set("quiet", { memoryWorkingSetBytes: 1 * Mi, containers: [{ name: "c", memoryWorkingSetBytes: Mi }], volumes: [] });
    expect(await f.manager.synchronize()).toBeUndefined();
    expect(f.manager.nodeConditions()).toEqual([]);

    f.state.figures.nodeWorkingSetBytes = 950 * Mi;
    await f.clock.advance(1000);
    const first = await f.manager.synchronize();
    expect(first?.metadata?.name).toBe("hog");
    const message = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. Container c was using 450Mi, request is 0, has larger consumption of memory. ";
    expect(f.evicted).toEqual([{ name: "hog", grace: 1, reason: "Evicted", message, conditions: [{ type: "DisruptionTarget", status: "True", reason: "TerminationByKubelet", message }] }]);
    expect(f.events).toEqual(["node Warning EvictionThresholdMet Attempting to reclaim memory", `hog Warning Evicted ${message}`]);
    expect(f.manager.isUnderMemoryPressure()).toBe(true);
    expect(f.conditionsSeen).toEqual([["MemoryPressure"]]);
    expect(f.reclaimed).toEqual([]); // no node-level reclaim for memory

    // Same observation time: nothing more is done on stale figures.
    expect(await f.manager.synchronize()).toBeUndefined();
    await f.clock.advance(1000);
    expect((await f.manager.synchronize())?.metadata?.name).toBe("quiet");
  });

  it("never evicts a critical pod; a soft threshold waits for its grace period and evicts with evictionMaxPodGracePeriod", async () => {
    const f = fixture({ hard: {}, soft: { "memory.available": "200Mi" }, grace: { "memory.available": 30_000 } });
    f.state.pods = [pod("critical", { critical: true }), pod("normal")];
    f.state.usage.set("critical", { memoryWorkingSetBytes: 800 * Mi, containers: [], volumes: [] });
    f.state.usage.set("normal", { memoryWorkingSetBytes: 10 * Mi, containers: [], volumes: [] });
    f.state.figures.nodeWorkingSetBytes = 850 * Mi;
    expect(await f.manager.synchronize()).toBeUndefined();
    expect(f.manager.isUnderMemoryPressure()).toBe(true); // the condition does not wait for the grace period
    await f.clock.advance(30_000);
    expect((await f.manager.synchronize())?.metadata?.name).toBe("normal");
    expect(f.evicted[0]?.grace).toBe(7);
  });

  it("clears the condition only after the transition period", async () => {
    const f = fixture({ transitionMs: 60_000 });
    f.state.figures.nodeWorkingSetBytes = 950 * Mi;
    await f.manager.synchronize();
    expect(f.manager.isUnderMemoryPressure()).toBe(true);
    f.state.figures.nodeWorkingSetBytes = 100 * Mi;
    await f.clock.advance(59_000);
    await f.manager.synchronize();
    expect(f.manager.isUnderMemoryPressure()).toBe(true);
    await f.clock.advance(1000);
    await f.manager.synchronize();
    expect(f.manager.nodeConditions()).toEqual([]);
    expect(f.conditionsSeen).toEqual([["MemoryPressure"], []]);
  });

  it("running, the next pass comes when a held condition's transition period ends, not at the next 10 s", async () => {
    const f = fixture({ transitionMs: 15_000 });
    f.state.figures.nodeWorkingSetBytes = 950 * Mi;
    const stop = new AbortController();
    f.manager.start(stop.signal);
    await flush();
    expect(f.manager.isUnderMemoryPressure()).toBe(true);
    f.state.figures.nodeWorkingSetBytes = 100 * Mi;
    await f.clock.advance(10_000); // the regular pass: still held
    expect(f.manager.isUnderMemoryPressure()).toBe(true);
    const passes = f.manager.passes;
    await f.clock.advance(5_001); // 15 s after the last observation, not 20 s
    expect(f.manager.nodeConditions()).toEqual([]);
    expect(f.manager.passes).toBe(passes + 1);
    stop.abort();
    await f.manager.close();
  });

  it("disk pressure: reclaims containers and images first, evicts nobody when that is enough", async () => {
    const f = fixture({ hard: { "nodefs.available": "60%" }, reclaimFrees: true });
    f.state.pods = [pod("a")];
    f.state.usage.set("a", { containers: [], volumes: [{ name: "v", usedBytes: Mi, inodesUsed: 1 }] });
    expect(await f.manager.synchronize()).toBeUndefined();
    expect(f.reclaimed).toEqual(["containers", "images"]);
    expect(f.evicted).toEqual([]);
    expect(f.manager.isUnderDiskPressure()).toBe(true);
  });

  it("disk pressure that reclaim does not fix evicts the largest local storage user", async () => {
    const f = fixture({ hard: { "nodefs.available": "60%" } });
    f.state.pods = [pod("small"), pod("big")];
    f.state.usage.set("small", { containers: [], volumes: [{ name: "v", usedBytes: Mi, inodesUsed: 1 }] });
    f.state.usage.set("big", { containers: [], volumes: [{ name: "v", usedBytes: 30 * Mi, inodesUsed: 1 }] });
    expect((await f.manager.synchronize())?.metadata?.name).toBe("big");
    expect(f.evicted[0]?.message).toBe("The node was low on resource: ephemeral-storage. Threshold quantity: 60Mi, available: 50Mi. ");
  });

  it("an emptyDir past its sizeLimit is evicted whatever the node's state, without a condition", async () => {
    const f = fixture({ hard: {} });
    f.state.pods = [pod("fits", { sizeLimit: "10Mi" }), pod("over", { sizeLimit: "1Mi" })];
    f.state.usage.set("fits", { containers: [], volumes: [{ name: "scratch", usedBytes: 2 * Mi, inodesUsed: 1 }] });
    f.state.usage.set("over", { containers: [], volumes: [{ name: "scratch", usedBytes: 2 * Mi, inodesUsed: 1 }] });
    expect((await f.manager.synchronize())?.metadata?.name).toBe("over");
    expect(f.evicted[0]).toMatchObject({ grace: 1, reason: "Evicted", message: 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ', conditions: [] });
    expect(f.manager.nodeConditions()).toEqual([]);
  });
});

describe("MemoryWatch", () => {
  it("wakes the manager when a memory threshold is crossed, at most once a second while it stays crossed", async () => {
    const clock = new FakeClock();
    let ws = 100 * Mi;
    let wakes = 0;
    const watch = new MemoryWatch({
      read: () => ({ timeMs: clock.now(), memoryCapacityBytes: 1000 * Mi, nodeWorkingSetBytes: ws }),
      thresholds: parseThresholdConfig({ evictionHard: { "memory.available": "100Mi", "nodefs.available": "10%" }, evictionSoft: {}, evictionSoftGracePeriod: {}, evictionMinimumReclaim: {}, enforceNodeAllocatable: [] }),
      onCrossed: () => wakes++,
      logger: silentLogger(),
      clock,
    });
    expect(watch.poll()).toBe(false);
    ws = 950 * Mi;
    expect(watch.poll()).toBe(true);
    expect(wakes).toBe(1);
    await clock.advance(100);
    watch.poll();
    expect(wakes).toBe(1);
    await clock.advance(1000);
    watch.poll();
    expect(wakes).toBe(2);
    ws = 100 * Mi;
    watch.poll();
    ws = 950 * Mi;
    watch.poll();
    expect(wakes).toBe(3); // a new crossing wakes at once
  });
});
