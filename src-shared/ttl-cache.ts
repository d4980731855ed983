/**
 * A map whose entries expire: each value is kept for the TTL given when it was set (upstream's
 * k8s.io/apimachinery cache.LRUExpireCache as the webhook authenticator and authorizer use it, with a size
 * bound: the oldest entry goes first once `maxEntries` is reached).
 */
import { systemClock, type Clock } from "./clock.ts";

export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();
  private readonly clock: Pick<Clock, "now">;
  private readonly maxEntries: number;

  constructor(options: { clock?: Pick<Clock, "now">; maxEntries?: number } = {}) {
    this.clock = options.clock ?? systemClock;
    this.maxEntries = options.maxEntries ?? 4096;
  }

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (e.expires <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  /** Keeps `value` for `ttlMs` (nothing is kept for a TTL of 0 or less). */
  set(key: string, value: V, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expires: this.clock.now() + ttlMs });
  }

  get size(): number {
    return this.entries.size;
  }
}
