/**
 * The node's pod cgroups above the pods, as upstream's container manager
 * (pkg/kubelet/cm/node_container_manager_linux.go, qos_container_manager_linux.go), cgroupfs driver:
 *
 * - `<cgroupRoot>/kubepods`, the node allocatable cgroup: with `enforceNodeAllocatable: [pods]` it carries
 *   capacity − systemReserved − kubeReserved (GetNodeAllocatableAbsolute: the hard eviction thresholds are not
 *   subtracted there, so that the eviction manager acts before the kernel's OOM killer), else the capacity:
 *   memory limit, cpu shares and pids limit (getCgroupConfig). A memory limit below the pods' usage is refused
 *   by the kernel: retried every minute until it takes, with upstream's events.
 * - `kubepods/besteffort`: cpu shares 2 (the minimum); `kubepods/burstable`: cpu shares of the sum of its pods'
 *   cpu requests (PodRequests: init containers and overhead counted), updated as pods come and go (before a new
 *   pod cgroup, after a removal) and every minute.
 *
 * - `enforceNodeAllocatable` entries `system-reserved` / `kube-reserved` put systemReserved / kubeReserved
 *   (memory, cpu shares, pids; the `-compressible` forms cpu shares only) on the existing cgroups named by
 *   systemReservedCgroup / kubeReservedCgroup (enforceExistingCgroup). Those cgroups are the system's to make: a
 *   missing one is an error event, retried every minute.
 *
 * No memory limit on the QoS cgroups (qosReserved and MemoryQoS are not implemented).
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import { PeriodicLoop } from "../../src-shared/loop.ts";
import { milliValue, quantityValue } from "../../src-shared/quantity.ts";
import type { Clock } from "../../src-shared/clock.ts";
import { nodeRef, type EventRecorder } from "../events.ts";
import { MIN_SHARES, milliCPUToShares, qosClass } from "../qos.ts";
import type { Cgroupfs, FailedWrite } from "./cgroupfs.ts";
import { qosCgroupPath } from "./pod-cgroups.ts";
import { podRequests, type ResourceConfig } from "./pod-resources.ts";

/** qos_container_manager_linux.go periodicQOSCgroupUpdateInterval. */
export const QOS_UPDATE_INTERVAL_MS = 60_000;

/** getCgroupConfig: a resource list (quantity strings) as cgroup settings; resources absent stay unset. */
export function cgroupConfigOf(resources: Readonly<Record<string, string>>): ResourceConfig {
  const out: ResourceConfig = {};
  const memory = resources["memory"];
  const cpu = resources["cpu"];
  const pid = resources["pid"];
  if (memory !== undefined) out.memoryLimitBytes = quantityValue(memory);
  if (cpu !== undefined) out.cpuShares = milliCPUToShares(milliValue(cpu));
  if (pid !== undefined) out.pidsLimit = quantityValue(pid);
  return out;
}

/** A reserved cgroup enforcement: `resources` on the existing cgroup `path`. */
export interface ReservedCgroup {
  /** "system-reserved", "kube-reserved-compressible"... (for the events). */
  key: string;
  path: string;
  resources: Readonly<Record<string, string>>;
  /** The `-compressible` forms: cpu only. */
  compressibleOnly: boolean;
}

/** The reserved cgroups `enforceNodeAllocatable` asks for, from the configuration. Pure. */
export function reservedCgroups(c: {
  enforceNodeAllocatable: readonly string[];
  systemReserved: Readonly<Record<string, string>>;
  kubeReserved: Readonly<Record<string, string>>;
  systemReservedCgroup: string;
  kubeReservedCgroup: string;
}): ReservedCgroup[] {
  const out: ReservedCgroup[] = [];
  for (const key of c.enforceNodeAllocatable) {
    const system = key.startsWith("system-reserved");
    if (!system && !key.startsWith("kube-reserved")) continue;
    out.push({
      key,
      path: system ? c.systemReservedCgroup : c.kubeReservedCgroup,
      resources: system ? c.systemReserved : c.kubeReserved,
      compressibleOnly: key.endsWith("-compressible"),
    });
  }
  return out;
}

/** setCPUCgroupConfig: the burstable cgroup's shares from its pods' cpu requests. Pure. */
export function burstableShares(pods: readonly V1Pod[]): number {
  let milli = 0;
  for (const pod of pods) if (qosClass(pod) === "Burstable") milli += podRequests(pod).cpuMilli;
  return milliCPUToShares(milli);
}

export interface QosCgroupOptions {
  cgroupRoot: string;
  fs: Cgroupfs;
  /** kubepods' resources (quantity strings: cpu, memory, pid): node allocatable, or capacity without enforcement. */
  nodeAllocatable: () => Readonly<Record<string, string>>;
  /** enforceNodeAllocatable's system-reserved / kube-reserved entries (reservedCgroups). */
  reserved?: readonly ReservedCgroup[];
  /** The pods admitted and not finished (upstream's activePods). */
  activePods: () => readonly V1Pod[];
  nodeName: string;
  events?: EventRecorder;
  logger: Logger;
  clock?: Clock;
}

function describe(failed: readonly FailedWrite[]): string {
  return failed.map((f) => `${f.file}=${f.value}: ${f.error}`).join("; ");
}

export class QosCgroupManager {
  private readonly o: QosCgroupOptions;
  private readonly log: Logger;
  private readonly loop: PeriodicLoop;
  /** Node allocatable took on kubepods (upstream's enforcement goroutine stops then). */
  private enforced = false;
  private lastBurstableShares: number | undefined;
  /** The reserved cgroups whose limits took. */
  private readonly reservedDone = new Set<string>();
  /** Updates one at a time, in order (pod starts and removals race). */
  private chain: Promise<void> = Promise.resolve();

  constructor(options: QosCgroupOptions) {
    this.o = options;
    this.log = options.logger.child({ component: "qos-cgroups" });
    this.loop = new PeriodicLoop({
      name: "qos-cgroups",
      intervalMs: QOS_UPDATE_INTERVAL_MS,
      run: () => this.pass(),
      logger: this.log,
      ...(options.clock ? { clock: options.clock } : {}),
    });
  }

  get kubepodsPath(): string {
    return qosCgroupPath(this.o.cgroupRoot, "Guaranteed");
  }

  /** Creates kubepods (with node allocatable), burstable and besteffort before any pod runs; then every minute. */
  async start(signal: AbortSignal): Promise<void> {
    try {
      await this.enforceNodeAllocatable();
      await this.o.fs.ensure(qosCgroupPath(this.o.cgroupRoot, "BestEffort"), { cpuShares: MIN_SHARES });
      await this.update();
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, "could not create the QoS cgroups; retrying every minute");
    }
    this.loop.start(signal);
  }

  async close(): Promise<void> {
    await this.loop.close();
    await this.chain;
  }

  private async pass(): Promise<void> {
    if (!this.enforced || this.reservedDone.size < (this.o.reserved?.length ?? 0)) await this.enforceNodeAllocatable();
    await this.o.fs.ensure(qosCgroupPath(this.o.cgroupRoot, "BestEffort"), { cpuShares: MIN_SHARES });
    this.lastBurstableShares = undefined;
    await this.update();
  }

  private async enforceNodeAllocatable(): Promise<void> {
    const failed = await this.o.fs.ensure(this.kubepodsPath, cgroupConfigOf(this.o.nodeAllocatable()));
    const ref = nodeRef(this.o.nodeName);
    if (failed.length === 0) {
      this.enforced = true;
      this.o.events?.event(ref, "Normal", "SuccessfulNodeAllocatableEnforcement", "Updated Node Allocatable limit across pods");
    } else {
      this.o.events?.event(ref, "Warning", "FailedNodeAllocatableEnforcement", `Failed to update Node Allocatable Limits "${this.kubepodsPath}": ${describe(failed)}`);
    }
    for (const r of this.o.reserved ?? []) {
      if (this.reservedDone.has(r.key)) continue;
      const label = r.key.startsWith("system") ? "System Reserved" : "Kube Reserved";
      const fail = (why: string): void => {
        this.log.error({ cgroup: r.path, err: why }, `could not enforce ${r.key}`);
        this.o.events?.event(ref, "Warning", "FailedNodeAllocatableEnforcement", `Failed to enforce ${label}${r.compressibleOnly ? " Compressible" : ""} Cgroup Limits on "${r.path}": ${why}`);
      };
      if (!(await this.o.fs.exists(r.path))) {
        fail(`cgroup "${r.path}" does not exist in every hierarchy`);
        continue;
      }
      const config = cgroupConfigOf(r.resources);
      const bad = await this.o.fs.update(r.path, r.compressibleOnly ? (config.cpuShares === undefined ? {} : { cpuShares: config.cpuShares }) : config);
      if (bad.length > 0) {
        fail(describe(bad));
        continue;
      }
      this.reservedDone.add(r.key);
      this.o.events?.event(ref, "Normal", "SuccessfulNodeAllocatableEnforcement", `Updated limits on ${r.key.replace(/-compressible$/, "")} cgroup ${r.path}`);
    }
  }

  /** UpdateCgroups: the burstable cgroup's shares from the active pods (written when they changed). */
  update(): Promise<void> {
    const next = this.chain.then(async () => {
      const shares = burstableShares(this.o.activePods());
      if (shares === this.lastBurstableShares) return;
      const failed = await this.o.fs.ensure(qosCgroupPath(this.o.cgroupRoot, "Burstable"), { cpuShares: shares });
      if (failed.length === 0) this.lastBurstableShares = shares;
    });
    this.chain = next.catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, "could not update the QoS cgroups"));
    return this.chain;
  }
}
