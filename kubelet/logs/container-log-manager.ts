/**
 * Container log rotation as upstream's container log manager (pkg/kubelet/logs/container_log_manager.go): every
 * `containerLogMonitorInterval`, for each running container (CRI ListContainers, its log path from
 * ContainerStatus), once its log reaches `containerLogMaxSize`: leftovers of an interrupted compression go,
 * the oldest rotated files go so that at most `containerLogMaxFiles - 2` remain, those left are gzipped
 * (`<log>.<time>.gz`), then the log is renamed `<log>.<YYYYMMDD-hhmmss>` and the runtime told to reopen it
 * (CRI ReopenContainerLog; on failure the rename is undone). So a container keeps at most
 * `containerLogMaxFiles` files: the live one, the last rotated one as it was, older ones compressed.
 * Containers are handled `containerLogMaxWorkers` at a time.
 *
 * The same pass keeps the legacy symlinks log shippers read, `/var/log/containers/<pod>_<namespace>_<container>-
 * <container id>.log` → the container's log: made for every container the runtime holds, removed once their
 * container is gone. Deliberate difference: upstream makes the link right after CreateContainer; here it
 * appears within one `containerLogMonitorInterval` (the file it points to is complete from its start).
 */
import { createReadStream, createWriteStream } from "node:fs";
import { glob, mkdir, readdir, readlink, rename, rm, stat, symlink } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import { PeriodicLoop } from "../../src-shared/loop.ts";
import { forEachConcurrently } from "../../src-shared/concurrency.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import type { RuntimeService } from "../cri/services.ts";
import { CONTAINER_NAME_LABEL, CONTAINER_RESTART_COUNT_ANNOTATION, POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL } from "../runtime/labels.ts";

export const LEGACY_CONTAINER_LOGS_DIR = "/var/log/containers";

/**
 * The symlinks there should be for the runtime's containers (name → target), and the existing links to
 * remove (their container is gone); pure. Containers without the kubelet's labels are left alone.
 */
export function planSymlinks(
  containers: readonly { id: string; labels: Readonly<Record<string, string>>; annotations: Readonly<Record<string, string>> }[],
  existing: readonly string[],
  podLogsDir: string,
): { want: Map<string, string>; remove: string[] } {
  const want = new Map<string, string>();
  for (const c of containers) {
    const pod = c.labels[POD_NAME_LABEL];
    const ns = c.labels[POD_NAMESPACE_LABEL];
    const uid = c.labels[POD_UID_LABEL];
    const name = c.labels[CONTAINER_NAME_LABEL];
    if (!pod || !ns || !uid || !name) continue;
    const restarts = c.annotations[CONTAINER_RESTART_COUNT_ANNOTATION] ?? "0";
    want.set(`${pod}_${ns}_${name}-${c.id}.log`, join(podLogsDir, `${ns}_${pod}_${uid}`, name, `${restarts}.log`));
  }
  const ids = new Set(containers.map((c) => c.id));
  const remove = existing.filter((f) => {
    const id = /-([0-9a-f]{64})\.log$/.exec(f)?.[1];
    return id !== undefined && !ids.has(id) && !want.has(f);
  });
  return { want, remove };
}

const COMPRESS_SUFFIX = ".gz";
const TMP_SUFFIX = ".tmp";

export interface LogRotationPolicy {
  maxSizeBytes: number;
  maxFiles: number;
  workers: number;
  intervalMs: number;
}

/** Go's time.Format("20060102-150405") in local time, as upstream names rotated files. */
export function rotationTimestamp(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, "0");
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/**
 * Of a log's rotated files (`<log>.*`): what to delete (temporary files, uncompressed files whose compressed
 * copy exists, the oldest beyond `maxFiles - 2`) and what to compress; pure, names only.
 */
export function planRotation(rotated: readonly string[], maxFiles: number): { remove: string[]; compress: string[] } {
  const remove: string[] = [];
  const set = new Set(rotated);
  let kept = rotated.filter((f) => {
    if (f.endsWith(TMP_SUFFIX)) {
      remove.push(f);
      return false;
    }
    if (!f.endsWith(COMPRESS_SUFFIX) && set.has(`${f}${COMPRESS_SUFFIX}`)) {
      remove.push(f);
      return false;
    }
    return true;
  });
  // The timestamp sorts as text; "<log>.<ts>" and "<log>.<ts>.gz" of different times compare by the time.
  kept = [...kept].sort();
  const maxRotated = Math.max(0, maxFiles - 2);
  if (kept.length > maxRotated) remove.push(...kept.splice(0, kept.length - maxRotated));
  return { remove, compress: kept.filter((f) => !f.endsWith(COMPRESS_SUFFIX)) };
}

export class ContainerLogManager {
  private readonly o: { runtime: RuntimeService; policy: LogRotationPolicy; logger: Logger; clock: Clock; podLogsDir: string; symlinkDir: string };
  private readonly log: Logger;
  private readonly loop: PeriodicLoop;

  constructor(o: { runtime: RuntimeService; policy: LogRotationPolicy; logger: Logger; clock?: Clock; podLogsDir: string; symlinkDir?: string }) {
    this.o = { ...o, clock: o.clock ?? systemClock, symlinkDir: o.symlinkDir ?? LEGACY_CONTAINER_LOGS_DIR };
    this.log = o.logger.child({ component: "container-log-manager" });
    this.loop = new PeriodicLoop({ name: "container log rotation", intervalMs: o.policy.intervalMs, run: async (s) => {
        await this.rotateLogs(s);
        await this.syncSymlinks(s);
      },
      logger: this.log, clock: this.o.clock });
  }

  start(signal: AbortSignal): void {
    this.loop.start(signal);
  }

  close(): Promise<void> {
    return this.loop.close();
  }

  /** One pass over the running containers. */
  async rotateLogs(signal: AbortSignal): Promise<void> {
    const { containers } = await this.o.runtime.runtime("ListContainers", { filter: { state: { state: "CONTAINER_RUNNING" } } }, { signal });
    await forEachConcurrently(containers, this.o.policy.workers, async (c) => {
      try {
        const st = await this.o.runtime.runtime("ContainerStatus", { container_id: c.id, verbose: false }, { signal });
        const path = st.status?.log_path ?? "";
        if (path === "" || st.status?.state !== "CONTAINER_RUNNING") return;
        const size = (await stat(path).catch(() => undefined))?.size;
        if (size === undefined || size < this.o.policy.maxSizeBytes) return;
        await this.rotate(c.id, path, signal);
      } catch (err) {
        if (!signal.aborted) this.log.warn({ containerId: c.id, err: errorMessage(err) }, "failed to rotate the container log");
      }
    });
  }

  /** Makes the missing legacy symlinks and removes those of containers that are gone. */
  async syncSymlinks(signal: AbortSignal): Promise<void> {
    const { containers } = await this.o.runtime.runtime("ListContainers", { filter: null }, { signal });
    const dir = this.o.symlinkDir;
    await mkdir(dir, { recursive: true });
    const existing = (await readdir(dir)).filter((f) => f.endsWith(".log"));
    const { want, remove } = planSymlinks(containers, existing, this.o.podLogsDir);
    for (const f of remove) await rm(join(dir, f), { force: true });
    const have = new Set(existing);
    for (const [name, target] of want) {
      const path = join(dir, name);
      if (have.has(name) && (await readlink(path).catch(() => "")) === target) continue;
      await rm(path, { force: true });
      await symlink(target, path).catch((err: unknown) => this.log.warn({ path, target, err: errorMessage(err) }, "failed to create the container log symlink"));
    }
  }

  private async rotate(id: string, path: string, signal: AbortSignal): Promise<void> {
    const rotated: string[] = [];
    for await (const f of glob(`${path.replace(/[*?[\]{}]/g, "\\$&")}.*`)) rotated.push(f);
    const plan = planRotation(rotated, this.o.policy.maxFiles);
    for (const f of plan.remove) await rm(f, { force: true });
    for (const f of plan.compress) {
      const tmp = `${f}${COMPRESS_SUFFIX}${TMP_SUFFIX}`;
      await pipeline(createReadStream(f), createGzip(), createWriteStream(tmp), { signal });
      await rename(tmp, `${f}${COMPRESS_SUFFIX}`);
      await rm(f, { force: true });
    }
    const target = `${path}.${rotationTimestamp(this.o.clock.now())}`;
    await rename(path, target);
    try {
      await this.o.runtime.runtime("ReopenContainerLog", { container_id: id }, { signal });
    } catch (err) {
      // The runtime still writes the renamed file: give it its name back.
      await rename(target, path).catch(() => undefined);
      throw err;
    }
    this.log.debug({ containerId: id, path, rotatedTo: target }, "rotated the container log");
  }
}
