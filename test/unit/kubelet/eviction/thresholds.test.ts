import { describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import {
  nodeConditions,
  nodeConditionsLastObservedAt,
  nodeConditionsObservedSince,
  parseThresholdConfig,
  sortByEvictionPriority,
  thresholdsFirstObservedAt,
  thresholdsMet,
  thresholdsMetGracePeriod,
  thresholdsUpdatedStats,
  type Observation,
  type Signal,
} from "../../../../kubelet/eviction/thresholds.ts";
import { makeSignalObservations } from "../../../../kubelet/eviction/signals.ts";
import { rankDiskPressure, rankMemoryPressure, rankPIDPressure, type PodUsage } from "../../../../kubelet/eviction/ranking.ts";
import { evictionMessage } from "../../../../kubelet/eviction/messages.ts";
import { localStorageViolation } from "../../../../kubelet/eviction/eviction-manager.ts";
import { admitUnderPressure } from "../../../../kubelet/admission.ts";
import { DEFAULT_EVICTION_HARD } from "../../../../kubelet/config/types.ts";

const Mi = 1024 * 1024;
const base = { evictionSoft: {}, evictionSoftGracePeriod: {}, evictionMinimumReclaim: {}, enforceNodeAllocatable: ["pods"] };

function obs(entries: [Signal, number, number, number?][]): Map<Signal, Observation> {
  return new Map(entries.map(([s, available, capacity, timeMs]) => [s, { available, capacity, timeMs: timeMs ?? 1 }]));
}

describe("parseThresholdConfig", () => {
  it("parses upstream's defaults and copies the hard memory threshold to allocatable when pods are enforced", () => {
    const t = parseThresholdConfig({ ...base, evictionHard: DEFAULT_EVICTION_HARD });
    const signals = t.map((x) => x.signal);
    expect(signals).toEqual(["memory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available", "imagefs.inodesFree", "allocatableMemory.available"]);
    expect(t[0]).toMatchObject({ gracePeriodMs: 0 });
    expect("quantity" in t[0]!.value && t[0]!.value.quantity.value()).toBe(100 * Mi);
    expect(t[1]!.value).toEqual({ percentage: 0.1 });
    expect(parseThresholdConfig({ ...base, enforceNodeAllocatable: [], evictionHard: { "memory.available": "1Gi" } }).map((x) => x.signal)).toEqual(["memory.available"]);
  });

  it("soft thresholds take their grace period, minimum reclaim applies to both, 0% and 100% are ignored", () => {
    const t = parseThresholdConfig({
      ...base,
      enforceNodeAllocatable: [],
      evictionHard: { "nodefs.available": "0%", "imagefs.available": "100%", "pid.available": "100" },
      evictionSoft: { "memory.available": "1Gi" },
      evictionSoftGracePeriod: { "memory.available": 90_000 },
      evictionMinimumReclaim: { "memory.available": "500Mi", "pid.available": "5%" },
    });
    expect(t.map((x) => [x.signal, x.gracePeriodMs])).toEqual([["pid.available", 0], ["memory.available", 90_000]]);
    expect(t[0]!.minReclaim).toEqual({ percentage: 0.05 });
    expect(t[1]!.minReclaim && "quantity" in t[1]!.minReclaim && t[1]!.minReclaim.quantity.toString()).toBe("500Mi");
  });
});

describe("thresholds met, grace, conditions", () => {
  const [mem, nodefs] = parseThresholdConfig({ ...base, enforceNodeAllocatable: [], evictionHard: { "memory.available": "100Mi", "nodefs.available": "10%" }, evictionMinimumReclaim: { "nodefs.available": "1Gi" } });

  it("compares available with the quantity or the percentage of capacity, plus minimum reclaim when enforced", () => {
    const o = obs([["memory.available", 99 * Mi, 1000 * Mi], ["nodefs.available", 10.5 * 1024 * Mi, 100 * 1024 * Mi]]);
    expect(thresholdsMet([mem!, nodefs!], o, false).map((t) => t.signal)).toEqual(["memory.available"]);
    // 10.5 Gi available: above 10 Gi, below 10 Gi + 1 Gi of minimum reclaim.
    expect(thresholdsMet([mem!, nodefs!], o, true).map((t) => t.signal)).toEqual(["memory.available", "nodefs.available"]);
    expect(thresholdsMet([mem!], obs([["memory.available", 100 * Mi, 1000 * Mi]]), false)).toEqual([]);
    expect(thresholdsMet([mem!], obs([]), false)).toEqual([]);
  });

  it("a soft threshold acts only after its grace period; conditions hold through the transition period", () => {
    const [soft] = parseThresholdConfig({ ...base, enforceNodeAllocatable: [], evictionHard: {}, evictionSoft: { "memory.available": "1Gi" }, evictionSoftGracePeriod: { "memory.available": 30_000 } });
    let first = thresholdsFirstObservedAt([soft!], new Map(), 1000);
    expect(thresholdsMetGracePeriod(first, 30_999)).toEqual([]);
    first = thresholdsFirstObservedAt([soft!], first, 31_000);
    expect(thresholdsMetGracePeriod(first, 31_000)).toEqual([soft]);
    const seen = nodeConditionsLastObservedAt(nodeConditions([soft!, nodefs!]), new Map(), 1000);
    expect([...seen.keys()]).toEqual(["MemoryPressure", "DiskPressure"]);
    const later = nodeConditionsLastObservedAt([], seen, 200_000);
    expect(nodeConditionsObservedSince(later, 300_000, 300_999)).toEqual(["MemoryPressure", "DiskPressure"]);
    expect(nodeConditionsObservedSince(later, 300_000, 301_000)).toEqual([]);
  });

  it("acts only on observations newer than the last, memory first", () => {
    const o = obs([["memory.available", 1, 10, 5]]);
    expect(thresholdsUpdatedStats([mem!], o, obs([["memory.available", 1, 10, 5]]))).toEqual([]);
    expect(thresholdsUpdatedStats([mem!], o, obs([["memory.available", 1, 10, 4]]))).toEqual([mem]);
    expect(sortByEvictionPriority([nodefs!, mem!]).map((t) => t.signal)).toEqual(["memory.available", "nodefs.available"]);
  });
});

describe("makeSignalObservations", () => {
  it("memory from capacity − working set; allocatable from kubepods' limit, else allocatable; pid; fs", () => {
    const o = makeSignalObservations({
      timeMs: 7,
      memoryCapacityBytes: 1000,
      nodeWorkingSetBytes: 300,
      podsWorkingSetBytes: 100,
      allocatableMemoryBytes: 600,
      nodeFs: { availableBytes: 50, capacityBytes: 100, inodesFree: 5, inodes: 10 },
      maxPid: 32768,
      processes: 400,
    });
    expect(o.get("memory.available")).toEqual({ available: 700, capacity: 1000, timeMs: 7 });
    expect(o.get("allocatableMemory.available")).toEqual({ available: 500, capacity: 600, timeMs: 7 });
    expect(o.get("pid.available")).toMatchObject({ available: 32368, capacity: 32768 });
    expect(o.get("imagefs.available")).toMatchObject({ available: 50, capacity: 100 });
    expect(o.get("nodefs.inodesFree")).toMatchObject({ available: 5, capacity: 10 });
    const limited = makeSignalObservations({ timeMs: 1, memoryCapacityBytes: 1000, podsWorkingSetBytes: 100, podsLimitBytes: 400, allocatableMemoryBytes: 600 });
    expect(limited.get("allocatableMemory.available")).toMatchObject({ available: 300, capacity: 400 });
    expect(limited.has("memory.available")).toBe(false);
  });
});

function pod(name: string, o: { memReq?: string; priority?: number; storageReq?: string; volumes?: V1Pod["spec"] extends infer S ? S extends { volumes?: infer V } ? V : never : never; limit?: string } = {}): V1Pod {
  return {
    metadata: { name, namespace: "default", uid: name },
    spec: {
      ...(o.priority !== undefined ? { priority: o.priority } : {}),
      ...(o.volumes ? { volumes: o.volumes } : {}),
      containers: [{ name: "c", resources: { requests: { ...(o.memReq ? { memory: o.memReq } : {}), ...(o.storageReq ? { "ephemeral-storage": o.storageReq } : {}) }, ...(o.limit ? { limits: { "ephemeral-storage": o.limit } } : {}) } }],
    },
  };
}

describe("ranking", () => {
  it("memory: over request first, then lower priority, then the larger excess; no stats first of all", () => {
    const pods = [pod("guaranteed-under", { memReq: "200Mi" }), pod("burstable-over", { memReq: "10Mi" }), pod("besteffort-big"), pod("besteffort-small"), pod("high-prio", { priority: 1000 }), pod("nostats")];
    const use: Record<string, number> = { "guaranteed-under": 100 * Mi, "burstable-over": 50 * Mi, "besteffort-big": 300 * Mi, "besteffort-small": 1 * Mi, "high-prio": 500 * Mi };
    const ranked = rankMemoryPressure(pods, (p) => {
      const w = use[p.metadata?.name ?? ""];
      return w === undefined ? undefined : { memoryWorkingSetBytes: w, containers: [], volumes: [] };
    });
    expect(ranked.map((p) => p.metadata?.name)).toEqual(["nostats", "besteffort-big", "burstable-over", "besteffort-small", "high-prio", "guaranteed-under"]);
  });

  it("pids: priority then process count; disk: over the ephemeral-storage request, then priority, then usage", () => {
    const usage = (n: Record<string, number>) => (p: V1Pod): PodUsage => ({ processes: n[p.metadata?.name ?? ""] ?? 0, containers: [], volumes: [{ name: "v", usedBytes: n[p.metadata?.name ?? ""] ?? 0, inodesUsed: 1 }] });
    expect(rankPIDPressure([pod("a"), pod("b", { priority: -1 }), pod("c")], usage({ a: 5, b: 1, c: 50 })).map((p) => p.metadata?.name)).toEqual(["b", "c", "a"]);
    expect(rankDiskPressure([pod("under", { storageReq: "1Gi" }), pod("small"), pod("big")], usage({ under: 500 * Mi, small: Mi, big: 9 * Mi }), "ephemeral-storage").map((p) => p.metadata?.name)).toEqual(["big", "small", "under"]);
  });
});

describe("messages", () => {
  it("upstream's eviction message with the threshold, the available figure and the containers over their request", () => {
    const [t] = parseThresholdConfig({ ...base, enforceNodeAllocatable: [], evictionHard: { "memory.available": "100Mi" } });
    const p = pod("hog", { memReq: "10Mi" });
    const { message, annotations } = evictionMessage("memory", p, { memoryWorkingSetBytes: 300 * Mi, containers: [{ name: "c", memoryWorkingSetBytes: 300 * Mi }], volumes: [] }, [t!], obs([["memory.available", 50 * Mi, 1000 * Mi]]));
    expect(message).toBe("The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. Container c was using 300Mi, request is 10Mi, has larger consumption of memory. ");
    expect(annotations).toEqual({ offending_containers: "c", offending_containers_usage: "300Mi", starved_resource: "memory" });
    const [pct] = parseThresholdConfig({ ...base, enforceNodeAllocatable: [], evictionHard: { "nodefs.available": "10%" } });
    expect(evictionMessage("ephemeral-storage", pod("x"), undefined, [pct!], obs([["nodefs.available", 1000, 102400]])).message).toBe("The node was low on resource: ephemeral-storage. Threshold quantity: 10Ki, available: 1k. ");
  });

  it("local storage limits: emptyDir sizeLimit, then the pod's total, then a container's", () => {
    const p = pod("w", { volumes: [{ name: "scratch", emptyDir: { sizeLimit: "1Mi" } }] });
    expect(localStorageViolation(p, { containers: [], volumes: [{ name: "scratch", usedBytes: 2 * Mi, inodesUsed: 2 }] })).toEqual({ message: 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ', signal: "emptydirfs.limit" });
    expect(localStorageViolation(p, { containers: [], volumes: [{ name: "scratch", usedBytes: Mi, inodesUsed: 2 }] })).toBeUndefined();
    const l = pod("l", { limit: "2Mi", volumes: [{ name: "v", emptyDir: {} }] });
    expect(localStorageViolation(l, { containers: [{ name: "c", logsBytes: Mi }], volumes: [{ name: "v", usedBytes: 1.5 * Mi, inodesUsed: 1 }] })).toEqual({ message: "Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. ", signal: "ephemeralpodfs.limit" });
    expect(localStorageViolation(l, { containers: [{ name: "c", logsBytes: 3 * Mi }], volumes: [] })?.signal).toBe("ephemeralpodfs.limit");
    // Two containers, one over its own limit while the pod's total is within the sum.
    const two: V1Pod = { metadata: { name: "two", uid: "two" }, spec: { containers: [{ name: "a", resources: { limits: { "ephemeral-storage": "1Mi" } } }, { name: "b", resources: { limits: { "ephemeral-storage": "10Mi" } } }] } };
    expect(localStorageViolation(two, { containers: [{ name: "a", rootfsBytes: 2 * Mi }, { name: "b" }], volumes: [] })).toEqual({ message: 'Container a exceeded its local ephemeral storage limit "1Mi". ', signal: "ephemeralcontainerfs.limit" });
  });

  it("admission under pressure: best effort refused under memory pressure unless tolerating it, all under disk pressure, critical always admitted", () => {
    const be = pod("be");
    expect(admitUnderPressure(be, [], false, true)).toEqual({ admit: true });
    expect(admitUnderPressure(be, ["MemoryPressure"], false, true)).toEqual({ admit: false, reason: "Evicted", message: "The node had condition: [MemoryPressure]. " });
    expect(admitUnderPressure(be, ["MemoryPressure"], false, false)).toEqual({ admit: true });
    const tolerant: V1Pod = { ...be, spec: { ...be.spec!, tolerations: [{ key: "node.kubernetes.io/memory-pressure", operator: "Exists", effect: "NoSchedule" }] } };
    expect(admitUnderPressure(tolerant, ["MemoryPressure"], false, true)).toEqual({ admit: true });
    expect(admitUnderPressure(tolerant, ["MemoryPressure", "DiskPressure"], false, false)).toEqual({ admit: false, reason: "Evicted", message: "The node had condition: [MemoryPressure DiskPressure]. " });
    expect(admitUnderPressure(be, ["DiskPressure"], true, true)).toEqual({ admit: true });
  });
});
