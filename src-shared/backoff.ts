/**
 * Exponential back-off with jitter, as client-go's wait.Backoff: each failure multiplies the delay up to a cap,
 * a success (or a quiet period) resets it. Pure: the caller does the waiting.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Growth per failure; default 2. */
  factor?: number;
  /** Up to this fraction is added at random; default 0 (no jitter). */
  jitter?: number;
  /** A failure after this long without one starts over from initialMs; default never. */
  resetAfterMs?: number;
  random?: () => number;
  now?: () => number;
}

export class Backoff {
  private readonly options: Required<Omit<BackoffOptions, "resetAfterMs">> & { resetAfterMs: number | undefined };
  private current = 0;
  private lastFailure = Number.NEGATIVE_INFINITY;

  constructor(options: BackoffOptions) {
    this.options = {
      factor: 2,
      jitter: 0,
      random: Math.random,
      now: Date.now,
      ...options,
      resetAfterMs: options.resetAfterMs,
    };
  }

  /** Records a failure and returns how long to wait before the next attempt. */
  next(): number {
    const { initialMs, maxMs, factor, jitter, random, now, resetAfterMs } = this.options;
    const t = now();
    if (this.current === 0 || (resetAfterMs !== undefined && t - this.lastFailure > resetAfterMs)) this.current = initialMs;
    else this.current = Math.min(maxMs, this.current * factor);
    this.lastFailure = t;
    return Math.min(maxMs, this.current * (1 + jitter * random()));
  }

  reset(): void {
    this.current = 0;
  }
}
