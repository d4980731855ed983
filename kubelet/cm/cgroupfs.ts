/**
 * The cgroupfs driver's writes: a cgroup made in every mounted hierarchy and its ResourceConfig written to the
 * kernel's files, as upstream's cgroupManagerImpl (pkg/kubelet/cm/cgroup_manager_linux.go) through runc's fs
 * (v1) and fs2 (v2) managers.
 *
 * - v1: `cpu.shares`, `cpu.cfs_period_us` then `cpu.cfs_quota_us`, `memory.limit_in_bytes`, `pids.max`, each in
 *   its controller's hierarchy.
 * - v2 (Documentation/admin-guide/cgroup-v2.rst): `cpu.weight` (from shares), `cpu.max` ("<quota|max> <period>"),
 *   `memory.max`, `pids.max`. A controller's files exist in a cgroup only once its parent lists it in
 *   `cgroup.subtree_control`, so cpu, memory and pids are enabled from the mount's root down to the cgroup's
 *   parent first (runc's fs2 does the same for containers).
 */
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cgroupHierarchies, type CgroupHierarchy } from "../../src-shared/cgroups.ts";
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import type { ResourceConfig } from "./pod-resources.ts";

/** cgroup v2 cpu.weight from v1 shares (the linear conversion runc uses: 2..262144 → 1..10000). */
export function sharesToWeight(shares: number): number {
  if (shares <= 0) return 100;
  return Math.max(1, Math.min(10_000, 1 + Math.floor(((shares - 2) * 9999) / 262142)));
}

/** The v2 controllers pod and QoS cgroups need. */
export const DELEGATED_CONTROLLERS = ["cpu", "memory", "pids"];

function controllers(h: CgroupHierarchy): Set<string> {
  return new Set(h.options.split(","));
}

/** The files that carry `config` in one hierarchy, in the order they must be written. Pure. */
export function resourceWrites(h: CgroupHierarchy, config: ResourceConfig): [string, string][] {
  const writes: [string, string][] = [];
  const pids = config.pidsLimit === undefined ? undefined : config.pidsLimit < 0 ? "max" : String(config.pidsLimit);
  if (h.fsType === "cgroup2") {
    if (config.cpuShares !== undefined) writes.push(["cpu.weight", String(sharesToWeight(config.cpuShares))]);
    if (config.cpuQuotaUs !== undefined) writes.push(["cpu.max", `${config.cpuQuotaUs < 0 ? "max" : config.cpuQuotaUs} ${config.cpuPeriodUs ?? 100_000}`]);
    if (config.memoryLimitBytes !== undefined) writes.push(["memory.max", config.memoryLimitBytes < 0 ? "max" : String(config.memoryLimitBytes)]);
    if (pids !== undefined) writes.push(["pids.max", pids]);
    return writes;
  }
  const c = controllers(h);
  if (c.has("cpu")) {
    if (config.cpuShares !== undefined) writes.push(["cpu.shares", String(config.cpuShares)]);
    if (config.cpuQuotaUs !== undefined) {
      writes.push(["cpu.cfs_period_us", String(config.cpuPeriodUs ?? 100_000)], ["cpu.cfs_quota_us", String(config.cpuQuotaUs < 0 ? -1 : config.cpuQuotaUs)]);
    }
  }
  if (c.has("memory") && config.memoryLimitBytes !== undefined) writes.push(["memory.limit_in_bytes", String(config.memoryLimitBytes < 0 ? -1 : config.memoryLimitBytes)]);
  if (c.has("pids") && pids !== undefined) writes.push(["pids.max", pids]);
  return writes;
}

function fileExists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** A write the kernel refused (memory.limit_in_bytes below the usage answers EBUSY). */
export interface FailedWrite {
  cgroup: string;
  file: string;
  value: string;
  error: string;
}

export class Cgroupfs {
  private readonly log: Logger | undefined;
  private hierarchies: CgroupHierarchy[] | undefined;

  /** `hierarchies` stands in for the host's mounts (tests on fixture trees); read from /proc otherwise. */
  constructor(options: { logger?: Logger; hierarchies?: CgroupHierarchy[] } = {}) {
    this.log = options.logger?.child({ component: "cgroupfs" });
    this.hierarchies = options.hierarchies;
  }

  async all(): Promise<CgroupHierarchy[]> {
    this.hierarchies ??= await cgroupHierarchies();
    return this.hierarchies;
  }

  /**
   * Creates `path` (absolute below the hierarchies, e.g. `/kubepods/burstable`) in every hierarchy and writes
   * `config` there. The hierarchies are independent, so they are done at once (this is on a pod's start path).
   * Returns the writes the kernel refused (logged); a file the hierarchy does not have is skipped.
   */
  async ensure(path: string, config: ResourceConfig): Promise<FailedWrite[]> {
    const failed = await Promise.all((await this.all()).map((h) => this.ensureIn(h, path, config)));
    return failed.flat();
  }

  /** Whether `path` exists in every hierarchy. */
  async exists(path: string): Promise<boolean> {
    const found = await Promise.all((await this.all()).map((h) => fileExists(join(h.mountPoint, path))));
    return found.every(Boolean);
  }

  /** Writes `config` to the existing cgroup `path` (one the system made: nothing is created or delegated). */
  async update(path: string, config: ResourceConfig): Promise<FailedWrite[]> {
    const failed = await Promise.all((await this.all()).map((h) => this.write(h, path, config)));
    return failed.flat();
  }

  private async ensureIn(h: CgroupHierarchy, path: string, config: ResourceConfig): Promise<FailedWrite[]> {
    await mkdir(join(h.mountPoint, path), { recursive: true });
    if (h.fsType === "cgroup2") await this.delegate(h.mountPoint, path.split("/").slice(0, -1).join("/"));
    return this.write(h, path, config);
  }

  private async write(h: CgroupHierarchy, path: string, config: ResourceConfig): Promise<FailedWrite[]> {
    const dir = join(h.mountPoint, path);
    const failed: FailedWrite[] = [];
    // In order within a hierarchy: a CFS period before the quota measured against it.
    for (const [file, value] of resourceWrites(h, config)) {
      try {
        await writeFile(join(dir, file), value);
      } catch (err) {
        // A v2 hierarchy whose parent does not delegate a controller has no such file: nothing to limit there
        // (cgroupfs answers EACCES, not ENOENT, to a write that would create a file).
        if (!(await fileExists(join(dir, file)))) continue;
        const error = errorMessage(err);
        this.log?.warn({ cgroup: dir, file, value, err: error }, "could not set a cgroup limit");
        failed.push({ cgroup: path, file, value, error });
      }
    }
    return failed;
  }

  /**
   * cgroup v2: enables cpu, memory and pids (those each level has) in `cgroup.subtree_control` from the mount's
   * root down to `parentPath`, so that its children have the controllers' files.
   */
  private async delegate(mountPoint: string, parentPath: string): Promise<void> {
    let dir = mountPoint;
    for (const part of ["", ...parentPath.split("/").filter((p) => p !== "")]) {
      dir = part === "" ? dir : join(dir, part);
      try {
        const available = (await readFile(join(dir, "cgroup.controllers"), "utf8")).split(/\s+/);
        const enabled = (await readFile(join(dir, "cgroup.subtree_control"), "utf8")).split(/\s+/);
        const missing = DELEGATED_CONTROLLERS.filter((c) => available.includes(c) && !enabled.includes(c));
        if (missing.length === 0) continue;
        await writeFile(join(dir, "cgroup.subtree_control"), missing.map((c) => `+${c}`).join(" "));
      } catch (err) {
        this.log?.warn({ cgroup: dir, err: errorMessage(err) }, "could not delegate controllers down the cgroup tree");
      }
    }
  }
}
