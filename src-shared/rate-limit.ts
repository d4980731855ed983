/**
 * client-go's token bucket rate limiter (flowcontrol.NewTokenBucketRateLimiter): `burst` requests at once, then
 * `qps` per second. Callers wait their turn in order; a waiter whose signal aborts gives its place back.
 */
import { systemClock, type Clock } from "./clock.ts";

export class TokenBucket {
  private readonly qps: number;
  private readonly burst: number;
  private readonly clock: Clock;
  private tokens: number;
  private last: number;

  constructor(options: { qps: number; burst: number; clock?: Clock }) {
    if (!(options.qps > 0)) throw new RangeError(`qps must be greater than 0, got ${options.qps}`);
    this.qps = options.qps;
    this.burst = Math.max(1, options.burst);
    this.clock = options.clock ?? systemClock;
    this.tokens = this.burst;
    this.last = this.clock.now();
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
  }

  /** Takes one token, waiting for it if the bucket is empty. */
  async take(signal?: AbortSignal): Promise<void> {
    const now = this.clock.now();
    this.refill(now);
    this.tokens -= 1;
    if (this.tokens >= 0) return;
    // In debt: this caller's token arrives after those of everyone already waiting.
    const waitMs = (-this.tokens / this.qps) * 1000;
    try {
      await this.clock.sleep(waitMs, signal);
    } catch (err) {
      this.tokens += 1;
      throw err;
    }
  }

  /** Tokens available now (for tests and metrics). */
  available(): number {
    this.refill(this.clock.now());
    return this.tokens;
  }
}
