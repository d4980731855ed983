import { describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { CriError } from "../../../../kubelet/cri/errors.ts";
import { isDeckhandError } from "../../../../src-shared/errors.ts";
import { CrashLoopBackoff } from "../../../../kubelet/runtime/pod-actions.ts";
import { containerHash } from "../../../../kubelet/runtime/container-hash.ts";
import { flush } from "../../../harness/fake-clock.ts";
import { runtimeFixture, testPod, TEST_IMAGE } from "../../../harness/runtime-fixture.ts";

type Fixture = ReturnType<typeof runtimeFixture>;

/** Names of the containers CreateContainer was asked for, in order. */
function created(f: Fixture): string[] {
  return f.fake.callsOf("CreateContainer").map((r) => (r as { config: { metadata: { name: string } } }).config.metadata.name);
}

function exit(f: Fixture, pod: V1Pod, name: string, code: number): void {
  const c = f.latest(pod, name);
  if (!c) throw new Error(`no container ${name}`);
  f.fake.exitContainer(c.id, code);
}

/** Syncs the pod after each of the containers exits with code 0, and returns what was created by the end. */
async function runThrough(f: Fixture, pod: V1Pod, names: string[]): Promise<string[]> {
  for (const name of names) {
    exit(f, pod, name, 0);
    await f.sync(pod);
  }
  return created(f);
}

describe("RuntimeManager.syncPod on the fake runtime", () => {
  it("creates the pod cgroup and sandbox, then creates and starts the app containers", async () => {
    const f = runtimeFixture();
    const pod = testPod("web", { containers: [{ name: "a", image: TEST_IMAGE }, { name: "b", image: TEST_IMAGE }] });
    const result = await f.sync(pod);
    expect(result).toMatchObject({ changed: true, waiting: {} });
    expect(f.cgroups.pods.has("uid-web")).toBe(true);
    const [sandbox] = f.fake.sandboxes();
    expect(sandbox).toMatchObject({ state: "SANDBOX_READY", metadata: { name: "web", namespace: "default", uid: "uid-web", attempt: 0 } });
    expect(f.containersOf(pod).map((c) => [c.metadata?.name, c.state, c.pod_sandbox_id])).toEqual([
      ["a", "CONTAINER_RUNNING", sandbox?.id],
      ["b", "CONTAINER_RUNNING", sandbox?.id],
    ]);
    expect(f.events.map((e) => e.reason)).toEqual(["Created", "Started", "Created", "Started"]);
    // In line now: a second sync changes nothing.
    f.fake.clearCalls();
    expect((await f.sync(pod)).changed).toBe(false);
    expect(f.fake.callsOf("RunPodSandbox").length + f.fake.callsOf("CreateContainer").length).toBe(0);
  });

  it("runs init containers one at a time, in order, before the app", async () => {
    const f = runtimeFixture();
    const pod = testPod("init", { initContainers: [{ name: "i1", image: TEST_IMAGE }, { name: "i2", image: TEST_IMAGE }] });
    await f.sync(pod);
    expect(created(f)).toEqual(["i1"]);
    await f.sync(pod); // i1 still running: nothing new
    expect(created(f)).toEqual(["i1"]);
    expect(await runThrough(f, pod, ["i1"])).toEqual(["i1", "i2"]);
    expect(await runThrough(f, pod, ["i2"])).toEqual(["i1", "i2", "app"]);
    expect(f.latest(pod, "app")?.state).toBe("CONTAINER_RUNNING");
  });

  it("fails the pod when an init container fails under restartPolicy Never", async () => {
    const f = runtimeFixture();
    const pod = testPod("initfail", { restartPolicy: "Never", initContainers: [{ name: "i1", image: TEST_IMAGE }] });
    await f.sync(pod);
    exit(f, pod, "i1", 3);
    const result = await f.sync(pod);
    expect(result.failed).toEqual({ reason: "Failed", message: "Init container i1 failed with exit code 3" });
    expect(created(f)).toEqual(["i1"]);
    expect(f.fake.sandboxes()[0]?.state).toBe("SANDBOX_NOTREADY");
  });

  it("starts a sidecar before the next init container and keeps it running with the app", async () => {
    const f = runtimeFixture();
    const pod = testPod("side", { initContainers: [{ name: "proxy", image: TEST_IMAGE, restartPolicy: "Always" }, { name: "setup", image: TEST_IMAGE }] });
    await f.sync(pod);
    expect(created(f)).toEqual(["proxy"]);
    await f.sync(pod);
    expect(created(f)).toEqual(["proxy", "setup"]);
    expect(await runThrough(f, pod, ["setup"])).toEqual(["proxy", "setup", "app"]);
    expect(f.latest(pod, "proxy")?.state).toBe("CONTAINER_RUNNING");
    // A sidecar that dies is restarted whatever the pod's policy.
    exit(f, pod, "proxy", 0);
    await f.sync(pod);
    expect(f.latest(pod, "proxy")).toMatchObject({ state: "CONTAINER_RUNNING", metadata: { attempt: 1 } });
  });

  // The decision itself is tabled in pod-actions.test.ts; here, that the runtime carries it out.
  it.each([["Always", 0, true], ["OnFailure", 0, false], ["OnFailure", 1, true], ["Never", 1, false]] as const)("restartPolicy %s, exit code %d: restarted=%s", async (restartPolicy, code, restarted) => {
    const f = runtimeFixture();
    const pod = testPod("rp", { restartPolicy, containers: [{ name: "app", image: TEST_IMAGE }, { name: "keep", image: TEST_IMAGE }] });
    await f.sync(pod);
    exit(f, pod, "app", code);
    await f.sync(pod);
    expect(f.latest(pod, "app")).toMatchObject(restarted ? { state: "CONTAINER_RUNNING", metadata: { attempt: 1 } } : { state: "CONTAINER_EXITED", metadata: { attempt: 0 } });
  });

  it("stops the sandbox once nothing of the app is left to run", async () => {
    const f = runtimeFixture();
    const pod = testPod("done", { restartPolicy: "Never" });
    await f.sync(pod);
    exit(f, pod, "app", 0);
    await f.sync(pod);
    expect(f.fake.sandboxes().map((s) => s.state)).toEqual(["SANDBOX_NOTREADY"]);
    expect(created(f)).toEqual(["app"]);
  });

  it("backs off restarting a crash-looping container: at once, then 10 s, then 20 s (fake clock)", async () => {
    const f = runtimeFixture();
    const pod = testPod("crash");
    await f.sync(pod);
    exit(f, pod, "app", 1);
    await f.sync(pod); // first restart is immediate
    expect(f.latest(pod, "app")?.metadata?.attempt).toBe(1);
    exit(f, pod, "app", 1);
    const waiting = await f.sync(pod);
    expect(waiting.waiting["app"]).toEqual({ reason: "CrashLoopBackOff", message: "back-off 10s restarting failed container=app pod=crash_default(uid-crash)" });
    expect(waiting.retryInMs).toBe(10_000);
    expect(f.latest(pod, "app")?.metadata?.attempt).toBe(1);
    await f.clock.advance(9_999);
    expect((await f.sync(pod)).waiting["app"]?.reason).toBe("CrashLoopBackOff");
    await f.clock.advance(1);
    await f.sync(pod);
    expect(f.latest(pod, "app")).toMatchObject({ state: "CONTAINER_RUNNING", metadata: { attempt: 2 } });
    exit(f, pod, "app", 1);
    expect((await f.sync(pod)).retryInMs).toBe(20_000);
    // forgetPod drops the back-off: the next restart is immediate again.
    f.manager.forgetPod("uid-crash");
    await f.sync(pod);
    expect(f.latest(pod, "app")?.metadata?.attempt).toBe(3);
  });

  it("reports a failed pull as ErrImagePull with the runtime's words, then backs off without pulling", async () => {
    const f = runtimeFixture();
    const pod = testPod("pull", { containers: [{ name: "app", image: "registry.example/app:1" }] });
    f.fake.failNext("PullImage", new CriError("NotFound", "PullImage", 'failed to resolve reference "registry.example/app:1": not found'));
    const first = await f.sync(pod);
    expect(first.waiting["app"]).toEqual({ reason: "ErrImagePull", message: 'Failed to pull image "registry.example/app:1": failed to resolve reference "registry.example/app:1": not found' });
    expect(first.retryInMs).toBe(10_000);
    const second = await f.sync(pod);
    expect(second.waiting["app"]?.reason).toBe("ImagePullBackOff");
    expect(f.fake.callsOf("PullImage")).toHaveLength(1);
    await f.clock.advance(10_000);
    await f.sync(pod);
    expect(f.fake.callsOf("PullImage")).toHaveLength(2);
    expect(f.latest(pod, "app")?.state).toBe("CONTAINER_RUNNING");
  });

  it("cancels an image pull under way when the pod's signal aborts, and keeps no back-off for it", async () => {
    const f = runtimeFixture();
    const pod = testPod("cancel", { containers: [{ name: "app", image: "registry.example/slow:1" }] });
    const release = f.fake.holdPulls();
    const stop = new AbortController();
    const sync = f.sync(pod, stop.signal);
    const outcome = sync.then(
      () => "resolved",
      (err: unknown) => (isDeckhandError(err, "Cancelled") ? "cancelled" : `other: ${String(err)}`),
    );
    while (f.fake.callsOf("PullImage").length === 0) await flush();
    stop.abort();
    expect(await outcome).toBe("cancelled");
    // The CRI call was cancelled: releasing the registry now pulls nothing.
    release();
    await flush();
    expect((await f.fake.image("ImageStatus", { image: { image: "registry.example/slow:1" } })).image).toBeNull();
    // No ImagePullBackOff for a cancellation: the next sync pulls at once.
    await f.sync(pod);
    expect(f.fake.callsOf("PullImage")).toHaveLength(2);
    expect(f.latest(pod, "app")?.state).toBe("CONTAINER_RUNNING");
    expect(f.events.filter((e) => e.reason === "Failed" || e.reason === "BackOff")).toEqual([]);
  });

  it("shows a spec it cannot turn into a container config as CreateContainerConfigError, without calling CreateContainer", async () => {
    const f = runtimeFixture();
    const pod = testPod("cfg", { containers: [{ name: "app", image: TEST_IMAGE, envFrom: [{ configMapRef: { name: "x" } }] }] });
    const result = await f.sync(pod);
    expect(result.waiting["app"]?.reason).toBe("CreateContainerConfigError");
    expect(result.waiting["app"]?.message).toBe('configmap "x" not found');
    expect(f.fake.callsOf("CreateContainer")).toHaveLength(0);
  });

  it("shows runtime failures as CreateContainerError / RunContainerError with the runtime's own message", async () => {
    const f = runtimeFixture();
    const pod = testPod("rt", { containers: [{ name: "a", image: TEST_IMAGE }, { name: "b", image: TEST_IMAGE }] });
    f.fake.failNext("CreateContainer", new CriError("Unknown", "CreateContainer", "no space left on device"));
    f.fake.failNext("StartContainer", new CriError("Unknown", "StartContainer", 'exec: "nope": executable file not found in $PATH'));
    const result = await f.sync(pod);
    expect(result.waiting).toEqual({
      a: { reason: "CreateContainerError", message: "no space left on device" },
      b: { reason: "RunContainerError", message: 'exec: "nope": executable file not found in $PATH' },
    });
    expect(f.events.filter((e) => e.type === "Warning").map((e) => e.message)).toEqual(["Error: no space left on device", 'Error: exec: "nope": executable file not found in $PATH']);
  });

  it("replaces a sandbox that died: the next attempt, with the containers started again in it", async () => {
    const f = runtimeFixture();
    const pod = testPod("sbx");
    await f.sync(pod);
    const [first] = f.fake.sandboxes();
    f.fake.setSandboxNotReady(first?.id ?? "");
    await f.sync(pod);
    expect(f.events.some((e) => e.reason === "SandboxChanged")).toBe(true);
    const ready = f.fake.sandboxes().filter((s) => s.state === "SANDBOX_READY");
    expect(ready.map((s) => s.metadata?.attempt)).toEqual([1]);
    expect(f.latest(pod, "app")).toMatchObject({ state: "CONTAINER_RUNNING", pod_sandbox_id: ready[0]?.id, metadata: { attempt: 1 } });
    // The dead sandbox's network (namespace, IP) was torn down, so it can be removed.
    expect((await f.fake.runtime("PodSandboxStatus", { pod_sandbox_id: first?.id ?? "" })).status?.network?.ip).toBe("");
    await f.fake.runtime("RemovePodSandbox", { pod_sandbox_id: first?.id ?? "" });
  });
});

describe("RuntimeManager.syncPod after a sandbox died, with init containers", () => {
  it("runs every init container again, in order, in the new sandbox before the app", async () => {
    const f = runtimeFixture();
    const pod = testPod("reinit", { initContainers: [{ name: "i1", image: TEST_IMAGE }, { name: "i2", image: TEST_IMAGE }] });
    await f.sync(pod);
    await runThrough(f, pod, ["i1", "i2"]);
    expect(f.latest(pod, "app")?.state).toBe("CONTAINER_RUNNING");
    const [first] = f.fake.sandboxes();
    f.fake.setSandboxNotReady(first?.id ?? "");
    f.fake.clearCalls();
    await f.sync(pod);
    expect(created(f)).toEqual(["i1"]);
    // The old sandbox's init containers are gone (upstream's purgeInitContainers): i2 must run again.
    expect(await runThrough(f, pod, ["i1"])).toEqual(["i1", "i2"]);
    expect(await runThrough(f, pod, ["i2"])).toEqual(["i1", "i2", "app"]);
    const ready = f.fake.sandboxes().find((s) => s.state === "SANDBOX_READY");
    expect(f.containersOf(pod).filter((c) => c.metadata?.name !== "app").map((c) => c.pod_sandbox_id)).toEqual([ready?.id, ready?.id]);
  });
});

describe("RuntimeManager.killPodContainers and removePod", () => {
  it("stops app containers first, then sidecars in reverse spec order, then the sandbox", async () => {
    const f = runtimeFixture();
    const pod = testPod("kill", {
      initContainers: [{ name: "s1", image: TEST_IMAGE, restartPolicy: "Always" }, { name: "s2", image: TEST_IMAGE, restartPolicy: "Always" }],
      containers: [{ name: "a", image: TEST_IMAGE }, { name: "b", image: TEST_IMAGE }],
    });
    for (let i = 0; i < 3; i++) await f.sync(pod);
    expect(f.containersOf(pod).every((c) => c.state === "CONTAINER_RUNNING")).toBe(true);
    f.fake.clearCalls();
    await f.manager.killPodContainers(pod, await f.manager.podStatus("uid-kill"), 5);
    const nameOf = new Map(f.fake.containers().map((c) => [c.id, c.metadata?.name]));
    const order = f.fake.calls
      .filter((c) => c.method === "StopContainer" || c.method === "StopPodSandbox")
      .map((c) => (c.method === "StopPodSandbox" ? "sandbox" : nameOf.get((c.request as { container_id: string }).container_id)));
    expect(order.slice(0, 2).sort()).toEqual(["a", "b"]);
    expect(order.slice(2)).toEqual(["s2", "s1", "sandbox"]);
    // Never less than upstream's minimum grace of 2 s.
    expect(f.fake.callsOf("StopContainer").map((r) => (r as { timeout: number }).timeout)).toEqual([5, 5, 5, 5]);
    expect(f.containersOf(pod).every((c) => c.state === "CONTAINER_EXITED")).toBe(true);
  });

  it("removes every container and sandbox of the pod, its cgroup and its back-off state", async () => {
    const f = runtimeFixture();
    const pod = testPod("rm");
    const other = testPod("other");
    await f.sync(pod);
    await f.sync(other);
    exit(f, pod, "app", 1);
    await f.sync(pod);
    exit(f, pod, "app", 1);
    await f.sync(pod); // in back-off now
    const key = CrashLoopBackoff.key("uid-rm", "app", containerHash(pod.spec?.containers[0] ?? { name: "app" }));
    expect(f.manager.backoff.delay(key)).toBe(10_000);
    await f.manager.killPodContainers(pod, await f.manager.podStatus("uid-rm"), 2);
    await f.manager.removePod("uid-rm", "default", "rm");
    expect(f.containersOf(pod)).toEqual([]);
    expect(f.fake.sandboxes().map((s) => s.metadata?.uid)).toEqual(["uid-other"]);
    expect(f.cgroups.pods.has("uid-rm")).toBe(false);
    expect(f.cgroups.pods.has("uid-other")).toBe(true);
    expect(f.manager.backoff.delay(key)).toBe(0);
  });
});

describe("RuntimeManager dead containers", () => {
  it("keeps one dead attempt per container of the pod it syncs (the container GC's limit)", async () => {
    const f = runtimeFixture();
    const pod = testPod("trim");
    await f.sync(pod);
    for (let i = 0; i < 3; i++) {
      exit(f, pod, "app", 1);
      await f.clock.advance(400_000); // past any back-off
      await f.sync(pod);
    }
    expect(f.containersOf(pod).map((c) => `${c.metadata?.attempt}:${c.state}`).sort()).toEqual(["2:CONTAINER_EXITED", "3:CONTAINER_RUNNING"]);
  });
});
