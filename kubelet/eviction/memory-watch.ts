/**
 * The fast path of memory eviction: reads the two memory figures the memory signals need (the node's and the
 * pods cgroup's working set) every `intervalMs` (100 ms by default) and wakes the eviction manager as soon as a
 * memory threshold is met, instead of waiting for its 10 s pass.
 *
 * Why polling and not upstream's memcg threshold notification (cgroup.event_control + eventfd, cgroup v1 only):
 * one poll reads memory.usage_in_bytes and memory.stat of two cgroups, ~30 µs each on this machine's kernfs
 * (measured: 31 µs CPU per usage+stat pair), so 10 polls a second cost ~0.07% of a core, well under the 0.5%
 * budget, and detect a crossing within 100 ms. It works the same on cgroup v2 (where upstream's notifier is
 * disabled), needs no helper process, and a notification would still need the same read to re-arm with the
 * inactive_file correction upstream applies every 10 s. The working set (usage − inactive_file) is what the
 * threshold is about; a notifier on usage_in_bytes fires late or early when the page cache moves.
 *
 * While a threshold stays met the manager is woken at most once per `rewakeMs` (its own pass then waits for
 * the evicted pod to be cleaned up before the next).
 *
 * Lifecycle: the constructor does no I/O; start(signal); close().
 */
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import { PeriodicLoop } from "../../src-shared/loop.ts";
import { makeSignalObservations, type NodeFigures } from "./signals.ts";
import { thresholdsMet, type Threshold } from "./thresholds.ts";

export const DEFAULT_MEMORY_WATCH_INTERVAL_MS = 100;

export interface MemoryWatchOptions {
  /** The memory part of the node's figures, read now (synchronously: kernfs files). */
  read: () => NodeFigures;
  /** The memory thresholds (others are ignored). */
  thresholds: readonly Threshold[];
  /** Told when a threshold is met. */
  onCrossed: () => void;
  logger: Logger;
  clock?: Clock;
  intervalMs?: number;
  rewakeMs?: number;
}

export class MemoryWatch {
  private readonly o: MemoryWatchOptions;
  private readonly thresholds: Threshold[];
  private readonly loop: PeriodicLoop;
  private readonly clock: Clock;
  private lastWake = Number.NEGATIVE_INFINITY;
  private met = false;
  /** Polls done (tests, the benchmark). */
  polls = 0;

  constructor(options: MemoryWatchOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
    this.thresholds = options.thresholds.filter((t) => t.signal === "memory.available" || t.signal === "allocatableMemory.available");
    const log = options.logger.child({ component: "memory-watch" });
    this.loop = new PeriodicLoop({
      name: "memory watch",
      intervalMs: options.intervalMs ?? DEFAULT_MEMORY_WATCH_INTERVAL_MS,
      run: () => {
        this.poll();
        return Promise.resolve();
      },
      errorDelayMs: (err) => {
        log.warn({ err: errorMessage(err) }, "memory watch read failed");
        return 10_000;
      },
      logger: log,
      clock: this.clock,
    });
  }

  /** Whether there is anything to watch. */
  get active(): boolean {
    return this.thresholds.length > 0;
  }

  start(signal: AbortSignal): void {
    if (this.active) this.loop.start(signal);
  }

  close(): Promise<void> {
    return this.loop.close();
  }

  /** One poll; true when a memory threshold is met. Exported for tests. */
  poll(): boolean {
    this.polls++;
    const met = thresholdsMet(this.thresholds, makeSignalObservations(this.o.read()), false).length > 0;
    const now = this.clock.now();
    if (met && (!this.met || now - this.lastWake >= (this.o.rewakeMs ?? 1000))) {
      this.lastWake = now;
      this.o.onCrossed();
    }
    this.met = met;
    return met;
  }
}
