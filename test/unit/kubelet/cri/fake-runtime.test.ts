import { describe, expect, it } from "vitest";
import { CriError } from "../../../../kubelet/cri/errors.ts";
import { FakeClock } from "../../../harness/fake-clock.ts";
import { FakeRuntime } from "../../../harness/fake-runtime.ts";

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => "ok",
    (err: unknown) => (err instanceof CriError ? err.code : String(err)),
  );
}

describe("FakeRuntime", () => {
  const sandboxConfig = (uid: string, attempt = 0) => ({ metadata: { name: "p", namespace: "ns", uid, attempt }, labels: { "io.kubernetes.pod.uid": uid }, annotations: { a: "1" } });

  it("keeps sandboxes and containers with the configs' labels, states and clock times, and filters by label", async () => {
    const clock = new FakeClock();
    const fake = new FakeRuntime({ clock, images: ["busybox:1"] });
    const { pod_sandbox_id: sb } = await fake.runtime("RunPodSandbox", { config: sandboxConfig("u1") });
    await fake.runtime("RunPodSandbox", { config: sandboxConfig("u2") });
    const { container_id: id } = await fake.runtime("CreateContainer", {
      pod_sandbox_id: sb,
      config: { metadata: { name: "app", attempt: 0 }, image: { image: "busybox:1" }, labels: { "io.kubernetes.pod.uid": "u1" } },
      sandbox_config: sandboxConfig("u1"),
    });
    await clock.advance(1000);
    await fake.runtime("StartContainer", { container_id: id });
    const { items } = await fake.runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.uid": "u1" } } });
    expect(items.map((s) => [s.id, s.state, s.annotations])).toEqual([[sb, "SANDBOX_READY", { a: "1" }]]);
    const { status } = await fake.runtime("ContainerStatus", { container_id: id });
    expect(status).toMatchObject({ state: "CONTAINER_RUNNING", metadata: { name: "app", attempt: 0 }, labels: { "io.kubernetes.pod.uid": "u1" } });
    expect(BigInt(status?.started_at ?? "0") / 1_000_000n - BigInt(status?.created_at ?? "0") / 1_000_000n).toBe(1000n);
    fake.exitContainer(id, 2);
    expect(fake.containerStatus(id)).toMatchObject({ state: "CONTAINER_EXITED", exit_code: 2, reason: "Error" });
    expect((await fake.runtime("ListContainers", { filter: { state: { state: "CONTAINER_RUNNING" } } })).containers).toEqual([]);
    const ip = (await fake.runtime("PodSandboxStatus", { pod_sandbox_id: sb })).status?.network?.ip;
    expect(ip).toMatch(/^10\.88\.0\.\d+$/);
  });

  it("answers as containerd 1.6 does for unknown ids, reused names, missing images and missing sandbox_config", async () => {
    const fake = new FakeRuntime({ images: ["busybox:1"] });
    expect(await codeOf(fake.runtime("ContainerStatus", { container_id: "nope" }))).toBe("NotFound");
    expect(await codeOf(fake.runtime("StopContainer", { container_id: "nope" }))).toBe("NotFound");
    expect(await codeOf(fake.runtime("PodSandboxStatus", { pod_sandbox_id: "nope" }))).toBe("NotFound");
    expect(await codeOf(fake.runtime("RemoveContainer", { container_id: "nope" }))).toBe("ok");
    expect(await codeOf(fake.runtime("RemovePodSandbox", { pod_sandbox_id: "nope" }))).toBe("ok");
    const { pod_sandbox_id: sb } = await fake.runtime("RunPodSandbox", { config: sandboxConfig("u1") });
    expect(await codeOf(fake.runtime("RunPodSandbox", { config: sandboxConfig("u1") }))).toBe("AlreadyExists");
    const create = (image: string, withSandboxConfig = true) =>
      fake.runtime("CreateContainer", { pod_sandbox_id: sb, config: { metadata: { name: "c" }, image: { image } }, ...(withSandboxConfig ? { sandbox_config: sandboxConfig("u1") } : {}) });
    expect(await codeOf(create("busybox:1", false))).toBe("InvalidArgument");
    expect(await codeOf(create("absent:1"))).toBe("NotFound");
    expect(await codeOf(create("busybox:1"))).toBe("ok");
    expect(await codeOf(create("busybox:1"))).toBe("AlreadyExists");
  });

  it("keeps containerd 1.6's rules on container names, stopping created containers, and removing dead sandboxes", async () => {
    const fake = new FakeRuntime({ images: ["busybox:1"] });
    const first = (await fake.runtime("RunPodSandbox", { config: sandboxConfig("u1") })).pod_sandbox_id;
    const create = (sb: string, attempt: number) =>
      fake.runtime("CreateContainer", { pod_sandbox_id: sb, config: { metadata: { name: "c", attempt }, image: { image: "busybox:1" } }, sandbox_config: sandboxConfig("u1") });
    const { container_id: created } = await create(first, 0);
    // StopContainer only acts on a running (or unknown) container.
    await fake.runtime("StopContainer", { container_id: created, timeout: 0 });
    expect(fake.containerStatus(created).state).toBe("CONTAINER_CREATED");
    // The pause process dies: nothing starts in it, and with its network still up it cannot be removed before
    // StopPodSandbox.
    fake.setSandboxNotReady(first);
    expect(await codeOf(fake.runtime("StartContainer", { container_id: created }))).toBe("Unknown");
    expect(await codeOf(fake.runtime("RemovePodSandbox", { pod_sandbox_id: first }))).toBe("Unknown");
    // A new sandbox of the same pod: a container name is reserved per pod, name and attempt, not per sandbox.
    const second = (await fake.runtime("RunPodSandbox", { config: sandboxConfig("u1", 1) })).pod_sandbox_id;
    expect(await codeOf(create(second, 0))).toBe("AlreadyExists");
    expect(await codeOf(create(second, 1))).toBe("ok");
    await fake.runtime("StopPodSandbox", { pod_sandbox_id: first });
    expect((await fake.runtime("PodSandboxStatus", { pod_sandbox_id: first })).status?.network?.ip).toBe("");
    expect(await codeOf(fake.runtime("RemovePodSandbox", { pod_sandbox_id: first }))).toBe("ok");
    expect(await codeOf(create(second, 0))).toBe("ok");
  });

  it("fails the next call of a method as told, records every call, and holds pulls until released or cancelled", async () => {
    const fake = new FakeRuntime();
    fake.failNext("Version", new CriError("Unavailable", "Version", "down"));
    expect(await codeOf(fake.runtime("Version", {}))).toBe("Unavailable");
    expect(await codeOf(fake.runtime("Version", {}))).toBe("ok");
    expect(fake.calls.map((c) => c.method)).toEqual(["Version", "Version"]);
    const release = fake.holdPulls();
    const stop = new AbortController();
    const cancelled = codeOf(fake.image("PullImage", { image: { image: "x:1" } }, { signal: stop.signal }));
    const held = fake.image("PullImage", { image: { image: "y:1" } });
    stop.abort();
    expect(await cancelled).toBe("Cancelled");
    release();
    expect((await held).image_ref).toMatch(/^sha256:/);
    expect((await fake.image("ImageStatus", { image: { image: "x:1" } })).image).toBeNull();
  });
});
