import { describe, expect, it } from "vitest";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { runtimeFixture, testPod, TEST_IMAGE } from "../../../harness/runtime-fixture.ts";

type Fixture = ReturnType<typeof runtimeFixture>;

/** The runtime calls that matter to hooks, in order, with the container or command they were about. */
function trace(f: Fixture): string[] {
  const names = new Map(f.fake.containers().map((c) => [c.id, c.metadata?.name ?? ""]));
  const out: string[] = [];
  for (const call of f.fake.calls) {
    const r = call.request as Record<string, unknown>;
    if (call.method === "CreateContainer") out.push(`create ${String((r["config"] as { metadata: { name: string } }).metadata.name)}`);
    else if (call.method === "StartContainer") out.push(`start ${names.get(String(r["container_id"])) ?? ""}`);
    else if (call.method === "ExecSync") out.push(`exec ${names.get(String(r["container_id"])) ?? ""}: ${(r["cmd"] as string[]).join(" ")}`);
    else if (call.method === "StopContainer") out.push(`stop ${names.get(String(r["container_id"])) ?? ""} ${String(r["timeout"])}`);
  }
  return out;
}

const hooked = (name: string, lifecycle: NonNullable<V1Container["lifecycle"]>, extra: Partial<V1Container> = {}): V1Container => ({ name, image: TEST_IMAGE, lifecycle, ...extra });

describe("postStart", () => {
  it("runs right after StartContainer, before the next container is created", async () => {
    const f = runtimeFixture();
    const pod = testPod("ps", { containers: [hooked("a", { postStart: { exec: { command: ["sh", "-c", "echo $(NAME)"] } } }, { env: [{ name: "NAME", value: "x" }] }), { name: "b", image: TEST_IMAGE }] });
    const result = await f.sync(pod);
    expect(result.waiting).toEqual({});
    expect(trace(f)).toEqual(["create a", "start a", "exec a: sh -c echo x", "create b", "start b"]);
    expect(f.events.map((e) => e.reason)).not.toContain("FailedPostStartHook");
  });

  it("kills the container when it fails: FailedPostStartHook, Killing, PostStartHookError with upstream's message", async () => {
    const f = runtimeFixture();
    f.fake.onExec(() => ({ exit_code: 3, stdout: "out\n", stderr: "boom\n" }));
    const pod = testPod("psf", { terminationGracePeriodSeconds: 7, containers: [hooked("a", { postStart: { exec: { command: ["sh", "-c", "exit 3"] } } })] });
    const result = await f.sync(pod);
    const message = `Exec lifecycle hook ([sh -c exit 3]) for Container "a" in Pod "psf_default(uid-psf)" failed - error: command 'sh -c exit 3' exited with 3: boom\n, message: "out\\nboom\\n"`;
    expect(f.events.filter((e) => e.type === "Warning")).toEqual([{ type: "Warning", reason: "FailedPostStartHook", message: "PostStartHook failed", fieldPath: "spec.containers{a}" }]);
    expect(f.events.find((e) => e.reason === "Killing")).toMatchObject({ type: "Normal", message: "FailedPostStartHook" });
    expect(trace(f)).toEqual(["create a", "start a", "exec a: sh -c exit 3", "stop a 7"]);
    expect(result.waiting["a"]).toEqual({ reason: "PostStartHookError", message });
    expect(f.latest(pod, "a")?.state).toBe("CONTAINER_EXITED");
  });

  it("fails a tcpSocket handler at run time, as upstream (kept in the API, never run)", async () => {
    const f = runtimeFixture();
    const pod = testPod("tcp", { containers: [hooked("a", { postStart: { tcpSocket: { port: 80 } } })] });
    const result = await f.sync(pod);
    expect(result.waiting["a"]).toEqual({ reason: "PostStartHookError", message: 'Cannot run handler: invalid handler: {"tcpSocket":{"port":80}}' });
  });
});

describe("preStop", () => {
  async function started(f: Fixture, pod: V1Pod) {
    await f.sync(pod);
    f.fake.clearCalls();
    return f.manager.podStatus(pod.metadata?.uid ?? "");
  }

  it("runs before StopContainer; its whole seconds come off the grace period", async () => {
    const f = runtimeFixture();
    const pod = testPod("stop", { terminationGracePeriodSeconds: 10, containers: [hooked("a", { preStop: { exec: { command: ["drain"] } } })] });
    const status = await started(f, pod);
    f.fake.onExec(async () => {
      await f.clock.advance(3_500);
      return { exit_code: 0 };
    });
    await f.manager.killPodContainers(pod, status, undefined);
    expect(trace(f)).toEqual(["exec a: drain", "stop a 7"]);
    expect(f.events.map((e) => e.reason)).toEqual(expect.not.arrayContaining(["FailedPreStopHook"]));
  });

  it("gives the hook no more than the grace period (the termination's override), then at least 2 s to stop", async () => {
    const f = runtimeFixture();
    const pod = testPod("slow", { terminationGracePeriodSeconds: 30, containers: [hooked("a", { preStop: { exec: { command: ["sleep", "600"] } } })] });
    const status = await started(f, pod);
    let aborted = false;
    f.fake.onExec((_id, _cmd, signal) => new Promise((resolve) => signal?.addEventListener("abort", () => {
      aborted = true;
      resolve({ exit_code: 137 });
    })));
    const killing = f.manager.killPodContainers(pod, status, 4);
    await f.clock.advance(3_999);
    expect(trace(f)).toEqual(["exec a: sleep 600"]);
    await f.clock.advance(1);
    await killing;
    expect(aborted).toBe(true);
    expect(trace(f)).toEqual(["exec a: sleep 600", "stop a 2"]);
    // Running out of time is not a failed hook.
    expect(f.events.map((e) => e.reason)).not.toContain("FailedPreStopHook");
  });

  it("reports a failed hook without its output and stops the container anyway", async () => {
    const f = runtimeFixture();
    const pod = testPod("fail", { containers: [hooked("a", { preStop: { exec: { command: ["false"] } } })] });
    const status = await started(f, pod);
    f.fake.onExec(() => ({ exit_code: 1, stdout: "secret" }));
    await f.manager.killPodContainers(pod, status, undefined);
    expect(f.events.find((e) => e.reason === "FailedPreStopHook")).toEqual({ type: "Warning", reason: "FailedPreStopHook", message: "PreStopHook failed", fieldPath: "spec.containers{a}" });
    expect(trace(f)).toEqual(["exec a: false", "stop a 5"]);
  });

  it("runs the preStop hook of a container whose pod spec is gone, from its annotations (upstream's restore)", async () => {
    const f = runtimeFixture();
    const pod = testPod("orphan", { terminationGracePeriodSeconds: 9, containers: [hooked("a", { preStop: { exec: { command: ["flush", "all"] } } }), { name: "b", image: TEST_IMAGE }] });
    const status = await started(f, pod);
    expect(f.latest(pod, "a")?.annotations["io.kubernetes.container.preStopHandler"]).toBe('{"exec":{"command":["flush","all"]}}');
    await f.manager.killPodContainers(undefined, status, undefined);
    // The pod's grace recorded on the container (9 s); b has no hook.
    expect(trace(f).sort()).toEqual(["exec a: flush all", "stop a 9", "stop b 9"]);
    expect(trace(f).indexOf("exec a: flush all")).toBeLessThan(trace(f).indexOf("stop a 9"));
  });

  it("runs no hook in a container that never started", async () => {
    const f = runtimeFixture();
    const pod = testPod("created", { containers: [hooked("a", { preStop: { exec: { command: ["drain"] } } })] });
    f.fake.failNext("StartContainer", new Error("exec format error"));
    await f.sync(pod);
    f.fake.clearCalls();
    await f.manager.killPodContainers(pod, await f.manager.podStatus("uid-created"), undefined);
    expect(trace(f)).toEqual(["stop a 5"]);
    expect(f.events.map((e) => e.reason)).not.toContain("FailedPreStopHook");
  });

  it("runs a sleep hook on the clock, and none when the grace period is 0", async () => {
    const f = runtimeFixture();
    const pod = testPod("nap", { terminationGracePeriodSeconds: 10, containers: [hooked("a", { preStop: { sleep: { seconds: 3 } } })] });
    const status = await started(f, pod);
    const killing = f.manager.killPodContainers(pod, status, undefined);
    await f.clock.advance(2_999);
    expect(trace(f)).toEqual([]);
    await f.clock.advance(1);
    await killing;
    expect(trace(f)).toEqual(["stop a 7"]);
    const g = runtimeFixture();
    const st = await started(g, pod);
    await g.manager.killPodContainers(pod, st, 0);
    expect(trace(g)).toEqual(["stop a 2"]);
  });
});

describe("termination message files", () => {
  it("mounts a fresh file per container attempt at terminationMessagePath, removed with the pod", async () => {
    const f = runtimeFixture();
    const pod = testPod("msg", { containers: [{ name: "a", image: TEST_IMAGE }, { name: "b", image: TEST_IMAGE, terminationMessagePath: "/tmp/msg" }] });
    await f.sync(pod);
    const mounts = f.fake.callsOf("CreateContainer").map((r) => (r as { config: { mounts: { host_path: string; container_path: string }[] } }).config.mounts);
    expect(mounts).toEqual([
      [{ host_path: f.terminationFiles.created[0]?.hostPath, container_path: "/dev/termination-log" }],
      [{ host_path: f.terminationFiles.created[1]?.hostPath, container_path: "/tmp/msg" }],
    ]);
    await f.manager.killPodContainers(pod, await f.manager.podStatus("uid-msg"), 1);
    await f.manager.removePod("uid-msg", "default", "msg");
    expect(f.terminationFiles.removed).toEqual(["uid-msg"]);
  });
});
