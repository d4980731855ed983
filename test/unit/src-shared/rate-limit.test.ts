import { describe, expect, it } from "vitest";
import { TokenBucket } from "../../../src-shared/rate-limit.ts";
import { FakeClock } from "../../harness/fake-clock.ts";

describe("TokenBucket (client-go's token bucket)", () => {
  it("lets a burst through at once, then one request per 1/qps seconds, in order", async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket({ qps: 10, burst: 3, clock });
    const done: number[] = [];
    const start = clock.now();
    for (let i = 0; i < 6; i++) void bucket.take().then(() => done.push(i));
    await clock.advance(0);
    expect(done).toEqual([0, 1, 2]);
    await clock.advance(99);
    expect(done).toEqual([0, 1, 2]);
    await clock.advance(1);
    expect(done).toEqual([0, 1, 2, 3]);
    await clock.advance(200);
    expect(done).toEqual([0, 1, 2, 3, 4, 5]);
    expect(clock.now() - start).toBe(300);
  });

  it("refills up to the burst, never beyond", async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket({ qps: 2, burst: 2, clock });
    await bucket.take();
    await bucket.take();
    expect(bucket.available()).toBe(0);
    await clock.advance(60_000);
    expect(bucket.available()).toBe(2);
  });

  it("gives the token back when a waiter's signal aborts", async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket({ qps: 1, burst: 1, clock });
    await bucket.take();
    const abort = new AbortController();
    const waiting = bucket.take(abort.signal);
    abort.abort(new Error("gone"));
    await expect(waiting).rejects.toThrow("gone");
    expect(bucket.available()).toBe(0);
    await clock.advance(1000);
    expect(bucket.available()).toBe(1);
  });

  it("refuses a rate that is not positive", () => {
    expect(() => new TokenBucket({ qps: 0, burst: 1 })).toThrow(/qps must be greater than 0, got 0/);
  });
});
