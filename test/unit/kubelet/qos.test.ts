import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import {
  computePodQOS,
  isCriticalPod,
  isNodeCriticalPod,
  isStaticPod,
  milliCPUToQuota,
  milliCPUToShares,
  oomScoreAdj,
  qosClass,
} from "../../../kubelet/qos.ts";

type Res = { requests?: Record<string, string>; limits?: Record<string, string> };

function ctr(name: string, resources: Res = {}, extra: Partial<V1Container> = {}): V1Container {
  return { name, image: "busybox", resources, ...extra };
}

function pod(containers: V1Container[], extra: Partial<NonNullable<V1Pod["spec"]>> = {}, meta: V1Pod["metadata"] = {}): V1Pod {
  return { metadata: { name: "p", namespace: "ns", uid: "u", ...meta }, spec: { containers, ...extra } };
}

const guaranteed = (cpu: string, mem: string): Res => ({ requests: { cpu, memory: mem }, limits: { cpu, memory: mem } });

describe("QoS class (upstream's qos_test.go cases)", () => {
  it("BestEffort without cpu or memory requests and limits", () => {
    expect(computePodQOS(pod([ctr("a"), ctr("b")]))).toBe("BestEffort");
    expect(computePodQOS(pod([ctr("a", { requests: { "ephemeral-storage": "1Gi" }, limits: { "nvidia.com/gpu": "1" } })]))).toBe("BestEffort");
    expect(computePodQOS(pod([ctr("a", { requests: { cpu: "0" } })]))).toBe("BestEffort");
  });

  it("Guaranteed when every container's cpu and memory requests equal limits", () => {
    expect(computePodQOS(pod([ctr("a", guaranteed("100m", "100Mi")), ctr("b", guaranteed("1", "1Gi"))]))).toBe("Guaranteed");
    // Requests default to limits.
    expect(computePodQOS(pod([ctr("a", { limits: { cpu: "100m", memory: "100Mi" } })]))).toBe("Guaranteed");
    // Equal values written differently.
    expect(computePodQOS(pod([ctr("a", { requests: { cpu: "0.1", memory: "1Gi" }, limits: { cpu: "100m", memory: "1024Mi" } })]))).toBe("Guaranteed");
    // Other resources do not matter.
    expect(computePodQOS(pod([ctr("a", { ...guaranteed("1", "1Gi"), requests: { cpu: "1", memory: "1Gi", "ephemeral-storage": "1Gi" } })]))).toBe("Guaranteed");
  });

  it("Burstable otherwise", () => {
    expect(computePodQOS(pod([ctr("a", { requests: { cpu: "100m" } })]))).toBe("Burstable");
    expect(computePodQOS(pod([ctr("a", { requests: { cpu: "100m", memory: "100Mi" }, limits: { cpu: "200m", memory: "100Mi" } })]))).toBe("Burstable");
    expect(computePodQOS(pod([ctr("a", { limits: { cpu: "100m" } })]))).toBe("Burstable");
    // A Guaranteed container with a BestEffort one.
    expect(computePodQOS(pod([ctr("a", guaranteed("1", "1Gi")), ctr("b")]))).toBe("Burstable");
    expect(computePodQOS(pod([ctr("a", guaranteed("1", "1Gi")), ctr("b", { requests: { memory: "1Gi" } })]))).toBe("Burstable");
  });

  it("counts init containers", () => {
    expect(computePodQOS(pod([ctr("a", guaranteed("1", "1Gi"))], { initContainers: [ctr("i")] }))).toBe("Burstable");
    expect(computePodQOS(pod([ctr("a", guaranteed("1", "1Gi"))], { initContainers: [ctr("i", guaranteed("2", "2Gi"))] }))).toBe("Guaranteed");
    expect(computePodQOS(pod([ctr("a")], { initContainers: [ctr("i", { requests: { cpu: "1" } })] }))).toBe("Burstable");
    expect(computePodQOS(pod([ctr("a")], { initContainers: [ctr("s", guaranteed("1", "1Gi"), { restartPolicy: "Always" })] }))).toBe("Burstable");
  });

  it("uses pod-level resources when set", () => {
    expect(computePodQOS(pod([ctr("a"), ctr("b")], { resources: { limits: { cpu: "1", memory: "1Gi" } } }))).toBe("Guaranteed");
    expect(computePodQOS(pod([ctr("a", guaranteed("1", "1Gi"))], { resources: { requests: { cpu: "1" } } }))).toBe("Burstable");
  });

  it("qosClass prefers the class the API recorded", () => {
    const p = pod([ctr("a")]);
    expect(qosClass(p)).toBe("BestEffort");
    expect(qosClass({ ...p, status: { qosClass: "Burstable" } })).toBe("Burstable");
  });
});

describe("critical pods", () => {
  it("static and mirror pods are critical; node-critical also needs the system-node-critical class", () => {
    const staticPod = pod([ctr("a")], {}, { annotations: { "kubernetes.io/config.source": "file" } });
    expect(isStaticPod(staticPod)).toBe(true);
    expect(isCriticalPod(staticPod)).toBe(true);
    expect(isNodeCriticalPod(staticPod)).toBe(false);
    expect(isNodeCriticalPod(pod([ctr("a")], { priorityClassName: "system-node-critical" }, { annotations: { "kubernetes.io/config.source": "file" } }))).toBe(true);
    expect(isStaticPod(pod([ctr("a")], {}, { annotations: { "kubernetes.io/config.source": "api" } }))).toBe(false);
    expect(isCriticalPod(pod([ctr("a")], {}, { annotations: { "kubernetes.io/config.mirror": "abc" } }))).toBe(true);
    expect(isNodeCriticalPod(pod([ctr("a")], { priority: 2_000_001_000, priorityClassName: "system-node-critical" }))).toBe(true);
    expect(isNodeCriticalPod(pod([ctr("a")], { priority: 1_000, priorityClassName: "system-node-critical" }))).toBe(false);
    expect(isCriticalPod(pod([ctr("a")], { priority: 2_000_000_000 }))).toBe(true);
  });
});

describe("oomScoreAdj (upstream's policy_test.go)", () => {
  const capacity = 4_000_000_000;

  it("-997 for Guaranteed and node-critical pods, 1000 for BestEffort", () => {
    const g = pod([ctr("a", guaranteed("1", "1G"))]);
    expect(oomScoreAdj(g, g.spec!.containers[0]!, capacity)).toBe(-997);
    const be = pod([ctr("a")]);
    expect(oomScoreAdj(be, be.spec!.containers[0]!, capacity)).toBe(1000);
    const critical = pod([ctr("a")], { priority: 2_000_001_000, priorityClassName: "system-node-critical" });
    expect(oomScoreAdj(critical, critical.spec!.containers[0]!, capacity)).toBe(-997);
    const staticCritical = pod([ctr("a", { requests: { memory: "1G" } })], { priorityClassName: "system-node-critical" }, { annotations: { "kubernetes.io/config.source": "file" } });
    expect(oomScoreAdj(staticCritical, staticCritical.spec!.containers[0]!, capacity)).toBe(-997);
  });

  it("Burstable: 1000 - 1000 × request / capacity, in [3, 999]", () => {
    const half = pod([ctr("a", { requests: { memory: "2G" }, limits: { memory: "4G" } })]);
    expect(oomScoreAdj(half, half.spec!.containers[0]!, capacity)).toBe(500);
    const cpuOnly = pod([ctr("a", { requests: { cpu: "1" } })]);
    expect(oomScoreAdj(cpuOnly, cpuOnly.spec!.containers[0]!, capacity)).toBe(999);
    const huge = pod([ctr("a", { requests: { memory: "4G", cpu: "1" } })]);
    expect(oomScoreAdj(huge, huge.spec!.containers[0]!, capacity)).toBe(3);
    const over = pod([ctr("a", { requests: { memory: "10G" } })]);
    expect(oomScoreAdj(over, over.spec!.containers[0]!, capacity)).toBe(3);
    // Integer division truncates: 1000 × 1e9 / 3e9 = 333.33 → 1000 - 333.
    const third = pod([ctr("a", { requests: { memory: "1G" } })]);
    expect(oomScoreAdj(third, third.spec!.containers[0]!, 3_000_000_000)).toBe(667);
    // A static pod that is not node-critical is scored by its class.
    const staticBurstable = pod([ctr("a", { requests: { memory: "2G" } })], {}, { annotations: { "kubernetes.io/config.source": "file" } });
    expect(oomScoreAdj(staticBurstable, staticBurstable.spec!.containers[0]!, capacity)).toBe(500);
  });

  it("a sidecar scores no higher than the regular container with the least memory", () => {
    const p = pod([ctr("a", { requests: { memory: "1G" } }), ctr("b", { requests: { memory: "2G" } })], {
      initContainers: [ctr("side", { requests: { cpu: "100m" } }, { restartPolicy: "Always" }), ctr("init", { requests: { cpu: "100m" } })],
    });
    const side = p.spec!.initContainers![0]!;
    expect(oomScoreAdj(p, side, capacity)).toBe(750);
    expect(oomScoreAdj(p, p.spec!.initContainers![1]!, capacity)).toBe(999);
    expect(oomScoreAdj(p, p.spec!.containers[1]!, capacity)).toBe(500);
    // A sidecar asking for more keeps its own (lower) score.
    const big = pod([ctr("a", { requests: { memory: "1G" } })], { initContainers: [ctr("side", { requests: { memory: "3G" } }, { restartPolicy: "Always" })] });
    expect(oomScoreAdj(big, big.spec!.initContainers![0]!, capacity)).toBe(250);
  });

  it("adds the unallocated pod-level memory request, shared per container", () => {
    const p = pod([ctr("a", { requests: { memory: "1G" } }), ctr("b")], { resources: { requests: { memory: "3G" } } });
    // (3G - 1G) / 2 = 1G each: a counts 2G, b 1G.
    expect(oomScoreAdj(p, p.spec!.containers[0]!, capacity)).toBe(500);
    expect(oomScoreAdj(p, p.spec!.containers[1]!, capacity)).toBe(750);
  });
});

describe("CPU shares and quota (helpers_linux.go)", () => {
  it.each([
    [0, 2],
    [1, 2],
    [2, 2],
    [3, 3],
    [100, 102],
    [500, 512],
    [1000, 1024],
    [1500, 1536],
    [256_000, 262_144],
    [1_000_000, 262_144],
  ])("milliCPUToShares(%d) = %d", (m, s) => {
    expect(milliCPUToShares(m)).toBe(s);
  });

  it.each([
    [0, 100_000, 0],
    [5, 100_000, 1000],
    [10, 100_000, 1000],
    [11, 100_000, 1100],
    [200, 100_000, 20_000],
    [1000, 100_000, 100_000],
    [2500, 50_000, 125_000],
  ])("milliCPUToQuota(%d, %d) = %d", (m, period, q) => {
    expect(milliCPUToQuota(m, period)).toBe(q);
  });

  it("defaults the period to 100 ms", () => {
    expect(milliCPUToQuota(250)).toBe(25_000);
  });
});
