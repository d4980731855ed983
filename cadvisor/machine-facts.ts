/**
 * The machine's facts (machine.ts) read once before the kubelet starts and kept fresh at the node status pace:
 * the one copy the Node's capacity and nodeInfo, the kubelet's allocatable, the Summary's node memory limit and
 * /metrics/cadvisor's machine_* gauges all read, as upstream's kubelet reads cadvisor.MachineInfo() everywhere.
 * A refresh that fails keeps the last facts (statfs of a hung mount must not empty the Node's capacity).
 *
 * Lifecycle: `load()` is the first read (it throws when the essentials cannot be read: the kubelet cannot
 * register without them); then start(signal), close() drains a refresh under way.
 */
import type { Logger } from "../src-shared/log.ts";
import { DeckhandError } from "../src-shared/errors.ts";
import { PeriodicLoop } from "../src-shared/loop.ts";
import type { Clock } from "../src-shared/clock.ts";
import { readMachineInfo, type MachineInfo, type MachineInfoOptions } from "./machine.ts";

export interface MachineFactsOptions extends MachineInfoOptions {
  /** How often to read them again (the kubelet's nodeStatusUpdateFrequency). */
  intervalMs: number;
  log: Logger;
  clock?: Clock;
  /** The reader (tests); default readMachineInfo. */
  read?: (o: MachineInfoOptions) => Promise<MachineInfo>;
}

export class MachineFacts {
  private readonly o: MachineFactsOptions;
  private readonly loop: PeriodicLoop;
  private latest: MachineInfo | undefined;

  constructor(o: MachineFactsOptions) {
    this.o = o;
    this.loop = new PeriodicLoop({
      name: "machine facts",
      intervalMs: o.intervalMs,
      logger: o.log.child({ component: "machine-facts" }),
      ...(o.clock ? { clock: o.clock } : {}),
      run: async () => {
        this.latest = await this.readOnce();
      },
    });
  }

  /** The first read; resolves to the facts. */
  async load(): Promise<MachineInfo> {
    this.latest = await this.readOnce();
    return this.latest;
  }

  start(signal: AbortSignal): void {
    this.loop.start(signal);
  }

  async close(): Promise<void> {
    await this.loop.close();
  }

  /** The latest facts; load() must have resolved. */
  get(): MachineInfo {
    if (this.latest === undefined) throw new DeckhandError("FailedPrecondition", "MachineFacts.get() before load()");
    return this.latest;
  }

  private readOnce(): Promise<MachineInfo> {
    const { rootFs, imageFs, hostRoot } = this.o;
    return (this.o.read ?? readMachineInfo)({ ...(rootFs === undefined ? {} : { rootFs }), ...(imageFs === undefined ? {} : { imageFs }), ...(hostRoot === undefined ? {} : { hostRoot }) });
  }
}
