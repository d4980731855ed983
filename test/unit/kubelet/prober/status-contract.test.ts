import { describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { FakeClock } from "../../../harness/fake-clock.ts";
import { silentLogger } from "../../../../src-shared/log.ts";
import { computePodStatus } from "../../../../kubelet/status/pod-status.ts";
import { computePodActions } from "../../../../kubelet/runtime/pod-actions.ts";
import type { PodRuntimeStatus } from "../../../../kubelet/runtime/types.ts";
import { ProberManager } from "../../../../kubelet/prober/manager.ts";
import type { ProbeType } from "../../../../kubelet/prober/results.ts";

/** The manager's output as the status computation and the restart decision take it. */
describe("prober results in the pod status and the pod actions", () => {
  it("drives ready, started, the Ready condition, and a restart after a liveness failure", async () => {
    const clock = new FakeClock();
    const answers: Record<ProbeType, "Success" | "Failure"> = { startup: "Success", readiness: "Success", liveness: "Success" };
    const manager = new ProberManager({
      runtime: { runtime: () => Promise.reject(new Error("unused")) },
      logger: silentLogger(),
      clock,
      probe: (type) => Promise.resolve({ result: answers[type] }),
    });
    manager.start(new AbortController().signal);
    await clock.advance(60_000);
    const exec = { exec: { command: ["true"] }, periodSeconds: 10, failureThreshold: 1 };
    const pod: V1Pod = {
      metadata: { name: "web", namespace: "default", uid: "u1" },
      spec: { containers: [{ name: "app", image: "img", startupProbe: exec, readinessProbe: exec, livenessProbe: exec }] },
    };
    const startedAt = clock.now();
    const runtime: PodRuntimeStatus = {
      uid: "u1",
      name: "web",
      namespace: "default",
      sandboxes: [{ id: "sb", attempt: 0, state: "ready", createdAt: startedAt, ips: ["10.1.0.7"] }],
      containers: [
        { id: "c1", name: "app", attempt: 0, state: "running", image: "img", imageRef: "sha256:1", hash: "", createdAt: startedAt, startedAt, finishedAt: 0, exitCode: 0, reason: "", message: "", kind: "regular" },
      ],
    };
    const status = (probes: ReturnType<ProberManager["updatePodStatus"]>) =>
      computePodStatus({ pod, runtime, waiting: {}, hostIPs: ["192.0.2.1"], startTime: "2026-01-01T00:00:00Z", now: "2026-01-01T00:01:00Z", readiness: probes.readiness, startup: probes.startup });
    const ready = (probes: ReturnType<ProberManager["updatePodStatus"]>) => status(probes).conditions?.find((c) => c.type === "Ready")?.status;

    manager.addPod(pod);
    let probes = manager.updatePodStatus(pod, runtime);
    expect(status(probes).containerStatuses?.[0]).toMatchObject({ started: false, ready: false });
    expect(ready(probes)).toBe("False");

    await clock.advance(0); // startup succeeds
    expect(manager.updatePodStatus(pod, runtime).startup).toEqual({ app: true });
    await clock.advance(0); // the sync's trigger runs readiness at once
    probes = manager.updatePodStatus(pod, runtime);
    expect(status(probes).containerStatuses?.[0]).toMatchObject({ started: true, ready: true });
    expect(ready(probes)).toBe("True");

    answers.liveness = "Failure";
    await clock.advance(10_000);
    probes = manager.updatePodStatus(pod, runtime);
    const actions = computePodActions(pod, runtime, probes.failures);
    expect(actions.containersToKill).toEqual([{ id: "c1", name: "app", kind: "regular", probe: "liveness", reason: "Container app failed liveness probe, will be restarted" }]);
    await manager.close();
  });
});
