/**
 * The pod-worker state machine against a fake syncer and a fake clock, as upstream's pod_workers_test.go:
 * transitions, coalesced updates, interruption of work under way, grace shortening, forgetting, restarts,
 * static pods serialised by full name, and the retry back-off with jitter.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../../src-shared/log.ts";
import { PodWorkers, jitter, type PodSyncContext, type PodSyncer, type SyncPodOutcome } from "../../../kubelet/pod-workers.ts";
import { FakeClock, flush } from "../../harness/fake-clock.ts";

type Call = { kind: "sync" | "terminating" | "terminated"; uid: string; name: string; grace?: number; removed?: boolean; ctx: PodSyncContext };

/** Records every call; a call can be held open (a long image pull) until the test releases it or it is aborted. */
class FakeSyncer implements PodSyncer {
  calls: Call[] = [];
  hold = new Set<string>();
  fail = new Map<string, number>();
  outcome = new Map<string, SyncPodOutcome>();
  private releases: (() => void)[] = [];

  private async act(call: Call): Promise<void> {
    this.calls.push(call);
    const key = `${call.kind}:${call.name}`;
    if (this.hold.has(key)) {
      await new Promise<void>((resolve, reject) => {
        this.releases.push(resolve);
        call.ctx.signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
      });
    }
    const failures = this.fail.get(key) ?? 0;
    if (failures > 0) {
      this.fail.set(key, failures - 1);
      throw new Error(`${key} failed`);
    }
  }

  release(): void {
    for (const r of this.releases.splice(0)) r();
  }

  async syncPod(pod: V1Pod, ctx: PodSyncContext): Promise<SyncPodOutcome> {
    await this.act({ kind: "sync", uid: pod.metadata?.uid ?? "", name: pod.metadata?.name ?? "", ctx });
    return this.outcome.get(pod.metadata?.name ?? "") ?? {};
  }
  async syncTerminatingPod(pod: V1Pod, grace: number, ctx: PodSyncContext): Promise<void> {
    await this.act({ kind: "terminating", uid: pod.metadata?.uid ?? "", name: pod.metadata?.name ?? "", grace, ctx });
  }
  async syncTerminatedPod(pod: V1Pod, removed: boolean, ctx: PodSyncContext): Promise<void> {
    await this.act({ kind: "terminated", uid: pod.metadata?.uid ?? "", name: pod.metadata?.name ?? "", removed, ctx });
  }

  kinds(name?: string): string[] {
    return this.calls.filter((c) => name === undefined || c.name === name).map((c) => c.kind);
  }
}

function pod(name: string, uid = name, extra: { static?: boolean; deletion?: number; grace?: number } = {}): V1Pod {
  return {
    metadata: {
      name,
      namespace: "default",
      uid,
      ...(extra.static ? { annotations: { "kubernetes.io/config.source": "file" } } : {}),
      ...(extra.deletion !== undefined ? { deletionTimestamp: new Date(0), deletionGracePeriodSeconds: extra.deletion } : {}),
    },
    spec: { containers: [{ name: "main" }], terminationGracePeriodSeconds: extra.grace ?? 30 },
  };
}

let workers: PodWorkers | undefined;
afterEach(async () => {
  await workers?.close();
  workers = undefined;
});

function setup(options: { resyncIntervalMs?: number } = {}): { syncer: FakeSyncer; clock: FakeClock; workers: PodWorkers; finished: string[] } {
  const syncer = new FakeSyncer();
  const clock = new FakeClock();
  const finished: string[] = [];
  // random() = 1: the largest jitter, so the tests see the bounds.
  workers = new PodWorkers({ syncer, logger: silentLogger(), clock, random: () => 1, onPodFinished: (uid) => finished.push(uid), ...options });
  workers.start(new AbortController().signal);
  return { syncer, clock, workers, finished };
}

describe("PodWorkers", () => {
  it("syncs a new pod, then terminates and cleans it up when removed, and tells once it is finished", async () => {
    const { syncer, workers, finished } = setup();
    workers.update(pod("a"));
    await flush();
    expect(workers.state("a")).toEqual({ kind: "syncing" });
    expect(workers.startedAt("a")).toBeDefined();
    workers.remove("a", 5);
    await flush();
    expect(syncer.kinds()).toEqual(["sync", "terminating", "terminated"]);
    expect(syncer.calls[1]?.grace).toBe(5);
    expect(syncer.calls[2]?.removed).toBe(true);
    expect(workers.state("a")).toBeUndefined();
    expect(finished).toEqual(["a"]);
  });

  it("terminate (an eviction) ends a running pod with its grace and final status, which the kill and cleanup see; the pod stays", async () => {
    const { syncer, workers, finished } = setup();
    workers.update(pod("a"));
    await flush();
    const status = { phase: "Failed" as const, reason: "Evicted", message: "The node was low on resource: memory. ", conditions: [{ type: "DisruptionTarget", status: "True", reason: "TerminationByKubelet" }] };
    expect(workers.terminate("a", status, 1)).toBe(true);
    await flush();
    expect(syncer.kinds()).toEqual(["sync", "terminating", "terminated"]);
    expect(syncer.calls[1]?.grace).toBe(1);
    expect(syncer.calls[1]?.ctx.terminal).toEqual(status);
    expect(syncer.calls[2]?.removed).toBe(false);
    expect(workers.state("a")).toMatchObject({ kind: "terminated", reason: "Terminal" });
    expect(finished).toEqual([]);
    // Already stopped, or unknown: nothing to do.
    expect(workers.terminate("a", status, 1)).toBe(false);
    expect(workers.terminate("nobody", status, 1)).toBe(false);
  });

  it("reports each sync with the update it served and the time since that update came (kubelet_pod_worker_duration_seconds)", async () => {
    const { syncer, workers, clock } = setup();
    const done: [string, number][] = [];
    workers.onSyncDone((op, s) => done.push([op, s]));
    syncer.hold.add("sync:a");
    workers.update(pod("a"));
    await flush();
    await clock.advance(2_000);
    syncer.hold.clear();
    syncer.release();
    await flush();
    workers.update({ ...pod("a"), metadata: { ...pod("a").metadata, labels: { v: "1" } } });
    await flush();
    workers.wake("a");
    await flush();
    workers.remove("a", 5);
    await flush();
    expect(done).toEqual([
      ["create", 2],
      ["update", 0],
      ["sync", 0],
      ["kill", 0],
      ["terminated", 0],
    ]);
  });

  it("coalesces updates that arrive during a sync into one more sync of the latest pod", async () => {
    const { syncer, workers } = setup();
    syncer.hold.add("sync:a");
    workers.update(pod("a"));
    await flush();
    for (let i = 0; i < 5; i++) workers.update({ ...pod("a"), metadata: { ...pod("a").metadata, labels: { v: String(i) } } });
    syncer.hold.clear();
    syncer.release();
    await flush();
    expect(syncer.kinds()).toEqual(["sync", "sync"]);
  });

  it("interrupts a sync under way (its signal aborts) when termination is requested, then kills at once", async () => {
    const { syncer, workers } = setup();
    syncer.hold.add("sync:a");
    workers.update(pod("a"));
    await flush();
    const first = syncer.calls[0];
    expect(first?.ctx.signal.aborted).toBe(false);
    workers.update(pod("a", "a", { deletion: 7 }));
    expect(first?.ctx.signal.aborted).toBe(true);
    await flush();
    expect(syncer.kinds()).toEqual(["sync", "terminating", "terminated"]);
    expect(syncer.calls[1]?.grace).toBe(7);
    // The terminating phase has its own signal, not the aborted one.
    expect(syncer.calls[1]?.ctx.signal.aborted).toBe(false);
    expect(workers.state("a")).toMatchObject({ kind: "terminated", reason: "Deleted" });
  });

  it("restarts a kill under way with a shorter grace period from a later delete, never a longer one", async () => {
    const { syncer, workers } = setup();
    workers.update(pod("a"));
    await flush();
    syncer.hold.add("terminating:a");
    workers.update(pod("a", "a", { deletion: 30 }));
    await flush();
    const kill = syncer.calls[1];
    workers.update(pod("a", "a", { deletion: 60 }));
    await flush();
    expect(kill?.ctx.signal.aborted).toBe(false);
    expect(workers.state("a")).toMatchObject({ kind: "terminating", gracePeriodSeconds: 30 });
    workers.update(pod("a", "a", { deletion: 1 }));
    expect(kill?.ctx.signal.aborted).toBe(true);
    syncer.hold.clear();
    await flush();
    expect(syncer.calls.filter((c) => c.kind === "terminating").map((c) => c.grace)).toEqual([30, 1]);
    expect(workers.state("a")).toMatchObject({ kind: "terminated" });
  });

  it("takes a terminal sync to termination with its status, keeps the finished pod until removed, then forgets it", async () => {
    const { syncer, workers, finished } = setup();
    syncer.outcome.set("a", { terminal: { phase: "Succeeded" } });
    workers.update(pod("a", "a", { grace: 3 }));
    await flush();
    expect(syncer.kinds()).toEqual(["sync", "terminating", "terminated"]);
    expect(syncer.calls[1]?.grace).toBe(3);
    expect(syncer.calls[2]?.ctx.terminal).toEqual({ phase: "Succeeded" });
    expect(syncer.calls[2]?.removed).toBe(false);
    expect(workers.state("a")).toMatchObject({ kind: "terminated", reason: "Terminal" });
    expect(finished).toEqual([]);
    workers.remove("a");
    await flush();
    expect(syncer.kinds()).toEqual(["sync", "terminating", "terminated", "terminated"]);
    expect(syncer.calls[3]?.removed).toBe(true);
    expect(workers.state("a")).toBeUndefined();
    expect(finished).toEqual(["a"]);
  });

  it("starts a pod anew when it comes back while terminating (restartRequested)", async () => {
    const { syncer, workers, finished } = setup();
    workers.update(pod("a"));
    await flush();
    syncer.hold.add("terminating:a");
    workers.remove("a");
    await flush();
    workers.update(pod("a"));
    syncer.hold.clear();
    syncer.release();
    await flush();
    expect(syncer.kinds()).toEqual(["sync", "terminating", "terminated", "sync"]);
    expect(syncer.calls[2]?.removed).toBe(true);
    expect(workers.state("a")).toEqual({ kind: "syncing" });
    expect(finished).toEqual([]);
  });

  it("passes the end of the last sync, so the next reads runtime state at least that fresh", async () => {
    const { syncer, workers, clock } = setup();
    workers.update(pod("a"));
    await flush();
    await clock.advance(500);
    const end = clock.now();
    workers.wake("a");
    await flush();
    expect(syncer.calls[0]?.ctx.lastSyncEnd).toBe(0);
    expect(syncer.calls[1]?.ctx.lastSyncEnd).toBeLessThanOrEqual(end);
    expect(syncer.calls[1]?.ctx.lastSyncEnd).toBeGreaterThan(0);
  });

  it("resyncs after the interval with jitter, or sooner when the sync asks", async () => {
    const { syncer, workers, clock } = setup({ resyncIntervalMs: 60_000 });
    workers.update(pod("a"));
    await flush();
    // random() = 1: 60 s + 50 %.
    await clock.advance(89_999);
    expect(syncer.kinds()).toEqual(["sync"]);
    await clock.advance(1);
    expect(syncer.kinds()).toEqual(["sync", "sync"]);
    syncer.outcome.set("a", { retryInMs: 2000 });
    workers.wake("a");
    await flush();
    await clock.advance(1999);
    expect(syncer.kinds()).toHaveLength(3);
    await clock.advance(1);
    expect(syncer.kinds()).toHaveLength(4);
  });

  it("retries a failed sync with a growing back-off, jittered, up to upstream's backOffPeriod", async () => {
    const { syncer, workers, clock } = setup();
    syncer.fail.set("sync:a", 10);
    workers.update(pod("a"));
    await flush();
    const times: number[] = [];
    const t0 = clock.now();
    for (let i = 0; i < 6; i++) {
      const n = syncer.calls.length;
      while (syncer.calls.length === n) await clock.advance(100);
      times.push(clock.now() - t0);
    }
    const gaps = times.map((t, i) => t - (times[i - 1] ?? 0));
    // 1 s, 2 s, 4 s, 8 s, 10 s, 10 s, each + 50 % (random() = 1).
    expect(gaps).toEqual([1500, 3000, 6000, 12_000, 15_000, 15_000]);
    expect(jitter(10_000, 0.5, () => 0)).toBe(10_000);
  });

  it("serialises static pods of the same full name: the new one starts once the old one has terminated", async () => {
    const { syncer, workers } = setup();
    workers.update(pod("web", "old", { static: true }));
    await flush();
    expect(syncer.calls.map((c) => `${c.kind}:${c.uid}`)).toEqual(["sync:old"]);
    // The manifest is edited: the old pod goes, the new one (another uid, same full name) arrives at once.
    syncer.hold.add("terminating:web");
    workers.remove("old");
    workers.update(pod("web", "new", { static: true }));
    await flush();
    expect(workers.startedAt("new")).toBeUndefined();
    expect(syncer.calls.map((c) => `${c.kind}:${c.uid}`)).toEqual(["sync:old", "terminating:old"]);
    syncer.hold.clear();
    syncer.release();
    await flush();
    expect(syncer.calls.map((c) => `${c.kind}:${c.uid}`)).toEqual(["sync:old", "terminating:old", "terminated:old", "sync:new"]);
    expect(workers.startedAt("new")).toBeDefined();
  });

  it("does not serialise pods from the API with the same name, nor static pods of different names", async () => {
    const { syncer, workers } = setup();
    syncer.hold.add("terminating:web");
    workers.update(pod("web", "one"));
    workers.update(pod("other", "s1", { static: true }));
    workers.update(pod("web2", "s2", { static: true }));
    await flush();
    workers.remove("one");
    workers.update(pod("web", "two"));
    await flush();
    expect(syncer.calls.filter((c) => c.kind === "sync").map((c) => c.uid).sort()).toEqual(["one", "s1", "s2", "two"]);
  });

  it("stops every worker on close, aborting the work under way", async () => {
    const { syncer, workers: w } = setup();
    syncer.hold.add("sync:a");
    w.update(pod("a"));
    await flush();
    await w.close();
    expect(syncer.calls[0]?.ctx.signal.aborted).toBe(true);
    w.update(pod("b"));
    await flush();
    expect(syncer.kinds()).toEqual(["sync"]);
  });
});
