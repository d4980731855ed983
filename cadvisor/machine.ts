/**
 * Machine facts, as cAdvisor's MachineInfo/VersionInfo give them to the kubelet for the Node's capacity and
 * nodeInfo (google/cadvisor machine/info.go, machine/machine.go, utils/sysinfo; fs/fs.go for filesystems):
 *
 *   numCores        online logical CPUs (/sys/devices/system/cpu/online), not the cgroup cpuset or affinity
 *   memoryCapacity  MemTotal of /proc/meminfo, in bytes; swapCapacity likewise from SwapTotal
 *   hugePages       /sys/kernel/mm/hugepages/hugepages-<size>kB/nr_hugepages
 *   machineID       /etc/machine-id, else /var/lib/dbus/machine-id ("" when neither reads)
 *   systemUUID      /sys/class/dmi/id/product_uuid ("" when absent or unreadable, as on VMs without DMI)
 *   bootID          /proc/sys/kernel/random/boot_id
 *   kernelVersion   uname -r (os.release())
 *   osImage         PRETTY_NAME of /etc/os-release (or /usr/lib/os-release); "Linux" without it, "Unknown" unreadable
 *   architecture    GOARCH spelling (amd64, arm64…) of process.arch
 *   rootFs/imageFs  statfs of the kubelet root dir and of the image store: capacity, available, inodes
 *
 * Everything is read directly. The small files (procfs, sysfs, /etc: memory-backed or page-cached) are read
 * synchronously, as cAdvisor does: ~0.03 ms for all of them, where fs.promises costs ~0.7 ms of CPU for the
 * same reads (a thread-pool round trip and promises per open/read/close). statfs stays asynchronous so a hung
 * mount cannot stall the event loop. `systeminformation` was measured for the same facts and not used: its
 * mem() is this same /proc/meminfo read, while osInfo(), system() and cpu() fork processes (uname, dmidecode,
 * lscpu: 13-27 ms each) and do not give the values upstream reports (no PRETTY_NAME; the DMI uuid only via
 * dmidecode, which needs root).
 *
 * The parsers are pure and exported for tests; readFsInfo alone is what a status update needs each time.
 */
import { readFileSync, readdirSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { endianness, release } from "node:os";
import { dirname, join } from "node:path";
import { DeckhandError, errorMessage } from "../src-shared/errors.ts";

export interface FsInfo {
  /** The directory statfs was called on: the one asked for, or its nearest existing ancestor. */
  path: string;
  /** f_blocks × f_bsize. */
  capacityBytes: number;
  /** f_bavail × f_bsize: what unprivileged writers can still use. */
  availableBytes: number;
  /** (f_blocks − f_bfree) × f_bsize. */
  usedBytes: number;
  inodes: number;
  inodesFree: number;
  inodesUsed: number;
}

export interface HugePagesInfo {
  /** Page size in KiB, as the sysfs directory names it (2048, 1048576). */
  pageSizeKiB: number;
  numPages: number;
}

export interface MachineInfo {
  numCores: number;
  /** Bytes (MemTotal × 1024). */
  memoryCapacity: number;
  /** Bytes (SwapTotal × 1024). */
  swapCapacity: number;
  hugePages: HugePagesInfo[];
  machineID: string;
  systemUUID: string;
  bootID: string;
  kernelVersion: string;
  osImage: string;
  operatingSystem: "linux";
  architecture: string;
  /** The filesystem of the kubelet's root dir (ephemeral-storage capacity); undefined if statfs failed. */
  rootFs: FsInfo | undefined;
  /** The filesystem of the image store; undefined if statfs failed. */
  imageFs: FsInfo | undefined;
}

export interface MachineInfoOptions {
  /** The kubelet root dir whose filesystem backs ephemeral storage. Default /var/lib/kubelet. */
  rootFs?: string;
  /** The container runtime's image store. Default /var/lib/containerd. */
  imageFs?: string;
  /** Prefix for /proc, /sys, /etc and /var/lib/dbus (tests, or a host mounted elsewhere). Default "". */
  hostRoot?: string;
}

export const DEFAULT_ROOT_FS = "/var/lib/kubelet";
export const DEFAULT_IMAGE_FS = "/var/lib/containerd";

// ---------------------------------------------------------------------------------------------
// Pure parsers

/**
 * /etc/os-release as key → value. Values lose surrounding double or single quotes and the shell escapes
 * the format allows (os-release(5)); comments and blank lines are skipped; the first assignment wins.
 */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) || key in out) continue;
    let value = line.slice(eq + 1);
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) {
      value = value.slice(1, -1);
      if (q === '"') value = value.replace(/\\([$"\\`])/g, "$1");
    }
    out[key] = value;
  }
  return out;
}

/** The node's osImage from os-release text: PRETTY_NAME, or "Linux" without one (cAdvisor's getOperatingSystem). */
export function osImageFromOsRelease(text: string): string {
  return parseOsRelease(text)["PRETTY_NAME"] ?? "Linux";
}

/**
 * /proc/meminfo as key → value: "kB" values in bytes (× 1024), unit-less ones (HugePages_Total) as they are.
 */
export function parseMeminfo(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^([^:\s]+):\s+(\d+)(?:\s+(kB))?\s*$/.exec(line);
    if (!m?.[1] || m[2] === undefined) continue;
    out[m[1]] = Number(m[2]) * (m[3] ? 1024 : 1);
  }
  return out;
}

/** A kernel CPU list ("0-3,8,10-11\n") as the CPUs it names. */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(",")) {
    if (part === "") continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m?.[1]) throw new DeckhandError("InvalidArgument", `cpu list element ${JSON.stringify(part)} is not N or N-M`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    for (let cpu = from; cpu <= to; cpu++) cpus.push(cpu);
  }
  return cpus;
}

/** The page size, in KiB, a /sys/kernel/mm/hugepages entry names ("hugepages-2048kB" → 2048). */
export function parseHugePagesDirName(name: string): number | undefined {
  const m = /^hugepages-(\d+)kB$/.exec(name);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

const GOARCH: Readonly<Record<string, string>> = {
  x64: "amd64",
  arm64: "arm64",
  ia32: "386",
  arm: "arm",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
  mips: "mips",
  mipsel: "mipsle",
};

/** Node's process.arch in Go's GOARCH spelling (what kubernetes.io/arch and nodeInfo.architecture carry). */
export function goArch(arch: string, byteOrder: "BE" | "LE" = endianness()): string {
  if (arch === "ppc64") return byteOrder === "LE" ? "ppc64le" : "ppc64";
  return GOARCH[arch] ?? arch;
}

// ---------------------------------------------------------------------------------------------
// Reads

function readTrimmed(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
}

/**
 * statfs of a directory, or of its nearest existing ancestor when it does not exist yet (a fresh node has
 * no /var/lib/containerd until containerd starts; the directory will live on that ancestor's filesystem).
 */
export async function readFsInfo(path: string): Promise<FsInfo> {
  let dir = path;
  for (;;) {
    try {
      const s = await statfs(dir);
      return {
        path: dir,
        capacityBytes: s.blocks * s.bsize,
        availableBytes: s.bavail * s.bsize,
        usedBytes: (s.blocks - s.bfree) * s.bsize,
        inodes: s.files,
        inodesFree: s.ffree,
        inodesUsed: s.files - s.ffree,
      };
    } catch (err) {
      const parent = dirname(dir);
      if ((err as NodeJS.ErrnoException).code !== "ENOENT" || parent === dir) {
        throw new DeckhandError("Unavailable", `statfs ${dir}: ${errorMessage(err)}`, { cause: err });
      }
      dir = parent;
    }
  }
}

function readNumCores(root: string): number {
  const online = readTrimmed(join(root, "/sys/devices/system/cpu/online"));
  if (online !== undefined) {
    const n = parseCpuList(online).length;
    if (n > 0) return n;
  }
  // No sysfs: count the cpuN lines of /proc/stat, which are the online CPUs too.
  const stat = readTrimmed(join(root, "/proc/stat"));
  const n = stat?.split("\n").filter((l) => /^cpu\d+\s/.test(l)).length ?? 0;
  if (n === 0) throw new DeckhandError("Unavailable", "no online CPUs found in /sys/devices/system/cpu/online or /proc/stat");
  return n;
}

function readHugePages(root: string): HugePagesInfo[] {
  const dir = join(root, "/sys/kernel/mm/hugepages");
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return []; // no hugetlbfs support: no hugepages-* resources, as cAdvisor
  }
  const out: HugePagesInfo[] = [];
  for (const name of names) {
    const pageSizeKiB = parseHugePagesDirName(name);
    if (pageSizeKiB === undefined) continue;
    const nr = readTrimmed(join(dir, name, "nr_hugepages"));
    const numPages = nr === undefined ? NaN : Number(nr);
    if (Number.isInteger(numPages)) out.push({ pageSizeKiB, numPages });
  }
  return out.sort((a, b) => a.pageSizeKiB - b.pageSizeKiB);
}

function readOsImage(root: string): string {
  const text = readTrimmed(join(root, "/etc/os-release")) ?? readTrimmed(join(root, "/usr/lib/os-release"));
  return text === undefined ? "Unknown" : osImageFromOsRelease(text);
}

async function readOptionalFs(path: string): Promise<FsInfo | undefined> {
  try {
    return await readFsInfo(path);
  } catch {
    return undefined;
  }
}

/**
 * All machine facts at once. Throws Unavailable only when the essentials (memory, CPUs) cannot be read;
 * the identifiers degrade to "" as cAdvisor's do, and a filesystem that cannot be statfs'd is undefined.
 * Cost on a 2-vCPU Debian 12 VM, 1000 calls: p50 0.09 ms, p99 1.1 ms wall, 0.14 ms CPU per call (the first
 * call ~4 ms); readFsInfo for two paths: p50 0.03 ms, 0.03 ms CPU.
 */
export async function readMachineInfo(options: MachineInfoOptions = {}): Promise<MachineInfo> {
  const root = options.hostRoot ?? "";
  // The two statfs calls run on the thread pool while the small files are read.
  const filesystems = Promise.all([readOptionalFs(options.rootFs ?? DEFAULT_ROOT_FS), readOptionalFs(options.imageFs ?? DEFAULT_IMAGE_FS)]);
  let meminfo: string;
  try {
    meminfo = readFileSync(join(root, "/proc/meminfo"), "utf8");
  } catch (err) {
    throw new DeckhandError("Unavailable", `reading /proc/meminfo: ${errorMessage(err)}`, { cause: err });
  }
  const mem = parseMeminfo(meminfo);
  const memoryCapacity = mem["MemTotal"];
  if (memoryCapacity === undefined) throw new DeckhandError("Unavailable", "no MemTotal in /proc/meminfo");
  const numCores = readNumCores(root);
  const hugePages = readHugePages(root);
  const machineID = readTrimmed(join(root, "/etc/machine-id")) || (readTrimmed(join(root, "/var/lib/dbus/machine-id")) ?? "");
  const systemUUID = readTrimmed(join(root, "/sys/class/dmi/id/product_uuid")) ?? "";
  const bootID = readTrimmed(join(root, "/proc/sys/kernel/random/boot_id")) ?? "";
  const osImage = readOsImage(root);
  const [rootFs, imageFs] = await filesystems;
  return {
    numCores,
    memoryCapacity,
    swapCapacity: mem["SwapTotal"] ?? 0,
    hugePages,
    machineID,
    systemUUID,
    bootID,
    kernelVersion: release(),
    osImage,
    operatingSystem: "linux",
    architecture: goArch(process.arch),
    rootFs,
    imageFs,
  };
}
