/**
 * The Pod Lifecycle Event Generator, upstream's GenericPLEG: every second it lists sandboxes and containers
 * from CRI (two calls for the whole node), compares each pod's state with the previous relist and tells the
 * pod workers which pods changed. Its health (last relist within 3 minutes) feeds the Node's Ready condition.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../src-shared/log.ts";
import { errorMessage } from "../src-shared/errors.ts";
import type { CriClient } from "./cri/client.ts";
import { POD_UID_LABEL, POD_NAME_LABEL, POD_NAMESPACE_LABEL, CONTAINER_NAME_LABEL } from "./runtime/labels.ts";

export const PLEG_RELIST_PERIOD_MS = 1000;
export const PLEG_RELIST_THRESHOLD_MS = 3 * 60_000;

/** What one relist saw of a pod: enough to tell changes and to find orphans. */
export interface RelistedPod {
  uid: string;
  name: string;
  namespace: string;
  /** `<kind>:<id>=<state>` for every sandbox and container, sorted: equal strings mean nothing changed. */
  fingerprint: string;
  /** Names of containers running now. */
  running: string[];
  /** Any sandbox or container not yet exited/not ready. */
  active: boolean;
}

export interface PlegEvent {
  uid: string;
  /** Container names that started or died since the previous relist (for logs). */
  changed: string[];
}

export class Pleg {
  private readonly cri: CriClient;
  private readonly log: Logger;
  private readonly periodMs: number;
  private pods = new Map<string, RelistedPod>();
  private readonly listeners: ((event: PlegEvent) => void)[] = [];
  private lastRelist = 0;
  private relisted = false;
  private loop: Promise<void> | undefined;
  private readonly stop = new AbortController();
  /** Duration of the last relist, ms (kubelet_pleg_relist_duration_seconds). */
  lastRelistDurationMs = 0;

  constructor(options: { cri: CriClient; logger: Logger; periodMs?: number }) {
    this.cri = options.cri;
    this.log = options.logger.child({ component: "pleg" });
    this.periodMs = options.periodMs ?? PLEG_RELIST_PERIOD_MS;
  }

  onEvent(listener: (event: PlegEvent) => void): void {
    this.listeners.push(listener);
  }

  start(signal: AbortSignal): void {
    signal.addEventListener("abort", () => this.stop.abort(), { once: true });
    this.lastRelist = Date.now();
    this.loop ??= this.run();
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
  }

  /** Upstream's PLEG health check: relisted within the threshold. */
  healthy(now = Date.now()): { ok: boolean; lastSeenMs: number } {
    const since = now - this.lastRelist;
    return { ok: since <= PLEG_RELIST_THRESHOLD_MS, lastSeenMs: since };
  }

  /** Whether at least one relist has completed (the runtime has been seen). */
  get hasRelisted(): boolean {
    return this.relisted;
  }

  /** Pods seen in the runtime at the last relist. */
  runtimePods(): ReadonlyMap<string, RelistedPod> {
    return this.pods;
  }

  private async run(): Promise<void> {
    while (!this.stop.signal.aborted) {
      const t0 = Date.now();
      try {
        await this.relist();
      } catch (err) {
        if (this.stop.signal.aborted) break;
        this.log.warn({ err: errorMessage(err) }, "relist failed");
      }
      await sleep(Math.max(0, this.periodMs - (Date.now() - t0)), undefined, { signal: this.stop.signal }).catch(() => undefined);
    }
  }

  /** One relist; public so the kubelet can force one (e.g. right after start). */
  async relist(): Promise<void> {
    const t0 = Date.now();
    const opts = { signal: this.stop.signal, timeoutMs: 30_000 };
    const [{ items }, { containers }] = await Promise.all([this.cri.runtime("ListPodSandbox", {}, opts), this.cri.runtime("ListContainers", {}, opts)]);
    const next = new Map<string, { uid: string; name: string; namespace: string; parts: string[]; running: string[]; active: boolean }>();
    const entry = (labels: Record<string, string>): { uid: string; name: string; namespace: string; parts: string[]; running: string[]; active: boolean } | undefined => {
      const uid = labels[POD_UID_LABEL];
      if (!uid) return undefined; // not ours
      let e = next.get(uid);
      if (!e) {
        e = { uid, name: labels[POD_NAME_LABEL] ?? "", namespace: labels[POD_NAMESPACE_LABEL] ?? "", parts: [], running: [], active: false };
        next.set(uid, e);
      }
      return e;
    };
    for (const s of items) {
      const e = entry(s.labels);
      if (!e) continue;
      e.parts.push(`s:${s.id}=${s.state}`);
      if (s.state === "SANDBOX_READY") e.active = true;
    }
    for (const c of containers) {
      const e = entry(c.labels);
      if (!e) continue;
      e.parts.push(`c:${c.id}=${c.state}`);
      if (c.state === "CONTAINER_RUNNING") e.running.push(c.labels[CONTAINER_NAME_LABEL] ?? "");
      if (c.state !== "CONTAINER_EXITED") e.active = true;
    }
    const pods = new Map<string, RelistedPod>();
    for (const e of next.values()) pods.set(e.uid, { uid: e.uid, name: e.name, namespace: e.namespace, fingerprint: e.parts.sort().join(","), running: e.running.sort(), active: e.active });
    const events: PlegEvent[] = [];
    for (const [uid, pod] of pods) {
      const before = this.pods.get(uid);
      if (!before || before.fingerprint !== pod.fingerprint) {
        const changed = [...new Set([...pod.running.filter((n) => !before?.running.includes(n)), ...(before?.running.filter((n) => !pod.running.includes(n)) ?? [])])];
        events.push({ uid, changed });
      }
    }
    for (const uid of this.pods.keys()) if (!pods.has(uid)) events.push({ uid, changed: [] });
    this.pods = pods;
    this.lastRelist = Date.now();
    this.lastRelistDurationMs = this.lastRelist - t0;
    this.relisted = true;
    for (const ev of events) for (const l of this.listeners) l(ev);
  }
}
