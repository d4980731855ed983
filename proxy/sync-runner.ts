/**
 * Bounded-frequency runner (upstream pkg/util/async BoundedFrequencyRunner): runs an async function when
 * asked, but no more often than a token bucket allows (`burst` runs at once, then one per `minIntervalMs`),
 * and at least once every `maxIntervalMs` even when nobody asks. Runs never overlap: a request made while
 * a run is in progress schedules exactly one more run after it. `retryAfter` asks for a run no later than
 * the given delay (a failed sync retries after syncPeriod).
 */
export interface SyncRunnerOptions {
  name: string;
  fn: () => Promise<void>;
  minIntervalMs: number;
  maxIntervalMs: number;
  burst: number;
  /** Called when fn throws (the runner keeps going). */
  onError?: (err: unknown) => void;
  now?: () => number;
}

export class BoundedFrequencyRunner {
  readonly name: string;
  private readonly fn: () => Promise<void>;
  private readonly minIntervalMs: number;
  private readonly maxIntervalMs: number;
  private readonly burst: number;
  private readonly onError: (err: unknown) => void;
  private readonly now: () => number;

  private tokens: number;
  private lastRefill: number;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private running: Promise<void> | undefined;
  private pending = false;
  private started = false;
  private closed = false;
  private lastRun = 0;
  private runs = 0;

  constructor(options: SyncRunnerOptions) {
    this.name = options.name;
    this.fn = options.fn;
    this.minIntervalMs = Math.max(0, options.minIntervalMs);
    this.maxIntervalMs = options.maxIntervalMs;
    this.burst = Math.max(1, options.burst);
    this.onError = options.onError ?? (() => undefined);
    this.now = options.now ?? (() => performance.now());
    this.tokens = this.burst;
    this.lastRefill = 0;
  }

  /** Starts the periodic schedule: a first run now, then at least every maxIntervalMs. */
  start(signal?: AbortSignal): void {
    if (this.started) return;
    this.started = true;
    this.lastRefill = this.now();
    signal?.addEventListener("abort", () => void this.close(), { once: true });
    this.run();
  }

  /** Number of completed runs (for tests and metrics). */
  get runCount(): number {
    return this.runs;
  }

  /** Requests a run as soon as the rate limit allows. */
  run(): void {
    if (this.closed || !this.started) return;
    if (this.running) {
      this.pending = true;
      return;
    }
    this.refill();
    if (this.tokens >= 1) {
      this.schedule(0);
    } else {
      const wait = ((1 - this.tokens) * this.minIntervalMs);
      this.schedule(Math.ceil(wait));
    }
  }

  /** Ensures a run happens no later than `delayMs` from now (used to retry a failed sync). */
  retryAfter(delayMs: number): void {
    if (this.closed || !this.started) return;
    this.schedule(delayMs);
  }

  /** Stops scheduling and waits for a run in progress. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private refill(): void {
    if (this.minIntervalMs === 0) {
      this.tokens = this.burst;
      return;
    }
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (t - this.lastRefill) / this.minIntervalMs);
    this.lastRefill = t;
  }

  /** Arms the timer for `delayMs`, unless it is already armed earlier. */
  private schedule(delayMs: number): void {
    const at = this.now() + delayMs;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.tick(), Math.max(0, delayMs));
  }

  private tick(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.closed) return;
    if (this.running) {
      this.pending = true;
      return;
    }
    this.refill();
    if (this.tokens < 1) {
      // A periodic or retry tick that the bucket does not allow yet: wait for the next token.
      this.schedule(Math.ceil((1 - this.tokens) * this.minIntervalMs));
      return;
    }
    this.tokens -= 1;
    this.lastRun = this.now();
    this.running = this.invoke();
  }

  private async invoke(): Promise<void> {
    try {
      await this.fn();
    } catch (err) {
      this.onError(err);
    } finally {
      this.runs++;
      this.running = undefined;
      if (!this.closed) {
        if (this.pending) {
          this.pending = false;
          this.run();
        }
        // At least one run every maxIntervalMs.
        this.schedule(Math.max(0, this.lastRun + this.maxIntervalMs - this.now()));
      }
    }
  }
}
