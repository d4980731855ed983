/**
 * Container log rotation as upstream's container log manager (pkg/kubelet/logs/container_log_manager.go): every
 * `containerLogMonitorInterval`, for each running container (CRI ListContainers, its log path from
 * ContainerStatus), once its log reaches `containerLogMaxSize`: leftovers of an interrupted compression go,
 * the oldest rotated files go so that at most `containerLogMaxFiles - 2` remain, those left are gzipped
 * (`<log>.<time>.gz`), then the log is renamed `<log>.<YYYYMMDD-hhmmss>` and the runtime told to reopen it
 * (CRI ReopenContainerLog; on failure the rename is undone). So a container keeps at most
 * `containerLogMaxFiles` files: the live one, the last rotated one as it was, older ones compressed.
 * Containers are handled `containerLogMaxWorkers` at a time.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { glob, rename, rm, stat } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import { PeriodicLoop } from "../../src-shared/loop.ts";
import { forEachConcurrently } from "../../src-shared/concurrency.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import type { RuntimeService } from "../cri/services.ts";

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
  private readonly o: { runtime: RuntimeService; policy: LogRotationPolicy; logger: Logger; clock: Clock };
  private readonly log: Logger;
  private readonly loop: PeriodicLoop;

  constructor(o: { runtime: RuntimeService; policy: LogRotationPolicy; logger: Logger; clock?: Clock }) {
    this.o = { ...o, clock: o.clock ?? systemClock };
    this.log = o.logger.child({ component: "container-log-manager" });
    this.loop = new PeriodicLoop({ name: "container log rotation", intervalMs: o.policy.intervalMs, run: (s) => this.rotateLogs(s), logger: this.log, clock: this.o.clock });
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
