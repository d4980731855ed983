/**
 * A list+watch cache of one kind of object, as client-go's reflector and informer: list, then watch from the
 * list's resourceVersion with bookmarks; on 410 Gone relist (and deliver the difference as add/update/delete);
 * on any other failure keep the cache, back off (800 ms doubling to 30 s, with jitter) and watch again from
 * the last resourceVersion seen. Handlers run after the cache is updated, in event order.
 */
import type { KubernetesObject, KubernetesListObject } from "@kubernetes/client-node";
import { setTimeout as sleep } from "node:timers/promises";
import { Backoff } from "../backoff.ts";
import type { Logger } from "../log.ts";
import { errorMessage } from "../errors.ts";
import { isApiError, resourcePath, ApiError, type ApiStatus, type KubeClient, type ResourceRef } from "./client.ts";

export interface InformerHandler<T> {
  added?(object: T): void;
  updated?(previous: T, object: T): void;
  deleted?(object: T): void;
}

export interface InformerOptions {
  client: KubeClient;
  /** The collection to watch: group, version, resource and (optionally) namespace. */
  resource: Omit<ResourceRef, "name" | "subresource">;
  labelSelector?: string;
  fieldSelector?: string;
  logger?: Logger;
  /** Server-side watch timeout range, seconds; default 300-600 as client-go picks. */
  watchTimeoutSeconds?: [number, number];
  backoff?: { initialMs: number; maxMs: number };
}

/** `namespace/name`, or `name` for cluster-scoped objects. */
export function objectKey(object: KubernetesObject): string {
  const ns = object.metadata?.namespace;
  const name = object.metadata?.name ?? "";
  return ns ? `${ns}/${name}` : name;
}

export class Informer<T extends KubernetesObject> {
  private readonly options: InformerOptions;
  private readonly cache = new Map<string, T>();
  private readonly handlers: InformerHandler<T>[] = [];
  private readonly log: Logger | undefined;
  private readonly backoff: Backoff;
  private resourceVersion = "";
  private hasSynced = false;
  private syncWaiters: (() => void)[] = [];
  private loop: Promise<void> | undefined;
  private readonly stop = new AbortController();
  /** How many times the informer listed: 1 plus one per relist (after 410 Gone). */
  lists = 0;

  constructor(options: InformerOptions) {
    this.options = options;
    this.log = options.logger?.child({ component: "informer", resource: options.resource.resource });
    this.backoff = new Backoff({ initialMs: options.backoff?.initialMs ?? 800, maxMs: options.backoff?.maxMs ?? 30_000, jitter: 0.1 });
  }

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  off(handler: InformerHandler<T>): void {
    const i = this.handlers.indexOf(handler);
    if (i >= 0) this.handlers.splice(i, 1);
  }

  start(signal: AbortSignal): void {
    if (this.loop) return;
    signal.addEventListener("abort", () => this.stop.abort(), { once: true });
    if (signal.aborted) this.stop.abort();
    this.loop = this.run();
  }

  /** Stops watching and waits for the loop to end. The cache stays readable. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
  }

  get synced(): boolean {
    return this.hasSynced;
  }

  /** Resolves once the first list has filled the cache. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.hasSynced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.syncWaiters.push(resolve);
      signal?.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
    });
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  /** The resourceVersion the cache is at. */
  get lastResourceVersion(): string {
    return this.resourceVersion;
  }

  private emit(kind: "added" | "deleted", object: T): void;
  private emit(kind: "updated", object: T, previous: T): void;
  private emit(kind: keyof InformerHandler<T>, object: T, previous?: T): void {
    for (const h of this.handlers) {
      try {
        if (kind === "updated" && previous) h.updated?.(previous, object);
        else if (kind === "added") h.added?.(object);
        else if (kind === "deleted") h.deleted?.(object);
      } catch (err) {
        this.log?.error({ err: errorMessage(err) }, "informer handler failed");
      }
    }
  }

  private upsert(object: T): void {
    const key = objectKey(object);
    const previous = this.cache.get(key);
    this.cache.set(key, object);
    if (previous) this.emit("updated", object, previous);
    else this.emit("added", object);
  }

  private remove(object: T): void {
    const key = objectKey(object);
    const previous = this.cache.get(key);
    this.cache.delete(key);
    this.emit("deleted", previous ?? object);
  }

  /** A full list: the cache becomes exactly the list, the difference delivered as events. */
  private async relist(): Promise<void> {
    const { client, resource, labelSelector, fieldSelector } = this.options;
    const list = await client.request<KubernetesListObject<T>>("GET", resourcePath(resource), {
      query: { labelSelector, fieldSelector },
      signal: this.stop.signal,
    });
    this.lists++;
    const seen = new Set<string>();
    for (const item of list.items) {
      seen.add(objectKey(item));
      const previous = this.cache.get(objectKey(item));
      if (previous?.metadata?.resourceVersion !== item.metadata?.resourceVersion || !previous) this.upsert(item);
    }
    for (const [key, object] of [...this.cache]) if (!seen.has(key)) this.remove(object);
    this.resourceVersion = list.metadata?.resourceVersion ?? "";
    if (!this.hasSynced) {
      this.hasSynced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private async watchOnce(): Promise<"relist" | "rewatch"> {
    const { client, resource, labelSelector, fieldSelector } = this.options;
    const [lo, hi] = this.options.watchTimeoutSeconds ?? [300, 600];
    const timeoutSeconds = Math.floor(lo + Math.random() * (hi - lo));
    const events = client.watch<T>(
      resourcePath(resource),
      { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, labelSelector, fieldSelector, timeoutSeconds },
      this.stop.signal,
    );
    for await (const event of events) {
      switch (event.type) {
        case "ADDED":
        case "MODIFIED":
          this.upsert(event.object);
          break;
        case "DELETED":
          this.remove(event.object);
          break;
        case "BOOKMARK":
          break;
        case "ERROR": {
          const status = event.object as unknown as ApiStatus;
          if (status.code === 410) return "relist";
          throw new ApiError(status.code ?? 500, "WATCH", resourcePath(resource), status, "");
        }
      }
      const rv = event.object.metadata?.resourceVersion;
      if (rv) this.resourceVersion = rv;
      this.backoff.reset();
    }
    return "rewatch";
  }

  private async run(): Promise<void> {
    let needList = true;
    while (!this.stop.signal.aborted) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        const next = await this.watchOnce();
        if (next === "relist") {
          this.log?.info({ resourceVersion: this.resourceVersion }, "watch expired (410 Gone); relisting");
          needList = true;
        }
      } catch (err) {
        if (this.stop.signal.aborted) break;
        if (isApiError(err, 410)) {
          needList = true;
          continue;
        }
        const delay = this.backoff.next();
        this.log?.warn({ err: errorMessage(err), retryInMs: Math.round(delay) }, needList ? "list failed" : "watch failed");
        await sleep(delay, undefined, { signal: this.stop.signal }).catch(() => undefined);
      }
    }
  }
}
