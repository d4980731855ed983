/**
 * The one "wait for a wake-up or a timer" of the code base, and the periodic loop built on it (status
 * managers, Lease, PLEG, file sources, pod workers). The timer that loses the race is always cleared, and
 * an abort ends the wait at once.
 */
import type { Logger } from "./log.ts";
import { errorMessage } from "./errors.ts";
import { systemClock, type Clock } from "./clock.ts";

/** A wake-up that is never lost: one given while nobody waits is kept for the next wait. */
export class Wakeup {
  private pending = false;
  private resolve: (() => void) | undefined;

  wake(): void {
    const resolve = this.resolve;
    if (resolve) {
      this.resolve = undefined;
      resolve();
    } else this.pending = true;
  }

  /** Resolves on a wake-up (true), after `ms` (false) or when `signal` aborts (false). */
  async wait(ms: number, signal: AbortSignal, clock: Clock = systemClock): Promise<boolean> {
    if (this.pending) {
      this.pending = false;
      return true;
    }
    if (signal.aborted) return false;
    const timer = new AbortController();
    const onAbort = (): void => timer.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await Promise.race([
        new Promise<boolean>((resolve) => {
          this.resolve = () => resolve(true);
        }),
        clock.sleep(ms, timer.signal).then(
          () => false,
          () => false,
        ),
      ]);
    } finally {
      this.resolve = undefined;
      timer.abort();
      signal.removeEventListener("abort", onAbort);
    }
  }
}

export interface PeriodicLoopOptions {
  /** For log lines. */
  name: string;
  /** One pass; returns the delay before the next (ms), or undefined for `intervalMs`. */
  run: (signal: AbortSignal) => Promise<number | undefined | void>;
  intervalMs: number;
  /** Delay after a pass that threw; default `intervalMs`. */
  errorDelayMs?: (err: unknown) => number;
  logger: Logger;
  clock?: Clock;
}

/**
 * Runs `run` now, then every `intervalMs` (or the delay a pass returns), at once after `wake()`. A pass that
 * throws is logged and retried after `errorDelayMs`. Lifecycle: constructor does nothing, `start(signal)`,
 * `close()` waits for the pass under way.
 */
export class PeriodicLoop {
  private readonly o: PeriodicLoopOptions;
  private readonly clock: Clock;
  private readonly wakeup = new Wakeup();
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(options: PeriodicLoopOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
  }

  start(signal: AbortSignal): void {
    if (signal.aborted) this.stop.abort();
    else signal.addEventListener("abort", () => this.stop.abort(), { once: true });
    this.loop ??= this.run();
  }

  /** Run a pass now (or right after the one under way). */
  wake(): void {
    this.wakeup.wake();
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
  }

  get signal(): AbortSignal {
    return this.stop.signal;
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    while (!signal.aborted) {
      let delay: number;
      try {
        delay = (await this.o.run(signal)) ?? this.o.intervalMs;
      } catch (err) {
        if (signal.aborted) break;
        delay = this.o.errorDelayMs?.(err) ?? this.o.intervalMs;
        this.o.logger.warn({ loop: this.o.name, err: errorMessage(err), retryInMs: delay }, `${this.o.name} failed`);
      }
      await this.wakeup.wait(delay, signal, this.clock);
    }
  }
}
