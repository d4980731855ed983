/**
 * The node-pressure parts together, as the kubelet runs them: the figures (node-stats.ts), the eviction
 * manager (eviction-manager.ts) and the memory watch that wakes it (memory-watch.ts). The kubelet gives the
 * pod side (active pods, how to end one, node-level reclaim, events) and reads the node conditions back for
 * the Node's status and admission.
 *
 * Lifecycle: the constructor does no I/O; start(signal); close() stops the watch, then the manager.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import { EvictionManager, type EvictionEvents, type NodeReclaimer, type PodEvictor } from "./eviction-manager.ts";
import { MemoryWatch } from "./memory-watch.ts";
import { NodeStats, type NodeStatsOptions } from "./node-stats.ts";
import type { NodeConditionType, Threshold } from "./thresholds.ts";

export interface NodePressureSettings {
  thresholds: readonly Threshold[];
  pressureTransitionPeriodMs: number;
  maxPodGracePeriodSeconds: number;
  localStorageCapacityIsolation: boolean;
  stats: Omit<NodeStatsOptions, "containerNames">;
  /** Default: upstream's 10 s. */
  monitoringIntervalMs?: number;
  /** Default: 100 ms. */
  memoryWatchIntervalMs?: number;
}

export interface NodePressureParts {
  activePods: () => V1Pod[];
  evictor: PodEvictor;
  reclaimer: NodeReclaimer;
  events: EvictionEvents;
  containerNames: (uid: string) => ReadonlyMap<string, string>;
  onConditions: (conditions: readonly NodeConditionType[]) => void;
  logger: Logger;
}

export class NodePressure {
  readonly stats: NodeStats;
  readonly manager: EvictionManager;
  readonly watch: MemoryWatch;
  private readonly log: Logger;

  constructor(settings: NodePressureSettings, parts: NodePressureParts) {
    this.log = parts.logger;
    this.stats = new NodeStats({ ...settings.stats, containerNames: parts.containerNames });
    this.manager = new EvictionManager({
      thresholds: settings.thresholds,
      pressureTransitionPeriodMs: settings.pressureTransitionPeriodMs,
      maxPodGracePeriodSeconds: settings.maxPodGracePeriodSeconds,
      localStorageCapacityIsolation: settings.localStorageCapacityIsolation,
      stats: this.stats,
      activePods: parts.activePods,
      evictor: parts.evictor,
      reclaimer: parts.reclaimer,
      events: parts.events,
      onConditions: parts.onConditions,
      logger: parts.logger,
      ...(settings.monitoringIntervalMs !== undefined ? { monitoringIntervalMs: settings.monitoringIntervalMs } : {}),
    });
    this.watch = new MemoryWatch({
      read: () => this.stats.memoryFigures(),
      readUpperBound: () => this.stats.memoryUpperBound(),
      thresholds: settings.thresholds,
      onCrossed: () => this.manager.wake(),
      logger: parts.logger,
      ...(settings.memoryWatchIntervalMs !== undefined ? { intervalMs: settings.memoryWatchIntervalMs } : {}),
    });
  }

  start(signal: AbortSignal): void {
    // The watch reads through the cgroup layout the stats find first.
    void this.stats.init().then(
      () => {
        if (signal.aborted) return;
        this.watch.start(signal);
        this.manager.start(signal);
      },
      (err: unknown) => this.log.error({ err: errorMessage(err) }, "eviction manager not started: cannot find the cgroup hierarchies"),
    );
  }

  async close(): Promise<void> {
    await this.watch.close();
    await this.manager.close();
  }

  nodeConditions(): readonly NodeConditionType[] {
    return this.manager.nodeConditions();
  }
}
