import { describe, expect, it } from "vitest";
import { PeriodicLoop, Wakeup } from "../../../src-shared/loop.ts";
import { silentLogger } from "../../../src-shared/log.ts";
import { FakeClock, flush } from "../../harness/fake-clock.ts";

describe("Wakeup", () => {
  it("keeps a wake-up given while nobody waits", async () => {
    const w = new Wakeup();
    w.wake();
    expect(await w.wait(60_000, new AbortController().signal, new FakeClock())).toBe(true);
  });

  it("times out on the clock and leaves no timer behind", async () => {
    const clock = new FakeClock();
    const w = new Wakeup();
    const p = w.wait(1000, new AbortController().signal, clock);
    await clock.advance(999);
    expect(clock.waiting).toBe(1);
    await clock.advance(1);
    expect(await p).toBe(false);
    expect(clock.waiting).toBe(0);
  });

  it("clears the losing timer when woken", async () => {
    const clock = new FakeClock();
    const w = new Wakeup();
    const p = w.wait(1000, new AbortController().signal, clock);
    await flush();
    w.wake();
    expect(await p).toBe(true);
    expect(clock.waiting).toBe(0);
  });

  it("ends at once on abort", async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    const p = new Wakeup().wait(1000, ac.signal, clock);
    ac.abort();
    expect(await p).toBe(false);
    expect(clock.waiting).toBe(0);
  });
});

describe("PeriodicLoop", () => {
  it("runs at once, then every interval, at once on wake, and after an error's delay", async () => {
    const clock = new FakeClock();
    const runs: number[] = [];
    let fail = false;
    const loop = new PeriodicLoop({
      name: "test",
      intervalMs: 1000,
      clock,
      logger: silentLogger(),
      errorDelayMs: () => 50,
      run: () => {
        runs.push(clock.now());
        if (fail) {
          fail = false;
          return Promise.reject(new Error("boom"));
        }
        return Promise.resolve();
      },
    });
    const t0 = clock.now();
    loop.start(new AbortController().signal);
    await flush();
    expect(runs).toEqual([t0]);
    await clock.advance(1000);
    expect(runs).toEqual([t0, t0 + 1000]);
    loop.wake();
    await flush();
    expect(runs.length).toBe(3);
    fail = true;
    loop.wake();
    await flush();
    await clock.advance(50);
    expect(runs.slice(4)).toEqual([t0 + 1050]);
    await loop.close();
    expect(clock.waiting).toBe(0);
  });
});
