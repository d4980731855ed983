import { describe, expect, it } from "vitest";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { killGraceSeconds, runsPreStop, stopGraceSeconds } from "../../../../kubelet/lifecycle/grace.ts";

const container: V1Container = {
  name: "app",
  livenessProbe: { exec: { command: ["true"] }, terminationGracePeriodSeconds: 7 },
  startupProbe: { exec: { command: ["true"] } },
  lifecycle: { preStop: { exec: { command: ["true"] } } },
};
const pod = (extra: { deletion?: number; grace?: number } = {}): V1Pod => ({
  metadata: { name: "p", ...(extra.deletion === undefined ? {} : { deletionGracePeriodSeconds: extra.deletion }) },
  spec: { containers: [container], ...(extra.grace === undefined ? {} : { terminationGracePeriodSeconds: extra.grace }) },
});

describe("killGraceSeconds (upstream's setTerminationGracePeriod and the kill's override)", () => {
  it("orders the override, the deletion's grace, a failed probe's own, the pod's", () => {
    expect(killGraceSeconds({ pod: pod({ deletion: 4, grace: 30 }), container, failedProbe: "liveness", override: 1 })).toBe(1);
    expect(killGraceSeconds({ pod: pod({ deletion: 4, grace: 30 }), container, failedProbe: "liveness" })).toBe(4);
    expect(killGraceSeconds({ pod: pod({ grace: 30 }), container, failedProbe: "liveness" })).toBe(7);
    // The startup probe sets none: the pod's.
    expect(killGraceSeconds({ pod: pod({ grace: 30 }), container, failedProbe: "startup" })).toBe(30);
    expect(killGraceSeconds({ pod: pod({ grace: 12 }), container })).toBe(12);
    expect(killGraceSeconds({ pod: pod(), container })).toBe(30);
    expect(killGraceSeconds({ pod: pod({ grace: 30 }), container, override: 0 })).toBe(0);
  });
});

describe("preStop and the grace left for StopContainer", () => {
  it("runs preStop only when declared and there is grace to run it in", () => {
    expect(runsPreStop(container, 1)).toBe(true);
    expect(runsPreStop(container, 0)).toBe(false);
    expect(runsPreStop({ name: "bare" }, 30)).toBe(false);
    expect(runsPreStop(undefined, 30)).toBe(false);
  });

  it("subtracts the hook's whole seconds and never gives StopContainer less than 2 s", () => {
    expect(stopGraceSeconds(30)).toBe(30);
    expect(stopGraceSeconds(30, 999)).toBe(30);
    expect(stopGraceSeconds(30, 10_999)).toBe(20);
    expect(stopGraceSeconds(5, 4_000)).toBe(2);
    expect(stopGraceSeconds(5, 60_000)).toBe(2);
    expect(stopGraceSeconds(0)).toBe(2);
  });
});
