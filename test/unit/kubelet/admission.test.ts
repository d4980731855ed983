import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { admitPod, podRequests } from "../../../kubelet/admission.ts";

const pod = (containers: { cpu?: string; memory?: string; limitOnly?: boolean }[], init: { cpu?: string; sidecar?: boolean }[] = []): V1Pod => ({
  metadata: { name: "p" },
  spec: {
    containers: containers.map((c, i) => ({ name: `c${i}`, resources: c.limitOnly ? { limits: { cpu: c.cpu ?? "0" } } : { requests: { ...(c.cpu ? { cpu: c.cpu } : {}), ...(c.memory ? { memory: c.memory } : {}) } } })),
    initContainers: init.map((c, i) => ({ name: `i${i}`, ...(c.sidecar ? { restartPolicy: "Always" } : {}), resources: { requests: { cpu: c.cpu ?? "0" } } })),
  },
});
const node = { cpuMilli: 2000, memoryBytes: 1024 ** 3, pods: 3 };

describe("admission", () => {
  it("sums app containers, takes the largest init container, adds sidecars, counts limits as requests when alone", () => {
    expect(podRequests(pod([{ cpu: "100m" }, { cpu: "0.5", memory: "64Mi" }]))).toEqual({ cpuMilli: 600, memoryBytes: 64 * 1024 ** 2 });
    expect(podRequests(pod([{ cpu: "100m" }], [{ cpu: "1" }])).cpuMilli).toBe(1000);
    expect(podRequests(pod([{ cpu: "100m" }], [{ cpu: "200m", sidecar: true }, { cpu: "1" }])).cpuMilli).toBe(1200);
    expect(podRequests(pod([{ cpu: "300m", limitOnly: true }])).cpuMilli).toBe(300);
  });

  it("admits what fits and refuses with upstream's reason and message", () => {
    expect(admitPod(pod([{ cpu: "1" }]), [pod([{ cpu: "1" }])], node)).toEqual({ admit: true });
    expect(admitPod(pod([{ cpu: "1500m" }]), [pod([{ cpu: "1" }])], node)).toEqual({
      admit: false,
      reason: "OutOfcpu",
      message: "Pod was rejected: Node didn't have enough resource: cpu, requested: 1500, used: 1000, capacity: 2000",
    });
    expect(admitPod(pod([{ memory: "2Gi" }]), [], node)).toMatchObject({ admit: false, reason: "OutOfmemory" });
    expect(admitPod(pod([{}]), [pod([{}]), pod([{}]), pod([{}])], node)).toMatchObject({ admit: false, reason: "OutOfpods" });
  });
});
