/**
 * The one way tests and benchmarks wait for something to become true: poll, and on time-out fail with what was
 * last seen (the last error thrown or the last value read), never return quietly. Unit tests of components that
 * wait use an injected clock instead (fake-clock.ts); `clock` here is for the rare harness that needs both.
 */
import { inspect } from "node:util";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import { isDeckhandError } from "../../src-shared/errors.ts";

export interface WaitOptions {
  /** Default 30 s. */
  timeoutMs?: number;
  /** Pause between two attempts; default 100 ms. */
  intervalMs?: number;
  /** What is awaited, for the time-out message ("pod web to be Running"). */
  message?: string;
  /** Extra evidence to append to the time-out message (a process's log tail...). */
  diagnose?: () => string | Promise<string>;
  signal?: AbortSignal;
  clock?: Clock;
}

/** Thrown on time-out: carries the last error or value seen. */
export class WaitTimeoutError extends Error {
  readonly lastError: unknown;
  readonly lastValue: unknown;
  constructor(message: string, lastError: unknown, lastValue: unknown) {
    super(message, lastError === undefined ? undefined : { cause: lastError });
    this.name = "WaitTimeoutError";
    this.lastError = lastError;
    this.lastValue = lastValue;
  }
}

const NOTHING = Symbol("nothing read");

function show(v: unknown): string {
  return inspect(v, { depth: 6, breakLength: Infinity, maxStringLength: 2000 });
}

/**
 * Polls `read` until `accept` holds for its value, and returns that value. An attempt that throws counts as
 * not yet (an assertion inside `read` is a fine way to say what is awaited).
 */
export async function pollUntil<T>(read: () => T | Promise<T>, accept: (value: T) => boolean, options: WaitOptions = {}): Promise<T> {
  const clock = options.clock ?? systemClock;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = clock.now() + timeoutMs;
  let lastError: unknown;
  let lastValue: T | typeof NOTHING = NOTHING;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const v = await read();
      lastValue = v;
      lastError = undefined;
      if (accept(v)) return v;
    } catch (err) {
      lastError = err;
    }
    if (clock.now() >= deadline) {
      const seen =
        lastError !== undefined ? `last error: ${lastError instanceof Error ? lastError.message : show(lastError)}` : lastValue === NOTHING ? "nothing read" : `last value: ${show(lastValue)}`;
      const extra = options.diagnose ? `\n${await Promise.resolve(options.diagnose()).catch((e: unknown) => `(diagnose failed: ${String(e)})`)}` : "";
      throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${options.message ?? "a condition"}; ${seen}${extra}`, lastError, lastValue === NOTHING ? undefined : lastValue);
    }
    await clock.sleep(Math.min(options.intervalMs ?? 100, Math.max(0, deadline - clock.now())), options.signal);
  }
}

/**
 * Polls `fn` until it returns something other than `undefined` or `false`, and returns it; an attempt that
 * throws counts as not yet.
 */
export function eventually<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, options: WaitOptions = {}): Promise<T> {
  return pollUntil(fn, (v) => v !== undefined && v !== false, options) as Promise<T>;
}

/** Waits until `read` fails with NotFound (an API object is gone); other errors count as not yet. */
export async function eventuallyGone(read: () => Promise<unknown>, options: WaitOptions = {}): Promise<void> {
  await eventually(async () => {
    try {
      await read();
      return false;
    } catch (err) {
      if (isDeckhandError(err, "NotFound")) return true;
      throw err;
    }
  }, options);
}
