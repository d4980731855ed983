/**
 * The object store: objects keyed by storage resource and namespace/name, one monotonically increasing
 * resourceVersion for everything, and a bounded history of changes for watch replay. A watch from a
 * resourceVersion older than the retained history is 410 Gone, like etcd after compaction.
 *
 * Stored objects are never mutated: every write stores a new object, so readers may serialize them freely.
 * Everything is synchronous; callers see writes and events in one total order.
 */
import { tooOldResourceVersion, ApiError } from "./status.ts";
import type { KubeObject } from "./types.ts";

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

export interface StoreEvent {
  readonly type: EventType;
  readonly storage: string;
  readonly rv: number;
  /** The object after the change (for DELETED: the last state, carrying the deletion's resourceVersion). */
  readonly object: KubeObject;
  /** The object before the change; undefined for ADDED. */
  readonly prev: KubeObject | undefined;
}

export type StoreListener = (ev: StoreEvent) => void;

export interface StoreOptions {
  /** How many changes are kept for watch replay; older resourceVersions get 410. */
  historyLimit?: number;
}

interface Bucket {
  objects: Map<string, KubeObject>;
  sortedKeys: string[] | undefined;
}

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace === undefined || namespace === "" ? name : `${namespace}/${name}`;
}

export class Store {
  private rv = 0;
  private readonly buckets = new Map<string, Bucket>();
  private history: StoreEvent[] = [];
  private historyStart = 0;
  /** Resource versions at or below this were compacted away. */
  private compactedRV = 0;
  private historyLimit: number;
  private readonly listeners = new Map<string, Set<StoreListener>>();
  private readonly allListeners = new Set<StoreListener>();

  constructor(options: StoreOptions = {}) {
    this.historyLimit = options.historyLimit ?? 100_000;
  }

  /** The latest resourceVersion handed out. */
  get currentRV(): number {
    return this.rv;
  }

  /** The oldest resourceVersion a watch may still start from. */
  get oldestRV(): number {
    return this.compactedRV;
  }

  setHistoryLimit(n: number): void {
    this.historyLimit = Math.max(0, n);
    this.trim();
  }

  /** Forgets all history, as an etcd compaction at the current revision does: every older watch RV is 410. */
  compact(): void {
    this.history = [];
    this.historyStart = 0;
    this.compactedRV = this.rv;
  }

  nextRV(): number {
    return ++this.rv;
  }

  private bucket(storage: string): Bucket {
    let b = this.buckets.get(storage);
    if (b === undefined) {
      b = { objects: new Map(), sortedKeys: undefined };
      this.buckets.set(storage, b);
    }
    return b;
  }

  get(storage: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.buckets.get(storage)?.objects.get(objectKey(namespace, name));
  }

  count(storage: string): number {
    return this.buckets.get(storage)?.objects.size ?? 0;
  }

  /** Objects sorted by key (namespace/name), optionally only one namespace's, optionally after a key. */
  list(storage: string, namespace?: string, afterKey?: string): KubeObject[] {
    const b = this.buckets.get(storage);
    if (b === undefined) return [];
    b.sortedKeys ??= [...b.objects.keys()].sort();
    const keys = b.sortedKeys;
    const prefix = namespace === undefined || namespace === "" ? undefined : `${namespace}/`;
    const bound = afterKey ?? prefix;
    let start = 0;
    if (bound !== undefined) {
      const strict = afterKey !== undefined;
      let lo = 0;
      let hi = keys.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const k = keys[mid] ?? "";
        if (strict ? k <= bound : k < bound) lo = mid + 1;
        else hi = mid;
      }
      start = lo;
    }
    const out: KubeObject[] = [];
    for (let i = start; i < keys.length; i++) {
      const k = keys[i] ?? "";
      if (prefix !== undefined && !k.startsWith(prefix)) break;
      const o = b.objects.get(k);
      if (o !== undefined) out.push(o);
    }
    return out;
  }

  /** Stores a new object (stamping the next resourceVersion) and emits ADDED. */
  create(storage: string, obj: KubeObject): KubeObject {
    const key = objectKey(obj.metadata.namespace, obj.metadata.name ?? "");
    const b = this.bucket(storage);
    if (b.objects.has(key)) throw new ApiError(409, "AlreadyExists", `object ${key} exists`);
    const rv = this.nextRV();
    const stored: KubeObject = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(rv) } };
    b.objects.set(key, stored);
    b.sortedKeys = undefined;
    this.emit({ type: "ADDED", storage, rv, object: stored, prev: undefined });
    return stored;
  }

  /** Replaces an existing object (stamping the next resourceVersion) and emits MODIFIED. */
  update(storage: string, obj: KubeObject): KubeObject {
    const key = objectKey(obj.metadata.namespace, obj.metadata.name ?? "");
    const b = this.bucket(storage);
    const prev = b.objects.get(key);
    if (prev === undefined) throw new ApiError(404, "NotFound", `object ${key} not found`);
    const rv = this.nextRV();
    const stored: KubeObject = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(rv) } };
    b.objects.set(key, stored);
    this.emit({ type: "MODIFIED", storage, rv, object: stored, prev });
    return stored;
  }

  /** Removes an object and emits DELETED; the returned last state carries the deletion's resourceVersion. */
  delete(storage: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = objectKey(namespace, name);
    const b = this.buckets.get(storage);
    const prev = b?.objects.get(key);
    if (b === undefined || prev === undefined) return undefined;
    b.objects.delete(key);
    b.sortedKeys = undefined;
    const rv = this.nextRV();
    const last: KubeObject = { ...prev, metadata: { ...prev.metadata, resourceVersion: String(rv) } };
    this.emit({ type: "DELETED", storage, rv, object: last, prev });
    return last;
  }

  private emit(ev: StoreEvent): void {
    this.history.push(ev);
    this.trim();
    for (const l of this.listeners.get(ev.storage) ?? []) l(ev);
    for (const l of this.allListeners) l(ev);
  }

  private trim(): void {
    const live = this.history.length - this.historyStart;
    if (live <= this.historyLimit) return;
    const drop = live - this.historyLimit;
    const last = this.history[this.historyStart + drop - 1];
    if (last !== undefined) this.compactedRV = last.rv;
    this.historyStart += drop;
    if (this.historyStart > 4096 && this.historyStart * 2 > this.history.length) {
      this.history = this.history.slice(this.historyStart);
      this.historyStart = 0;
    }
  }

  /**
   * The changes of `storage` after `fromRV`, in order. Throws 410 Gone when changes after `fromRV` have
   * been compacted away.
   */
  since(storage: string | undefined, fromRV: number): StoreEvent[] {
    if (fromRV < this.compactedRV) throw tooOldResourceVersion(fromRV, this.compactedRV + 1);
    let lo = this.historyStart;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.history[mid]?.rv ?? 0) <= fromRV) lo = mid + 1;
      else hi = mid;
    }
    const out: StoreEvent[] = [];
    for (let i = lo; i < this.history.length; i++) {
      const ev = this.history[i];
      if (ev !== undefined && (storage === undefined || ev.storage === storage)) out.push(ev);
    }
    return out;
  }

  /** Calls `fn` synchronously for every later change of `storage` (all storages when undefined). */
  subscribe(storage: string | undefined, fn: StoreListener): () => void {
    if (storage === undefined) {
      this.allListeners.add(fn);
      return () => this.allListeners.delete(fn);
    }
    let set = this.listeners.get(storage);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(storage, set);
    }
    set.add(fn);
    const s = set;
    return () => s.delete(fn);
  }

  listenerCount(): number {
    let n = this.allListeners.size;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }
}
