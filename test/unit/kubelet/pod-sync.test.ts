/**
 * Pod sync decisions on the in-memory runtime (FakeRuntime under the real runtime manager), the PLEG's pod
 * cache filled by real relists, a fake clock, and fakes of the API and the status manager: newer-than reads,
 * fast status after a change, activeDeadlineSeconds on the clock, terminal pods staying terminal, and the
 * final status in the API before the pod is deleted there.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../../src-shared/log.ts";
import { DeckhandError } from "../../../src-shared/errors.ts";
import type { RequestOptions, ResourceRef } from "../../../src-shared/kube/client.ts";
import type { EventRecorder, EventType, ObjectReference } from "../../../kubelet/events.ts";
import { ImageManager } from "../../../kubelet/images/image-manager.ts";
import type { PodCgroups } from "../../../kubelet/cm/pod-cgroups.ts";
import { Pleg } from "../../../kubelet/pleg.ts";
import { PodSync, type PodProber, type PodStatusStore, type PodSyncClient, type PodVolumes } from "../../../kubelet/pod-sync.ts";
import { VolumeSetUpError } from "../../../kubelet/volumes/volume-manager.ts";
import { VolumeError } from "../../../kubelet/volumes/payload.ts";
import type { PodProbeStatus } from "../../../kubelet/prober/manager.ts";
import { PodWorkers, type PodSyncContext } from "../../../kubelet/pod-workers.ts";
import { PodCache } from "../../../kubelet/runtime/pod-cache.ts";
import { RuntimeManager } from "../../../kubelet/runtime/runtime-manager.ts";
import type { PodKey } from "../../../kubelet/status/status-manager.ts";
import type { PodStatus } from "../../../kubelet/status/pod-status.ts";
import { FakeClock, flush } from "../../harness/fake-clock.ts";
import { FakeRuntime } from "../../harness/fake-runtime.ts";

const IMAGE = "localhost/busybox:1";

class Events implements EventRecorder {
  seen: { reason: string; type: EventType; message: string }[] = [];
  /** What each event was about, by message. */
  about = new Map<string, string | undefined>();
  event(o: ObjectReference, type: EventType, reason: string, message: string): void {
    this.seen.push({ type, reason, message });
    this.about.set(message, o.fieldPath);
  }
}

class Statuses implements PodStatusStore {
  byUid = new Map<string, PodStatus>();
  /** What flush() answers: whether the API has the latest. */
  inApi = true;
  getStatus(uid: string): PodStatus | undefined {
    return this.byUid.get(uid);
  }
  setStatus(uid: string, _key: PodKey, status: PodStatus): void {
    this.byUid.set(uid, status);
  }
  flush(): Promise<boolean> {
    return Promise.resolve(this.inApi);
  }
}

class Api implements PodSyncClient {
  deletes: { name: string; uid: string | undefined }[] = [];
  get<T>(): Promise<T> {
    return Promise.reject(new Error("no secrets here"));
  }
  delete<T>(ref: ResourceRef, options?: { preconditions?: { uid?: string } }, _o?: RequestOptions): Promise<T> {
    this.deletes.push({ name: ref.name ?? "", uid: options?.preconditions?.uid });
    return Promise.resolve({} as T);
  }
}

/** A prober whose results the test sets; it records what pod sync tells it, in order. */
class Prober implements PodProber {
  calls: string[] = [];
  answer: PodProbeStatus = { readiness: {}, startup: {}, failures: {} };
  addPod(): void {
    this.calls.push("addPod");
  }
  updatePodStatus(): PodProbeStatus {
    this.calls.push("updatePodStatus");
    return this.answer;
  }
  stopLivenessAndStartup(): void {
    this.calls.push("stopLivenessAndStartup");
  }
  removePod(): void {
    this.calls.push("removePod");
  }
}

const noCgroups: PodCgroups = { ensure: () => Promise.resolve("/"), remove: () => Promise.resolve() };

/** A volume manager whose set-up fails while `missing` names an object; it records what pod sync asks. */
class Volumes implements PodVolumes {
  calls: string[] = [];
  missing: string | undefined;
  setUpPod(): ReturnType<PodVolumes["setUpPod"]> {
    this.calls.push("setUp");
    if (this.missing) return Promise.reject(new VolumeSetUpError("cfg", new VolumeError("NotFound", `configmap "${this.missing}" not found`)));
    return Promise.resolve({ volumes: new Map() });
  }
  tearDownPod(): Promise<void> {
    this.calls.push("tearDown");
    return Promise.resolve();
  }
  removePod(): Promise<void> {
    this.calls.push("remove");
    return Promise.resolve();
  }
}

function setup() {
  const clock = new FakeClock();
  const fake = new FakeRuntime({ clock, images: [IMAGE] });
  const events = new Events();
  const logger = silentLogger();
  const runtime = new RuntimeManager({
    runtime: fake,
    images: new ImageManager({ images: fake, logger, clock }),
    cgroups: noCgroups,
    events,
    node: () => ({ nodeName: "n1", cgroupRoot: "/", podLogsDir: "/nonexistent/deckhand-unit/pods", clusterDNS: [], clusterDomain: "cluster.local", hostDNS: { servers: [], searches: [], options: [] }, hostIPs: ["10.0.0.1"], memoryCapacityBytes: 1 << 30, cpuCFSQuota: true, cpuCFSQuotaPeriodUs: 100_000 }),
    logger,
    clock,
  });
  const cache = new PodCache();
  const pleg = new Pleg({ runtime: fake, cache, logger, clock });
  const statuses = new Statuses();
  const api = new Api();
  const prober = new Prober();
  const volumes = new Volumes();
  const sync = new PodSync({ client: api, runtime, prober, volumes, cache, status: statuses, events, logger, clock, hostIPs: () => ["10.0.0.1"], memoryCapacityBytes: () => 1 << 30, apiKey: (p) => ({ namespace: "default", name: p.metadata?.name ?? "", uid: p.metadata?.uid ?? "" }) });
  return { clock, fake, events, cache, pleg, statuses, api, sync, prober, volumes };
}

function pod(name: string, extra: Partial<NonNullable<V1Pod["spec"]>> = {}, status?: V1Pod["status"]): V1Pod {
  return {
    metadata: { name, namespace: "default", uid: `uid-${name}` },
    spec: { restartPolicy: "Always", terminationGracePeriodSeconds: 5, containers: [{ name: "main", image: IMAGE, imagePullPolicy: "IfNotPresent" }], ...extra },
    ...(status ? { status } : {}),
  };
}

function ctx(over: Partial<PodSyncContext> = {}): PodSyncContext {
  return { signal: new AbortController().signal, lastSyncEnd: 0, startedAt: undefined, terminal: undefined, ...over };
}

/** Lists without a filter are the PLEG's node-wide relists; filtered ones are reads of one pod. */
function listCalls(fake: FakeRuntime): { relists: number; podReads: number } {
  const lists = fake.callsOf("ListPodSandbox") as { filter?: unknown }[];
  return { relists: lists.filter((r) => !r.filter).length, podReads: lists.filter((r) => r.filter).length };
}

describe("PodSync", () => {
  it("waits for a first relist, creates the pod, and reports it Running at once from one read of that pod", async () => {
    const { fake, pleg, statuses, sync, clock } = setup();
    const p = pod("web");
    let done = false;
    const result = sync.syncPod(p, ctx({ startedAt: clock.now() })).finally(() => (done = true));
    await flush();
    expect(done).toBe(false); // no relist yet: a pod the runtime already runs would look new
    expect(fake.callsOf("RunPodSandbox")).toHaveLength(0);
    await pleg.relist();
    expect(await result).toEqual({});
    expect(fake.callsOf("RunPodSandbox")).toHaveLength(1);
    expect(fake.callsOf("StartContainer")).toHaveLength(1);
    // One relist for everybody, and one read of the pod after the change: no waiting for the next relist.
    expect(listCalls(fake)).toEqual({ relists: 1, podReads: 1 });
    // That read asks only for what the sync did not read itself: the new container, not the sandbox's IPs again.
    expect(fake.callsOf("PodSandboxStatus")).toHaveLength(1);
    expect(fake.callsOf("ContainerStatus")).toHaveLength(1);
    const status = statuses.getStatus("uid-web");
    expect(status?.phase).toBe("Running");
    expect(status?.podIP).toBeTruthy();
  });

  it("records the status, then hands a failed sandbox creation back to the pod worker as an error (its back-off paces retries)", async () => {
    const { fake, pleg, sync, statuses, events, clock } = setup();
    await pleg.relist();
    fake.failNext("RunPodSandbox", new Error("no IPs left"));
    const err: unknown = await sync.syncPod(pod("web"), ctx({ startedAt: clock.now() })).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(DeckhandError);
    expect((err as DeckhandError).code).toBe("Unavailable");
    expect((err as DeckhandError).message).toContain("no IPs left");
    expect(statuses.getStatus("uid-web")?.phase).toBe("Pending");
    expect(events.seen.map((e) => e.reason)).toContain("FailedCreatePodSandBox");
  });

  it("reads a resync's runtime state from the cache, newer than the last sync, without asking CRI itself", async () => {
    const { fake, pleg, sync, clock } = setup();
    const p = pod("web");
    await pleg.relist();
    await sync.syncPod(p, ctx({ startedAt: clock.now() }));
    await clock.advance(1000);
    const lastSyncEnd = clock.now();
    fake.clearCalls();
    let done = false;
    const resync = sync.syncPod(p, ctx({ startedAt: clock.now(), lastSyncEnd })).finally(() => (done = true));
    await flush();
    expect(done).toBe(false); // the cache holds nothing as fresh yet
    await clock.advance(1);
    await pleg.relist();
    await resync;
    expect(listCalls(fake)).toEqual({ relists: 1, podReads: 0 });
    expect(fake.callsOf("ContainerStatus")).toHaveLength(0); // nothing changed: the relist read no status either
    expect(fake.callsOf("RunPodSandbox")).toHaveLength(0);
  });

  it("gives up a read of the cache when its signal aborts (the pod is being deleted)", async () => {
    const { sync } = setup();
    const ac = new AbortController();
    const result = sync.syncPod(pod("web"), ctx({ signal: ac.signal }));
    ac.abort(new Error("termination requested"));
    await expect(result).rejects.toThrow("termination requested");
  });

  it("enforces activeDeadlineSeconds on the clock: a resync due at the deadline, then Failed DeadlineExceeded", async () => {
    const { pleg, sync, clock, statuses, events } = setup();
    const p = pod("job", { activeDeadlineSeconds: 30, restartPolicy: "Never" });
    const startedAt = clock.now();
    await pleg.relist();
    const first = await sync.syncPod(p, ctx({ startedAt }));
    expect(first.retryInMs).toBe(30_000);
    await clock.advance(30_000);
    await pleg.relist();
    const second = await sync.syncPod(p, ctx({ startedAt, lastSyncEnd: startedAt }));
    expect(second.terminal).toMatchObject({ phase: "Failed", reason: "DeadlineExceeded" });
    // The phase turns Failed once no container runs any more (the worker's terminating phase, given the reason).
    await sync.syncTerminatingPod(p, 5, ctx({ startedAt, terminal: second.terminal }));
    expect(statuses.getStatus("uid-job")).toMatchObject({ phase: "Failed", reason: "DeadlineExceeded" });
    expect(events.seen.map((e) => e.reason)).toContain("DeadlineExceeded");
  });

  it("keeps a pod the API shows finished finished: nothing is started for it", async () => {
    const { fake, pleg, sync, statuses } = setup();
    await pleg.relist();
    const outcome = await sync.syncPod(pod("done", { restartPolicy: "Never" }, { phase: "Succeeded", startTime: new Date(0) }), ctx());
    expect(outcome.terminal).toEqual({ phase: "Succeeded" });
    expect(fake.callsOf("RunPodSandbox")).toHaveLength(0);
    expect(statuses.getStatus("uid-done")?.phase).toBe("Succeeded");
  });

  it("says a pod whose containers all ended under restartPolicy Never is terminal", async () => {
    const { fake, pleg, sync, clock } = setup();
    const p = pod("once", { restartPolicy: "Never" });
    await pleg.relist();
    await sync.syncPod(p, ctx({ startedAt: clock.now() }));
    const id = fake.containers()[0]?.id ?? "";
    fake.exitContainer(id, 0);
    await clock.advance(1);
    const lastSyncEnd = clock.now();
    await clock.advance(1);
    await pleg.relist();
    const outcome = await sync.syncPod(p, ctx({ startedAt: clock.now(), lastSyncEnd }));
    expect(outcome.terminal).toEqual({ phase: "Succeeded" });
  });

  it("stops the pod's containers with the grace period and reports them terminated", async () => {
    const { fake, pleg, sync, clock, statuses } = setup();
    const p = pod("web");
    await pleg.relist();
    await sync.syncPod(p, ctx({ startedAt: clock.now() }));
    await sync.syncTerminatingPod(p, 7, ctx({ lastSyncEnd: clock.now() }));
    expect(fake.callsOf("StopContainer")).toEqual([expect.objectContaining({ timeout: 7 })]);
    expect(fake.containers().every((c) => c.state === "CONTAINER_EXITED")).toBe(true);
    expect(statuses.getStatus("uid-web")?.containerStatuses?.[0]?.state?.terminated).toBeDefined();
  });

  it("reports readiness and startup from the prober, and restarts a container its liveness probe failed", async () => {
    const { fake, pleg, sync, clock, statuses, events, prober } = setup();
    const p = pod("web", { containers: [{ name: "main", image: IMAGE, imagePullPolicy: "IfNotPresent", readinessProbe: { exec: { command: ["true"] } } }] });
    await pleg.relist();
    await sync.syncPod(p, ctx({ startedAt: clock.now() }));
    expect(prober.calls.slice(0, 2)).toEqual(["addPod", "updatePodStatus"]);
    expect(statuses.getStatus("uid-web")?.containerStatuses?.[0]).toMatchObject({ ready: false });
    prober.answer = { readiness: { main: true }, startup: {}, failures: {} };
    await clock.advance(1);
    await pleg.relist();
    await sync.syncPod(p, ctx({ startedAt: 0, lastSyncEnd: clock.now() - 1 }));
    expect(statuses.getStatus("uid-web")?.containerStatuses?.[0]).toMatchObject({ ready: true });
    expect(statuses.getStatus("uid-web")?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");

    const first = fake.containers()[0]?.id;
    prober.answer = { readiness: {}, startup: {}, failures: { liveness: new Set(["main"]) } };
    await clock.advance(1);
    await pleg.relist();
    await sync.syncPod(p, ctx({ startedAt: 0, lastSyncEnd: clock.now() - 1 }));
    expect(fake.callsOf("StopContainer")).toEqual([expect.objectContaining({ container_id: first })]);
    expect(events.seen).toContainEqual({ type: "Normal", reason: "Killing", message: "Container main failed liveness probe, will be restarted" });
    expect(statuses.getStatus("uid-web")?.containerStatuses?.[0]).toMatchObject({ restartCount: 1, ready: false });
  });

  it("kills a sidecar whose startup probe failed with the probe's own grace period, as an init container", async () => {
    const { fake, pleg, sync, clock, events, prober } = setup();
    const sidecar = { name: "proxy", image: IMAGE, imagePullPolicy: "IfNotPresent" as const, restartPolicy: "Always", startupProbe: { exec: { command: ["true"] }, terminationGracePeriodSeconds: 3 } };
    const p = pod("web", { initContainers: [sidecar] });
    prober.answer = { readiness: {}, startup: { proxy: false }, failures: { notStarted: new Set(["proxy"]) } };
    await pleg.relist();
    await sync.syncPod(p, ctx({ startedAt: clock.now() }));
    // Not started yet: the app waits.
    expect(fake.containers().map((c) => c.metadata?.name)).toEqual(["proxy"]);

    prober.answer = { readiness: {}, startup: { proxy: false }, failures: { startup: new Set(["proxy"]), notStarted: new Set(["proxy"]) } };
    await clock.advance(1);
    await pleg.relist();
    await sync.syncPod(p, ctx({ startedAt: 0, lastSyncEnd: clock.now() - 1 }));
    expect(fake.callsOf("StopContainer")).toEqual([expect.objectContaining({ timeout: 3 })]);
    expect(events.about.get("Init container proxy failed startup probe")).toBe("spec.initContainers{proxy}");
  });

  it("stops liveness and startup probing before stopping the containers, and the pod's probes after", async () => {
    const { fake, pleg, sync, clock, prober } = setup();
    const p = pod("web");
    await pleg.relist();
    await sync.syncPod(p, ctx({ startedAt: clock.now() }));
    prober.calls = [];
    const stops = fake.callsOf("StopContainer").length;
    let stoppedWhenTold = -1;
    const stop = prober.stopLivenessAndStartup.bind(prober);
    prober.stopLivenessAndStartup = () => {
      stoppedWhenTold = fake.callsOf("StopContainer").length;
      stop();
    };
    await sync.syncTerminatingPod(p, 5, ctx({ lastSyncEnd: clock.now() }));
    expect(stoppedWhenTold).toBe(stops);
    expect(prober.calls.slice(0, 2)).toEqual(["stopLivenessAndStartup", "removePod"]);
    expect(fake.callsOf("StopContainer").length).toBeGreaterThan(stops);
  });

  it("deletes a deleted pod from the API only once its final status is there, after removing it from the node", async () => {
    const { fake, pleg, sync, clock, statuses, api } = setup();
    const p = pod("web");
    await pleg.relist();
    await sync.syncPod(p, ctx({ startedAt: clock.now() }));
    const deleted: V1Pod = { ...p, metadata: { ...p.metadata, deletionTimestamp: new Date(clock.now()) } };
    await sync.syncTerminatingPod(deleted, 5, ctx({ lastSyncEnd: clock.now() }));
    await clock.advance(1);
    await pleg.relist();
    statuses.inApi = false;
    await expect(sync.syncTerminatedPod(deleted, false, ctx({ lastSyncEnd: clock.now() - 1 }))).rejects.toThrow(/final status/);
    expect(fake.sandboxes()).toHaveLength(0);
    expect(api.deletes).toEqual([]);
    statuses.inApi = true;
    await sync.syncTerminatedPod(deleted, false, ctx({ lastSyncEnd: clock.now() - 1 }));
    expect(api.deletes).toEqual([{ name: "web", uid: "uid-web" }]);
  });

  it("keeps a finished pod's containers until it is deleted, and never deletes a removed pod in the API", async () => {
    const { fake, pleg, sync, clock, api } = setup();
    const p = pod("web");
    await pleg.relist();
    await sync.syncPod(p, ctx({ startedAt: clock.now() }));
    await sync.syncTerminatingPod(p, 5, ctx());
    await sync.syncTerminatedPod(p, false, ctx());
    expect(fake.containers()).toHaveLength(1);
    await sync.syncTerminatedPod(p, true, ctx());
    expect(fake.containers()).toHaveLength(0);
    expect(api.deletes).toEqual([]);
  });

  it("under the pod workers, a deletion cancels the image pull under way at once (the CRI call's signal aborts)", async () => {
    const { fake, pleg, sync, clock } = setup();
    const release = fake.holdPulls();
    const pullSignals: (AbortSignal | undefined)[] = [];
    const image = fake.image.bind(fake);
    fake.image = (method, request, options) => {
      if (method === "PullImage") pullSignals.push(options?.signal);
      return image(method, request, options);
    };
    const workers = new PodWorkers({ syncer: sync, logger: silentLogger(), clock });
    workers.start(new AbortController().signal);
    try {
      await pleg.relist();
      const p = pod("pulling", { containers: [{ name: "main", image: "registry.example/slow:1", imagePullPolicy: "Always" }] });
      workers.update(p);
      for (let i = 0; i < 20 && fake.callsOf("PullImage").length === 0; i++) await flush();
      expect(fake.callsOf("PullImage")).toHaveLength(1);
      workers.update({ ...p, metadata: { ...p.metadata, deletionTimestamp: new Date(clock.now()), deletionGracePeriodSeconds: 30 } });
      await flush();
      expect(pullSignals).toHaveLength(1);
      expect(pullSignals[0]?.aborted).toBe(true);
      expect(fake.calls.some((c) => c.method === "StopPodSandbox")).toBe(true);
      expect(workers.state("uid-pulling")?.kind).not.toBe("syncing");
    } finally {
      release();
      await workers.close();
    }
  });

  it("starts no container before the volumes are set up: FailedMount once per message, the failure back to the pod worker's back-off, then the pod runs", async () => {
    const { fake, pleg, sync, events, volumes, clock } = setup();
    const p = pod("web", { volumes: [{ name: "cfg", configMap: { name: "app" } }] });
    await pleg.relist();
    volumes.missing = "app";
    await expect(sync.syncPod(p, ctx({ startedAt: clock.now() }))).rejects.toBeInstanceOf(VolumeSetUpError);
    await expect(sync.syncPod(p, ctx({ startedAt: clock.now() }))).rejects.toBeInstanceOf(VolumeSetUpError);
    expect(fake.callsOf("RunPodSandbox")).toHaveLength(0);
    expect(events.seen.filter((e) => e.reason === "FailedMount")).toEqual([{ type: "Warning", reason: "FailedMount", message: 'MountVolume.SetUp failed for volume "cfg" : configmap "app" not found' }]);
    volumes.missing = undefined;
    await sync.syncPod(p, ctx({ startedAt: clock.now() }));
    expect(fake.callsOf("StartContainer")).toHaveLength(1);
  });

  it("tears the volumes down once the pod has terminated, and removes its folder once it is deleted", async () => {
    const { pleg, sync, volumes, clock } = setup();
    const p = pod("web", { volumes: [{ name: "d", emptyDir: {} }] });
    await pleg.relist();
    await sync.syncPod(p, ctx({ startedAt: clock.now() }));
    await sync.syncTerminatingPod(p, 1, ctx());
    await sync.syncTerminatedPod(p, true, ctx());
    expect(volumes.calls).toEqual(["setUp", "tearDown", "remove"]);
  });
});
