import { describe, expect, it } from "vitest";
import { podLimits, podRequests, podResourceConfig } from "../../../../kubelet/cm/pod-resources.ts";
import { testPod, TEST_IMAGE } from "../../../harness/runtime-fixture.ts";

describe("podResourceConfig (upstream's ResourceConfigForPod)", () => {
  const node = { cpuCFSQuota: true, cpuCFSQuotaPeriodUs: 100_000 };
  const res = (cpu: string, memory: string) => ({ requests: { cpu, memory }, limits: { cpu, memory } });
  const Mi = 1024 ** 2;

  it("limits the pod to what its largest init container needs when that is more than its app containers", () => {
    const pod = testPod("p", { initContainers: [{ name: "migrate", image: TEST_IMAGE, resources: res("2", "1Gi") }], containers: [{ name: "app", image: TEST_IMAGE, resources: res("500m", "256Mi") }] });
    expect(podResourceConfig(pod, node)).toEqual({ cpuShares: 2048, cpuQuotaUs: 200_000, cpuPeriodUs: 100_000, memoryLimitBytes: 1024 * Mi });
  });

  it("counts sidecars with the app containers and with every init container started after them", () => {
    const pod = testPod("p", {
      initContainers: [{ name: "proxy", image: TEST_IMAGE, restartPolicy: "Always", resources: res("1", "128Mi") }, { name: "setup", image: TEST_IMAGE, resources: res("1", "512Mi") }],
      containers: [{ name: "app", image: TEST_IMAGE, resources: res("500m", "256Mi") }],
    });
    expect(podResourceConfig(pod, node)).toEqual({ cpuShares: 2048, cpuQuotaUs: 200_000, cpuPeriodUs: 100_000, memoryLimitBytes: 640 * Mi });
  });

  it("sets no pod limit for a resource some container (init ones included) leaves unlimited, and no quota without CFS quota", () => {
    const pod = testPod("p", {
      initContainers: [{ name: "setup", image: TEST_IMAGE, resources: { requests: { cpu: "100m" } } }],
      containers: [{ name: "app", image: TEST_IMAGE, resources: res("500m", "256Mi") }],
    });
    expect(podResourceConfig(pod, node)).toEqual({ cpuShares: 512 });
    const guaranteed = testPod("g", { containers: [{ name: "app", image: TEST_IMAGE, resources: res("1", "64Mi") }] });
    expect(podResourceConfig(guaranteed, { ...node, cpuCFSQuota: false })).toEqual({ cpuShares: 1024, memoryLimitBytes: 64 * Mi });
    expect(podResourceConfig(testPod("b"), node)).toEqual({ cpuShares: 2 });
  });

  it("puts podPidsLimit on pods of every QoS class, and none when it is -1", () => {
    const guaranteed = testPod("g", { containers: [{ name: "app", image: TEST_IMAGE, resources: res("1", "64Mi") }] });
    const burstable = testPod("b", { containers: [{ name: "app", image: TEST_IMAGE, resources: { requests: { cpu: "250m" } } }] });
    expect(podResourceConfig(testPod("e"), { ...node, podPidsLimit: 100 })).toEqual({ cpuShares: 2, pidsLimit: 100 });
    expect(podResourceConfig(burstable, { ...node, podPidsLimit: 100 })).toEqual({ cpuShares: 256, pidsLimit: 100 });
    expect(podResourceConfig(guaranteed, { ...node, podPidsLimit: 100 })).toMatchObject({ memoryLimitBytes: 64 * Mi, pidsLimit: 100 });
    expect(podResourceConfig(guaranteed, { ...node, podPidsLimit: -1 })).not.toHaveProperty("pidsLimit");
  });

  it("adds the pod overhead to the requests (shares) and to the limits it has", () => {
    const pod = testPod("o", { overhead: { cpu: "250m", memory: "32Mi" }, containers: [{ name: "app", image: TEST_IMAGE, resources: res("1", "64Mi") }] });
    expect(podResourceConfig(pod, node)).toEqual({ cpuShares: 1280, cpuQuotaUs: 125_000, cpuPeriodUs: 100_000, memoryLimitBytes: 96 * Mi });
  });
});

describe("podRequests and podLimits (upstream's PodRequests, PodLimits)", () => {
  const Mi = 1024 ** 2;
  it("takes the larger of app containers + sidecars and the init sequence's peak, plus overhead (requests default to limits)", () => {
    const pod = testPod("p", {
      overhead: { cpu: "100m", memory: "10Mi" },
      initContainers: [
        { name: "proxy", image: TEST_IMAGE, restartPolicy: "Always", resources: { requests: { cpu: "200m", memory: "20Mi" } } },
        { name: "setup", image: TEST_IMAGE, resources: { limits: { cpu: "2", memory: "30Mi" } } },
      ],
      containers: [{ name: "app", image: TEST_IMAGE, resources: { requests: { cpu: "500m", memory: "100Mi" } } }],
    });
    // cpu: max(500 + 200, 200 + 2000) + 100; memory: max(100 + 20, 20 + 30) + 10.
    expect(podRequests(pod)).toEqual({ cpuMilli: 2300, memoryBytes: 130 * Mi });
    // Only the setup container limits anything: neither resource is declared by every container.
    expect(podLimits(pod)).toEqual({ cpuMilli: 2100, memoryBytes: 40 * Mi, cpuDeclared: false, memoryDeclared: false });
    expect(podLimits(testPod("e"))).toEqual({ cpuMilli: 0, memoryBytes: 0, cpuDeclared: false, memoryDeclared: false });
  });
});
