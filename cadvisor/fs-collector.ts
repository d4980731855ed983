/**
 * The filesystem side of the statistics, on its own slower loop (upstream's volumeStatsAggPeriod, 1 min by
 * default: walking directories costs far more than reading cgroup files):
 *
 *   figure                         source
 *   node fs                        statfs of the kubelet's root dir
 *   runtime imageFs                CRI ImageFsInfo (used bytes and inodes of the image store, as containerd
 *                                  counts its snapshots) + statfs of the mount point it names (capacity, free)
 *   container rootfs               CRI ListContainerStats writable_layer (containerd's snapshot usage, refreshed
 *                                  by it every 10 s) + statfs of its mount point
 *   container logs                 du of <podLogsDir>/<ns>_<name>_<uid>/<container> (every restart's files)
 *   pod logs (other files)         du of the pod's log directory less its containers' directories
 *   volumes                        du of <rootDir>/pods/<uid>/volumes/<plugin>/<name> + statfs of it
 *   etc-hosts                      du of <rootDir>/pods/<uid>/etc-hosts
 *
 * as upstream's CRI stats provider and volume stats calculator take them. Readers get the latest snapshot
 * from memory. Lifecycle: constructor without I/O, start(signal), close() drains the pass under way.
 */
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../src-shared/log.ts";
import { errorMessage } from "../src-shared/errors.ts";
import { PeriodicLoop } from "../src-shared/loop.ts";
import { systemClock, type Clock } from "../src-shared/clock.ts";
import { mountOf, parseMountInfo, type MountInfo } from "../src-shared/mountinfo.ts";
import type { CriServices } from "../kubelet/cri/services.ts";
import { readFsInfo, type FsInfo } from "./machine.ts";
import { diskUsage, type DiskUsage } from "./disk-usage.ts";

/** upstream's default volumeStatsAggPeriod. */
export const DEFAULT_FS_INTERVAL_MS = 60_000;

export interface VolumeUsage extends DiskUsage {
  /** The pod's volume name (its directory's name). */
  name: string;
  /** The filesystem holding it (a tmpfs of its own for secret, configMap, projected, downwardAPI). */
  fs?: FsInfo;
}

export interface PodFsUsage {
  volumes: VolumeUsage[];
  /** By container name: its log directory. */
  containerLogs: Map<string, DiskUsage>;
  /** The pod log directory's files outside its containers' directories. */
  podLogs?: DiskUsage;
  etcHosts?: DiskUsage;
}

export interface WritableLayer extends DiskUsage {
  timeMs: number;
  /** The filesystem of the runtime's snapshots (capacity, free), when statfs worked. */
  fs?: FsInfo;
  /** Its device (the mount's source), cAdvisor's `device` label. */
  device?: string;
}

export interface FsSnapshot {
  timeMs: number;
  /** The kubelet root dir's filesystem. */
  rootFs?: FsInfo;
  rootFsDevice?: string;
  /** The image store's filesystem (statfs of CRI ImageFsInfo's mount point) and what the images use on it. */
  imageFs?: { fs: FsInfo; usage?: DiskUsage; timeMs: number; device?: string };
  /** By CRI container id. */
  writableLayers: Map<string, WritableLayer>;
  /** By pod uid. */
  pods: Map<string, PodFsUsage>;
}

export interface FsCollectorOptions {
  runtime: Pick<CriServices, "runtime" | "image">;
  rootDir: string;
  podLogsDir: string;
  intervalMs?: number;
  log: Logger;
  clock?: Clock;
  /** /proc/self/mountinfo (tests). */
  mountinfoPath?: string;
}

function numberOf(v: { value: string } | null | undefined): number | undefined {
  if (v === null || v === undefined) return undefined;
  const n = Number(v.value);
  return Number.isFinite(n) ? n : undefined;
}

async function subdirs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

export class FsStatsCollector {
  private readonly o: FsCollectorOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly loop: PeriodicLoop;
  private latest: FsSnapshot | undefined;
  private passes = 0;

  constructor(o: FsCollectorOptions) {
    this.o = o;
    this.clock = o.clock ?? systemClock;
    this.log = o.log.child({ component: "fs-stats-collector" });
    this.loop = new PeriodicLoop({ name: "filesystem stats", run: (signal) => this.collect(signal), intervalMs: o.intervalMs ?? DEFAULT_FS_INTERVAL_MS, logger: this.log, clock: this.clock });
  }

  start(signal: AbortSignal): void {
    this.loop.start(signal);
  }

  async close(): Promise<void> {
    await this.loop.close();
  }

  /** The latest snapshot (undefined before the first pass). */
  snapshot(): FsSnapshot | undefined {
    return this.latest;
  }

  get passCount(): number {
    return this.passes;
  }

  /** One pass. Exported for tests. */
  async collect(signal: AbortSignal = new AbortController().signal): Promise<void> {
    const now = this.clock.now();
    const snap: FsSnapshot = { timeMs: now, writableLayers: new Map(), pods: new Map() };
    let mounts: MountInfo[] = [];
    try {
      mounts = parseMountInfo(await readFile(this.o.mountinfoPath ?? "/proc/self/mountinfo", "utf8"));
    } catch {
      // no devices then
    }
    const statfsCache = new Map<string, Promise<FsInfo | undefined>>();
    const statfs = (path: string): Promise<FsInfo | undefined> => {
      const key = mountOf(mounts, path)?.mountPoint ?? path;
      let p = statfsCache.get(key);
      if (p === undefined) statfsCache.set(key, (p = readFsInfo(path).catch(() => undefined)));
      return p;
    };
    const device = (path: string): { device?: string } => {
      const m = mountOf(mounts, path);
      return m === undefined ? {} : { device: m.source };
    };

    const rootFs = await statfs(this.o.rootDir);
    if (rootFs !== undefined) {
      snap.rootFs = rootFs;
      const d = device(rootFs.path).device;
      if (d !== undefined) snap.rootFsDevice = d;
    }
    await this.runtimeFs(snap, statfs, device, signal);
    await this.podDirs(snap, statfs, signal);
    await this.logDirs(snap, signal);
    this.latest = snap;
    this.passes++;
  }

  /** CRI ImageFsInfo and the containers' writable layers (one ListContainerStats). */
  private async runtimeFs(snap: FsSnapshot, statfs: (p: string) => Promise<FsInfo | undefined>, device: (p: string) => { device?: string }, signal: AbortSignal): Promise<void> {
    try {
      const r = await this.o.runtime.image("ImageFsInfo", {}, { signal, timeoutMs: 10_000 });
      const u = r.image_filesystems[0];
      const mount = u?.fs_id?.mountpoint;
      if (u !== undefined && mount) {
        const fs = await statfs(mount);
        if (fs !== undefined) {
          const used = numberOf(u.used_bytes);
          const inodes = numberOf(u.inodes_used);
          snap.imageFs = { fs, timeMs: Math.floor(Number(u.timestamp) / 1e6) || snap.timeMs, ...device(mount), ...(used === undefined ? {} : { usage: { usedBytes: used, inodesUsed: inodes ?? 0 } }) };
        }
      }
    } catch (err) {
      if (signal.aborted) throw err;
      this.log.debug({ err: errorMessage(err) }, "ImageFsInfo failed");
    }
    try {
      const r = await this.o.runtime.runtime("ListContainerStats", { filter: null }, { signal, timeoutMs: 10_000 });
      for (const s of r.stats) {
        const id = s.attributes?.id;
        const w = s.writable_layer;
        const used = numberOf(w?.used_bytes);
        if (!id || w === null || used === undefined) continue;
        const mount = w.fs_id?.mountpoint;
        const fs = mount ? await statfs(mount) : undefined;
        snap.writableLayers.set(id, { usedBytes: used, inodesUsed: numberOf(w.inodes_used) ?? 0, timeMs: Math.floor(Number(w.timestamp) / 1e6) || snap.timeMs, ...(mount ? device(mount) : {}), ...(fs === undefined ? {} : { fs }) });
      }
    } catch (err) {
      if (signal.aborted) throw err;
      this.log.debug({ err: errorMessage(err) }, "ListContainerStats failed");
    }
  }

  /** <rootDir>/pods/<uid>: each volume directory and etc-hosts. */
  private async podDirs(snap: FsSnapshot, statfs: (p: string) => Promise<FsInfo | undefined>, signal: AbortSignal): Promise<void> {
    const pods = join(this.o.rootDir, "pods");
    for (const uid of await subdirs(pods)) {
      const usage = this.podUsage(snap, uid);
      const volumesDir = join(pods, uid, "volumes");
      for (const plugin of await subdirs(volumesDir)) {
        for (const name of await subdirs(join(volumesDir, plugin))) {
          const path = join(volumesDir, plugin, name);
          const u = await diskUsage(path, signal);
          if (u === undefined) continue;
          const fs = await statfs(path);
          usage.volumes.push({ name, ...u, ...(fs === undefined ? {} : { fs }) });
        }
      }
      usage.volumes.sort((a, b) => (a.name < b.name ? -1 : 1));
      const hosts = await diskUsage(join(pods, uid, "etc-hosts"), signal);
      if (hosts !== undefined) usage.etcHosts = hosts;
    }
  }

  /** <podLogsDir>/<ns>_<name>_<uid>/<container>: each container's logs, and the rest of the pod's directory. */
  private async logDirs(snap: FsSnapshot, signal: AbortSignal): Promise<void> {
    for (const dir of await subdirs(this.o.podLogsDir)) {
      const uid = dir.split("_")[2];
      if (!uid) continue;
      const usage = this.podUsage(snap, uid);
      const podDir = join(this.o.podLogsDir, dir);
      const total = await diskUsage(podDir, signal);
      if (total === undefined) continue;
      const rest = { ...total };
      for (const name of await subdirs(podDir)) {
        const u = await diskUsage(join(podDir, name), signal);
        if (u === undefined) continue;
        usage.containerLogs.set(name, u);
        rest.usedBytes -= u.usedBytes;
        rest.inodesUsed -= u.inodesUsed;
      }
      usage.podLogs = { usedBytes: Math.max(0, rest.usedBytes), inodesUsed: Math.max(0, rest.inodesUsed) };
    }
  }

  private podUsage(snap: FsSnapshot, uid: string): PodFsUsage {
    let u = snap.pods.get(uid);
    if (u === undefined) snap.pods.set(uid, (u = { volumes: [], containerLogs: new Map() }));
    return u;
  }
}
