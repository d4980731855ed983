import { describe, expect, it } from "vitest";
import { CriError } from "../../../kubelet/cri/errors.ts";
import { Pleg, PLEG_RELIST_THRESHOLD_MS, type PlegEvent } from "../../../kubelet/pleg.ts";
import { PodCache, emptyPodStatus } from "../../../kubelet/runtime/pod-cache.ts";
import type { RuntimeService } from "../../../kubelet/cri/services.ts";
import { flush } from "../../harness/fake-clock.ts";
import { runtimeFixture, testPod, TEST_IMAGE } from "../../harness/runtime-fixture.ts";

function plegFixture() {
  const f = runtimeFixture();
  const cache = new PodCache();
  const pleg = new Pleg({ runtime: f.fake, cache, logger: f.logger, clock: f.clock });
  const events: PlegEvent[] = [];
  pleg.onEvent((e) => events.push(e));
  const two = testPod("two", { containers: [{ name: "a", image: TEST_IMAGE }, { name: "b", image: TEST_IMAGE }] });
  const one = testPod("one");
  return { ...f, cache, pleg, events, two, one };
}

/** Read calls made since the last clearCalls, by method. */
function reads(f: ReturnType<typeof plegFixture>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of f.fake.calls) out[c.method] = (out[c.method] ?? 0) + 1;
  return out;
}

describe("Pleg (generic, relisting)", () => {
  it("fills the cache with every pod's full status, stamped with the relist's start, with one list of each kind", async () => {
    const f = plegFixture();
    await f.sync(f.two);
    await f.sync(f.one);
    f.fake.clearCalls();
    await f.clock.advance(5);
    const start = f.clock.now();
    await f.pleg.relist();
    expect(reads(f)).toEqual({ ListPodSandbox: 1, ListContainers: 1, PodSandboxStatus: 2, ContainerStatus: 3 });
    const entry = f.cache.get("uid-two");
    expect(entry.timestamp).toBe(start);
    expect(entry.error).toBeUndefined();
    expect(entry.status).toMatchObject({ uid: "uid-two", name: "two", namespace: "default" });
    expect(entry.status.sandboxes.map((s) => [s.state, s.ips.length])).toEqual([["ready", 1]]);
    expect(entry.status.containers.map((c) => [c.name, c.state]).sort()).toEqual([["a", "running"], ["b", "running"]]);
    // The whole node is known as of the relist: a pod the runtime lacks reads as empty, not as "wait".
    expect((await f.cache.getNewerThan("uid-unknown", start - 1)).status.containers).toEqual([]);
    expect(f.events.map((e) => e.uid).sort()).toEqual(["uid-one", "uid-two"]);
    expect(f.pleg.hasRelisted).toBe(true);
  });

  it("tells nothing and reads nothing more when nothing changed", async () => {
    const f = plegFixture();
    await f.sync(f.two);
    await f.pleg.relist();
    f.events.length = 0;
    f.fake.clearCalls();
    await f.clock.advance(1000);
    await f.pleg.relist();
    expect(f.events).toEqual([]);
    expect(reads(f)).toEqual({ ListPodSandbox: 1, ListContainers: 1 });
    // ...but the cache is as fresh as the relist.
    expect((await f.cache.getNewerThan("uid-two", f.clock.now() - 1)).status.containers).toHaveLength(2);
  });

  it("reads only the container that changed, keeps the others' details, and tells its pod only", async () => {
    const f = plegFixture();
    await f.sync(f.two);
    await f.sync(f.one);
    await f.pleg.relist();
    const before = f.cache.get("uid-two").status;
    const a = f.latest(f.two, "a");
    f.fake.exitContainer(a?.id ?? "", 7, "Error");
    f.events.length = 0;
    f.fake.clearCalls();
    await f.clock.advance(1000);
    await f.pleg.relist();
    expect(f.events).toEqual([{ uid: "uid-two", changed: ["a"] }]);
    expect(f.fake.callsOf("ContainerStatus")).toEqual([{ container_id: a?.id }]);
    expect(f.fake.callsOf("PodSandboxStatus")).toEqual([]);
    const after = f.cache.get("uid-two");
    expect(after.timestamp).toBe(f.clock.now());
    expect(after.status.containers.find((c) => c.name === "a")).toMatchObject({ state: "exited", exitCode: 7, reason: "Error", finishedAt: f.clock.now() - 1000 });
    expect(after.status.containers.find((c) => c.name === "b")).toBe(before.containers.find((c) => c.name === "b"));
  });

  it("keeps a read error in the cache entry with the last good status, tells nothing, and reads again next time", async () => {
    const f = plegFixture();
    await f.sync(f.one);
    await f.pleg.relist();
    const good = f.cache.get("uid-one").status;
    f.fake.exitContainer(f.latest(f.one, "app")?.id ?? "", 1);
    f.fake.failNext("ContainerStatus", new CriError("Unavailable", "ContainerStatus", "connection refused"));
    f.events.length = 0;
    await f.clock.advance(1000);
    await f.pleg.relist();
    const failed = f.cache.get("uid-one");
    expect(failed.error).toBeInstanceOf(CriError);
    expect(failed.status).toBe(good);
    expect(failed.timestamp).toBe(f.clock.now());
    expect(f.events).toEqual([]);
    await f.clock.advance(1000);
    await f.pleg.relist();
    const fixed = f.cache.get("uid-one");
    expect(fixed.error).toBeUndefined();
    expect(fixed.status.containers[0]).toMatchObject({ state: "exited", exitCode: 1 });
    expect(f.events).toEqual([{ uid: "uid-one", changed: ["app"] }]);
  });

  it("tells a pod that left the runtime, which the cache then reads as empty", async () => {
    const f = plegFixture();
    await f.sync(f.one);
    await f.pleg.relist();
    const status = await f.manager.podStatus("uid-one");
    await f.manager.killPodContainers(f.one, status, 2);
    await f.manager.removePod("uid-one", "default", "one");
    f.events.length = 0;
    await f.clock.advance(1000);
    await f.pleg.relist();
    expect(f.events).toEqual([{ uid: "uid-one", changed: [] }]);
    expect(f.cache.get("uid-one").status).toMatchObject({ sandboxes: [], containers: [] });
    expect(f.pleg.runtimePods().has("uid-one")).toBe(false);
  });

  it("drops the cache entries of pods the runtime no longer holds, but not a read newer than the relist", async () => {
    const f = plegFixture();
    await f.sync(f.one);
    await f.pleg.relist();
    await f.manager.killPodContainers(f.one, await f.manager.podStatus("uid-one"), 2);
    await f.manager.removePod("uid-one", "default", "one");
    // Entries the PLEG never listed: one older than the next relist (a pod read once, then removed), one newer.
    f.cache.set("uid-old", emptyPodStatus("uid-old"), undefined, f.clock.now());
    await f.clock.advance(1000);
    f.cache.set("uid-newer", emptyPodStatus("uid-newer"), undefined, f.clock.now() + 1);
    await f.pleg.relist();
    expect(f.cache.uids()).toEqual(["uid-newer"]);
  });

  it("waits a whole period after a relist before the next, however long it took (upstream's sliding wait.Until)", async () => {
    const f = plegFixture();
    let relists = 0;
    const slow: RuntimeService = {
      runtime: async (method, request, options) => {
        if (method === "ListPodSandbox") {
          relists++;
          await f.clock.sleep(1500, options?.signal);
        }
        return f.fake.runtime(method, request, options);
      },
    };
    const pleg = new Pleg({ runtime: slow, cache: f.cache, logger: f.logger, clock: f.clock });
    const stop = new AbortController();
    pleg.start(stop.signal);
    await flush();
    expect(relists).toBe(1);
    await f.clock.advance(1500);
    expect(pleg.hasRelisted).toBe(true);
    await f.clock.advance(999);
    expect(relists).toBe(1);
    await f.clock.advance(1);
    expect(relists).toBe(2);
    stop.abort();
    await pleg.close();
  });

  it("tells every listener of every event even when one listener throws", async () => {
    const f = plegFixture();
    await f.sync(f.one);
    await f.sync(f.two);
    const seen: string[] = [];
    const pleg = new Pleg({ runtime: f.fake, cache: f.cache, logger: f.logger, clock: f.clock });
    pleg.onEvent(() => {
      throw new Error("listener bug");
    });
    pleg.onEvent((e) => seen.push(e.uid));
    await pleg.relist();
    expect(seen.sort()).toEqual(["uid-one", "uid-two"]);
  });

  it("wakes a sync waiting for a status newer than its last action", async () => {
    const f = plegFixture();
    await f.sync(f.one);
    await f.pleg.relist();
    await f.clock.advance(10);
    const waiting = f.cache.getNewerThan("uid-one", f.clock.now());
    let settled = false;
    void waiting.then(() => (settled = true));
    await flush();
    expect(settled).toBe(false);
    // A relist of the same millisecond cannot vouch for what the sync did in it.
    await f.pleg.relist();
    await flush();
    expect(settled).toBe(false);
    await f.clock.advance(1);
    await f.pleg.relist();
    expect(settled).toBe(true);
    // Unchanged, so its entry is the earlier read: the completed relist vouches that it is still current.
    expect((await waiting).status.containers[0]?.state).toBe("running");
  });

  it("relists every period on its loop and reports unhealthy when relists stop for the threshold", async () => {
    const f = plegFixture();
    await f.sync(f.one);
    const stop = new AbortController();
    f.fake.clearCalls();
    expect(f.pleg.hasRelisted).toBe(false);
    expect(f.pleg.healthy().ok).toBe(false);
    f.fake.failNext("ListPodSandbox", new CriError("Unavailable", "ListPodSandbox", "connection refused"));
    f.pleg.start(stop.signal);
    await flush();
    expect(f.pleg.healthy().ok).toBe(false); // upstream: "pleg has yet to be successful"
    await f.clock.advance(1000);
    expect(f.fake.callsOf("ListPodSandbox")).toHaveLength(2);
    await f.clock.advance(1000);
    expect(f.fake.callsOf("ListPodSandbox")).toHaveLength(3);
    expect(f.pleg.healthy()).toEqual({ ok: true, lastSeenMs: 0 });
    // The runtime stops answering lists: no relist completes any more.
    for (let i = 0; i < 200; i++) f.fake.failNext("ListPodSandbox", new CriError("DeadlineExceeded", "ListPodSandbox", "context deadline exceeded"));
    await f.clock.advance(PLEG_RELIST_THRESHOLD_MS);
    expect(f.pleg.healthy().ok).toBe(true);
    await f.clock.advance(1000);
    expect(f.pleg.healthy()).toEqual({ ok: false, lastSeenMs: PLEG_RELIST_THRESHOLD_MS + 1000 });
    stop.abort();
    await f.pleg.close();
  });
});
