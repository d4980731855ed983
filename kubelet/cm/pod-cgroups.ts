/**
 * Pod-level cgroups with the cgroupfs driver, laid out as upstream: `<cgroupRoot>/kubepods/pod<uid>` for
 * Guaranteed pods, `<cgroupRoot>/kubepods/{burstable,besteffort}/pod<uid>` for the others. The kubelet creates
 * them with the pod's limits before the sandbox, and removes them after the pod: containerd never does. On
 * cgroup v2 it first delegates the controllers down to the pod's parent (see `delegate`).
 */
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cgroupHierarchies, removeCgroupTree, type CgroupHierarchy } from "../../src-shared/cgroups.ts";
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";

export type QOSClass = "Guaranteed" | "Burstable" | "BestEffort";

export function qosCgroupPath(cgroupRoot: string, qos: QOSClass): string {
  const root = cgroupRoot === "/" ? "" : cgroupRoot.replace(/\/$/, "");
  if (qos === "Guaranteed") return `${root}/kubepods`;
  return `${root}/kubepods/${qos.toLowerCase()}`;
}

export function podCgroupPath(cgroupRoot: string, qos: QOSClass, uid: string): string {
  return `${qosCgroupPath(cgroupRoot, qos)}/pod${uid}`;
}

/** Pod-level limits: sums over the containers, as upstream's ResourceConfigForPod. Undefined = unlimited. */
export interface PodResourceConfig {
  cpuShares: number;
  cpuQuotaUs?: number;
  cpuPeriodUs?: number;
  memoryLimitBytes?: number;
}

/** cgroup v2 cpu.weight from v1 shares (the linear conversion runc uses: 2..262144 → 1..10000). */
export function sharesToWeight(shares: number): number {
  if (shares <= 0) return 100;
  return Math.max(1, Math.min(10_000, 1 + Math.floor(((shares - 2) * 9999) / 262142)));
}

/** The v2 controllers a pod cgroup's limits (and its containers') need. */
const DELEGATED_CONTROLLERS = ["cpu", "memory", "pids"];

function controllers(h: CgroupHierarchy): Set<string> {
  return new Set(h.options.split(","));
}

/** What the runtime manager needs of pod cgroups (an in-memory stand-in in unit tests). */
export interface PodCgroups {
  /** Creates (or updates the limits of) the pod's cgroup; returns its path below the hierarchies. */
  ensure(uid: string, qos: QOSClass, resources: PodResourceConfig): Promise<string>;
  /** Removes the pod's cgroup wherever it is. */
  remove(uid: string, signal?: AbortSignal): Promise<void>;
}

function fileExists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The files that carry a pod's limits in one hierarchy, in the order they must be written. */
function limitFiles(h: CgroupHierarchy, resources: PodResourceConfig): [string, string][] {
  const writes: [string, string][] = [];
  if (h.fsType === "cgroup2") {
    writes.push(["cpu.weight", String(sharesToWeight(resources.cpuShares))]);
    if (resources.cpuQuotaUs !== undefined) writes.push(["cpu.max", `${resources.cpuQuotaUs} ${resources.cpuPeriodUs ?? 100_000}`]);
    if (resources.memoryLimitBytes !== undefined) writes.push(["memory.max", String(resources.memoryLimitBytes)]);
    return writes;
  }
  const c = controllers(h);
  if (c.has("cpu")) {
    writes.push(["cpu.shares", String(resources.cpuShares)]);
    if (resources.cpuQuotaUs !== undefined) {
      writes.push(["cpu.cfs_period_us", String(resources.cpuPeriodUs ?? 100_000)], ["cpu.cfs_quota_us", String(resources.cpuQuotaUs)]);
    }
  }
  if (c.has("memory") && resources.memoryLimitBytes !== undefined) writes.push(["memory.limit_in_bytes", String(resources.memoryLimitBytes)]);
  return writes;
}

export class PodCgroupManager implements PodCgroups {
  private readonly cgroupRoot: string;
  private readonly log: Logger | undefined;
  private hierarchies: CgroupHierarchy[] | undefined;

  /** `hierarchies` stands in for the host's mounts (tests on fixture trees); read from /proc otherwise. */
  constructor(options: { cgroupRoot: string; logger?: Logger; hierarchies?: CgroupHierarchy[] }) {
    this.cgroupRoot = options.cgroupRoot;
    this.log = options.logger?.child({ component: "pod-cgroups" });
    this.hierarchies = options.hierarchies;
  }

  /**
   * cgroup v2: a controller's files exist in a cgroup only once its parent lists the controller in
   * cgroup.subtree_control. Enables cpu, memory and pids (those the level has) from the mount's root down to
   * the pod's parent, as runc's cgroupfs manager does for containers, or the pod's limits are never set.
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
        this.log?.warn({ cgroup: dir, err: errorMessage(err) }, "could not delegate controllers to the pod cgroups");
      }
    }
  }

  private async all(): Promise<CgroupHierarchy[]> {
    this.hierarchies ??= await cgroupHierarchies();
    return this.hierarchies;
  }

  /**
   * Creates (or updates the limits of) the pod's cgroup in every hierarchy. The hierarchies are independent, so
   * they are done at once: this is on the pod's start path, and one by one its dozen or so mkdirs and writes each
   * waited their turn behind whatever else the event loop was doing (18 ms at a pod start, against ~1 ms of work).
   */
  async ensure(uid: string, qos: QOSClass, resources: PodResourceConfig): Promise<string> {
    const path = podCgroupPath(this.cgroupRoot, qos, uid);
    await Promise.all((await this.all()).map((h) => this.ensureIn(h, path, qos, resources)));
    return path;
  }

  private async ensureIn(h: CgroupHierarchy, path: string, qos: QOSClass, resources: PodResourceConfig): Promise<void> {
    const dir = join(h.mountPoint, path);
    await mkdir(dir, { recursive: true });
    if (h.fsType === "cgroup2") await this.delegate(h.mountPoint, qosCgroupPath(this.cgroupRoot, qos));
    // In order within a hierarchy: a CFS period before the quota measured against it.
    for (const [file, value] of limitFiles(h, resources)) {
      try {
        await writeFile(join(dir, file), value);
      } catch (err) {
        // A v2 hierarchy whose parent does not delegate a controller has no such file: nothing to limit there
        // (cgroupfs answers EACCES, not ENOENT, to a write that would create a file).
        if (!(await fileExists(join(dir, file)))) continue;
        this.log?.warn({ cgroup: dir, file, value, err: errorMessage(err) }, "could not set pod cgroup limit");
      }
    }
  }

  /** Removes the pod's cgroup wherever it is (its QoS class may have been any). */
  async remove(uid: string, signal?: AbortSignal): Promise<void> {
    const hierarchies = await this.all();
    await Promise.all((["Guaranteed", "Burstable", "BestEffort"] as const).map((qos) => removeCgroupTree(podCgroupPath(this.cgroupRoot, qos, uid), hierarchies, signal)));
  }
}
