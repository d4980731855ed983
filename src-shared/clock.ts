/**
 * Time as a dependency: components that wait or stamp times take a `Clock`, so their state machines are unit
 * tested against a fake clock (test/harness/fake-clock.ts) instead of real sleeps, as upstream's take
 * k8s.io/utils/clock.
 */
import { setTimeout as sleep } from "node:timers/promises";

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason when it aborts first. Never leaves a timer behind. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** setTimeout fires at once past 2^31-1 ms: longer waits are capped (the caller's loop simply wakes early). */
export const MAX_TIMER_MS = 2_147_483_647;

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => sleep(Math.min(MAX_TIMER_MS, Math.max(0, ms)), undefined, signal ? { signal } : {}),
};
