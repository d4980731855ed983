/** forEachConcurrently: never more than the limit in flight, every item once, the first failure reported; InFlight drains. */
import { describe, expect, it } from "vitest";
import { forEachConcurrently, InFlight } from "../../../src-shared/concurrency.ts";

describe("forEachConcurrently", () => {
  it("runs every item once with at most `limit` in flight", async () => {
    let inFlight = 0;
    let most = 0;
    const seen: number[] = [];
    await forEachConcurrently([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, n % 3));
      seen.push(n);
      inFlight--;
    });
    expect(most).toBe(3);
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("rejects with a failure and does nothing for no items", async () => {
    await expect(forEachConcurrently([1, 2], 2, (n) => (n === 2 ? Promise.reject(new Error("boom")) : Promise.resolve()))).rejects.toThrow("boom");
    let called = false;
    await forEachConcurrently([], 4, () => {
      called = true;
      return Promise.resolve();
    });
    expect(called).toBe(false);
  });
});

describe("InFlight", () => {
  it("is idle at once with nothing in flight, and once the last tracked work settles (failed work too)", async () => {
    const work = new InFlight();
    expect(await work.idle(10)).toBe(true);
    let finish!: () => void;
    const a = work.track(new Promise<void>((r) => (finish = r)));
    const b = work.track(Promise.reject(new Error("x"))).catch(() => undefined);
    expect(work.size).toBe(2);
    const idle = work.idle(60_000);
    await b;
    expect(work.size).toBe(1);
    finish();
    await a;
    expect(await idle).toBe(true);
  });

  it("gives up after its timeout while work is still in flight", async () => {
    const work = new InFlight();
    void work.track(new Promise(() => undefined));
    expect(await work.idle(5)).toBe(false);
  });
});
