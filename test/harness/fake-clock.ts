/**
 * A clock for unit tests of components that wait (src-shared/clock.ts): time moves only when the test says,
 * and every sleep due by then resolves, in order.
 */
import type { Clock } from "../../src-shared/clock.ts";

interface Sleeper {
  at: number;
  resolve: () => void;
}

export class FakeClock implements Clock {
  private t: number;
  private sleepers: Sleeper[] = [];

  constructor(start = Date.parse("2026-01-01T00:00:00Z")) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const s: Sleeper = { at: this.t + Math.max(0, ms), resolve };
      this.sleepers.push(s);
      signal?.addEventListener(
        "abort",
        () => {
          this.sleepers = this.sleepers.filter((x) => x !== s);
          reject(signal.reason as Error);
        },
        { once: true },
      );
    });
  }

  /** How many sleeps are pending (a component parked on its timer). */
  get waiting(): number {
    return this.sleepers.length;
  }

  /** Moves time forward, resolving each sleep that falls due, and lets the awoken code run. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      const due = this.sleepers.filter((s) => s.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.t = Math.max(this.t, due.at);
      this.sleepers = this.sleepers.filter((s) => s !== due);
      due.resolve();
    }
    this.t = end;
    await flush();
  }
}

/** Lets pending promise callbacks and immediate timers run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
