import { describe, expect, it } from "vitest";
import type { MachineInfo } from "../../../../cadvisor/machine.ts";
import {
  KUBELET_VERSION,
  containerRuntimeVersion,
  goDuration,
  imagesFromCri,
  initialNode,
  nodeAllocatableAbsolute,
  nodeImages,
  nodeResources,
  nodeStatus,
  nodeStatusChanged,
  nodeStatusPatch,
  heldNodeStatus,
  normalizeRuntimeVersion,
  parseEvictionThreshold,
  type ImageFacts,
  type NodeStatus,
  type NodeStatusInput,
} from "../../../../kubelet/node/node-status.ts";
import { isDeckhandError } from "../../../../src-shared/errors.ts";
import { rfc3339 } from "../../../../src-shared/time.ts";

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
const S = 1000;

const NETWORK_NOT_READY = {
  type: "NetworkReady",
  status: false,
  reason: "NetworkPluginNotReady",
  message: "Network plugin returns error: cni plugin not initialized",
};

function machine(over: Partial<MachineInfo> = {}): MachineInfo {
  return {
    numCores: 2,
    memoryCapacity: 24684084 * 1024,
    swapCapacity: 0,
    hugePages: [
      { pageSizeKiB: 2048, numPages: 0 },
      { pageSizeKiB: 1048576, numPages: 0 },
    ],
    machineID: "3d1219c7c4c5404aaa1f6d2a48adfda4",
    systemUUID: "",
    bootID: "b63b60ed-0da6-4afb-a33b-e0a1b8ff851e",
    kernelVersion: "6.1.0-18-amd64",
    osImage: "Debian GNU/Linux 12 (bookworm)",
    operatingSystem: "linux",
    architecture: "amd64",
    rootFs: { path: "/var/lib/kubelet", capacityBytes: 270553174016, availableBytes: 84487778304, usedBytes: 24456515584, inodes: 16777216, inodesFree: 16323524, inodesUsed: 453692 },
    imageFs: undefined,
    ...over,
  };
}

/** A healthy node at `now` (default T0): runtime ready 2 s ago, PLEG relisted 1 s ago. */
function input(over: Partial<NodeStatusInput> = {}): NodeStatusInput {
  const now = over.now ?? T0;
  return {
    config: { hostname: "node-a", nodeIPs: ["10.0.0.5"] },
    machine: machine(),
    runtime: {
      name: "containerd",
      version: "v1.6.20",
      lastReadyAt: now - 2 * S,
      conditions: [
        { type: "RuntimeReady", status: true, reason: "", message: "" },
        { type: "NetworkReady", status: true, reason: "", message: "" },
      ],
    },
    pleg: { lastRelistAt: now - S },
    images: [],
    now,
    ...over,
  };
}

function ready(status: NodeStatus): { status: string; reason: string; message: string; lastTransitionTime: string; lastHeartbeatTime: string } {
  const c = status.conditions.find((x) => x.type === "Ready");
  if (!c) throw new Error("no Ready condition");
  return c;
}

describe("capacity and allocatable", () => {
  it("reports the machine with upstream's defaults (evictionHard memory 100Mi, nodefs 10%)", () => {
    const { capacity, allocatable } = nodeResources(machine(), { hostname: "n", nodeIPs: [] });
    expect(capacity).toEqual({
      cpu: "2",
      "ephemeral-storage": "264212084Ki",
      "hugepages-1Gi": "0",
      "hugepages-2Mi": "0",
      memory: "24684084Ki",
      pods: "110",
    });
    // memory: 24684084Ki − 100Mi; ephemeral-storage: capacity − int64(capacity × float32(0.1)).
    expect(allocatable).toEqual({
      cpu: "2",
      "ephemeral-storage": "243497856212",
      "hugepages-1Gi": "0",
      "hugepages-2Mi": "0",
      memory: "24581684Ki",
      pods: "110",
    });
    expect(Object.keys(capacity)).toEqual(["cpu", "ephemeral-storage", "hugepages-1Gi", "hugepages-2Mi", "memory", "pods"]);
  });

  it("subtracts systemReserved, kubeReserved and the hard eviction thresholds (absolute and percentage)", () => {
    const { allocatable } = nodeResources(machine(), {
      hostname: "n",
      nodeIPs: [],
      systemReserved: { cpu: "100m", memory: "512Mi", "ephemeral-storage": "1Gi" },
      kubeReserved: { cpu: "0.5", memory: "256Mi", pid: "1000" },
      evictionHard: { "memory.available": "5%", "nodefs.available": "10Gi", "imagefs.available": "15%" },
    });
    expect(allocatable["cpu"]).toBe("1400m");
    // 25276502016 − 512Mi − 256Mi − int64(25276502016 × float32(0.05) = 1263825119.…)
    expect(allocatable["memory"]).toBe("23207370529");
    // 270553174016 − 1Gi − 10Gi = 252677748Ki
    expect(allocatable["ephemeral-storage"]).toBe("252677748Ki");
    expect(allocatable["pods"]).toBe("110");
    expect(allocatable).not.toHaveProperty("pid");
  });

  it("gives the cpu left after a 100m reservation as 1900m", () => {
    expect(nodeResources(machine(), { hostname: "n", nodeIPs: [], systemReserved: { cpu: "100m" }, evictionHard: {} }).allocatable["cpu"]).toBe("1900m");
  });

  it("reserves nothing for evictionHard {} and ignores 0% and 100%", () => {
    const m = machine();
    const none = nodeResources(m, { hostname: "n", nodeIPs: [], evictionHard: {} });
    expect(none.allocatable).toEqual(none.capacity);
    const ignored = nodeResources(m, { hostname: "n", nodeIPs: [], evictionHard: { "memory.available": "0%", "nodefs.available": "100%" } });
    expect(ignored.allocatable).toEqual(ignored.capacity);
  });

  it("never goes negative", () => {
    const { allocatable } = nodeResources(machine(), { hostname: "n", nodeIPs: [], systemReserved: { memory: "100Gi", cpu: "3" } });
    expect(allocatable["memory"]).toBe("0");
    expect(allocatable["cpu"]).toBe("0");
  });

  it("takes pre-allocated huge pages out of allocatable memory", () => {
    const m = machine({ hugePages: [{ pageSizeKiB: 2048, numPages: 512 }] });
    const { capacity, allocatable } = nodeResources(m, { hostname: "n", nodeIPs: [], evictionHard: {} });
    expect(capacity["hugepages-2Mi"]).toBe("1Gi");
    expect(allocatable["hugepages-2Mi"]).toBe("1Gi");
    expect(allocatable["memory"]).toBe(`${24684084 - 1024 * 1024}Ki`);
  });

  it("caps pods by podsPerCore", () => {
    expect(nodeResources(machine(), { hostname: "n", nodeIPs: [], podsPerCore: 10 }).capacity["pods"]).toBe("20");
    expect(nodeResources(machine(), { hostname: "n", nodeIPs: [], podsPerCore: 100, maxPods: 150 }).capacity["pods"]).toBe("150");
  });

  it("leaves ephemeral-storage out without a root filesystem or with local storage isolation off", () => {
    expect(nodeResources(machine({ rootFs: undefined }), { hostname: "n", nodeIPs: [] }).capacity).not.toHaveProperty("ephemeral-storage");
    expect(nodeResources(machine(), { hostname: "n", nodeIPs: [], localStorageCapacityIsolation: false }).capacity).not.toHaveProperty("ephemeral-storage");
  });

  it("gives the absolute allocatable (what kubepods enforces) without the eviction thresholds", () => {
    const abs = nodeAllocatableAbsolute(machine(), { hostname: "n", nodeIPs: [], systemReserved: { memory: "1Gi", cpu: "250m" } });
    expect(abs["memory"]).toBe(`${24684084 - 1024 * 1024}Ki`);
    expect(abs["cpu"]).toBe("1750m");
  });

  it("rejects bad thresholds and reservations as InvalidConfig", () => {
    const bad = [
      { evictionHard: { "memory.available": "lots" } },
      { evictionHard: { "memory.available": "-1Mi" } },
      { evictionHard: { "nodefs.available": "150%" } },
      { systemReserved: { memory: "1Gb" } },
    ];
    for (const over of bad) {
      let err: unknown;
      try {
        nodeResources(machine(), { hostname: "n", nodeIPs: [], ...over });
      } catch (e) {
        err = e;
      }
      expect(isDeckhandError(err, "InvalidConfig"), JSON.stringify(over)).toBe(true);
    }
    expect(parseEvictionThreshold("nodefs.available", "10%")).toEqual({ percentage: Math.fround(0.1) });
    expect(parseEvictionThreshold("memory.available", "0%")).toBeUndefined();
  });
});

describe("the Ready condition", () => {
  it("is KubeletReady when everything is healthy", () => {
    const c = ready(nodeStatus(input()));
    expect(c).toMatchObject({ status: "True", reason: "KubeletReady", message: "kubelet is posting ready status" });
    expect(c.lastHeartbeatTime).toBe("2025-01-02T03:04:05Z");
    expect(c.lastTransitionTime).toBe("2025-01-02T03:04:05Z");
  });

  const cases: [string, Partial<NodeStatusInput> | ((i: NodeStatusInput) => NodeStatusInput), string][] = [
    [
      "network plugin not ready",
      (i) => ({ ...i, runtime: { ...i.runtime, conditions: [{ type: "RuntimeReady", status: true, reason: "", message: "" }, NETWORK_NOT_READY] } }),
      "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
    ],
    ["runtime down (no ready Status for 30s)", (i) => ({ ...i, runtime: { ...i.runtime, lastReadyAt: T0 - 30 * S } }), "container runtime is down"],
    [
      "before the first runtime Status",
      (i) => ({ ...i, runtime: { name: "containerd" } }),
      "[container runtime status check may not have completed yet, network state unknown]",
    ],
    ["PLEG stale", { pleg: { lastRelistAt: T0 - 185 * S } }, "PLEG is not healthy: pleg was last seen active 3m5s ago; threshold is 3m0s"],
    ["PLEG never relisted", { pleg: { lastRelistAt: undefined } }, "PLEG is not healthy: pleg has yet to be successful"],
    [
      "RuntimeReady false",
      (i) => ({
        ...i,
        runtime: { ...i.runtime, conditions: [{ type: "RuntimeReady", status: false, reason: "Broken", message: "it broke" }, { type: "NetworkReady", status: true, reason: "", message: "" }] },
      }),
      "container runtime not ready: RuntimeReady=false reason:Broken message:it broke",
    ],
    [
      "NetworkReady missing",
      (i) => ({ ...i, runtime: { ...i.runtime, conditions: [{ type: "RuntimeReady", status: true, reason: "", message: "" }] } }),
      "container runtime network not ready: <nil>",
    ],
    ["no root filesystem", (i) => ({ ...i, machine: machine({ rootFs: undefined }) }), "missing node capacity for resources: ephemeral-storage"],
    ["shutting down", { otherErrors: ["node is shutting down"] }, "node is shutting down"],
    [
      "several at once, flattened and de-duplicated",
      (i) => ({
        ...i,
        pleg: { lastRelistAt: T0 - 200 * S },
        otherErrors: ["node is shutting down", "node is shutting down"],
        runtime: { ...i.runtime, lastReadyAt: T0 - 60 * S, conditions: [{ type: "RuntimeReady", status: true, reason: "", message: "" }, NETWORK_NOT_READY] },
      }),
      "[container runtime is down, PLEG is not healthy: pleg was last seen active 3m20s ago; threshold is 3m0s, container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized, node is shutting down]",
    ],
  ];

  it.each(cases)("is KubeletNotReady: %s", (_name, change, message) => {
    const base = input();
    const i = typeof change === "function" ? change(base) : { ...base, ...change };
    expect(ready(nodeStatus(i))).toMatchObject({ status: "False", reason: "KubeletNotReady", message });
  });

  it("is still ready at 29.999 s since the last runtime sync and at exactly the PLEG threshold", () => {
    const i = input({ pleg: { lastRelistAt: T0 - 180 * S } });
    expect(ready(nodeStatus({ ...i, runtime: { ...i.runtime, lastReadyAt: T0 - 29_999 } })).status).toBe("True");
  });

  it("appends the container manager's warning", () => {
    expect(ready(nodeStatus(input({ containerManagerWarning: "missing cgroup controllers: hugetlb" }))).message).toBe(
      "kubelet is posting ready status. WARNING: missing cgroup controllers: hugetlb",
    );
  });

  it("keeps the transition time while the status holds, moves it when it flips", () => {
    const first = nodeStatus(input());
    const later = nodeStatus(input({ now: T0 + 10 * S }), first);
    expect(ready(later)).toMatchObject({ lastTransitionTime: "2025-01-02T03:04:05Z", lastHeartbeatTime: "2025-01-02T03:04:15Z" });
    const down = nodeStatus(input({ now: T0 + 20 * S, pleg: { lastRelistAt: T0 - 200 * S } }), later);
    expect(ready(down)).toMatchObject({ status: "False", lastTransitionTime: "2025-01-02T03:04:25Z" });
    // Still NotReady for another reason: the transition time stays, the message follows.
    const stillDown = nodeStatus(input({ now: T0 + 30 * S, otherErrors: ["node is shutting down"] }), down);
    expect(ready(stillDown)).toMatchObject({ status: "False", message: "node is shutting down", lastTransitionTime: "2025-01-02T03:04:25Z" });
  });
});

describe("the pressure conditions", () => {
  it("report no pressure with upstream's reasons, in upstream's order", () => {
    const s = nodeStatus(input());
    expect(s.conditions.map((c) => [c.type, c.status, c.reason, c.message])).toEqual([
      ["MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"],
      ["DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"],
      ["PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"],
      ["Ready", "True", "KubeletReady", "kubelet is posting ready status"],
    ]);
  });

  it("flip with a new transition time and keep it after", () => {
    const first = nodeStatus(input());
    const pressured = nodeStatus(input({ now: T0 + 10 * S, pressure: { memory: true, disk: true, pid: true } }), first);
    expect(pressured.conditions.slice(0, 3).map((c) => [c.type, c.status, c.reason, c.message, c.lastTransitionTime])).toEqual([
      ["MemoryPressure", "True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available", "2025-01-02T03:04:15Z"],
      ["DiskPressure", "True", "KubeletHasDiskPressure", "kubelet has disk pressure", "2025-01-02T03:04:15Z"],
      ["PIDPressure", "True", "KubeletHasInsufficientPID", "kubelet has insufficient PID available", "2025-01-02T03:04:15Z"],
    ]);
    const held = nodeStatus(input({ now: T0 + 20 * S, pressure: { memory: true } }), pressured);
    expect(held.conditions[0]).toMatchObject({ status: "True", lastTransitionTime: "2025-01-02T03:04:15Z", lastHeartbeatTime: "2025-01-02T03:04:25Z" });
    expect(held.conditions[1]).toMatchObject({ status: "False", lastTransitionTime: "2025-01-02T03:04:25Z" });
  });
});

describe("addresses, nodeInfo, endpoints", () => {
  it("lists an InternalIP per node IP, then the Hostname", () => {
    const s = nodeStatus(input({ config: { hostname: "node-a", nodeIPs: ["10.0.0.5", "fd00::5"] } }));
    expect(s.addresses).toEqual([
      { type: "InternalIP", address: "10.0.0.5" },
      { type: "InternalIP", address: "fd00::5" },
      { type: "Hostname", address: "node-a" },
    ]);
  });

  it("fills nodeInfo as a v1.33 kubelet does", () => {
    const s = nodeStatus(input({ machine: machine({ swapCapacity: 2 * 1024 ** 3 }) }));
    expect(s.nodeInfo).toEqual({
      machineID: "3d1219c7c4c5404aaa1f6d2a48adfda4",
      systemUUID: "",
      bootID: "b63b60ed-0da6-4afb-a33b-e0a1b8ff851e",
      kernelVersion: "6.1.0-18-amd64",
      osImage: "Debian GNU/Linux 12 (bookworm)",
      containerRuntimeVersion: "containerd://1.6.20",
      kubeletVersion: KUBELET_VERSION,
      kubeProxyVersion: "",
      operatingSystem: "linux",
      architecture: "amd64",
      swap: { capacity: 2 * 1024 ** 3 },
    });
    expect(s.daemonEndpoints).toEqual({ kubeletEndpoint: { Port: 10250 } });
    expect(KUBELET_VERSION).toMatch(/^v1\.33\.0\+/);
  });

  it.each([
    ["v1.6.20", "1.6.20"],
    ["1.7.0-rc.1", "1.7.0-rc.1"],
    ["v2.0.0+unknown", "2.0.0+unknown"],
    ["1.6.20~ds1", "1.6.20"],
    ["1.6", "1.6"],
    ["garbage", undefined],
    ["1", undefined],
  ])("prints runtime version %s as %s", (raw, printed) => {
    expect(normalizeRuntimeVersion(raw)).toBe(printed);
  });

  it("says Unknown when the runtime version is", () => {
    expect(containerRuntimeVersion("containerd", undefined)).toBe("containerd://Unknown");
    expect(containerRuntimeVersion("containerd", "garbage")).toBe("containerd://Unknown");
  });

  it.each([
    [185_000, "3m5s"],
    [180_000, "3m0s"],
    [3_600_000, "1h0m0s"],
    [185_123, "3m5.123s"],
    [1_500, "1.5s"],
    [250, "250ms"],
    [0, "0s"],
  ])("formats %d ms as Go's %s", (ms, text) => {
    expect(goDuration(ms)).toBe(text);
  });

  it("writes times as RFC 3339 seconds", () => {
    expect(rfc3339(T0)).toBe("2025-01-02T03:04:05Z");
  });
});

describe("images", () => {
  const img = (id: string, sizeBytes: number, tags: string[] = [`r/${id}:1`], digests: string[] = [`r/${id}@sha256:${id}`]): ImageFacts => ({ id, sizeBytes, repoTags: tags, repoDigests: digests });

  it("are sorted largest first (ties by ID descending) and capped at 50", () => {
    const images = Array.from({ length: 60 }, (_, i) => img(`sha256:${String(i).padStart(2, "0")}`, 1000 + ((i * 37) % 60) * 10));
    const out = nodeImages(images);
    expect(out).toHaveLength(50);
    const sizes = out.map((i) => i.sizeBytes);
    expect(sizes).toEqual([...sizes].sort((a, b) => b - a));
    expect(sizes[0]).toBe(1590);
    const ties = nodeImages([img("a", 5), img("c", 5), img("b", 5)]);
    expect(ties.map((i) => i.names[1])).toEqual(["r/c:1", "r/b:1", "r/a:1"]);
    expect(nodeImages(images, -1)).toHaveLength(60);
    expect(nodeImages(images, 3)).toHaveLength(3);
  });

  it("name digests first, at most five names", () => {
    const out = nodeImages([img("x", 1, ["t1", "t2", "t3", "t4"], ["d1", "d2"])]);
    expect(out[0]?.names).toEqual(["d1", "d2", "t1", "t2", "t3"]);
  });

  it("are left out of the status when there are none", () => {
    expect(nodeStatus(input())).not.toHaveProperty("images");
    expect(nodeStatus(input({ images: [img("x", 1)] })).images).toEqual([{ names: ["r/x@sha256:x", "r/x:1"], sizeBytes: 1 }]);
  });

  it("come from CRI ListImages", () => {
    expect(imagesFromCri([{ id: "sha256:a", repo_tags: ["t"], repo_digests: ["d"], size: "123456" }])).toEqual([{ id: "sha256:a", repoTags: ["t"], repoDigests: ["d"], sizeBytes: 123456 }]);
  });
});

describe("change detection", () => {
  const first = nodeStatus(input({ images: [{ id: "a", repoTags: ["t"], repoDigests: [], sizeBytes: 5 }] }));

  it("ignores heartbeats", () => {
    const next = nodeStatus(input({ now: T0 + 60 * S, images: [{ id: "a", repoTags: ["t"], repoDigests: [], sizeBytes: 5 }] }), first);
    expect(next.conditions[3]?.lastHeartbeatTime).not.toBe(first.conditions[3]?.lastHeartbeatTime);
    expect(nodeStatusChanged(first, next)).toBe(false);
  });

  it("ignores condition order and quantity spelling", () => {
    const reordered: NodeStatus = { ...first, conditions: [...first.conditions].reverse(), capacity: { ...first.capacity, memory: `${24684084 * 1024}` } };
    expect(nodeStatusChanged(first, reordered)).toBe(false);
  });

  it("sees condition, resource, image, address and nodeInfo changes", () => {
    const later = (over: Partial<NodeStatusInput>): NodeStatus => nodeStatus(input({ now: T0 + 60 * S, images: [{ id: "a", repoTags: ["t"], repoDigests: [], sizeBytes: 5 }], ...over }), first);
    expect(nodeStatusChanged(first, later({ pleg: { lastRelistAt: undefined } }))).toBe(true);
    expect(nodeStatusChanged(first, later({ machine: machine({ numCores: 4 }) }))).toBe(true);
    expect(nodeStatusChanged(first, later({ images: [] }))).toBe(true);
    expect(nodeStatusChanged(first, later({ config: { hostname: "node-a", nodeIPs: ["10.0.0.6"] } }))).toBe(true);
    expect(nodeStatusChanged(first, later({ machine: machine({ bootID: "new" }) }))).toBe(true);
    expect(nodeStatusChanged(undefined, first)).toBe(true);
  });
});

describe("the status patch", () => {
  const first = nodeStatus(input());

  it("sends only the heartbeats, with $setElementOrder, when nothing else changed", () => {
    const next = nodeStatus(input({ now: T0 + 300 * S }), first);
    const hb = "2025-01-02T03:09:05Z";
    expect(nodeStatusPatch(first, next)).toEqual({
      status: {
        "$setElementOrder/conditions": [{ type: "MemoryPressure" }, { type: "DiskPressure" }, { type: "PIDPressure" }, { type: "Ready" }],
        conditions: [
          { lastHeartbeatTime: hb, type: "MemoryPressure" },
          { lastHeartbeatTime: hb, type: "DiskPressure" },
          { lastHeartbeatTime: hb, type: "PIDPressure" },
          { lastHeartbeatTime: hb, type: "Ready" },
        ],
      },
    });
    expect(JSON.stringify(nodeStatusPatch(first, next))).toMatch(/^\{"status":\{"\$setElementOrder\/conditions":/);
  });

  it("is made against the API's conditions when the node lifecycle controller set them Unknown, so they are set right", () => {
    const unknown = first.conditions.map((c) => ({ ...c, status: "Unknown" as const, reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status." }));
    const held = heldNodeStatus(first, { status: { conditions: unknown } });
    expect(held.conditions).toEqual(unknown);
    // A watch lagging our own patch shows our older non-Unknown statuses: not someone else's change.
    expect(heldNodeStatus(first, { status: { conditions: first.conditions.map((c) => ({ ...c, reason: "older" })) } })).toBe(first);
    expect(heldNodeStatus(first, undefined)).toBe(first);
    const next = nodeStatus(input({ now: T0 + 10 * S }), held);
    const ready = (nodeStatusPatch(held, next).status["conditions"] as Record<string, unknown>[]).find((c) => c["type"] === "Ready");
    expect(ready).toMatchObject({ status: "True", reason: "KubeletReady", lastTransitionTime: "2025-01-02T03:04:15Z" });
  });

  it("sends a flipped Ready condition's changed fields", () => {
    const next = nodeStatus(input({ now: T0 + 10 * S, pleg: { lastRelistAt: undefined } }), first);
    const conditions = nodeStatusPatch(first, next).status["conditions"] as Record<string, unknown>[];
    expect(conditions[3]).toEqual({
      lastHeartbeatTime: "2025-01-02T03:04:15Z",
      lastTransitionTime: "2025-01-02T03:04:15Z",
      message: "PLEG is not healthy: pleg has yet to be successful",
      reason: "KubeletNotReady",
      status: "False",
      type: "Ready",
    });
  });

  it("replaces the addresses whole, nulls what went away, merges maps by key", () => {
    const withImages = nodeStatus(input({ images: [{ id: "a", repoTags: ["t"], repoDigests: [], sizeBytes: 5 }] }));
    const next = nodeStatus(input({ config: { hostname: "node-a", nodeIPs: ["10.0.0.5", "fd00::5"], maxPods: 50 }, machine: machine({ bootID: "b2" }) }), withImages);
    const patch = nodeStatusPatch(withImages, next).status;
    expect(patch["addresses"]).toEqual([
      { address: "10.0.0.5", type: "InternalIP" },
      { address: "fd00::5", type: "InternalIP" },
      { address: "node-a", type: "Hostname" },
      { $patch: "replace" },
    ]);
    expect(patch["images"]).toBeNull();
    expect(patch["capacity"]).toEqual({ pods: "50" });
    expect(patch["allocatable"]).toEqual({ pods: "50" });
    expect(patch["nodeInfo"]).toEqual({ bootID: "b2" });
    expect(patch).not.toHaveProperty("daemonEndpoints");
  });

  it("sends everything when the previous status is unknown", () => {
    const patch = nodeStatusPatch(undefined, first).status;
    expect(patch["conditions"]).toHaveLength(4);
    expect(patch["$setElementOrder/conditions"]).toHaveLength(4);
    expect(patch["capacity"]).toEqual(first.capacity);
    expect(patch["nodeInfo"]).toEqual(first.nodeInfo);
    expect((patch["addresses"] as unknown[]).at(-1)).toEqual({ $patch: "replace" });
    expect(patch["images"]).toBeNull();
  });

  it("deletes a condition type that went away", () => {
    const extra: NodeStatus = { ...first, conditions: [...first.conditions, { ...first.conditions[0]!, type: "OldCondition" }] };
    const patch = nodeStatusPatch(extra, first).status;
    expect(patch["conditions"]).toEqual([{ $patch: "delete", type: "OldCondition" }]);
    expect(patch["$setElementOrder/conditions"]).toHaveLength(4);
  });

  it("is empty when nothing at all changed", () => {
    expect(nodeStatusPatch(first, first)).toEqual({ status: {} });
  });
});

describe("initialNode", () => {
  it("registers with upstream's labels, annotation and status", () => {
    const node = initialNode({ ...input(), registration: { nodeName: "node-a" } });
    expect(node.apiVersion).toBe("v1");
    expect(node.kind).toBe("Node");
    expect(node.metadata).toEqual({
      name: "node-a",
      labels: {
        "kubernetes.io/hostname": "node-a",
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
      },
      annotations: { "volumes.kubernetes.io/controller-managed-attach-detach": "true" },
    });
    expect(node.spec).toEqual({});
    expect(node.status).toEqual(nodeStatus(input()));
  });

  it("adds node labels, taints, provider ID and pod CIDRs; taints an unschedulable node", () => {
    const node = initialNode({
      ...input(),
      registration: {
        nodeName: "node-a",
        nodeLabels: { "node-role.kubernetes.io/worker": "", "kubernetes.io/hostname": "override" },
        registerWithTaints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }],
        registerSchedulable: false,
        providerID: "deckhand://node-a",
        podCIDRs: ["10.244.1.0/24", "fd00:10:244:1::/64"],
        enableControllerAttachDetach: false,
      },
    });
    expect(node.metadata.labels["node-role.kubernetes.io/worker"]).toBe("");
    expect(node.metadata.labels["kubernetes.io/hostname"]).toBe("override");
    expect(node.metadata.annotations).toEqual({});
    expect(node.spec).toEqual({
      podCIDR: "10.244.1.0/24",
      podCIDRs: ["10.244.1.0/24", "fd00:10:244:1::/64"],
      providerID: "deckhand://node-a",
      unschedulable: true,
      taints: [
        { key: "dedicated", value: "gpu", effect: "NoSchedule" },
        { key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" },
      ],
    });
  });
});
