import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { computePodActions, CrashLoopBackoff } from "../../../../kubelet/runtime/pod-actions.ts";
import { containerHash } from "../../../../kubelet/runtime/container-hash.ts";
import type { PodRuntimeStatus, RuntimeContainer } from "../../../../kubelet/runtime/types.ts";

const app: V1Container = { name: "app", image: "busybox" };
const side: V1Container = { name: "side", image: "busybox", restartPolicy: "Always" };
const init1: V1Container = { name: "init1", image: "busybox" };
const init2: V1Container = { name: "init2", image: "busybox" };

function pod(spec: Partial<NonNullable<V1Pod["spec"]>> = {}): V1Pod {
  return { metadata: { name: "p", namespace: "ns", uid: "u1" }, spec: { containers: [app], ...spec } };
}

function ctr(c: V1Container, state: RuntimeContainer["state"], extra: Partial<RuntimeContainer> = {}): RuntimeContainer {
  return { id: `${c.name}-${extra.attempt ?? 0}`, name: c.name, attempt: 0, state, image: "busybox", imageRef: "sha256:x", hash: containerHash(c), createdAt: 1, startedAt: 1, finishedAt: state === "exited" ? 2 : 0, exitCode: 0, reason: "", message: "", kind: "regular", ...extra };
}

function status(containers: RuntimeContainer[], sandbox: Partial<PodRuntimeStatus["sandboxes"][number]> | null = {}): PodRuntimeStatus {
  return { uid: "u1", name: "p", namespace: "ns", sandboxes: sandbox === null ? [] : [{ id: "sb0", attempt: 0, state: "ready", createdAt: 1, ips: ["10.0.0.2"], ...sandbox }], containers };
}

const names = (a: ReturnType<typeof computePodActions>) => a.containersToStart.map((c) => `${c.container.name}#${c.restartCount}`);

describe("computePodActions", () => {
  it("creates the sandbox and starts every app container for a new pod", () => {
    const a = computePodActions(pod({ containers: [app, { name: "b", image: "x" }] }), undefined);
    expect(a.createSandbox).toBe(true);
    expect(a.attempt).toBe(0);
    expect(names(a)).toEqual(["app#0", "b#0"]);
  });

  it("starts only the first init container with a new sandbox, then each in turn, then the app", () => {
    const p = pod({ initContainers: [init1, init2] });
    expect(names(computePodActions(p, undefined))).toEqual(["init1#0"]);
    const running = computePodActions(p, status([ctr(init1, "running")]));
    expect(running.createSandbox).toBe(false);
    expect(names(running)).toEqual([]);
    expect(names(computePodActions(p, status([ctr(init1, "exited")])))).toEqual(["init2#0"]);
    expect(names(computePodActions(p, status([ctr(init2, "exited"), ctr(init1, "exited")])))).toEqual(["app#0"]);
  });

  it("retries a failed init container, unless restartPolicy is Never (the pod fails)", () => {
    const failed = status([ctr(init1, "exited", { exitCode: 1 })]);
    expect(names(computePodActions(pod({ initContainers: [init1] }), failed))).toEqual(["init1#1"]);
    const never = computePodActions(pod({ initContainers: [init1], restartPolicy: "Never" }), failed);
    expect(never.initFailed).toEqual({ container: "init1", exitCode: 1 });
    expect(never.killPod).toBe(true);
    expect(names(never)).toEqual([]);
  });

  it("keeps a sidecar running and starts the app once it runs", () => {
    const p = pod({ initContainers: [side] });
    expect(names(computePodActions(p, status([])))).toEqual(["side#0"]);
    expect(names(computePodActions(p, status([ctr(side, "running")])))).toEqual(["app#0"]);
    expect(names(computePodActions(p, status([ctr(app, "running"), ctr(side, "exited", { exitCode: 1 })])))).toEqual(["side#1"]);
  });

  it.each([
    ["Always", 0, true],
    ["Always", 1, true],
    ["OnFailure", 0, false],
    ["OnFailure", 2, true],
    ["Never", 0, false],
    ["Never", 2, false],
  ] as const)("restartPolicy %s, exit code %i: restart %s", (policy, exitCode, restart) => {
    const a = computePodActions(pod({ restartPolicy: policy }), status([ctr(app, "exited", { exitCode })]));
    expect(names(a)).toEqual(restart ? ["app#1"] : []);
    // Nothing left running and nothing to start: the sandbox goes too.
    expect(a.killPod).toBe(!restart);
  });

  it("keeps a running container with the same spec and restarts one whose spec changed", () => {
    expect(computePodActions(pod(), status([ctr(app, "running")]))).toMatchObject({ killPod: false, createSandbox: false, containersToStart: [], containersToKill: [] });
    const changed = computePodActions(pod({ containers: [{ ...app, command: ["sleep", "1"] }] }), status([ctr(app, "running")]));
    expect(changed.containersToKill).toEqual([{ id: "app-0", name: "app", kind: "regular", reason: "Container app definition changed, will be restarted" }]);
    expect(names(changed)).toEqual(["app#1"]);
  });

  it("restarts a container whose spec changed whatever the restart policy, and keeps the pod", () => {
    const changed = computePodActions(pod({ restartPolicy: "Never", containers: [{ ...app, image: "busybox:2" }] }), status([ctr(app, "running")]));
    expect(changed.containersToKill.map((k) => k.reason)).toEqual(["Container app definition changed, will be restarted"]);
    expect(names(changed)).toEqual(["app#1"]);
    expect(changed.killPod).toBe(false);
  });

  it("restarts a container whose liveness probe failed, unless restartPolicy is Never", () => {
    const a = computePodActions(pod(), status([ctr(app, "running")]), { liveness: new Set(["app"]) });
    expect(a.containersToKill.map((k) => k.reason)).toEqual(["Container app failed liveness probe, will be restarted"]);
    const never = computePodActions(pod({ restartPolicy: "Never" }), status([ctr(app, "running")]), { liveness: new Set(["app"]) });
    expect(never.containersToKill.map((k) => k.reason)).toEqual(["Container app failed liveness probe"]);
    expect([names(never), never.killPod]).toEqual([[], true]);
  });

  it("restarts a container whose liveness or startup probe failed, naming the probe for its grace period", () => {
    const a = computePodActions(pod(), status([ctr(app, "running")]), { liveness: new Set(["app"]) });
    expect(a.containersToKill).toEqual([{ id: "app-0", name: "app", kind: "regular", probe: "liveness", reason: "Container app failed liveness probe, will be restarted" }]);
    expect(names(a)).toEqual(["app#1"]);
    const s = computePodActions(pod(), status([ctr(app, "running")]), { startup: new Set(["app"]) });
    expect(s.containersToKill).toEqual([{ id: "app-0", name: "app", kind: "regular", probe: "startup", reason: "Container app failed startup probe, will be restarted" }]);
  });

  it("holds the next init container until a sidecar with a startup probe has started", () => {
    const p = pod({ initContainers: [side, init1] });
    const sideRunning = ctr(side, "running", { kind: "sidecar" });
    const waiting = computePodActions(p, status([sideRunning]), { notStarted: new Set(["side"]) });
    expect(names(waiting)).toEqual([]);
    expect(waiting.containersToKill).toEqual([]);
    expect(waiting.killPod).toBe(false);
    // Started: the next init container goes, then the app once it succeeded.
    expect(names(computePodActions(p, status([sideRunning])))).toEqual(["init1#0"]);
    expect(names(computePodActions(p, status([ctr(init1, "exited", { kind: "init" }), sideRunning])))).toEqual(["app#0"]);
  });

  it("does not hold the app back for a sidecar restarted after the pod initialized", () => {
    const p = pod({ initContainers: [side] });
    const a = computePodActions(p, status([ctr(side, "running", { kind: "sidecar", attempt: 1, id: "side-1" }), ctr(app, "running")]), { notStarted: new Set(["side"]) });
    expect(a).toMatchObject({ killPod: false, containersToStart: [], containersToKill: [] });
  });

  it("restarts a sidecar whose startup or liveness probe failed, with upstream's init container messages", () => {
    const p = pod({ initContainers: [side, init1] });
    const sideRunning = ctr(side, "running", { kind: "sidecar" });
    const startup = computePodActions(p, status([sideRunning]), { startup: new Set(["side"]), notStarted: new Set(["side"]) });
    expect(startup.containersToKill).toEqual([{ id: "side-0", name: "side", kind: "sidecar", probe: "startup", reason: "Init container side failed startup probe" }]);
    expect(names(startup)).toEqual(["side#1"]);
    const liveness = computePodActions(pod({ initContainers: [side], restartPolicy: "Never" }), status([ctr(app, "running"), sideRunning]), { liveness: new Set(["side"]) });
    expect(liveness.containersToKill).toEqual([{ id: "side-0", name: "side", kind: "sidecar", probe: "liveness", reason: "Init container side failed liveness probe" }]);
    expect(names(liveness)).toEqual(["side#1"]);
  });

  it("recreates a dead sandbox with the next attempt, but not for a finished restartPolicy Never pod", () => {
    const dead = status([ctr(app, "exited", { exitCode: 0 })], { state: "notready", attempt: 2 });
    const a = computePodActions(pod(), dead);
    expect([a.createSandbox, a.killPod, a.attempt]).toEqual([true, true, 3]);
    expect(names(a)).toEqual(["app#1"]);
    expect(computePodActions(pod({ restartPolicy: "Never" }), dead)).toMatchObject({ createSandbox: false, containersToStart: [] });
  });

  it("recreates a sandbox without an IP, and leaves host-network pods alone", () => {
    expect(computePodActions(pod(), status([ctr(app, "running")], { ips: [] })).createSandbox).toBe(true);
    expect(computePodActions(pod({ hostNetwork: true }), status([ctr(app, "running")], { ips: [] })).createSandbox).toBe(false);
  });

  it("does not create a sandbox when every container already succeeded under OnFailure", () => {
    const a = computePodActions(pod({ restartPolicy: "OnFailure" }), status([ctr(app, "exited")], { state: "notready" }));
    expect([a.createSandbox, a.containersToStart.length]).toEqual([false, 0]);
  });
});

describe("CrashLoopBackoff", () => {
  it("restarts at once the first time, then waits 10 s, 20 s, 40 s... capped at 5 minutes", () => {
    const b = new CrashLoopBackoff();
    const k = CrashLoopBackoff.key("u", "c", "h");
    let t = 1_000_000;
    expect(b.remaining(k, t, t)).toBe(0);
    b.next(k, t, t);
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      t += 1000; // it crashed again a second after starting
      delays.push(b.remaining(k, t, t));
      t += b.remaining(k, t, t);
      b.next(k, t - 1, t);
    }
    expect(delays).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
  });

  it("forgets a container that ran longer than twice the cap since its last restart", () => {
    const b = new CrashLoopBackoff();
    const k = CrashLoopBackoff.key("u", "c", "h");
    b.next(k, 0, 0);
    b.next(k, 1000, 1000);
    const finished = 1000 + 600_001;
    expect(b.remaining(k, finished, finished)).toBe(0);
    b.next(k, finished, finished);
    expect(b.delay(k)).toBe(10_000);
  });

  it("drops in housekeeping the entries no restart touched for twice the cap (a container whose hash changed)", () => {
    const b = new CrashLoopBackoff();
    b.next(CrashLoopBackoff.key("u", "c", "old-hash"), 0, 0);
    b.next(CrashLoopBackoff.key("u", "c", "new-hash"), 500_000, 500_000);
    b.gc(600_001);
    expect(b.size).toBe(1);
    expect(b.delay(CrashLoopBackoff.key("u", "c", "new-hash"))).toBe(10_000);
  });
});
