import { describe, expect, it } from "vitest";
import { Backoff } from "../../../src-shared/backoff.ts";

describe("Backoff", () => {
  it("doubles from the initial delay up to the cap, and starts over after reset", () => {
    const b = new Backoff({ initialMs: 10_000, maxMs: 300_000 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([
      10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000,
    ]);
    b.reset();
    expect(b.next()).toBe(10_000);
  });

  it("starts over after a quiet period (the crash-loop back-off reset after 10 minutes of running)", () => {
    let now = 0;
    const b = new Backoff({ initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000, now: () => now });
    b.next();
    now += 1000;
    expect(b.next()).toBe(20_000);
    now += 600_001;
    expect(b.next()).toBe(10_000);
  });

  it("adds at most the jitter fraction", () => {
    const b = new Backoff({ initialMs: 800, maxMs: 30_000, jitter: 0.5, random: () => 1 });
    expect(b.next()).toBe(1200);
    expect(b.next()).toBe(2400);
  });
});
