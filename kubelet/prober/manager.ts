/**
 * The prober manager (upstream's prober/prober_manager.go): one worker per container and probe kind for
 * every container with probes (app containers and restartable init containers, i.e. sidecars), results in
 * three caches by container id, and the per-container `ready`/`started` and the liveness/startup failures the
 * pod sync needs, by container name. Workers start when their container first appears in the runtime status
 * the pod sync hands over (`updatePodStatus`), and end when the pod is removed, cleaned up, or the container
 * has exited for good.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { RuntimeService } from "../cri/services.ts";
import type { EventRecorder } from "../events.ts";
import type { ProbeFailures } from "../runtime/pod-actions.ts";
import { latestContainer, type PodRuntimeStatus } from "../runtime/types.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import type { Logger } from "../../src-shared/log.ts";
import { ProberMetrics } from "./metrics.ts";
import { Prober, probeSpec, type ProbeAttempt, type ProbeTarget } from "./prober.ts";
import { ResultsManager, type ProbeType, type ResultUpdate } from "./results.ts";
import { KUBELET_RESTART_GRACE_MS, ProbeWorker, type ObservedContainer, type WorkerHost, type WorkerObservation } from "./worker.ts";

const PROBE_TYPES: readonly ProbeType[] = ["startup", "readiness", "liveness"];

/** Probe-derived facts of one pod, shaped for computePodStatus and computePodActions. */
export interface PodProbeStatus {
  /** By container name, for containers with a readiness probe that are running and started. */
  readiness: Record<string, boolean>;
  /** By container name, for running containers with a startup probe. */
  startup: Record<string, boolean>;
  /**
   * Running containers whose liveness probe failed, or whose startup probe gave up (to be restarted), and those
   * whose startup probe has not succeeded yet (a sidecar among them holds back the next init container).
   */
  failures: ProbeFailures;
}

/** A result change, with its probe kind: the pod worker of `podUid` should sync. */
export interface ProbeUpdate extends ResultUpdate {
  type: ProbeType;
}

export interface ProberManagerOptions {
  /** Runs exec probes (CRI ExecSync). */
  runtime: RuntimeService;
  recorder?: EventRecorder;
  logger: Logger;
  clock?: Clock;
  /** [0, 1): the first-run jitter. */
  random?: () => number;
  /** The node's primary IP: the probe host of host-network pods. */
  hostIP?: () => string;
  /** Replaces the real handlers (unit tests). */
  probe?: (type: ProbeType, target: ProbeTarget, signal: AbortSignal) => Promise<ProbeAttempt>;
  /** Extra time the runtime gets past an exec probe's timeout (default: upstream's 2 minutes). */
  execDeadlineSlackMs?: number;
}

interface PodEntry {
  pod: V1Pod;
  runtime: PodRuntimeStatus | undefined;
}

function key(uid: string, name: string, type: ProbeType): string {
  return `${uid}/${name}/${type}`;
}

/** App containers and sidecars: the containers probes run for. */
function probedContainers(pod: V1Pod): V1Container[] {
  return [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === "Always")];
}

function idOf(containerID: string | undefined): string {
  const i = containerID?.indexOf("://") ?? -1;
  return i >= 0 ? (containerID ?? "").slice(i + 3) : (containerID ?? "");
}

function podIsReady(pod: V1Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

function primaryIP(runtime: PodRuntimeStatus | undefined): string {
  const sandbox = runtime?.sandboxes.find((s) => s.state === "ready") ?? runtime?.sandboxes[0];
  return sandbox?.ips[0] ?? "";
}

export class ProberManager {
  readonly readiness = new ResultsManager();
  readonly liveness = new ResultsManager();
  readonly startup = new ResultsManager();
  readonly metrics = new ProberMetrics();
  private readonly o: ProberManagerOptions;
  private readonly workers = new Map<string, ProbeWorker>();
  private readonly pods = new Map<string, PodEntry>();
  private readonly host: WorkerHost;
  private signal: AbortSignal | undefined;

  constructor(options: ProberManagerOptions) {
    this.o = options;
    const clock = options.clock ?? systemClock;
    const prober = new Prober({
      runtime: options.runtime,
      logger: options.logger,
      ...(options.recorder ? { recorder: options.recorder } : {}),
      ...(options.execDeadlineSlackMs === undefined ? {} : { execDeadlineSlackMs: options.execDeadlineSlackMs }),
    });
    const probe = options.probe ?? ((type, target, signal) => prober.probe(type, target, signal));
    this.host = {
      clock,
      random: options.random ?? Math.random,
      startedAt: clock.now(),
      metrics: this.metrics,
      logger: options.logger.child({ component: "prober" }),
      results: (type) => this.results(type),
      observe: (uid, name) => this.observe(uid, name),
      isStarted: (uid, name, c) => this.isStarted(uid, name, c),
      probe,
      workerDone: (w) => {
        const k = key(w.podUid, w.container.name, w.type);
        if (this.workers.get(k) === w) this.workers.delete(k);
      },
    };
  }

  results(type: ProbeType): ResultsManager {
    return type === "readiness" ? this.readiness : type === "liveness" ? this.liveness : this.startup;
  }

  /** Every result change of the three kinds (upstream's three Updates channels); returns the unsubscribe. */
  onUpdate(listener: (update: ProbeUpdate) => void): () => void {
    const offs = PROBE_TYPES.map((type) => this.results(type).onUpdate((u) => listener({ ...u, type })));
    return () => offs.forEach((off) => off());
  }

  start(signal: AbortSignal): void {
    this.signal = signal;
    for (const uid of this.pods.keys()) this.startWorkers(uid);
  }

  /** Stops every worker and waits for them to end. */
  async close(): Promise<void> {
    const all = [...this.workers.values()];
    for (const w of all) this.stopWorker(w);
    await Promise.all(all.map((w) => w.done()));
  }

  /** Creates the workers of a pod's probes (idempotent: existing workers are kept). */
  addPod(pod: V1Pod): void {
    const uid = pod.metadata?.uid ?? "";
    if (!this.pods.has(uid)) this.pods.set(uid, { pod, runtime: undefined });
    for (const c of probedContainers(pod)) {
      for (const type of PROBE_TYPES) {
        const k = key(uid, c.name, type);
        if (!probeSpec(c, type) || this.workers.has(k)) continue;
        this.workers.set(k, new ProbeWorker(this.host, type, pod, c));
      }
    }
    this.startWorkers(uid);
  }

  /** Stops a pod's workers; their results go with them. */
  removePod(pod: V1Pod): void {
    this.forget(pod.metadata?.uid ?? "");
  }

  /** The pod is gone for good (the kubelet's per-pod state fan-out, PodStateOwner). */
  forgetPod(uid: string): void {
    this.forget(uid);
  }

  /** Stops liveness and startup probing of a pod being terminated (upstream's StopLivenessAndStartup). */
  stopLivenessAndStartup(pod: V1Pod): void {
    const uid = pod.metadata?.uid ?? "";
    for (const w of this.podWorkers(uid)) if (w.type !== "readiness") this.stopWorker(w);
  }

  /** Stops the workers of every pod not in `desired` (pod uids). */
  cleanupPods(desired: ReadonlySet<string>): void {
    const uids = new Set([...this.pods.keys(), ...[...this.workers.values()].map((w) => w.podUid)]);
    for (const uid of uids) if (!desired.has(uid)) this.forget(uid);
  }

  /**
   * Hands over the pod (with its API status) and what the runtime holds for it, at each sync of an added pod
   * (upstream reads both from the status manager's cache); returns the probe facts for the status computation and the restart decision. Workers of
   * containers that now exist start here, and a readiness probe without a success yet is run now (upstream's
   * manual trigger), so a container becomes ready as soon as it can.
   */
  updatePodStatus(pod: V1Pod, runtime: PodRuntimeStatus | undefined): PodProbeStatus {
    const uid = pod.metadata?.uid ?? "";
    // Only pods added (and not removed) are probed: a late call for a removed pod revives nothing.
    if (this.pods.has(uid)) {
      this.pods.set(uid, { pod, runtime });
      for (const w of this.podWorkers(uid)) w.updatePod(pod);
      this.startWorkers(uid);
    }

    const out: PodProbeStatus = { readiness: {}, startup: {}, failures: {} };
    const liveness = new Set<string>();
    const startup = new Set<string>();
    const notStarted = new Set<string>();
    for (const c of probedContainers(pod)) {
      const rc = runtime ? latestContainer(runtime, c.name) : undefined;
      if (!rc || rc.state !== "running") continue;
      if (this.liveness.get(rc.id) === "Failure") liveness.add(c.name);
      if (this.startup.get(rc.id) === "Failure") startup.add(c.name);

      const started = this.isStarted(uid, c.name, rc);
      if (c.startupProbe) out.startup[c.name] = started;
      if (c.startupProbe && !started) notStarted.add(c.name);
      if (!started) continue;
      const readinessWorker = this.workers.get(key(uid, c.name, "readiness"));
      if (!readinessWorker) continue;
      let ready = this.readiness.get(rc.id) === "Success";
      if (!ready) {
        readinessWorker.trigger();
        // A container running since before the kubelet started, with no result yet, keeps the pod's
        // readiness as the API last saw it (upstream's setReadyStateOnKubeletRestart in prober_manager.go,
        // applied to app containers and sidecars alike: ready when no result, then false unless the pod's Ready
        // condition is True).
        if (rc.startedAt > 0 && rc.startedAt < this.host.startedAt - KUBELET_RESTART_GRACE_MS) ready = this.readiness.get(rc.id) === undefined && podIsReady(pod);
      }
      out.readiness[c.name] = ready;
    }
    if (liveness.size > 0) out.failures.liveness = liveness;
    if (startup.size > 0) out.failures.startup = startup;
    if (notStarted.size > 0) out.failures.notStarted = notStarted;
    return out;
  }

  /** Number of live workers (tests, metrics). */
  get workerCount(): number {
    return this.workers.size;
  }

  /** The worker of a container's probe kind, if any (tests). */
  worker(uid: string, containerName: string, type: ProbeType): ProbeWorker | undefined {
    return this.workers.get(key(uid, containerName, type));
  }

  private podWorkers(uid: string): ProbeWorker[] {
    return [...this.workers.values()].filter((w) => w.podUid === uid);
  }

  private startWorkers(uid: string): void {
    const signal = this.signal;
    const entry = this.pods.get(uid);
    if (!signal || !entry?.runtime) return;
    for (const w of this.podWorkers(uid)) {
      if (w.started || w.stopped) continue;
      // A worker starts with its container's first appearance.
      if (latestContainer(entry.runtime, w.container.name)) w.start(signal);
    }
  }

  private stopWorker(w: ProbeWorker): void {
    w.stop();
    // A worker whose loop never ran has nothing to clean: it leaves at once.
    if (!w.started) this.host.workerDone(w);
  }

  private forget(uid: string): void {
    for (const w of this.podWorkers(uid)) this.stopWorker(w);
    this.pods.delete(uid);
  }

  private observe(uid: string, name: string): WorkerObservation | undefined {
    const entry = this.pods.get(uid);
    if (!entry?.runtime) return undefined;
    const phase = entry.pod.status?.phase;
    const rc = latestContainer(entry.runtime, name);
    return {
      pod: entry.pod,
      podIP: primaryIP(entry.runtime) || (entry.pod.spec?.hostNetwork ? (this.o.hostIP?.() ?? "") : ""),
      terminal: phase === "Succeeded" || phase === "Failed",
      container: rc ? { id: rc.id, state: rc.state, startedAt: rc.startedAt } : undefined,
    };
  }

  /** upstream's isContainerStarted for a running container. */
  private isStarted(uid: string, name: string, c: ObservedContainer): boolean {
    if (c.state !== "running") return false;
    const result = this.startup.get(c.id);
    if (result !== undefined) return result === "Success";
    // After a kubelet restart: the API's last word on this very container.
    const pod = this.pods.get(uid)?.pod;
    const previous = [...(pod?.status?.containerStatuses ?? []), ...(pod?.status?.initContainerStatuses ?? [])].find((s) => s.name === name);
    if (previous?.started === true && idOf(previous.containerID) === c.id) return true;
    return !this.workers.has(key(uid, name, "startup"));
  }
}
