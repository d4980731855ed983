import { describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { ContainerGC, CONTAINER_GC_PERIOD_MS } from "../../../../kubelet/runtime/container-gc.ts";
import { flush } from "../../../harness/fake-clock.ts";
import { runtimeFixture, testPod } from "../../../harness/runtime-fixture.ts";

function gcFixture(options: { deleted?: string[]; sourcesReady?: boolean; minAgeMs?: number } = {}) {
  const f = runtimeFixture();
  const deleted = new Set(options.deleted ?? []);
  const gc = new ContainerGC({
    runtime: f.fake,
    isPodDeleted: (uid) => deleted.has(uid),
    allSourcesReady: () => options.sourcesReady ?? true,
    logger: f.logger,
    clock: f.clock,
    ...(options.minAgeMs !== undefined ? { policy: { minAgeMs: options.minAgeMs } } : {}),
  });
  /** Crash the app `n` times, letting the kubelet restart it each time (back-off skipped by the clock). */
  const crash = async (pod: V1Pod, n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      f.fake.exitContainer(f.latest(pod, "app")?.id ?? "", 1);
      await f.clock.advance(400_000);
      await f.sync(pod);
    }
  };
  const attempts = (pod: V1Pod) => f.containersOf(pod).map((c) => `${c.metadata?.attempt}:${c.state}`).sort();
  return { ...f, gc, deleted, crash, attempts };
}

describe("ContainerGC (upstream policy: MinAge 0, MaxPerPodContainer 1, MaxContainers -1)", () => {
  it("keeps the running container and the newest dead one of each container of a live pod", async () => {
    const f = gcFixture();
    const pod = testPod("loop");
    await f.sync(pod);
    await f.crash(pod, 3);
    expect(f.attempts(pod)).toEqual(["0:CONTAINER_EXITED", "1:CONTAINER_EXITED", "2:CONTAINER_EXITED", "3:CONTAINER_RUNNING"]);
    await f.gc.garbageCollect();
    expect(f.attempts(pod)).toEqual(["2:CONTAINER_EXITED", "3:CONTAINER_RUNNING"]);
  });

  it("does not count dead containers younger than MinAge", async () => {
    const f = gcFixture({ minAgeMs: 60_000 });
    const pod = testPod("young");
    await f.sync(pod);
    await f.crash(pod, 1); // attempt 0 dead (old), attempt 1 created now
    f.fake.exitContainer(f.latest(pod, "app")?.id ?? "", 1);
    f.manager.forgetPod("uid-young");
    await f.sync(pod); // attempt 2, at once
    await f.gc.garbageCollect();
    // Only attempt 0 is old enough to count, and one dead container per name is kept: nothing goes.
    expect(f.attempts(pod)).toEqual(["0:CONTAINER_EXITED", "1:CONTAINER_EXITED", "2:CONTAINER_RUNNING"]);
    await f.clock.advance(60_001);
    await f.gc.garbageCollect();
    expect(f.attempts(pod)).toEqual(["1:CONTAINER_EXITED", "2:CONTAINER_RUNNING"]);
  });

  it("removes every dead container and dead sandbox of a deleted pod, and leaves other pods alone", async () => {
    const f = gcFixture({ deleted: ["uid-gone"] });
    const gone = testPod("gone");
    const live = testPod("live");
    await f.sync(gone);
    await f.sync(live);
    await f.crash(live, 1);
    await f.manager.killPodContainers(gone, await f.manager.podStatus("uid-gone"), 2);
    await f.gc.garbageCollect();
    expect(f.containersOf(gone)).toEqual([]);
    expect(f.fake.sandboxes().map((s) => s.metadata?.uid)).toEqual(["uid-live"]);
    expect(f.attempts(live)).toEqual(["0:CONTAINER_EXITED", "1:CONTAINER_RUNNING"]);
  });

  it("removes nothing of an unknown pod's containers before every pod source has synced", async () => {
    const f = gcFixture({ deleted: ["uid-early"], sourcesReady: false });
    const pod = testPod("early", { restartPolicy: "Never", containers: [{ name: "app", image: "busybox:1" }, { name: "b", image: "busybox:1" }] });
    await f.sync(pod);
    f.fake.exitContainer(f.latest(pod, "app")?.id ?? "", 0);
    await f.gc.garbageCollect();
    expect(f.attempts(pod)).toEqual(["0:CONTAINER_EXITED", "0:CONTAINER_RUNNING"]);
  });

  it("removes dead sandboxes of a live pod once empty, but never its newest", async () => {
    const f = gcFixture();
    const pod = testPod("sbx", { restartPolicy: "Never" });
    await f.sync(pod);
    const [first] = f.fake.sandboxes();
    f.fake.setSandboxNotReady(first?.id ?? "");
    await f.gc.garbageCollect();
    // Newest sandbox of a live pod: kept even though it is dead and its container ran.
    expect(f.fake.sandboxes().map((s) => s.id)).toEqual([first?.id]);

    const again = testPod("again");
    await f.sync(again);
    const [old] = f.fake.sandboxes().filter((s) => s.metadata?.uid === "uid-again");
    f.fake.setSandboxNotReady(old?.id ?? "");
    await f.sync(again); // a new sandbox (attempt 1); the old one still holds the first container
    await f.gc.garbageCollect();
    expect(f.fake.sandboxes().filter((s) => s.metadata?.uid === "uid-again")).toHaveLength(2);
    // Once its container is gone (the pod's next attempt makes it the older dead one), the old sandbox goes.
    f.fake.exitContainer(f.latest(again, "app")?.id ?? "", 1);
    await f.clock.advance(1000);
    await f.sync(again);
    await f.gc.garbageCollect();
    expect(f.fake.sandboxes().filter((s) => s.metadata?.uid === "uid-again").map((s) => s.metadata?.attempt)).toEqual([1]);
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
