/**
 * A tiny controller runtime: store changes enqueue keys; a batch is reconciled on the next macrotask, so
 * controllers never write from inside another write, and a burst of changes is handled once.
 */
import type { Logger } from "pino";
import type { Api } from "../api.ts";
import type { StoreEvent } from "../store.ts";

export abstract class Controller {
  protected readonly api: Api;
  protected readonly log: Logger;
  private readonly pending = new Set<string>();
  private scheduled: NodeJS.Immediate | undefined;
  private unsubscribe: (() => void) | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(api: Api, log: Logger) {
    this.api = api;
    this.log = log;
  }

  /** Storages whose changes this controller looks at. */
  protected abstract readonly watches: readonly string[];
  /** Keys to reconcile for a change. */
  protected abstract keysFor(ev: StoreEvent): string[];
  /** Keys to reconcile at start. */
  protected abstract initialKeys(): string[];
  protected abstract reconcile(key: string): void;

  start(signal?: AbortSignal): void {
    if (this.running) return;
    this.running = true;
    const storages = new Set(this.watches);
    this.unsubscribe = this.api.store.subscribe(undefined, (ev) => {
      if (!storages.has(ev.storage)) return;
      for (const k of this.keysFor(ev)) this.enqueue(k);
    });
    for (const k of this.initialKeys()) this.enqueue(k);
    signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  enqueue(key: string): void {
    if (!this.running) return;
    this.pending.add(key);
    this.scheduled ??= setImmediate(() => this.drain());
  }

  /** Reconciles again after `ms` (for work that waits on time or on other objects). */
  protected retryLater(key: string, ms: number): void {
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.enqueue(key);
    }, ms);
    this.retryTimer.unref();
  }

  private drain(): void {
    this.scheduled = undefined;
    const keys = [...this.pending];
    this.pending.clear();
    for (const k of keys) {
      if (!this.running) return;
      try {
        this.reconcile(k);
      } catch (e) {
        this.log.warn({ err: e, key: k }, "reconcile failed; retrying");
        this.retryLater(k, 500);
      }
    }
  }

  close(): void {
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.pending.clear();
  }
}

export function nsName(ns: string | undefined, name: string | undefined): string {
  return `${ns ?? ""}/${name ?? ""}`;
}

export function splitKey(key: string): [string, string] {
  const i = key.indexOf("/");
  return [key.slice(0, i), key.slice(i + 1)];
}
