import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import {
  computePodStatus,
  getPhase,
  podStatusEqual,
  statusPatch,
  toPodStatus,
  type ContainerStatus,
  type PodCondition,
  type PodStatus,
  type PodStatusInput,
} from "../../../../kubelet/status/pod-status.ts";
import type { PodRuntimeStatus, RuntimeContainer, RuntimeSandbox } from "../../../../kubelet/runtime/types.ts";
import { applyStrategicMergePatch, patchMetaFor } from "../../../control-plane/patch.ts";

// ---------------------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------------------

const T0 = Date.parse("2025-01-01T00:00:00Z");
const at = (s: number): number => T0 + s * 1000;
const iso = (s: number): string => new Date(at(s)).toISOString().replace(".000Z", "Z");
const NOW = iso(1000);

const app: V1Container = { name: "app", image: "busybox:1" };
const web: V1Container = { name: "web", image: "nginx" };
const init1: V1Container = { name: "init1", image: "busybox:1" };
const init2: V1Container = { name: "init2", image: "busybox:1" };
const side: V1Container = { name: "side", image: "envoy", restartPolicy: "Always" };

function pod(spec: Partial<NonNullable<V1Pod["spec"]>> = {}, status?: V1Pod["status"], meta: Partial<NonNullable<V1Pod["metadata"]>> = {}): V1Pod {
  return { metadata: { name: "p", namespace: "ns", uid: "u1", ...meta }, spec: { containers: [app], ...spec }, ...(status ? { status } : {}) };
}

let nextId = 0;
function ctr(name: string, state: RuntimeContainer["state"], extra: Partial<RuntimeContainer> = {}): RuntimeContainer {
  const attempt = extra.attempt ?? 0;
  const createdAt = extra.createdAt ?? at(10 + attempt * 10);
  return {
    id: `${name}-${attempt}-${nextId++}`,
    name,
    attempt,
    state,
    image: "docker.io/library/busybox:1",
    imageRef: "docker.io/library/busybox@sha256:abc",
    hash: "h",
    createdAt,
    startedAt: state === "created" ? 0 : createdAt + 1000,
    finishedAt: state === "exited" ? createdAt + 5000 : 0,
    exitCode: 0,
    reason: state === "exited" ? "Completed" : "",
    message: "",
    kind: "regular",
    ...extra,
  };
}

function exited(name: string, exitCode: number, extra: Partial<RuntimeContainer> = {}): RuntimeContainer {
  return ctr(name, "exited", { exitCode, reason: exitCode === 0 ? "Completed" : "Error", ...extra });
}

function sandbox(extra: Partial<RuntimeSandbox> = {}): RuntimeSandbox {
  return { id: "sb", attempt: 0, state: "ready", createdAt: at(1), ips: ["10.244.1.5"], ...extra };
}

function rt(containers: RuntimeContainer[], sandboxes: RuntimeSandbox[] = [sandbox()]): PodRuntimeStatus {
  return { uid: "u1", name: "p", namespace: "ns", sandboxes, containers: [...containers].sort((a, b) => b.createdAt - a.createdAt) };
}

function compute(p: V1Pod, runtime: PodRuntimeStatus | undefined, extra: Partial<PodStatusInput> = {}): PodStatus {
  return computePodStatus({ pod: p, runtime, waiting: {}, hostIPs: ["192.168.1.10"], startTime: iso(0), now: NOW, ...extra });
}

const cs = (s: PodStatus, name: string): ContainerStatus => {
  const found = [...(s.containerStatuses ?? []), ...(s.initContainerStatuses ?? []), ...(s.ephemeralContainerStatuses ?? [])].find((c) => c.name === name);
  if (!found) throw new Error(`no status for ${name}`);
  return found;
};
const cond = (s: PodStatus, type: string): PodCondition | undefined => s.conditions?.find((c) => c.type === type);

// Statuses for the getPhase tables (as upstream's kubelet_pods_test.go builds them).
const running = (name: string, started = true): ContainerStatus => ({ name, state: { running: {} }, lastState: {}, ready: false, restartCount: 0, image: "", imageID: "", started });
const succeeded = (name: string): ContainerStatus => ({ name, state: { terminated: { exitCode: 0 } }, lastState: {}, ready: false, restartCount: 0, image: "", imageID: "" });
const failed = (name: string): ContainerStatus => ({ name, state: { terminated: { exitCode: 1 } }, lastState: {}, ready: false, restartCount: 0, image: "", imageID: "" });
const waitingS = (name: string): ContainerStatus => ({ name, state: { waiting: {} }, lastState: {}, ready: false, restartCount: 0, image: "", imageID: "" });
const waitingWithLast = (name: string, exitCode: number): ContainerStatus => ({ name, state: { waiting: {} }, lastState: { terminated: { exitCode } }, ready: false, restartCount: 1, image: "", imageID: "" });

// ---------------------------------------------------------------------------------------------------------
// getPhase
// ---------------------------------------------------------------------------------------------------------

describe("getPhase (upstream's TestPodPhaseWith* tables)", () => {
  const two = (policy: string, spec: Partial<NonNullable<V1Pod["spec"]>> = {}): V1Pod => pod({ containers: [app, web], restartPolicy: policy, ...spec });

  it("restartPolicy Always", () => {
    const p = two("Always");
    expect(getPhase(p, [], false, false)).toBe("Pending");
    expect(getPhase(p, [running("app"), running("web")], false, false)).toBe("Running");
    expect(getPhase(p, [succeeded("app"), failed("web")], false, false)).toBe("Running");
    expect(getPhase(p, [running("app"), succeeded("web")], false, false)).toBe("Running");
    expect(getPhase(p, [running("app")], false, false)).toBe("Pending");
    expect(getPhase(p, [running("app"), waitingS("web")], false, false)).toBe("Pending");
    expect(getPhase(p, [running("app"), waitingWithLast("web", 1)], false, false)).toBe("Running");
    // Terminal (deleted, deadline): no more restarts.
    expect(getPhase(p, [succeeded("app"), succeeded("web")], true, false)).toBe("Succeeded");
    expect(getPhase(p, [succeeded("app"), failed("web")], true, false)).toBe("Failed");
  });

  it("restartPolicy Never", () => {
    const p = two("Never");
    expect(getPhase(p, [running("app"), running("web")], false, false)).toBe("Running");
    expect(getPhase(p, [succeeded("app"), succeeded("web")], false, false)).toBe("Succeeded");
    expect(getPhase(p, [failed("app"), failed("web")], false, false)).toBe("Failed");
    expect(getPhase(p, [running("app"), succeeded("web")], false, false)).toBe("Running");
    expect(getPhase(p, [running("app"), failed("web")], false, false)).toBe("Running");
    expect(getPhase(p, [succeeded("app"), failed("web")], false, false)).toBe("Failed");
    expect(getPhase(p, [running("app"), waitingS("web")], false, false)).toBe("Pending");
  });

  it("restartPolicy OnFailure", () => {
    const p = two("OnFailure");
    expect(getPhase(p, [running("app"), running("web")], false, false)).toBe("Running");
    expect(getPhase(p, [succeeded("app"), succeeded("web")], false, false)).toBe("Succeeded");
    expect(getPhase(p, [failed("app"), failed("web")], false, false)).toBe("Running");
    expect(getPhase(p, [succeeded("app"), waitingWithLast("web", 1)], false, false)).toBe("Running");
    expect(getPhase(p, [running("app"), waitingS("web")], false, false)).toBe("Pending");
  });

  it("init containers", () => {
    const p = (policy: string) => pod({ initContainers: [init1], containers: [app], restartPolicy: policy });
    expect(getPhase(p("Always"), [running("init1"), waitingS("app")], false, false)).toBe("Pending");
    expect(getPhase(p("Always"), [waitingS("init1"), waitingS("app")], false, false)).toBe("Pending");
    expect(getPhase(p("Always"), [succeeded("init1"), running("app")], false, false)).toBe("Running");
    expect(getPhase(p("Always"), [waitingWithLast("init1", 1), waitingS("app")], false, false)).toBe("Pending");
    expect(getPhase(p("Never"), [failed("init1"), waitingS("app")], false, false)).toBe("Failed");
    expect(getPhase(p("Never"), [waitingWithLast("init1", 1), waitingS("app")], false, false)).toBe("Failed");
    expect(getPhase(p("OnFailure"), [failed("init1"), waitingS("app")], false, false)).toBe("Pending");
  });

  it("sidecars", () => {
    const p = (policy: string) => pod({ initContainers: [side], containers: [app], restartPolicy: policy });
    expect(getPhase(p("Always"), [running("side"), running("app")], false, true)).toBe("Running");
    // Running but not started (startup probe pending): initialization goes on.
    expect(getPhase(p("Always"), [running("side", false), waitingS("app")], false, false)).toBe("Pending");
    // A sidecar restarting after initialization does not make the pod Pending again.
    expect(getPhase(p("Always"), [running("side", false), running("app")], false, true)).toBe("Running");
    expect(getPhase(p("Always"), [waitingWithLast("side", 137), running("app")], false, true)).toBe("Running");
    expect(getPhase(p("Always"), [waitingS("side"), waitingS("app")], false, false)).toBe("Pending");
    // Never: the app is done, the sidecar still runs → Running; once it is stopped → Succeeded.
    expect(getPhase(p("Never"), [running("side"), succeeded("app")], false, true)).toBe("Running");
    expect(getPhase(p("Never"), [failed("side"), succeeded("app")], false, false)).toBe("Succeeded");
    expect(getPhase(p("Never"), [failed("side"), failed("app")], false, false)).toBe("Failed");
  });
});

// ---------------------------------------------------------------------------------------------------------
// computePodStatus
// ---------------------------------------------------------------------------------------------------------

describe("computePodStatus: phase end to end", () => {
  it.each([
    ["Always", 0, "Running"],
    ["Always", 1, "Running"],
    ["OnFailure", 0, "Succeeded"],
    ["OnFailure", 1, "Running"],
    ["Never", 0, "Succeeded"],
    ["Never", 1, "Failed"],
  ])("restartPolicy %s, exit %d → %s", (policy, exitCode, phase) => {
    const s = compute(pod({ restartPolicy: policy }), rt([exited("app", exitCode)]));
    expect(s.phase).toBe(phase);
  });

  it("is Pending with nothing in the runtime, the containers ContainerCreating", () => {
    const s = compute(pod(), undefined);
    expect(s.phase).toBe("Pending");
    expect(cs(s, "app")).toEqual({ name: "app", state: { waiting: { reason: "ContainerCreating" } }, lastState: {}, ready: false, restartCount: 0, image: "busybox:1", imageID: "", started: false });
    expect(s.podIP).toBeUndefined();
    expect(s.hostIP).toBe("192.168.1.10");
    expect(s.hostIPs).toEqual([{ ip: "192.168.1.10" }]);
    expect(s.qosClass).toBe("BestEffort");
    expect(s.startTime).toBe(iso(0));
  });

  it("reports a running container in the API's words", () => {
    const c = ctr("app", "running", { id: "abc123" });
    const s = compute(pod(), rt([c]));
    expect(s.phase).toBe("Running");
    expect(cs(s, "app")).toEqual({
      name: "app",
      state: { running: { startedAt: iso(11) } },
      lastState: {},
      ready: true,
      started: true,
      restartCount: 0,
      image: "docker.io/library/busybox:1",
      imageID: "docker.io/library/busybox@sha256:abc",
      containerID: "containerd://abc123",
    });
    expect(s.podIP).toBe("10.244.1.5");
    expect(s.podIPs).toEqual([{ ip: "10.244.1.5" }]);
  });

  it("reports a terminated container with its exit code, reason, message, times and id", () => {
    const s = compute(pod({ restartPolicy: "Never" }), rt([exited("app", 2, { id: "x1", reason: "Error", message: "boom" })]));
    expect(cs(s, "app").state).toEqual({ terminated: { exitCode: 2, reason: "Error", message: "boom", startedAt: iso(11), finishedAt: iso(15), containerID: "containerd://x1" } });
    expect(cs(s, "app").ready).toBe(false);
    expect(cs(s, "app").started).toBe(false);
  });

  it("uses the runtime name given for container IDs", () => {
    const s = compute(pod(), rt([ctr("app", "running", { id: "z" })]), { runtimeName: "cri-o" });
    expect(cs(s, "app").containerID).toBe("cri-o://z");
  });

  it("a created (not started) container is waiting without reason", () => {
    const s = compute(pod(), rt([ctr("app", "created")]));
    expect(cs(s, "app").state).toEqual({ waiting: {} });
    expect(s.phase).toBe("Pending");
  });

  it("sorts container statuses by name, init containers in spec order", () => {
    const p = pod({ containers: [web, app], initContainers: [init2, init1] });
    const s = compute(p, undefined);
    expect(s.containerStatuses?.map((c) => c.name)).toEqual(["app", "web"]);
    expect(s.initContainerStatuses?.map((c) => c.name)).toEqual(["init2", "init1"]);
  });
});

describe("computePodStatus: waiting reasons", () => {
  it("shows why a container that will be started is waiting", () => {
    const s = compute(pod(), rt([]), { waiting: { app: { reason: "ErrImagePull", message: "pull failed: not found" } } });
    expect(cs(s, "app").state).toEqual({ waiting: { reason: "ErrImagePull", message: "pull failed: not found" } });
    const backoff = compute(pod(), rt([]), { waiting: { app: { reason: "ImagePullBackOff", message: 'Back-off pulling image "busybox:1"' } } });
    expect(cs(backoff, "app").state.waiting?.reason).toBe("ImagePullBackOff");
    const config = compute(pod(), rt([]), { waiting: { app: { reason: "CreateContainerConfigError", message: "" } } });
    expect(cs(config, "app").state).toEqual({ waiting: { reason: "CreateContainerConfigError" } });
  });

  it("CrashLoopBackOff: waiting, the last attempt as lastState, its restart count", () => {
    const last = exited("app", 1, { attempt: 2, id: "c2" });
    const s = compute(pod(), rt([exited("app", 1, { attempt: 1 }), last]), { waiting: { app: { reason: "CrashLoopBackOff", message: "back-off 20s restarting failed container=app pod=p_ns(u1)" } } });
    const st = cs(s, "app");
    expect(st.state).toEqual({ waiting: { reason: "CrashLoopBackOff", message: "back-off 20s restarting failed container=app pod=p_ns(u1)" } });
    expect(st.lastState.terminated).toMatchObject({ exitCode: 1, reason: "Error", containerID: "containerd://c2" });
    expect(st.restartCount).toBe(2);
    expect(st.containerID).toBe("containerd://c2");
    expect(s.phase).toBe("Running");
    expect(cond(s, "Ready")).toMatchObject({ status: "False", reason: "ContainersNotReady", message: "containers with unready status: [app]" });
  });

  it("ignores reasons for containers that run, or will not be restarted", () => {
    const runningNow = compute(pod(), rt([ctr("app", "running")]), { waiting: { app: { reason: "CrashLoopBackOff", message: "stale" } } });
    expect(cs(runningNow, "app").state.running).toBeDefined();
    const never = compute(pod({ restartPolicy: "Never" }), rt([exited("app", 1)]), { waiting: { app: { reason: "CrashLoopBackOff", message: "x" } } });
    expect(cs(never, "app").state.terminated?.exitCode).toBe(1);
    const done = compute(pod({ restartPolicy: "OnFailure" }), rt([exited("app", 0)]), { waiting: { app: { reason: "CrashLoopBackOff", message: "x" } } });
    expect(cs(done, "app").state.terminated?.exitCode).toBe(0);
    const deleted = compute(pod({}, undefined, { deletionTimestamp: new Date(at(500)) }), rt([exited("app", 1)]), { waiting: { app: { reason: "CrashLoopBackOff", message: "x" } } });
    expect(cs(deleted, "app").state.terminated).toBeDefined();
  });

  it("app containers wait with PodInitializing while init containers run", () => {
    const s = compute(pod({ initContainers: [init1] }), rt([ctr("init1", "running", { kind: "init" })]));
    expect(cs(s, "app").state).toEqual({ waiting: { reason: "PodInitializing" } });
    expect(cs(s, "init1").state.running).toBeDefined();
    expect(s.phase).toBe("Pending");
    expect(cond(s, "Initialized")).toMatchObject({ status: "False", reason: "ContainersNotInitialized", message: "containers with incomplete status: [init1]" });
  });
});

describe("computePodStatus: restarts and lastState", () => {
  it("takes lastState from the attempt before the newest, and restartCount from the newest", () => {
    const s = compute(pod(), rt([exited("app", 3, { attempt: 0, id: "a0" }), exited("app", 137, { attempt: 1, id: "a1", reason: "OOMKilled" }), ctr("app", "running", { attempt: 2, id: "a2" })]));
    const st = cs(s, "app");
    expect(st.restartCount).toBe(2);
    expect(st.state.running).toBeDefined();
    expect(st.lastState).toEqual({ terminated: { exitCode: 137, reason: "OOMKilled", startedAt: iso(21), finishedAt: iso(25), containerID: "containerd://a1" } });
  });

  it("keeps restartCount and lastState from the previous status when the runtime has nothing for it", () => {
    const previous: PodStatus = {
      phase: "Running",
      containerStatuses: [{ name: "app", state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: { terminated: { exitCode: 1, reason: "Error" } }, ready: false, restartCount: 4, image: "busybox:1", imageID: "" }],
    };
    const s = compute(pod(), rt([]), { previous, waiting: { app: { reason: "CrashLoopBackOff", message: "back-off" } } });
    expect(cs(s, "app")).toMatchObject({ restartCount: 4, lastState: { terminated: { exitCode: 1, reason: "Error" } }, state: { waiting: { reason: "CrashLoopBackOff", message: "back-off" } } });
  });

  it("a container that was running and vanished terminated with ContainerStatusUnknown", () => {
    const apiStatus = { phase: "Running", containerStatuses: [{ name: "app", state: { running: { startedAt: new Date(at(5)) } }, ready: true, restartCount: 1, image: "busybox:1", imageID: "sha256:1", containerID: "containerd://gone" }] };
    const s = compute(pod({}, apiStatus), rt([]));
    const st = cs(s, "app");
    expect(st.lastState.terminated).toEqual({ exitCode: 137, reason: "ContainerStatusUnknown", message: "The container could not be located when the pod was deleted.  The container used to be Running" });
    expect(st.restartCount).toBe(2);
    expect(st.state).toEqual({ waiting: { reason: "ContainerCreating" } });
    // Deleted pods do not count it as a restart.
    const deleted = compute(pod({}, apiStatus, { deletionTimestamp: new Date(at(500)) }), rt([]));
    expect(cs(deleted, "app").restartCount).toBe(1);
  });

  it("an unknown-state container that was running is terminated with ContainerStatusUnknown", () => {
    const previous: PodStatus = { phase: "Running", containerStatuses: [{ name: "app", state: { running: {} }, lastState: {}, ready: true, restartCount: 0, image: "busybox:1", imageID: "", containerID: "containerd://u" }] };
    const s = compute(pod(), rt([ctr("app", "unknown", { id: "u" })]), { previous });
    expect(cs(s, "app").state.terminated).toEqual({ exitCode: 137, reason: "ContainerStatusUnknown", message: "The container could not be located when the pod was terminated" });
    expect(cs(s, "app").restartCount).toBe(1);
    const fresh = compute(pod(), rt([ctr("app", "unknown")]));
    expect(cs(fresh, "app").state).toEqual({ waiting: {} });
  });

  it("keeps a previous terminated status when the runtime has lost the container", () => {
    const previous: PodStatus = {
      phase: "Succeeded",
      containerStatuses: [{ name: "app", state: { terminated: { exitCode: 0, reason: "Completed", containerID: "containerd://old" } }, lastState: {}, ready: false, restartCount: 0, image: "busybox:1", imageID: "sha256:1", containerID: "containerd://old", started: false }],
    };
    const s = compute(pod({ restartPolicy: "Never" }), rt([], []), { previous });
    expect(cs(s, "app").state.terminated?.containerID).toBe("containerd://old");
    expect(s.phase).toBe("Succeeded");
  });
});

describe("computePodStatus: init containers and sidecars", () => {
  it("runs init containers in order; a completed one is ready; the pod initializes", () => {
    const p = pod({ initContainers: [init1, init2] });
    const s1 = compute(p, rt([exited("init1", 0, { kind: "init" }), ctr("init2", "running", { kind: "init", createdAt: at(20) })]));
    expect(cs(s1, "init1")).toMatchObject({ ready: true, started: false, state: { terminated: { exitCode: 0, reason: "Completed" } } });
    expect(cs(s1, "init2")).toMatchObject({ ready: false, started: true });
    expect(s1.phase).toBe("Pending");
    const s2 = compute(p, rt([exited("init1", 0, { kind: "init" }), exited("init2", 0, { kind: "init", createdAt: at(20) }), ctr("app", "running", { createdAt: at(30) })]));
    expect(s2.phase).toBe("Running");
    expect(cond(s2, "Initialized")?.status).toBe("True");
    expect(cond(s2, "Ready")?.status).toBe("True");
  });

  it("a failed init container fails the pod under Never", () => {
    const s = compute(pod({ initContainers: [init1], restartPolicy: "Never" }), rt([exited("init1", 1, { kind: "init" })]));
    expect(s.phase).toBe("Failed");
    expect(cond(s, "Ready")).toMatchObject({ status: "False", reason: "PodFailed" });
    expect(cond(s, "ContainersReady")).toMatchObject({ status: "False", reason: "PodFailed" });
  });

  it("a failing init container crash-loops under Always: Pending, Init:CrashLoopBackOff", () => {
    const s = compute(pod({ initContainers: [init1] }), rt([exited("init1", 1, { kind: "init", attempt: 3 })]), { waiting: { init1: { reason: "CrashLoopBackOff", message: "back-off" } } });
    expect(s.phase).toBe("Pending");
    expect(cs(s, "init1")).toMatchObject({ restartCount: 3, state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: { terminated: { exitCode: 1 } } });
    expect(cs(s, "app").state.waiting?.reason).toBe("PodInitializing");
  });

  it("treats a garbage-collected init container as completed once app containers exist", () => {
    const s = compute(pod({ initContainers: [init1, side] }), rt([ctr("app", "running")]));
    expect(cs(s, "init1").state).toEqual({ terminated: { exitCode: 0, reason: "Completed", message: "Unable to get init container status from container runtime and pod has been initialized, treat it as exited normally" } });
    expect(cs(s, "init1").ready).toBe(true);
    // A sidecar is not: it will be restarted.
    expect(cs(s, "side").state.waiting).toBeDefined();
  });

  it("sidecars: started once running (and its startup probe passed), ready by readiness, part of ContainersReady", () => {
    const p = pod({ initContainers: [{ ...side, startupProbe: { exec: { command: ["true"] } }, readinessProbe: { exec: { command: ["true"] } } }] });
    const r = rt([ctr("side", "running", { kind: "sidecar" })]);
    const notStarted = compute(p, r);
    expect(cs(notStarted, "side")).toMatchObject({ started: false, ready: false });
    expect(notStarted.phase).toBe("Pending");
    expect(cond(notStarted, "Initialized")).toMatchObject({ status: "False", message: "containers with incomplete status: [side]" });
    const started = compute(p, rt([ctr("side", "running", { kind: "sidecar" }), ctr("app", "running", { createdAt: at(20) })]), { startup: { side: true } });
    expect(cs(started, "side")).toMatchObject({ started: true, ready: false });
    expect(started.phase).toBe("Running");
    expect(cond(started, "ContainersReady")).toMatchObject({ status: "False", message: "containers with unready status: [side]" });
    const ready = compute(p, rt([ctr("side", "running", { kind: "sidecar" }), ctr("app", "running", { createdAt: at(20) })]), { startup: { side: true }, readiness: { side: true } });
    expect(cond(ready, "ContainersReady")?.status).toBe("True");
    expect(ready.initContainerStatuses?.map((c) => c.name)).toEqual(["side"]);
  });

  it("a crashed sidecar after initialization keeps the pod Running and Initialized", () => {
    const p = pod({ initContainers: [side] });
    const s = compute(p, rt([exited("side", 1, { kind: "sidecar" }), ctr("app", "running", { createdAt: at(20) })]), { waiting: { side: { reason: "CrashLoopBackOff", message: "b" } } });
    expect(s.phase).toBe("Running");
    expect(cond(s, "Initialized")?.status).toBe("True");
    expect(cond(s, "Ready")).toMatchObject({ status: "False", message: "containers with unready status: [side]" });
  });

  it("Never with a sidecar: Running while the sidecar runs after the app completed, Succeeded once it stopped", () => {
    const p = pod({ initContainers: [side], restartPolicy: "Never" });
    const app0 = exited("app", 0, { createdAt: at(20) });
    expect(compute(p, rt([ctr("side", "running", { kind: "sidecar" }), app0])).phase).toBe("Running");
    expect(compute(p, rt([exited("side", 137, { kind: "sidecar" }), app0])).phase).toBe("Succeeded");
  });
});

describe("computePodStatus: readiness and startup", () => {
  const probe = { httpGet: { path: "/", port: 80 } };

  it("a running container without probes is started and ready", () => {
    const s = compute(pod(), rt([ctr("app", "running")]));
    expect(cs(s, "app")).toMatchObject({ started: true, ready: true });
    expect(cond(s, "Ready")?.status).toBe("True");
    expect(cond(s, "ContainersReady")?.status).toBe("True");
  });

  it("with a readiness probe, ready only on a success", () => {
    const p = pod({ containers: [{ ...app, readinessProbe: probe }] });
    expect(cs(compute(p, rt([ctr("app", "running")])), "app").ready).toBe(false);
    expect(cs(compute(p, rt([ctr("app", "running")]), { readiness: { app: false } }), "app").ready).toBe(false);
    expect(cs(compute(p, rt([ctr("app", "running")]), { readiness: { app: true } }), "app").ready).toBe(true);
    // Without a probe, a failure reported anyway wins.
    expect(cs(compute(pod(), rt([ctr("app", "running")]), { readiness: { app: false } }), "app").ready).toBe(false);
  });

  it("with a startup probe, neither started nor ready before it succeeds", () => {
    const p = pod({ containers: [{ ...app, startupProbe: probe }] });
    expect(cs(compute(p, rt([ctr("app", "running")])), "app")).toMatchObject({ started: false, ready: false });
    expect(cs(compute(p, rt([ctr("app", "running")]), { readiness: { app: true } }), "app")).toMatchObject({ started: false, ready: false });
    expect(cs(compute(p, rt([ctr("app", "running")]), { startup: { app: true } }), "app")).toMatchObject({ started: true, ready: true });
  });

  it("keeps started of the same running container from the previous status (kubelet restart)", () => {
    const p = pod({ containers: [{ ...app, startupProbe: probe }] });
    const c = ctr("app", "running", { id: "same" });
    const previous: PodStatus = { phase: "Running", containerStatuses: [{ name: "app", state: { running: {} }, lastState: {}, ready: true, restartCount: 0, image: "x", imageID: "", containerID: "containerd://same", started: true }] };
    expect(cs(compute(p, rt([c]), { previous }), "app").started).toBe(true);
    const restarted = ctr("app", "running", { id: "other", attempt: 1 });
    expect(cs(compute(p, rt([restarted]), { previous }), "app").started).toBe(false);
  });

  it("readiness gates", () => {
    const p = pod({ readinessGates: [{ conditionType: "example.com/lb" }] });
    const missing = compute(p, rt([ctr("app", "running")]));
    expect(cond(missing, "Ready")).toMatchObject({ status: "False", reason: "ReadinessGatesNotReady", message: 'corresponding condition of pod readiness gate "example.com/lb" does not exist.' });
    expect(cond(missing, "ContainersReady")?.status).toBe("True");
    const falseGate = compute({ ...p, status: { conditions: [{ type: "example.com/lb", status: "False" }] } }, rt([ctr("app", "running")]));
    expect(cond(falseGate, "Ready")?.message).toBe('the status of pod readiness gate "example.com/lb" is not "True", but False');
    const ok = compute({ ...p, status: { conditions: [{ type: "example.com/lb", status: "True" }] } }, rt([ctr("app", "running")]));
    expect(cond(ok, "Ready")?.status).toBe("True");
    expect(cond(ok, "example.com/lb")?.status).toBe("True");
  });

  it("lists unready and unknown containers as upstream words them", () => {
    const p = pod({ containers: [app, web, { name: "db", image: "pg", readinessProbe: probe }] });
    const s = compute(p, rt([ctr("app", "running")]));
    expect(cond(s, "ContainersReady")).toMatchObject({ status: "False", reason: "ContainersNotReady", message: "containers with unready status: [web db]" });
  });
});

describe("computePodStatus: conditions", () => {
  it("orders the kubelet's conditions as upstream, after others'", () => {
    const s = compute(pod({}, { conditions: [{ type: "PodScheduled", status: "True", lastTransitionTime: new Date(at(-5)) }, { type: "example.com/x", status: "True" }] }), rt([ctr("app", "running")]));
    expect(s.conditions?.map((c) => c.type)).toEqual(["example.com/x", "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]);
    // The scheduler's transition time stays.
    expect(cond(s, "PodScheduled")).toEqual({ type: "PodScheduled", status: "True", lastTransitionTime: iso(-5) });
  });

  it("keeps lastTransitionTime while a condition's status does not change, sets now when it does", () => {
    const p1 = pod();
    const first = compute(p1, rt([ctr("app", "running")]), { now: iso(100) });
    expect(cond(first, "Ready")?.lastTransitionTime).toBe(iso(100));
    // API now holds the first status (as JSON); later computations keep the times.
    const p2 = pod({}, JSON.parse(JSON.stringify(first)) as V1Pod["status"]);
    const same = compute(p2, rt([ctr("app", "running")]), { now: iso(200) });
    expect(cond(same, "Ready")?.lastTransitionTime).toBe(iso(100));
    expect(cond(same, "Initialized")?.lastTransitionTime).toBe(iso(100));
    const changed = compute(p2, rt([exited("app", 1)]), { now: iso(300) });
    expect(cond(changed, "Ready")).toMatchObject({ status: "False", lastTransitionTime: iso(300) });
    expect(cond(changed, "Initialized")?.lastTransitionTime).toBe(iso(100));
    // A reason change alone is not a transition.
    expect(cond(changed, "PodReadyToStartContainers")?.lastTransitionTime).toBe(iso(100));
  });

  it("takes transition times from `previous` before the API's (stale) status", () => {
    const previous = compute(pod(), rt([ctr("app", "running")]), { now: iso(100) });
    const s = compute(pod({}, { phase: "Pending" }), rt([ctr("app", "running")]), { previous, now: iso(200) });
    expect(cond(s, "Ready")?.lastTransitionTime).toBe(iso(100));
  });

  it("accepts client-node objects (Dates) in the API status", () => {
    const s = compute(pod({}, { phase: "Running", startTime: new Date(at(3)), conditions: [{ type: "Ready", status: "True", lastTransitionTime: new Date(at(7)) }] }), rt([ctr("app", "running")]));
    expect(cond(s, "Ready")?.lastTransitionTime).toBe(iso(7));
    expect(s.startTime).toBe(iso(3));
  });

  it("PodReadyToStartContainers follows the sandbox", () => {
    expect(cond(compute(pod(), undefined), "PodReadyToStartContainers")?.status).toBe("False");
    expect(cond(compute(pod(), rt([])), "PodReadyToStartContainers")?.status).toBe("True");
    expect(cond(compute(pod(), rt([], [sandbox({ state: "notready" })])), "PodReadyToStartContainers")?.status).toBe("False");
    expect(cond(compute(pod(), rt([], [sandbox({ ips: [] })])), "PodReadyToStartContainers")?.status).toBe("False");
    expect(cond(compute(pod({ hostNetwork: true }), rt([], [sandbox({ ips: [] })])), "PodReadyToStartContainers")?.status).toBe("True");
    expect(cond(compute(pod(), rt([], [sandbox({ id: "b", attempt: 1 }), sandbox()])), "PodReadyToStartContainers")?.status).toBe("False");
  });

  it("a succeeded pod: Initialized PodCompleted, Ready and ContainersReady False PodCompleted", () => {
    const s = compute(pod({ restartPolicy: "Never" }), rt([exited("app", 0)]));
    expect(s.phase).toBe("Succeeded");
    expect(cond(s, "Initialized")).toMatchObject({ status: "True", reason: "PodCompleted" });
    expect(cond(s, "Ready")).toMatchObject({ status: "False", reason: "PodCompleted" });
    expect(cond(s, "ContainersReady")).toMatchObject({ status: "False", reason: "PodCompleted" });
  });

  it("sets observedGeneration from the pod's generation", () => {
    const s = compute(pod({}, undefined, { generation: 3 }), rt([ctr("app", "running")]));
    expect(s.observedGeneration).toBe(3);
    expect(s.conditions?.filter((c) => c.observedGeneration === 3).map((c) => c.type)).toEqual(["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]);
    expect(compute(pod(), undefined).observedGeneration).toBeUndefined();
  });
});

describe("computePodStatus: addresses", () => {
  it("pod IPs come from the newest sandbox only while it is ready", () => {
    expect(compute(pod(), rt([], [sandbox({ state: "notready" })])).podIP).toBeUndefined();
    expect(compute(pod(), rt([], [sandbox({ id: "new", ips: ["10.0.0.9"] }), sandbox({ id: "old", ips: ["10.0.0.1"] })])).podIP).toBe("10.0.0.9");
    expect(compute(pod(), rt([], [sandbox({ id: "new", state: "notready", ips: [] }), sandbox({ id: "old" })])).podIP).toBeUndefined();
  });

  it("orders dual-stack pod IPs by the node's family, one of each", () => {
    const r = rt([], [sandbox({ ips: ["fd00::0005", "10.0.0.5", "10.0.0.6", "fd00::6"] })]);
    expect(compute(pod(), r).podIPs).toEqual([{ ip: "10.0.0.5" }, { ip: "fd00::5" }]);
    const v6 = compute(pod(), r, { hostIPs: ["fd00::1", "192.168.1.10"] });
    expect(v6.podIPs).toEqual([{ ip: "fd00::5" }, { ip: "10.0.0.5" }]);
    expect(v6.podIP).toBe("fd00::5");
    expect(v6.hostIP).toBe("fd00::1");
    expect(v6.hostIPs).toEqual([{ ip: "fd00::1" }, { ip: "192.168.1.10" }]);
  });

  it("host-network pods have the node's addresses", () => {
    const s = compute(pod({ hostNetwork: true }), rt([], [sandbox({ ips: [] })]), { hostIPs: ["192.168.1.10", "fd00::1"] });
    expect(s.podIP).toBe("192.168.1.10");
    expect(s.podIPs).toEqual([{ ip: "192.168.1.10" }, { ip: "fd00::1" }]);
  });

  it("without node addresses there is no hostIP", () => {
    const s = compute(pod(), undefined, { hostIPs: [] });
    expect(s.hostIP).toBeUndefined();
    expect(s.hostIPs).toBeUndefined();
  });
});

describe("computePodStatus: terminal pods", () => {
  const deadline = { phase: "Failed" as const, reason: "DeadlineExceeded", message: "Pod was active on the node longer than the specified deadline" };

  it("the kubelet's terminal decision sets phase, reason and message once nothing runs", () => {
    const s = compute(pod({}, { phase: "Running" }), rt([exited("app", 137, { reason: "Error" })]), { terminal: deadline });
    expect(s).toMatchObject({ phase: "Failed", reason: "DeadlineExceeded", message: "Pod was active on the node longer than the specified deadline" });
    expect(cond(s, "Ready")).toMatchObject({ status: "False", reason: "PodFailed" });
  });

  it("an eviction's DisruptionTarget condition is added from the start of the kill, and kept", () => {
    const evicted = { phase: "Failed" as const, reason: "Evicted", message: "m", conditions: [{ type: "DisruptionTarget", status: "True", reason: "TerminationByKubelet", message: "m" }] };
    const s = compute(pod({}, { phase: "Running" }), rt([ctr("app", "running")]), { terminal: evicted });
    expect(s.phase).toBe("Running");
    expect(cond(s, "DisruptionTarget")).toMatchObject({ status: "True", reason: "TerminationByKubelet", message: "m" });
    const after = compute(pod({}, { phase: "Running" }), rt([exited("app", 137)]), { terminal: evicted, previous: s });
    expect(after).toMatchObject({ phase: "Failed", reason: "Evicted" });
    expect(after.conditions?.filter((c) => c.type === "DisruptionTarget")).toHaveLength(1);
  });

  it("does not report a terminal phase while a container may still run (mergePodStatus)", () => {
    const s = compute(pod({}, { phase: "Running" }), rt([ctr("app", "running")]), { terminal: deadline });
    expect(s.phase).toBe("Running");
    expect(s.reason).toBeUndefined();
  });

  it("a terminal phase in the API is final", () => {
    const s = compute(pod({}, { phase: "Failed", reason: "Evicted", message: "The node was low on resource: memory." }), rt([ctr("app", "running")]));
    expect(s).toMatchObject({ phase: "Failed", reason: "Evicted", message: "The node was low on resource: memory." });
    const succeeded = compute(pod({ restartPolicy: "Never" }, { phase: "Succeeded" }), rt([exited("app", 1)]));
    expect(succeeded.phase).toBe("Succeeded");
  });

  it("keeps reason and message with an unchanged phase", () => {
    const s = compute(pod({}, { phase: "Running", reason: "SomeReason", message: "some message" }), rt([ctr("app", "running")]));
    expect(s).toMatchObject({ phase: "Running", reason: "SomeReason", message: "some message" });
    const changed = compute(pod({}, { phase: "Pending", reason: "SomeReason" }), rt([ctr("app", "running")]));
    expect(changed.reason).toBeUndefined();
  });

  it("a deleted pod whose containers stopped ends Failed or Succeeded whatever its restart policy", () => {
    const deleting = { deletionTimestamp: new Date(at(900)) };
    expect(compute(pod({}, { phase: "Running" }, deleting), rt([exited("app", 137)])).phase).toBe("Failed");
    expect(compute(pod({}, { phase: "Running" }, deleting), rt([exited("app", 0)])).phase).toBe("Succeeded");
    // Static pods do not (upstream #116484).
    const staticPod = pod({}, { phase: "Running" }, { ...deleting, annotations: { "kubernetes.io/config.source": "file" } });
    expect(compute(staticPod, rt([exited("app", 137)])).phase).toBe("Running");
  });
});

describe("computePodStatus: other fields", () => {
  it("keeps an existing startTime, else uses the one given", () => {
    expect(compute(pod({}, { startTime: "2024-06-01T10:00:00Z" as unknown as Date }), undefined).startTime).toBe("2024-06-01T10:00:00Z");
    expect(compute(pod(), undefined, { startTime: "2025-01-01T00:00:42.123Z" }).startTime).toBe("2025-01-01T00:00:42Z");
  });

  it("reports the QoS class", () => {
    const p = pod({ containers: [{ ...app, resources: { limits: { cpu: "1", memory: "1Gi" } } }] });
    expect(compute(p, undefined).qosClass).toBe("Guaranteed");
  });

  it("shares 12 KiB of termination messages between the containers", () => {
    const p = pod({ containers: [app, web], restartPolicy: "Never" });
    const s = compute(p, rt([exited("app", 1, { message: "x".repeat(10_000) }), exited("web", 1, { message: "é".repeat(5000) })]));
    expect(cs(s, "app").state.terminated?.message).toHaveLength(6144);
    const m = cs(s, "web").state.terminated?.message ?? "";
    expect(Buffer.byteLength(m)).toBe(6144);
    expect(m).toBe("é".repeat(3072));
  });

  it("reports ephemeral containers", () => {
    const p = pod({ ephemeralContainers: [{ name: "debug", image: "busybox:1", targetContainerName: "app" }] });
    const s = compute(p, rt([ctr("app", "running"), ctr("debug", "running", { kind: "ephemeral", createdAt: at(50) })]));
    expect(s.ephemeralContainerStatuses?.map((c) => [c.name, c.state.running !== undefined, c.started])).toEqual([["debug", true, undefined]]);
    expect(compute(pod(), undefined).ephemeralContainerStatuses).toBeUndefined();
    expect(compute(pod(), undefined).initContainerStatuses).toBeUndefined();
  });

  it("is JSON all the way (no Dates, no undefined)", () => {
    const s = compute(pod({ initContainers: [init1] }, { conditions: [{ type: "PodScheduled", status: "True", lastTransitionTime: new Date(at(0)) }] }), rt([exited("init1", 0), ctr("app", "running", { createdAt: at(30) })]));
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Equality and patches
// ---------------------------------------------------------------------------------------------------------

describe("podStatusEqual", () => {
  const c = ctr("app", "running");
  const base = compute(pod(), rt([c]), { now: iso(100) });

  it("ignores transition and probe times and others' conditions", () => {
    const later = compute(pod(), rt([c]), { now: iso(200) });
    expect(cond(later, "Ready")?.lastTransitionTime).not.toBe(cond(base, "Ready")?.lastTransitionTime);
    expect(podStatusEqual(base, later)).toBe(true);
    const withOther: PodStatus = { ...base, conditions: [{ type: "example.com/x", status: "True" }, ...(base.conditions ?? [])] };
    expect(podStatusEqual(base, withOther)).toBe(true);
    const probed: PodStatus = { ...base, conditions: (base.conditions ?? []).map((c) => ({ ...c, lastProbeTime: iso(5) })) };
    expect(podStatusEqual(base, probed)).toBe(true);
  });

  it("sees condition, container and address changes", () => {
    expect(podStatusEqual(base, compute(pod(), rt([exited("app", 1)])))).toBe(false);
    expect(podStatusEqual(base, compute(pod(), rt([c]), { now: iso(100) }))).toBe(true);
    expect(podStatusEqual(base, compute(pod(), rt([c], [sandbox({ ips: ["10.0.0.7"] })]), { now: iso(100) }))).toBe(false);
    const msg: PodStatus = { ...base, conditions: (base.conditions ?? []).map((c) => (c.type === "Ready" ? { ...c, message: "m" } : c)) };
    expect(podStatusEqual(base, msg)).toBe(false);
  });

  it("compares an API status (Dates, nulls) with ours", () => {
    const api = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
    (api["conditions"] as Record<string, unknown>[]).forEach((c) => (c["lastProbeTime"] = null));
    expect(podStatusEqual(toPodStatus(api), base)).toBe(true);
  });
});

describe("statusPatch", () => {
  const uid = "u1";
  const apply = (status: PodStatus | undefined, patch: Record<string, unknown>): PodStatus => {
    const out = applyStrategicMergePatch({ metadata: { uid }, status: status ?? {} }, patch, patchMetaFor("Pod")) as { status: PodStatus };
    return out.status;
  };

  it("is the uid precondition alone when nothing changed", () => {
    const s = compute(pod(), rt([ctr("app", "running")]));
    expect(statusPatch(uid, s, s)).toEqual({ metadata: { uid } });
  });

  it("sends changed conditions by type with $setElementOrder, container statuses whole", () => {
    const c = ctr("app", "running");
    const before = compute(pod(), rt([c]), { now: iso(100), readiness: { app: false } });
    const after = compute(pod({}, JSON.parse(JSON.stringify(before)) as V1Pod["status"]), rt([c]), { now: iso(200), readiness: { app: true } });
    const patch = statusPatch(uid, before, after);
    const status = patch["status"] as Record<string, unknown>;
    expect(patch["metadata"]).toEqual({ uid });
    expect(status["conditions"]).toEqual([
      { type: "Ready", status: "True", lastTransitionTime: iso(200), reason: null, message: null },
      { type: "ContainersReady", status: "True", lastTransitionTime: iso(200), reason: null, message: null },
    ]);
    expect(status["$setElementOrder/conditions"]).toEqual(["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"].map((type) => ({ type })));
    expect(status["containerStatuses"]).toEqual(after.containerStatuses);
    expect(Object.keys(status).sort()).toEqual(["$setElementOrder/conditions", "conditions", "containerStatuses"]);
    expect(apply(before, patch)).toEqual(after);
  });

  it("deletes a pod IP that went away", () => {
    const before = compute(pod(), rt([ctr("app", "running")], [sandbox({ ips: ["10.0.0.1"] })]), { now: iso(100) });
    const after = compute(pod(), rt([ctr("app", "running")], [sandbox({ ips: ["10.0.0.2"] })]), { now: iso(100) });
    const status = statusPatch(uid, before, after)["status"] as Record<string, unknown>;
    expect(status["podIPs"]).toEqual([{ ip: "10.0.0.2" }, { ip: "10.0.0.1", $patch: "delete" }]);
    expect(status["podIP"]).toBe("10.0.0.2");
    expect(apply(before, statusPatch(uid, before, after))).toEqual(after);
    const gone = compute(pod(), rt([ctr("app", "running")], [sandbox({ state: "notready", ips: [] })]), { now: iso(100) });
    const p2 = statusPatch(uid, before, gone)["status"] as Record<string, unknown>;
    expect(p2["podIPs"]).toBeNull();
    expect(p2["podIP"]).toBeNull();
  });

  it("without a previous status, replaces what the kubelet owns and keeps others' conditions", () => {
    const next = compute(pod(), rt([ctr("app", "running")], [sandbox({ ips: ["10.0.0.2"] })]));
    const patch = statusPatch(uid, undefined, next);
    const status = patch["status"] as Record<string, unknown>;
    expect(status["reason"]).toBeNull();
    expect(status["message"]).toBeNull();
    expect(status["initContainerStatuses"]).toBeNull();
    expect(status["podIPs"]).toEqual([{ ip: "10.0.0.2" }, { $patch: "replace" }]);
    const stale: PodStatus = {
      phase: "Pending",
      reason: "Old",
      podIP: "10.0.0.1",
      podIPs: [{ ip: "10.0.0.1" }],
      conditions: [{ type: "example.com/x", status: "True" }, { type: "Ready", status: "False", lastTransitionTime: iso(1) }],
    };
    const result = apply(stale, patch);
    expect(result.reason).toBeUndefined();
    expect(result.podIPs).toEqual([{ ip: "10.0.0.2" }]);
    expect(result.conditions?.find((c) => c.type === "example.com/x")).toEqual({ type: "example.com/x", status: "True" });
    expect(result.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    expect(result.containerStatuses).toEqual(next.containerStatuses);
  });
});
