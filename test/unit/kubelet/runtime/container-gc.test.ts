import { describe, expect, it } from "vitest";
import { ContainerGC, CONTAINER_GC_PERIOD_MS, deadContainersOverLimit, type GCCandidate } from "../../../../kubelet/runtime/container-gc.ts";
import { silentLogger } from "../../../../src-shared/log.ts";
import { FakeClock, flush } from "../../../harness/fake-clock.ts";
import { FakeRuntime } from "../../../harness/fake-runtime.ts";

const UID = "io.kubernetes.pod.uid";
const NAME = "io.kubernetes.container.name";

function gcFixture(options: { deleted?: string[]; sourcesReady?: boolean; minAgeMs?: number } = {}) {
  const clock = new FakeClock();
  const fake = new FakeRuntime({ clock, images: ["busybox:1"] });
  const deleted = new Set(options.deleted ?? []);
  const gc = new ContainerGC({
    runtime: fake,
    isPodDeleted: (uid) => deleted.has(uid),
    allSourcesReady: () => options.sourcesReady ?? true,
    logger: silentLogger(),
    clock,
    ...(options.minAgeMs !== undefined ? { policy: { minAgeMs: options.minAgeMs } } : {}),
  });
  let sandboxAttempt = 0;
  /** A sandbox of the pod (as the kubelet labels it); returns its id. */
  const sandbox = async (uid: string): Promise<string> => {
    const config = { metadata: { name: uid, namespace: "default", uid, attempt: sandboxAttempt++ }, labels: { [UID]: uid } };
    return (await fake.runtime("RunPodSandbox", { config })).pod_sandbox_id;
  };
  /** One attempt of a container, a second after the previous one, left running or exited. */
  const attempt = async (sandboxId: string, uid: string, name: string, n: number, state: "running" | "exited"): Promise<string> => {
    await clock.advance(1000);
    const sandboxConfig = { metadata: { name: uid, namespace: "default", uid } };
    const config = { metadata: { name, attempt: n }, image: { image: "busybox:1" }, labels: { [UID]: uid, [NAME]: name } };
    const { container_id: id } = await fake.runtime("CreateContainer", { pod_sandbox_id: sandboxId, config, sandbox_config: sandboxConfig });
    await fake.runtime("StartContainer", { container_id: id });
    if (state === "exited") fake.exitContainer(id, 1);
    return id;
  };
  const left = (uid: string) =>
    fake
      .containers()
      .filter((c) => c.labels[UID] === uid)
      .map((c) => `${c.labels[NAME]}#${c.metadata?.attempt}:${c.state === "CONTAINER_RUNNING" ? "running" : "dead"}`)
      .sort();
  return { clock, fake, gc, deleted, sandbox, attempt, left };
}

describe("ContainerGC (upstream policy: MinAge 0, MaxPerPodContainer 1, MaxContainers -1)", () => {
  it("keeps what runs and the newest dead attempt of each container of a live pod", async () => {
    const f = gcFixture();
    const sb = await f.sandbox("p");
    for (let n = 0; n < 3; n++) await f.attempt(sb, "p", "app", n, "exited");
    await f.attempt(sb, "p", "app", 3, "running");
    await f.attempt(sb, "p", "side", 0, "exited");
    await f.gc.garbageCollect();
    expect(f.left("p")).toEqual(["app#2:dead", "app#3:running", "side#0:dead"]);
  });

  it("does not count dead containers younger than MinAge", async () => {
    const f = gcFixture({ minAgeMs: 60_000 });
    const sb = await f.sandbox("p");
    await f.attempt(sb, "p", "app", 0, "exited");
    await f.clock.advance(120_000);
    await f.attempt(sb, "p", "app", 1, "exited");
    await f.gc.garbageCollect();
    // Only attempt 0 is old enough to count, and one dead container per name is kept: nothing goes.
    expect(f.left("p")).toEqual(["app#0:dead", "app#1:dead"]);
    await f.clock.advance(60_001); // attempt 1 is now older than MinAge (the fake stamps below the millisecond)
    await f.gc.garbageCollect();
    expect(f.left("p")).toEqual(["app#1:dead"]);
  });

  it("removes every dead container and dead sandbox of a deleted pod, and leaves other pods alone", async () => {
    const f = gcFixture({ deleted: ["gone"] });
    const gone = await f.sandbox("gone");
    await f.attempt(gone, "gone", "app", 0, "exited");
    await f.fake.runtime("StopPodSandbox", { pod_sandbox_id: gone });
    const live = await f.sandbox("live");
    await f.attempt(live, "live", "app", 0, "exited");
    await f.attempt(live, "live", "app", 1, "running");
    await f.gc.garbageCollect();
    expect(f.left("gone")).toEqual([]);
    expect(f.fake.sandboxes().map((s) => s.metadata?.uid)).toEqual(["live"]);
    expect(f.left("live")).toEqual(["app#0:dead", "app#1:running"]);
  });

  it("removes no container and not the newest sandbox of a pod thought deleted before every pod source has synced", async () => {
    const f = gcFixture({ deleted: ["early"], sourcesReady: false });
    const sb = await f.sandbox("early");
    await f.attempt(sb, "early", "app", 0, "exited");
    await f.fake.runtime("StopPodSandbox", { pod_sandbox_id: sb });
    await f.gc.garbageCollect();
    expect(f.left("early")).toEqual(["app#0:dead"]);
    await f.fake.runtime("RemoveContainer", { container_id: f.fake.containers()[0]?.id ?? "" });
    await f.gc.garbageCollect();
    expect(f.fake.sandboxes().map((s) => s.id)).toEqual([sb]);
  });

  it("removes a live pod's dead sandboxes once they hold no container, but never its newest", async () => {
    const f = gcFixture();
    const first = await f.sandbox("p");
    const c0 = await f.attempt(first, "p", "app", 0, "exited");
    await f.fake.runtime("StopPodSandbox", { pod_sandbox_id: first });
    await f.gc.garbageCollect();
    // The only sandbox, dead: kept (the pod's status and next sandbox attempt read it).
    expect(f.fake.sandboxes().map((s) => s.id)).toEqual([first]);
    await f.clock.advance(1000);
    const second = await f.sandbox("p");
    await f.attempt(second, "p", "app", 1, "running");
    await f.gc.garbageCollect();
    // The old one still holds the last dead attempt: kept while it does.
    expect(f.fake.sandboxes().map((s) => s.id).sort()).toEqual([first, second].sort());
    await f.fake.runtime("RemoveContainer", { container_id: c0 });
    await f.gc.garbageCollect();
    expect(f.fake.sandboxes().map((s) => s.id)).toEqual([second]);
  });

  it("stops a dead sandbox whose pause process died before removing it (its network is still up)", async () => {
    const f = gcFixture();
    const first = await f.sandbox("p");
    f.fake.setSandboxNotReady(first);
    await f.clock.advance(1000);
    const second = await f.sandbox("p");
    await f.gc.garbageCollect();
    expect(f.fake.sandboxes().map((s) => s.id)).toEqual([second]);
  });

  it("runs once a minute on its loop", async () => {
    const f = gcFixture();
    const stop = new AbortController();
    f.gc.start(stop.signal);
    await flush();
    const lists = (): number => f.fake.callsOf("ListPodSandbox").length;
    expect(lists()).toBe(1);
    await f.clock.advance(CONTAINER_GC_PERIOD_MS - 1);
    expect(lists()).toBe(1);
    await f.clock.advance(1);
    expect(lists()).toBe(2);
    stop.abort();
    await f.gc.close();
  });
});

describe("deadContainersOverLimit", () => {
  const c = (id: string, name: string, createdMs: number, attempt: number, running = false): GCCandidate => ({ id, podUid: "u", name, running, unknown: false, createdAt: BigInt(createdMs) * 1_000_000n, attempt });

  it("orders attempts created in the same millisecond by attempt", () => {
    const over = deadContainersOverLimit([c("a0", "app", 5, 0), c("a1", "app", 5, 1), c("a2", "app", 5, 2, true)], 10);
    expect(over.map((x) => x.id)).toEqual(["a0"]);
  });

  it("keeps everything when the per-container limit is off", () => {
    expect(deadContainersOverLimit([c("a0", "app", 1, 0), c("a1", "app", 2, 1)], 10, { minAgeMs: 0, maxPerPodContainer: -1, maxContainers: -1 })).toEqual([]);
  });
});
