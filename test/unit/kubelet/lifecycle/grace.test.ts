import { describe, expect, it } from "vitest";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { effectiveTerminationGrace, killGraceSeconds, runsPreStop, stopGraceSeconds } from "../../../../kubelet/lifecycle/grace.ts";

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

describe("effectiveTerminationGrace (upstream's calculateEffectiveGracePeriod)", () => {
  it("takes the deletion's grace, a shorter override, else the pod's, at least 1 s, and only ever shrinks", () => {
    expect(effectiveTerminationGrace(0, pod({ grace: 30 }))).toBe(30);
    expect(effectiveTerminationGrace(0, pod())).toBe(30);
    expect(effectiveTerminationGrace(0, pod({ deletion: 10, grace: 30 }))).toBe(10);
    expect(effectiveTerminationGrace(0, pod({ deletion: 10, grace: 30 }), 4)).toBe(4);
    expect(effectiveTerminationGrace(0, pod({ deletion: 10, grace: 30 }), 20)).toBe(10);
    // A later, longer deletion does not lengthen a termination under way; a shorter one shortens it.
    expect(effectiveTerminationGrace(5, pod({ deletion: 10, grace: 30 }))).toBe(5);
    expect(effectiveTerminationGrace(5, pod({ deletion: 3, grace: 30 }))).toBe(3);
    // A deletion with grace 0 (a forced one) asks for nothing: the pod's own grace applies, as upstream.
    expect(effectiveTerminationGrace(0, pod({ deletion: 0, grace: 12 }))).toBe(12);
    expect(effectiveTerminationGrace(0, pod({ deletion: 0, grace: 0 }))).toBe(1);
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
