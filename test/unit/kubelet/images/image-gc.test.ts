import { describe, expect, it } from "vitest";
import { ImageGC, bytesToFree, imagesToFree, imagesTooOld, type ImageRecord } from "../../../../kubelet/images/image-gc.ts";
import { silentLogger } from "../../../../src-shared/log.ts";
import { FakeClock } from "../../../harness/fake-clock.ts";
import { FakeRuntime } from "../../../harness/fake-runtime.ts";

const img = (id: string, o: Partial<ImageRecord> = {}): ImageRecord => ({ id, tags: [id], sizeBytes: 100, pinned: false, firstDetectedMs: 0, lastUsedMs: 0, inUse: false, ...o });
const policy = { highThresholdPercent: 85, lowThresholdPercent: 80, minAgeMs: 120_000, maxAgeMs: 0 };

describe("image GC policy", () => {
  it("frees from the high threshold down to the low one", () => {
    expect(bytesToFree({ capacityBytes: 1000, availableBytes: 200 }, policy)).toBe(0); // 80% used
    expect(bytesToFree({ capacityBytes: 1000, availableBytes: 150 }, policy)).toBe(50); // 85%: back to 80%
  });

  it("oldest unused first, never in use, pinned or younger than the minimum age", () => {
    const images = [img("recent", { lastUsedMs: 500_000 }), img("old", { lastUsedMs: 100_000 }), img("used", { inUse: true }), img("pinned", { pinned: true }), img("young", { firstDetectedMs: 450_000 }), img("older", { lastUsedMs: 100_000, firstDetectedMs: -1 })];
    const r = imagesToFree(images, 250, 500_000, 120_000);
    expect(r.remove.map((i) => i.id)).toEqual(["older", "old", "recent"]);
    expect(r.freed).toBe(300);
    const all = imagesToFree(images, Number.POSITIVE_INFINITY, 500_000, 120_000);
    expect(all.remove.map((i) => i.id).sort()).toEqual(["old", "older", "recent"]);
    expect(all.youngUntil).toBe(570_000);
  });

  it("imageMaximumGCAge removes unused images not used for that long", () => {
    const images = [img("stale", { lastUsedMs: 0 }), img("fresh", { lastUsedMs: 900_000 }), img("used", { inUse: true })];
    expect(imagesTooOld(images, 1_000_000, { ...policy, maxAgeMs: 600_000 }).map((i) => i.id)).toEqual(["stale"]);
    expect(imagesTooOld(images, 1_000_000, policy)).toEqual([]);
  });
});

describe("ImageGC", () => {
  it("keeps an image a container uses, removes an unused one once old enough, and says when it could not free enough", async () => {
    const clock = new FakeClock();
    const fake = new FakeRuntime({ clock, images: ["busybox:1", "unused:1"] });
    const failures: string[] = [];
    const gc = new ImageGC({ runtime: fake, policy: { ...policy, highThresholdPercent: 1, lowThresholdPercent: 0, minAgeMs: 2000 }, imageFs: () => Promise.resolve({ capacityBytes: 10_000_000, availableBytes: 5_000_000 }), onFailure: (m) => failures.push(m), logger: silentLogger(), clock });
    const { pod_sandbox_id } = await fake.runtime("RunPodSandbox", { config: { metadata: { name: "p", namespace: "default", uid: "u", attempt: 0 } } });
    await fake.runtime("CreateContainer", { pod_sandbox_id, config: { metadata: { name: "c", attempt: 0 }, image: { image: "busybox:1" } }, sandbox_config: { metadata: { name: "p", namespace: "default", uid: "u" } } });
    // First pass: both just detected, too young: retried when they are old enough, not 5 minutes later.
    expect(await gc.garbageCollect()).toBe(2000);
    expect(failures).toHaveLength(1);
    await clock.advance(2000);
    await gc.garbageCollect();
    const left = (await fake.image("ListImages", { filter: null })).images.flatMap((i) => i.repo_tags);
    expect(left).toEqual(["busybox:1"]);
    expect(failures[1]).toBe("Failed to garbage collect required amount of images. Attempted to free 5000000 bytes, but only found 1000000 bytes eligible to free.");
  });
});
