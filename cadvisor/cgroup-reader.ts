/**
 * Reads one cgroup's stats files from the mounted hierarchies and finds the pod and container cgroups under
 * the kubelet's `<cgroupRoot>/kubepods` (cgroupfs driver: `kubepods[/burstable|/besteffort]/pod<uid>/<id>`,
 * where containerd puts each container, the sandbox's pause included, under the cgroup_parent it was given).
 *
 * The version follows what is mounted: v1 when a v1 hierarchy carries the memory controller (v1 or hybrid,
 * as on this machine), else the cgroup2 tree. On v1 each figure comes from its controller's hierarchy
 * (cpuacct, memory, pids), wherever it is mounted (separate or joined as cpu,cpuacct).
 *
 * The files are small and memory-backed (kernfs): read synchronously, as machine.ts reads procfs (a few
 * microseconds each, where fs.promises costs a thread-pool round trip per open/read/close).
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { CgroupHierarchy } from "../src-shared/cgroups.ts";
import { parseNetDev, v1Sample, v2Sample, type CgroupSample, type InterfaceSample, type V1Files, type V2Files } from "./cgroup-stats.ts";

export type CgroupVersion = 1 | 2;

/** Where each controller's files are, by version. */
export interface CgroupLayout {
  version: CgroupVersion;
  /** v1: mount point per controller (cpuacct, memory, pids). v2: the cgroup2 mount under "unified". */
  mounts: { cpu?: string; cpuacct?: string; memory?: string; pids?: string; blkio?: string; unified?: string };
  /** Prefix for /proc (tests). */
  procRoot: string;
}

/** The layout from the mounted hierarchies (cgroupHierarchies()), or undefined when nothing usable is mounted. */
export function cgroupLayout(hierarchies: readonly CgroupHierarchy[], procRoot = "/proc"): CgroupLayout | undefined {
  const v1 = hierarchies.filter((h) => h.fsType === "cgroup");
  const has = (h: CgroupHierarchy, c: string): boolean => h.options.split(",").includes(c);
  if (v1.some((h) => has(h, "memory"))) {
    const mount = (c: string): string | undefined => v1.find((h) => has(h, c))?.mountPoint;
    const mounts: CgroupLayout["mounts"] = {};
    for (const c of ["cpu", "cpuacct", "memory", "pids", "blkio"] as const) {
      const m = mount(c);
      if (m !== undefined) mounts[c] = m;
    }
    return { version: 1, mounts, procRoot };
  }
  const v2 = hierarchies.find((h) => h.fsType === "cgroup2" && h.mountPoint === "/sys/fs/cgroup") ?? hierarchies.find((h) => h.fsType === "cgroup2");
  return v2 === undefined ? undefined : { version: 2, mounts: { unified: v2.mountPoint }, procRoot };
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** The stats of one cgroup (an absolute cgroup path, "/" for the root); undefined if it does not exist. */
/** v1 controllers the stats come from. */
export type V1Controller = "cpu" | "cpuacct" | "memory" | "pids" | "blkio";

/**
 * A cgroup: one path in every hierarchy, or on v1 a path per controller (a process's cgroups differ between v1
 * hierarchies: /proc/<pid>/cgroup).
 */
export type CgroupRef = string | Partial<Record<V1Controller, string>>;

export function readCgroup(layout: CgroupLayout, cgroupPath: CgroupRef, timeMs: number): CgroupSample | undefined {
  const relOf = (c: V1Controller): string | undefined => {
    const p = typeof cgroupPath === "string" ? cgroupPath : cgroupPath[c];
    return p === "/" ? "" : p;
  };
  const rel = relOf("memory") ?? "";
  if (layout.version === 1) {
    const files: V1Files = {};
    const put = (c: V1Controller, names: (keyof V1Files)[]): void => {
      const mount = layout.mounts[c];
      const r = relOf(c);
      if (mount === undefined || r === undefined) return;
      // Concatenated, not path.join: cgroup paths are absolute and normalised, and join costs ~5% of a pass.
      const dir = `${mount}${r}/`;
      for (const n of names) {
        const t = read(dir + n);
        if (t !== undefined) files[n] = t;
      }
    };
    put("cpuacct", ["cpuacct.usage", "cpuacct.stat"]);
    put("cpu", ["cpu.stat"]);
    put("memory", ["memory.usage_in_bytes", "memory.limit_in_bytes", "memory.stat"]);
    put("pids", ["pids.current"]);
    put("blkio", ["blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"]);
    if (Object.keys(files).length === 0) return undefined;
    return named(v1Sample(files, timeMs));
  }
  const dir = join(layout.mounts.unified ?? "/sys/fs/cgroup", rel);
  const files: V2Files = {};
  for (const n of ["cpu.stat", "memory.current", "memory.max", "memory.stat", "memory.swap.current", "pids.current", "io.stat"] as const) {
    const t = read(join(dir, n));
    if (t !== undefined) files[n] = t;
  }
  if (Object.keys(files).length === 0) return undefined;
  if (rel === "" && files["memory.current"] === undefined) {
    const mi = read(join(layout.procRoot, "meminfo"));
    if (mi !== undefined) files.meminfo = mi;
  }
  return named(v2Sample(files, timeMs));
}

const deviceNames = new Map<string, string | undefined>();

/** Block devices named as cAdvisor labels them: /dev/<DEVNAME of /sys/dev/block/MAJ:MIN/uevent>, cached. */
function named(s: CgroupSample): CgroupSample {
  for (const d of s.io ?? []) {
    const key = `${d.major}:${d.minor}`;
    if (!deviceNames.has(key)) {
      const name = /^DEVNAME=(.+)$/m.exec(read(`/sys/dev/block/${key}/uevent`) ?? "")?.[1];
      deviceNames.set(key, name === undefined ? undefined : `/dev/${name}`);
    }
    const device = deviceNames.get(key);
    if (device !== undefined) d.device = device;
  }
  return s;
}

/**
 * The cgroups a process is in (/proc/<pid>/cgroup): on v1 one per controller, on v2 the `0::` line. What
 * upstream's kubelet reports as its own "kubelet" system container without --kubelet-cgroups.
 */
export function processCgroup(layout: CgroupLayout, pid = "self"): CgroupRef | undefined {
  const text = read(join(layout.procRoot, pid, "cgroup"));
  if (text === undefined) return undefined;
  const v1: Partial<Record<V1Controller, string>> = {};
  for (const line of text.split("\n")) {
    const [id, controllers, ...rest] = line.split(":");
    if (rest.length === 0) continue;
    const path = rest.join(":");
    if (layout.version === 2) {
      if (id === "0" && controllers === "") return path;
      continue;
    }
    for (const c of (controllers ?? "").split(",")) if (c === "cpu" || c === "cpuacct" || c === "memory" || c === "pids" || c === "blkio") v1[c] = path;
  }
  return layout.version === 1 && v1.memory !== undefined ? v1 : undefined;
}

/** The hierarchy in which cgroups are listed: memory's on v1, the unified tree on v2. */
function listingMount(layout: CgroupLayout): string | undefined {
  return layout.version === 1 ? (layout.mounts.memory ?? layout.mounts.cpuacct) : layout.mounts.unified;
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

export interface PodCgroup {
  uid: string;
  /** Absolute cgroup path of the pod. */
  path: string;
  /** The container cgroups below it (sandbox included), by CRI container id. */
  containerIds: string[];
}

/** The pod cgroups under `<kubepodsPath>` (the Guaranteed level) and its burstable and besteffort children. */
export function listPodCgroups(layout: CgroupLayout, kubepodsPath: string): PodCgroup[] {
  const mount = listingMount(layout);
  if (mount === undefined) return [];
  const found: PodCgroup[] = [];
  for (const level of [kubepodsPath, `${kubepodsPath}/burstable`, `${kubepodsPath}/besteffort`]) {
    for (const name of subdirs(join(mount, level))) {
      if (!name.startsWith("pod")) continue;
      const path = `${level}/${name}`;
      found.push({ uid: name.slice(3), path, containerIds: subdirs(join(mount, path)) });
    }
  }
  return found;
}

/** When a cgroup was created, as cAdvisor takes it (the directory's modification time); undefined if absent. */
export function cgroupCreationMs(layout: CgroupLayout, cgroupPath: string): number | undefined {
  const mount = listingMount(layout);
  if (mount === undefined) return undefined;
  try {
    return statSync(join(mount, cgroupPath === "/" ? "" : cgroupPath)).mtimeMs;
  } catch {
    return undefined;
  }
}

/** /proc/<pid>/net/dev parsed (lo, veth*, docker* left out); undefined when absent or not parseable. */
export function readNetDev(procRoot: string, pid: string): InterfaceSample[] | undefined {
  const text = read(join(procRoot, pid, "net", "dev"));
  if (text === undefined) return undefined;
  try {
    return parseNetDev(text);
  } catch {
    return undefined;
  }
}

/**
 * The node's interfaces: the kubelet's own network namespace (/proc/self/net/dev). cAdvisor reads /proc/1's for
 * the root cgroup; the kubelet runs in the host's namespace there, and here a sandbox node's kubelet runs in
 * the node's namespace, which /proc/1 is not.
 */
export function readNodeNetwork(layout: CgroupLayout): InterfaceSample[] | undefined {
  return readNetDev(layout.procRoot, "self");
}

/**
 * The network counters of a pod: /proc/<pid>/net/dev of the first process found in one of its container
 * cgroups (they share the sandbox's network namespace), as cAdvisor reads the infra container's. Undefined
 * when no process with a readable file is found.
 */
export function readPodNetwork(layout: CgroupLayout, podPath: string, containerIds: readonly string[]): InterfaceSample[] | undefined {
  const mount = listingMount(layout);
  if (mount === undefined) return undefined;
  for (const id of containerIds) {
    const pid = read(join(mount, podPath, id, "cgroup.procs"))?.split("\n")[0]?.trim();
    if (!pid) continue;
    const net = readNetDev(layout.procRoot, pid);
    if (net !== undefined) return net;
  }
  return undefined;
}
