import { describe, expect, it } from "vitest";
import { PodCache, emptyPodStatus } from "../../../../kubelet/runtime/pod-cache.ts";
import { isDeckhandError } from "../../../../src-shared/errors.ts";

const status = (uid: string, name: string) => ({ ...emptyPodStatus(uid), name });

describe("PodCache", () => {
  it("answers at once with an entry newer than asked", async () => {
    const cache = new PodCache();
    cache.set("a", status("a", "one"), undefined, 100);
    expect((await cache.getNewerThan("a", 99)).status.name).toBe("one");
  });

  it("never answers with an entry or a relist of the very millisecond asked (it may predate the sync's last action)", async () => {
    const cache = new PodCache();
    cache.set("a", status("a", "same-ms"), undefined, 100);
    cache.updateTime(100);
    let answer: string | undefined;
    const p = cache.getNewerThan("a", 100).then((e) => (answer = e.status.name));
    const q = cache.getNewerThan("b", 100).then((e) => e.timestamp);
    await Promise.resolve();
    expect(answer).toBeUndefined();
    cache.set("a", status("a", "after"), undefined, 101);
    cache.updateTime(101);
    expect(await p).toBe("after");
    expect(await q).toBe(101);
  });

  it("waits for a newer entry, and an older write never replaces a newer one", async () => {
    const cache = new PodCache();
    cache.set("a", status("a", "old"), undefined, 100);
    const p = cache.getNewerThan("a", 150);
    cache.set("a", status("a", "stale"), undefined, 90);
    cache.set("a", status("a", "same"), undefined, 150);
    cache.set("a", status("a", "new"), undefined, 160);
    expect((await p).status.name).toBe("new");
    expect(cache.get("a").status.name).toBe("new");
  });

  it("a completed relist answers waiters of pods it did not see with an empty status", async () => {
    const cache = new PodCache();
    const p = cache.getNewerThan("gone", 200);
    cache.updateTime(199);
    cache.updateTime(250);
    const e = await p;
    expect(e.status.sandboxes).toEqual([]);
    expect(e.timestamp).toBe(250);
  });

  it("a waiter whose signal aborts is rejected and dropped", async () => {
    const cache = new PodCache();
    const ac = new AbortController();
    const p = cache.getNewerThan("a", 10, ac.signal);
    const reason = new Error("pod deleted");
    ac.abort(reason);
    const err = await p.catch((e: unknown) => e);
    expect(isDeckhandError(err, "Cancelled") && err.cause).toBe(reason);
    cache.updateTime(20); // must not resolve anything twice nor throw
    expect(isDeckhandError(await cache.getNewerThan("a", 30, ac.signal).catch((e: unknown) => e), "Cancelled")).toBe(true);
  });

  it("keeps a read error beside the last status", () => {
    const cache = new PodCache();
    cache.set("a", status("a", "x"), new Error("runtime down"), 5);
    expect(cache.get("a").error?.message).toBe("runtime down");
  });
});
