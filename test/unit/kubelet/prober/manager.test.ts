import { describe, expect, it } from "vitest";
import type { V1Container, V1Pod, V1Probe } from "@kubernetes/client-node";
import { FakeClock, flush } from "../../../harness/fake-clock.ts";
import { silentLogger } from "../../../../src-shared/log.ts";
import type { RuntimeService } from "../../../../kubelet/cri/services.ts";
import type { PodRuntimeStatus, RuntimeContainer } from "../../../../kubelet/runtime/types.ts";
import { ProberManager, type ProbeUpdate } from "../../../../kubelet/prober/manager.ts";
import { KUBELET_RESTART_GRACE_MS } from "../../../../kubelet/prober/worker.ts";
import type { ProbeAttempt, ProbeTarget } from "../../../../kubelet/prober/prober.ts";
import type { ProbeResult, ProbeType } from "../../../../kubelet/prober/results.ts";

const UID = "uid-1";
const noRuntime: RuntimeService = {
  runtime: () => Promise.reject(new Error("no runtime in this test")),
};

interface Call {
  type: ProbeType;
  at: number;
  containerId: string;
  podIP: string;
}

type Answer = ProbeResult | "error";

/**
 * A manager whose probes answer from per-kind queues (the last answer repeats) and are recorded with the fake
 * time they ran at.
 */
function setup(o: { random?: number } = {}) {
  const clock = new FakeClock();
  const calls: Call[] = [];
  const answers: Record<ProbeType, Answer[]> = { liveness: ["Success"], readiness: ["Success"], startup: ["Success"] };
  const manager = new ProberManager({
    runtime: noRuntime,
    logger: silentLogger(),
    clock,
    random: () => o.random ?? 0,
    probe: (type: ProbeType, target: ProbeTarget): Promise<ProbeAttempt> => {
      calls.push({ type, at: clock.now(), containerId: target.containerId, podIP: target.podIP });
      const queue = answers[type];
      const r = (queue.length > 1 ? queue.shift() : queue[0]) ?? "Success";
      return Promise.resolve(r === "error" ? { result: "Failure", error: new Error("cannot run") } : { result: r });
    },
  });
  const stop = new AbortController();
  manager.start(stop.signal);
  const updates: ProbeUpdate[] = [];
  manager.onUpdate((u) => updates.push(u));
  return { clock, calls, answers, manager, stop, updates, startedAt: clock.now() };
}

function probe(p: Partial<V1Probe> = {}): V1Probe {
  return { exec: { command: ["true"] }, periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3, ...p };
}

function pod(containers: V1Container[], extra: Partial<V1Pod> = {}): V1Pod {
  return { metadata: { name: "web", namespace: "default", uid: UID }, spec: { containers }, ...extra };
}

function running(name: string, id: string, startedAt: number, state: RuntimeContainer["state"] = "running"): RuntimeContainer {
  return { id, name, attempt: 0, state, image: "img", imageRef: "sha256:1", hash: "h", createdAt: startedAt, startedAt, finishedAt: 0, exitCode: 0, reason: "", message: "", kind: "regular" };
}

function runtime(...containers: RuntimeContainer[]): PodRuntimeStatus {
  return { uid: UID, name: "web", namespace: "default", sandboxes: [{ id: "sb", attempt: 0, state: "ready", createdAt: 0, ips: ["10.1.0.7"] }], containers };
}

/** A pod sync: the pod is added (idempotent, as the pod worker's first sync does), then its status handed over. */
function sync(manager: ProberManager, p: V1Pod, rt: PodRuntimeStatus) {
  manager.addPod(p);
  return manager.updatePodStatus(p, rt);
}

const at = (calls: Call[], type: ProbeType): number[] => calls.filter((c) => c.type === type).map((c) => c.at);

describe("probe workers (worker state machine)", () => {
  it("probes every periodSeconds from the container's appearance, on the ticker's grid", async () => {
    const t = setup();
    await t.clock.advance(60_000); // the kubelet is not fresh: no jitter
    const p = pod([{ name: "app", livenessProbe: probe({ periodSeconds: 10 }) }]);
    t.manager.addPod(p);
    const t0 = t.clock.now();
    sync(t.manager, p, runtime(running("app", "c1", t0)));
    await t.clock.advance(35_000);
    expect(at(t.calls, "liveness").map((x) => x - t0)).toEqual([0, 10_000, 20_000, 30_000]);
    expect(t.calls[0]).toMatchObject({ containerId: "c1", podIP: "10.1.0.7" });
  });

  it("spreads the first run over a random part of the period right after the kubelet starts, and not later", async () => {
    const fresh = setup({ random: 0.25 });
    const p = pod([{ name: "app", livenessProbe: probe({ periodSeconds: 8 }) }]);
    sync(fresh.manager, p, runtime(running("app", "c1", fresh.clock.now())));
    await fresh.clock.advance(1_999);
    expect(fresh.calls).toHaveLength(0);
    await fresh.clock.advance(1);
    expect(at(fresh.calls, "liveness")).toEqual([fresh.startedAt + 2_000]);

    // The jitter never reaches a full period.
    const late = setup({ random: 0.999 });
    sync(late.manager, p, runtime(running("app", "c1", late.clock.now())));
    await late.clock.advance(8_000);
    expect(late.calls).toHaveLength(1);
    expect(late.calls[0]!.at - late.startedAt).toBeLessThan(8_000);
  });

  it("skips initialDelaySeconds counted from the container's start", async () => {
    const t = setup();
    await t.clock.advance(60_000);
    const p = pod([{ name: "app", livenessProbe: probe({ initialDelaySeconds: 15, periodSeconds: 10 }) }]);
    const startedAt = t.clock.now() - 3_000; // started 3 s before the worker saw it
    sync(t.manager, p, runtime(running("app", "c1", startedAt)));
    await t.clock.advance(25_000);
    // Ticks at +0 (3 s old), +10 s (13 s old) are skipped; +20 s (23 s old) probes.
    expect(at(t.calls, "liveness").map((x) => x - startedAt)).toEqual([23_000]);
  });

  it("flips liveness to Failure after failureThreshold failures in a row, then holds until the container id changes", async () => {
    const t = setup();
    await t.clock.advance(60_000);
    // A success breaks the run: F, S, F, F does not reach 3; the next F does.
    t.answers.liveness = ["Failure", "Success", "Failure", "Failure", "Failure"];
    const p = pod([{ name: "app", livenessProbe: probe({ failureThreshold: 3 }) }]);
    const t0 = t.clock.now();
    const rt1 = runtime(running("app", "c1", t0));
    sync(t.manager, p, rt1);
    expect(t.manager.liveness.get("c1")).toBe("Success"); // initial value
    await t.clock.advance(35_000);
    expect(t.calls).toHaveLength(4);
    expect(t.manager.liveness.get("c1")).toBe("Success");
    expect(sync(t.manager, p, rt1).failures).toEqual({});
    await t.clock.advance(10_000);
    expect(t.calls).toHaveLength(5);
    expect(t.manager.liveness.get("c1")).toBe("Failure");
    expect([...(sync(t.manager, p, rt1).failures.liveness ?? [])]).toEqual(["app"]);
    expect(t.updates).toContainEqual({ type: "liveness", containerId: "c1", result: "Failure", podUid: UID });

    // On hold: no probe of the failed container while it is being restarted.
    await t.clock.advance(60_000);
    expect(t.calls).toHaveLength(5);

    // A new container: probing resumes from the initial Success.
    t.answers.liveness = ["Success"];
    sync(t.manager, p, runtime(running("app", "c2", t.clock.now())));
    await t.clock.advance(10_000);
    expect(t.calls).toHaveLength(6);
    expect(t.calls[5]!.containerId).toBe("c2");
    expect(t.manager.liveness.get("c1")).toBeUndefined();
    expect(t.manager.liveness.get("c2")).toBe("Success");
    expect(sync(t.manager, p, runtime(running("app", "c2", t.clock.now()))).failures).toEqual({});
  });

  it("keeps readiness false until successThreshold successes in a row, and a probe that could not run changes nothing", async () => {
    const t = setup();
    await t.clock.advance(60_000);
    t.answers.readiness = ["Success", "error", "Success", "Failure", "Success", "Success", "Success"];
    const p = pod([{ name: "app", readinessProbe: probe({ successThreshold: 3, failureThreshold: 1 }) }]);
    const rt = runtime(running("app", "c1", t.clock.now()));
    expect(sync(t.manager, p, rt).readiness).toEqual({ app: false });
    await flush();
    for (let i = 0; i < 6 && t.manager.readiness.get("c1") !== "Success"; i++) await t.clock.advance(10_000);
    // S, error (ignored), S, F (failureThreshold 1: Failure), S, S, S: ready at the 7th probe only.
    expect(t.calls).toHaveLength(7);
    expect(sync(t.manager, p, rt).readiness).toEqual({ app: true });
  });

  it("runs a readiness probe at once when a sync finds the container not ready yet (manual trigger), then on a new grid", async () => {
    const t = setup();
    await t.clock.advance(60_000);
    t.answers.readiness = ["Failure"];
    const p = pod([{ name: "app", readinessProbe: probe({ periodSeconds: 10 }) }]);
    const t0 = t.clock.now();
    const rt = runtime(running("app", "c1", t0));
    sync(t.manager, p, rt);
    await flush();
    const n = t.calls.length;
    await t.clock.advance(4_000);
    sync(t.manager, p, rt);
    await flush();
    expect(t.calls).toHaveLength(n + 1);
    expect(t.calls.at(-1)!.at - t0).toBe(4_000);
    await t.clock.advance(10_000);
    expect(t.calls.at(-1)!.at - t0).toBe(14_000);
  });

  it("gates liveness and readiness behind the startup probe, then holds the startup worker", async () => {
    const t = setup();
    await t.clock.advance(60_000);
    t.answers.startup = ["Failure", "Success"];
    const p = pod([{ name: "app", startupProbe: probe({ failureThreshold: 5 }), livenessProbe: probe(), readinessProbe: probe() }]);
    const rt = runtime(running("app", "c1", t.clock.now()));
    let s = sync(t.manager, p, rt);
    expect(s.startup).toEqual({ app: false });
    expect(s.readiness).toEqual({});
    await t.clock.advance(5_000);
    expect(new Set(t.calls.map((c) => c.type))).toEqual(new Set(["startup"]));
    await t.clock.advance(10_000); // second startup probe: Success
    expect(t.manager.startup.get("c1")).toBe("Success");
    s = sync(t.manager, p, rt);
    expect(s.startup).toEqual({ app: true });
    await t.clock.advance(20_000);
    expect(at(t.calls, "startup")).toHaveLength(2);
    expect(at(t.calls, "liveness").length).toBeGreaterThan(0);
    expect(at(t.calls, "readiness").length).toBeGreaterThan(0);
    expect(sync(t.manager, p, rt).readiness).toEqual({ app: true });
  });

  it("reports a startup probe that gave up as a failure to restart", async () => {
    const t = setup();
    await t.clock.advance(60_000);
    t.answers.startup = ["Failure"];
    const p = pod([{ name: "app", startupProbe: probe({ failureThreshold: 2 }), livenessProbe: probe() }]);
    const rt = runtime(running("app", "c1", t.clock.now()));
    sync(t.manager, p, rt);
    await t.clock.advance(15_000);
    const s = sync(t.manager, p, rt);
    expect([...(s.failures.startup ?? [])]).toEqual(["app"]);
    expect(s.startup).toEqual({ app: false });
    await t.clock.advance(60_000);
    expect(t.calls.map((c) => c.type)).toEqual(["startup", "startup"]);
  });

  it("marks a container that is not running as failed, and ends the worker when it exited for good", async () => {
    const t = setup();
    await t.clock.advance(60_000);
    const p = pod([{ name: "app", readinessProbe: probe() }], {});
    p.spec!.restartPolicy = "Never";
    sync(t.manager, p, runtime(running("app", "c1", t.clock.now())));
    await t.clock.advance(10_000);
    expect(t.manager.readiness.get("c1")).toBe("Success");
    sync(t.manager, p, runtime(running("app", "c1", t.clock.now() - 10_000, "exited")));
    await t.clock.advance(10_000);
    expect(t.updates.at(-1)).toEqual({ type: "readiness", containerId: "c1", result: "Failure", podUid: UID });
    expect(t.manager.workerCount).toBe(0);
    expect(t.clock.waiting).toBe(0);
    expect(t.manager.readiness.get("c1")).toBeUndefined();
  });
});

describe("prober manager", () => {
  it("keeps a running, previously ready container ready across a kubelet restart until its probe says otherwise", async () => {
    const t = setup();
    await t.clock.advance(1_000);
    t.answers.readiness = ["Failure"];
    const p = pod([{ name: "app", readinessProbe: probe({ failureThreshold: 3 }) }], {
      status: { conditions: [{ type: "Ready", status: "True" }], containerStatuses: [] },
    });
    // Running since long before this kubelet started.
    const rt = runtime(running("app", "c1", t.startedAt - 3_600_000));
    expect(sync(t.manager, p, rt).readiness).toEqual({ app: true });
    // Two failures (the first tick and the sync's manual trigger) are below the threshold: still ready.
    await t.clock.advance(0);
    expect(t.calls).toHaveLength(2);
    expect(t.manager.readiness.get("c1")).toBeUndefined();
    // That sync triggered the third run.
    expect(sync(t.manager, p, rt).readiness).toEqual({ app: true });
    await t.clock.advance(0);
    expect(t.calls).toHaveLength(3);
    expect(t.manager.readiness.get("c1")).toBe("Failure");
    expect(sync(t.manager, p, rt).readiness).toEqual({ app: false });

    // A pod the API did not see Ready stays unready; a container started since the kubelet did starts unready.
    const u = setup();
    const notReady = pod([{ name: "app", readinessProbe: probe() }], { status: { conditions: [{ type: "Ready", status: "False" }] } });
    expect(sync(u.manager, notReady, runtime(running("app", "c1", u.startedAt - 3_600_000))).readiness).toEqual({ app: false });
    const v = setup();
    const ready = pod([{ name: "app", readinessProbe: probe() }], { status: { conditions: [{ type: "Ready", status: "True" }] } });
    expect(sync(v.manager, ready, runtime(running("app", "c1", v.startedAt))).readiness).toEqual({ app: false });
  });

  it("counts as running since before the restart only a container started more than 10 s before the kubelet (upstream's kubeletRestartGracePeriod)", async () => {
    const readyPod = () => pod([{ name: "app", readinessProbe: probe(), livenessProbe: probe() }], { status: { conditions: [{ type: "Ready", status: "True" }] } });
    // Started 11 s before the kubelet: no initial result, so the API's Ready stands until the probe speaks.
    const old = setup();
    old.answers.readiness = ["error"];
    old.answers.liveness = ["error"];
    const before = sync(old.manager, readyPod(), runtime(running("app", "c1", old.startedAt - KUBELET_RESTART_GRACE_MS - 1_000)));
    expect(before.readiness).toEqual({ app: true });
    await old.clock.advance(0);
    expect(old.calls.map((c) => c.type).sort()).toEqual(["liveness", "readiness", "readiness"]);
    expect(old.manager.liveness.get("c1")).toBeUndefined();
    expect(old.manager.readiness.get("c1")).toBeUndefined();
    // Started 9 s before: a container the kubelet may have been starting itself, treated as new: readiness
    // starts at Failure (unready whatever the API said) and liveness at Success, as for any new container.
    const recent = setup();
    recent.answers.readiness = ["error"];
    recent.answers.liveness = ["error"];
    const within = sync(recent.manager, readyPod(), runtime(running("app", "c1", recent.startedAt - KUBELET_RESTART_GRACE_MS + 1_000)));
    expect(within.readiness).toEqual({ app: false });
    await recent.clock.advance(0);
    expect(recent.manager.readiness.get("c1")).toBe("Failure");
    expect(recent.manager.liveness.get("c1")).toBe("Success");
  });

  it("keeps a running sidecar ready across a kubelet restart as an app container", async () => {
    const t = setup();
    t.answers.readiness = ["error"];
    const sidecar: V1Container = { name: "proxy", restartPolicy: "Always", readinessProbe: probe() };
    const p = pod([{ name: "app" }], { spec: { containers: [{ name: "app" }], initContainers: [sidecar] }, status: { conditions: [{ type: "Ready", status: "True" }] } });
    const rt = runtime({ ...running("proxy", "s1", t.startedAt - 60_000), kind: "sidecar" }, running("app", "c1", t.startedAt - 60_000));
    expect(sync(t.manager, p, rt).readiness).toEqual({ proxy: true });
    await t.clock.advance(0);
    // A probe that could not run says nothing: still ready.
    expect(sync(t.manager, p, rt).readiness).toEqual({ proxy: true });
  });

  it("keeps a started container started across a kubelet restart, from the API's status of the same container", () => {
    const t = setup();
    const p = pod([{ name: "app", startupProbe: probe() }], {
      status: { containerStatuses: [{ name: "app", containerID: "containerd://c1", started: true, ready: true, restartCount: 0, image: "img", imageID: "" }] },
    });
    expect(sync(t.manager, p, runtime(running("app", "c1", t.startedAt - 60_000))).startup).toEqual({ app: true });
    expect(sync(t.manager, p, runtime(running("app", "c2", t.startedAt - 60_000))).startup).toEqual({ app: false });
  });

  it("creates one worker per container and probe kind, sidecars included, and removes them with the pod", async () => {
    const t = setup();
    await t.clock.advance(60_000);
    const p = pod([{ name: "app", livenessProbe: probe(), readinessProbe: probe() }, { name: "plain" }], {});
    p.spec!.initContainers = [
      { name: "init", command: ["true"] },
      { name: "side", restartPolicy: "Always", startupProbe: probe() },
    ];
    t.manager.addPod(p);
    t.manager.addPod(p);
    expect(t.manager.workerCount).toBe(3);
    expect(t.manager.worker(UID, "side", "startup")).toBeDefined();
    sync(t.manager, p, runtime(running("app", "c1", t.clock.now()), { ...running("side", "s1", t.clock.now()), kind: "sidecar" }));
    await t.clock.advance(10_000);
    expect(t.manager.readiness.get("c1")).toBe("Success");
    expect(t.clock.waiting).toBe(3);

    t.manager.removePod(p);
    await flush();
    expect(t.manager.workerCount).toBe(0);
    expect(t.clock.waiting).toBe(0);
    expect(t.manager.readiness.get("c1")).toBeUndefined();
    expect(t.manager.liveness.get("c1")).toBeUndefined();
    expect(t.manager.metrics.render()).toBe("");
  });

  it("cleanupPods stops the workers of pods no longer desired", async () => {
    const t = setup();
    await t.clock.advance(60_000);
    const a = pod([{ name: "app", livenessProbe: probe() }]);
    const b: V1Pod = { metadata: { name: "b", namespace: "default", uid: "uid-2" }, spec: { containers: [{ name: "app", livenessProbe: probe() }] } };
    sync(t.manager, a, runtime(running("app", "c1", t.clock.now())));
    sync(t.manager, b, { ...runtime(running("app", "c9", t.clock.now())), uid: "uid-2" });
    await flush();
    expect(t.manager.workerCount).toBe(2);
    t.manager.cleanupPods(new Set(["uid-2"]));
    await flush();
    expect(t.manager.workerCount).toBe(1);
    expect(t.manager.worker("uid-2", "app", "liveness")).toBeDefined();
    // A worker whose container never appeared goes too.
    t.manager.addPod({ metadata: { name: "c", namespace: "default", uid: "uid-3" }, spec: { containers: [{ name: "app", livenessProbe: probe() }] } });
    expect(t.manager.workerCount).toBe(2);
    await t.manager.close();
    expect(t.manager.workerCount).toBe(0);
    expect(t.clock.waiting).toBe(0);
  });

  it("stops liveness and startup of a terminating pod, keeps readiness, and revives nothing after removePod", async () => {
    const t = setup();
    await t.clock.advance(60_000);
    const p = pod([{ name: "app", livenessProbe: probe(), readinessProbe: probe() }]);
    const rt = runtime(running("app", "c1", t.clock.now()));
    sync(t.manager, p, rt);
    await t.clock.advance(10_000);
    t.manager.stopLivenessAndStartup(p);
    await flush();
    expect(t.manager.worker(UID, "app", "liveness")).toBeUndefined();
    expect(t.manager.worker(UID, "app", "readiness")).toBeDefined();
    const n = at(t.calls, "liveness").length;
    await t.clock.advance(30_000);
    expect(at(t.calls, "liveness")).toHaveLength(n);
    expect(at(t.calls, "readiness").length).toBeGreaterThan(n);

    t.manager.removePod(p);
    await flush();
    expect(t.manager.updatePodStatus(p, rt)).toEqual({ readiness: {}, startup: {}, failures: {} });
    expect(t.manager.workerCount).toBe(0);
    expect(t.clock.waiting).toBe(0);
  });

  it("quiets liveness of a pod being deleted: Success, and the worker ends", async () => {
    const t = setup();
    await t.clock.advance(60_000);
    t.answers.liveness = ["Failure"];
    const p = pod([{ name: "app", livenessProbe: probe({ failureThreshold: 1 }) }]);
    const rt = runtime(running("app", "c1", t.clock.now() - 60_000));
    t.manager.addPod(p);
    const deleting = { ...p, metadata: { ...p.metadata, deletionTimestamp: new Date() } };
    sync(t.manager, deleting, rt);
    await flush();
    expect(t.calls).toHaveLength(0);
    expect(t.manager.workerCount).toBe(0);
  });

  it("counts probes by result in prober_probe_total and times them in prober_probe_duration_seconds", async () => {
    const t = setup();
    await t.clock.advance(60_000);
    t.answers.liveness = ["Success", "Failure"];
    const p = pod([{ name: "app", livenessProbe: probe() }]);
    sync(t.manager, p, runtime(running("app", "c1", t.clock.now())));
    await t.clock.advance(25_000);
    const text = t.manager.metrics.render();
    expect(text).toContain('prober_probe_total{container="app",namespace="default",pod="web",pod_uid="uid-1",probe_type="Liveness",result="successful"} 1\n');
    expect(text).toContain('prober_probe_total{container="app",namespace="default",pod="web",pod_uid="uid-1",probe_type="Liveness",result="failed"} 2\n');
    // Failures are not timed (as upstream).
    expect(text).toContain('prober_probe_duration_seconds_count{container="app",namespace="default",pod="web",probe_type="Liveness"} 1\n');
    expect(text).toContain("# HELP prober_probe_total [BETA]");

    // The worker's series go with it.
    t.manager.removePod(p);
    await flush();
    expect(t.manager.metrics.render()).toBe("");
  });

  it("says which running containers have not passed their startup probe yet, until they do", async () => {
    const t = setup();
    await t.clock.advance(60_000);
    t.answers.startup = ["Failure", "Success"];
    const sidecar: V1Container = { name: "proxy", restartPolicy: "Always", startupProbe: probe({ periodSeconds: 1, failureThreshold: 10 }) };
    const p = pod([{ name: "app" }], { spec: { containers: [{ name: "app" }], initContainers: [sidecar] } });
    const rt = runtime({ ...running("proxy", "s1", t.clock.now()), kind: "sidecar" });
    let probes = sync(t.manager, p, rt);
    expect(probes.startup).toEqual({ proxy: false });
    expect([...(probes.failures.notStarted ?? [])]).toEqual(["proxy"]);
    await t.clock.advance(0); // first run: a failure below the threshold
    expect([...(t.manager.updatePodStatus(p, rt).failures.notStarted ?? [])]).toEqual(["proxy"]);
    await t.clock.advance(1_000); // second run: success
    probes = t.manager.updatePodStatus(p, rt);
    expect(probes.startup).toEqual({ proxy: true });
    expect(probes.failures.notStarted).toBeUndefined();
  });
});
