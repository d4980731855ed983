/**
 * Image garbage collection, as upstream's pkg/kubelet/images/image_gc_manager.go:
 *
 * - every pass (ImageGCPeriod, 5 min) the images are listed and each one's first-detected time and last-used
 *   time recorded (an image is used while any container, running or not, was created from it; the sandbox
 *   image is always in use, as containerd 1.6 does not report `pinned`);
 * - images unused for longer than `imageMaximumGCAge` (0: never) are removed;
 * - when the image filesystem is at or above `imageGCHighThresholdPercent` used, unused images are removed,
 *   least recently used first (then first detected), until usage is back to `imageGCLowThresholdPercent`;
 *   an image detected less than `imageMinimumGCAge` ago, in use, or pinned is never removed. Not freeing
 *   enough gives upstream's Warning event `ImageGCFailed`
 *   ("Failed to garbage collect required amount of images. Attempted to free N bytes, but only found M bytes
 *   eligible to free.");
 * - `deleteUnusedImages` (the eviction manager's node-level reclaim) removes every unused image old enough.
 *
 * Deckhand's difference: when a pass under the high threshold skipped images only because they were too
 * young, the next pass comes when the youngest of them is old enough, not 5 minutes later.
 *
 * Lifecycle: the constructor does no I/O; start(signal); close() waits for the pass under way.
 */
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import { PeriodicLoop } from "../../src-shared/loop.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import type { CriServices } from "../cri/services.ts";

/** upstream's ImageGCPeriod. */
export const IMAGE_GC_PERIOD_MS = 5 * 60_000;

export interface ImageGCPolicy {
  highThresholdPercent: number;
  lowThresholdPercent: number;
  minAgeMs: number;
  /** 0: no maximum. */
  maxAgeMs: number;
}

/** An image as the policy sees it. */
export interface ImageRecord {
  id: string;
  tags: readonly string[];
  sizeBytes: number;
  pinned: boolean;
  firstDetectedMs: number;
  lastUsedMs: number;
  inUse: boolean;
}

export interface FsUsage {
  capacityBytes: number;
  availableBytes: number;
}

/**
 * The images freeSpace removes to free `bytesToFree`, in order: unused, not pinned, first detected at or before
 * `freeTime − minAge`; least recently used first, then first detected. Also returns the bytes eligible and the
 * earliest time a skipped-for-age image becomes eligible. Pure.
 */
export function imagesToFree(images: readonly ImageRecord[], bytesToFree: number, freeTimeMs: number, minAgeMs: number): { remove: ImageRecord[]; freed: number; youngUntil: number | undefined } {
  const candidates = images.filter((i) => !i.inUse && !i.pinned).sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.firstDetectedMs - b.firstDetectedMs);
  const remove: ImageRecord[] = [];
  let freed = 0;
  let youngUntil: number | undefined;
  for (const i of candidates) {
    if (freed >= bytesToFree) break;
    if (freeTimeMs - i.firstDetectedMs < minAgeMs) {
      const at = i.firstDetectedMs + minAgeMs;
      youngUntil = youngUntil === undefined ? at : Math.min(youngUntil, at);
      continue;
    }
    remove.push(i);
    freed += i.sizeBytes;
  }
  return { remove, freed, youngUntil };
}

/** freeOldImages: unused images whose last use is more than maxAge ago (and old enough). Pure. */
export function imagesTooOld(images: readonly ImageRecord[], nowMs: number, policy: ImageGCPolicy): ImageRecord[] {
  if (policy.maxAgeMs <= 0) return [];
  return images.filter((i) => !i.inUse && !i.pinned && nowMs - i.lastUsedMs > policy.maxAgeMs && nowMs - i.firstDetectedMs >= policy.minAgeMs);
}

/** The bytes to free to get from the current usage back to the low threshold, or 0 below the high one. Pure. */
export function bytesToFree(fs: FsUsage, policy: ImageGCPolicy): number {
  if (fs.capacityBytes <= 0) return 0;
  const usagePercent = 100 - Math.trunc((fs.availableBytes * 100) / fs.capacityBytes);
  if (usagePercent < policy.highThresholdPercent) return 0;
  return Math.max(0, Math.trunc((fs.capacityBytes * (100 - policy.lowThresholdPercent)) / 100) - fs.availableBytes);
}

export interface ImageGCOptions {
  runtime: CriServices;
  policy: ImageGCPolicy;
  /** The image filesystem's capacity and free space (statfs of the image store). */
  imageFs: () => Promise<FsUsage | undefined>;
  /** Told of a failure to free enough (upstream's ImageGCFailed event on the node). */
  onFailure?: (message: string) => void;
  logger: Logger;
  clock?: Clock;
  periodMs?: number;
}

export class ImageGC {
  private readonly o: ImageGCOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly loop: PeriodicLoop;
  private readonly records = new Map<string, { firstDetectedMs: number; lastUsedMs: number }>();
  private sandboxImage: string | undefined;
  /** Images removed (tests, metrics). */
  removed = 0;

  constructor(options: ImageGCOptions) {
    this.o = options;
    this.log = options.logger.child({ component: "image-gc" });
    this.clock = options.clock ?? systemClock;
    this.loop = new PeriodicLoop({
      name: "image GC",
      intervalMs: options.periodMs ?? IMAGE_GC_PERIOD_MS,
      run: (signal) => this.garbageCollect(signal),
      logger: this.log,
      clock: this.clock,
    });
  }

  start(signal: AbortSignal): void {
    this.loop.start(signal);
  }

  close(): Promise<void> {
    return this.loop.close();
  }

  /** The images with their times, recorded now (upstream's detectImages). */
  async detectImages(signal?: AbortSignal): Promise<ImageRecord[]> {
    const opts = signal ? { signal } : {};
    const now = this.clock.now();
    const [{ images }, { containers }] = await Promise.all([this.o.runtime.image("ListImages", { filter: null }, opts), this.o.runtime.runtime("ListContainers", {}, opts)]);
    this.sandboxImage ??= await this.readSandboxImage(signal);
    const used = new Set<string>();
    for (const c of containers) {
      if (c.image_ref) used.add(c.image_ref);
      if (c.image?.image) used.add(c.image.image);
    }
    if (this.sandboxImage) used.add(this.sandboxImage);
    const seen = new Set<string>();
    const out: ImageRecord[] = [];
    for (const i of images) {
      seen.add(i.id);
      const inUse = used.has(i.id) || i.repo_tags.some((t) => used.has(t)) || i.repo_digests.some((d) => used.has(d));
      const r = this.records.get(i.id) ?? { firstDetectedMs: now, lastUsedMs: now };
      if (inUse) r.lastUsedMs = now;
      this.records.set(i.id, r);
      out.push({ id: i.id, tags: i.repo_tags, sizeBytes: Number(i.size), pinned: i.pinned, firstDetectedMs: r.firstDetectedMs, lastUsedMs: r.lastUsedMs, inUse });
    }
    for (const id of this.records.keys()) if (!seen.has(id)) this.records.delete(id);
    return out;
  }

  /** containerd's sandbox image, from its verbose status (config.sandboxImage); undefined if not said. */
  private async readSandboxImage(signal?: AbortSignal): Promise<string | undefined> {
    try {
      const status = await this.o.runtime.runtime("Status", { verbose: true }, signal ? { signal } : {});
      const config = (status.info as Record<string, string> | undefined)?.["config"];
      const image = config ? (JSON.parse(config) as { sandboxImage?: string }).sandboxImage : undefined;
      return image || undefined;
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, "could not read the runtime's sandbox image");
      return undefined;
    }
  }

  /** One pass; returns when the next should run (undefined: the period). */
  async garbageCollect(signal?: AbortSignal): Promise<number | undefined> {
    let images = await this.detectImages(signal);
    const now = this.clock.now();
    const old = imagesTooOld(images, now, this.o.policy);
    if (old.length > 0) {
      await this.remove(old, signal);
      images = images.filter((i) => !old.includes(i));
    }
    const fs = await this.o.imageFs();
    if (!fs) return undefined;
    const want = bytesToFree(fs, this.o.policy);
    if (want <= 0) return undefined;
    const { remove, freed, youngUntil } = imagesToFree(images, want, now, this.o.policy.minAgeMs);
    await this.remove(remove, signal);
    if (freed < want) {
      const message = `Failed to garbage collect required amount of images. Attempted to free ${want} bytes, but only found ${freed} bytes eligible to free.`;
      this.log.warn(message);
      this.o.onFailure?.(message);
    }
    if (youngUntil !== undefined && freed < want) return Math.max(1000, Math.min(this.o.periodMs ?? IMAGE_GC_PERIOD_MS, youngUntil - now));
    return undefined;
  }

  /** Every unused image old enough (the eviction manager's node-level reclaim). */
  async deleteUnusedImages(signal?: AbortSignal): Promise<void> {
    const images = await this.detectImages(signal);
    const { remove } = imagesToFree(images, Number.POSITIVE_INFINITY, this.clock.now(), this.o.policy.minAgeMs);
    await this.remove(remove, signal);
  }

  private async remove(images: readonly ImageRecord[], signal?: AbortSignal): Promise<void> {
    for (const i of images) {
      try {
        await this.o.runtime.image("RemoveImage", { image: { image: i.id } }, signal ? { signal } : {});
        this.records.delete(i.id);
        this.removed++;
        this.log.info({ image: i.id, tags: i.tags, sizeBytes: i.sizeBytes }, "removed unused image");
      } catch (err) {
        if (signal?.aborted) throw err;
        this.log.warn({ image: i.id, err: errorMessage(err) }, "could not remove an image");
      }
    }
  }
}
