/**
 * One probe worker per container and probe kind (upstream's prober/worker.go): probes every periodSeconds on
 * a ticker's grid (a run that overruns is followed by one immediate run, as a Go ticker's buffered tick),
 * after a random part of a period when the kubelet has just started (so a restarted kubelet does not probe
 * every container at once), skipping the container's initialDelaySeconds from its start, counting equal
 * results in a row against successThreshold/failureThreshold, gating liveness and readiness behind the
 * startup probe, and holding still after a liveness failure or a startup verdict until the container id
 * changes (the container is being restarted: probing it while it stops only adds noise). A container found
 * running since before the kubelet started keeps no initial result, so a kubelet restart does not flap a
 * ready container to unready (upstream's handling with ChangeContainerStatusOnKubeletRestart off, its
 * default).
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { Clock } from "../../src-shared/clock.ts";
import { Wakeup } from "../../src-shared/loop.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import type { Logger } from "../../src-shared/log.ts";
import type { ContainerState } from "../runtime/types.ts";
import type { ProberMetrics, WorkerSeries } from "./metrics.ts";
import { probeSpec, probeTiming, probeTypeName, type ProbeAttempt, type ProbeTarget } from "./prober.ts";
import type { ProbeResult, ProbeType, ResultsManager } from "./results.ts";

/**
 * A container found running since this long before the kubelet started was there before the kubelet
 * (upstream's kubeletRestartGracePeriod in pkg/kubelet/prober/prober_manager.go: the kubelet's start minus
 * 10 s). Such a container gets no initial probe result, and its readiness stays as the API last saw the pod's
 * Ready condition until its probe reaches a threshold (KEP-4781, "Fix inconsistent container ready state after
 * kubelet restart": upstream's default since 1.35, with the feature gate ChangeContainerStatusOnKubeletRestart
 * off). A container started within those 10 s may be one the kubelet started itself: it is treated as new.
 */
export const KUBELET_RESTART_GRACE_MS = 10_000;

/** The container the worker probes, as the runtime last reported it. */
export interface ObservedContainer {
  id: string;
  state: ContainerState;
  /** ms since the epoch; 0 when not started. */
  startedAt: number;
}

/** What the worker reads each tick (upstream reads the status manager's cached pod status). */
export interface WorkerObservation {
  pod: V1Pod;
  podIP: string;
  /** The pod reached Succeeded or Failed: the worker ends. */
  terminal: boolean;
  container: ObservedContainer | undefined;
}

/** The manager's side of a worker. */
export interface WorkerHost {
  readonly clock: Clock;
  readonly random: () => number;
  /** When the kubelet (this manager) started, ms since the epoch. */
  readonly startedAt: number;
  readonly metrics: ProberMetrics;
  readonly logger: Logger;
  results(type: ProbeType): ResultsManager;
  observe(podUid: string, containerName: string): WorkerObservation | undefined;
  /** upstream's container status `started`, as the manager computes it. */
  isStarted(podUid: string, containerName: string, container: ObservedContainer): boolean;
  probe(type: ProbeType, target: ProbeTarget, signal: AbortSignal): Promise<ProbeAttempt>;
  workerDone(worker: ProbeWorker): void;
}

const INITIAL_VALUE: Record<ProbeType, ProbeResult> = { readiness: "Failure", liveness: "Success", startup: "Unknown" };

export class ProbeWorker {
  readonly type: ProbeType;
  readonly podUid: string;
  readonly container: V1Container;
  private readonly host: WorkerHost;
  private readonly results: ResultsManager;
  private readonly metrics: WorkerSeries;
  private readonly stopper = new AbortController();
  private readonly wakeup = new Wakeup();
  private loop: Promise<void> | undefined;
  private pod: V1Pod;

  /** The last container id seen, and the run of equal results for it. */
  containerId = "";
  private lastResult: ProbeResult | undefined;
  private resultRun = 0;
  /** Set after a liveness failure or a startup verdict: no probing until the container id changes. */
  onHold = false;

  constructor(host: WorkerHost, type: ProbeType, pod: V1Pod, container: V1Container) {
    this.host = host;
    this.type = type;
    this.pod = pod;
    this.podUid = pod.metadata?.uid ?? "";
    this.container = container;
    this.results = host.results(type);
    this.metrics = host.metrics.forWorker({
      probe_type: probeTypeName(type),
      container: container.name,
      pod: pod.metadata?.name ?? "",
      namespace: pod.metadata?.namespace ?? "",
      pod_uid: this.podUid,
    });
  }

  get started(): boolean {
    return this.loop !== undefined;
  }

  get stopped(): boolean {
    return this.stopper.signal.aborted;
  }

  /** Starts the probe loop (once); it ends on stop(), on `signal`, or when the container will not run again. */
  start(signal: AbortSignal): void {
    if (this.loop || this.stopped) return;
    if (signal.aborted) this.stopper.abort();
    else signal.addEventListener("abort", () => this.stopper.abort(), { once: true });
    this.loop = this.run();
  }

  /** Stops the loop; the worker then clears its result and leaves the manager. Safe to call repeatedly. */
  stop(): void {
    this.stopper.abort();
  }

  /** Probe now, then every period from now (upstream's manual trigger). */
  trigger(): void {
    this.wakeup.wake();
  }

  /** Resolves when the loop has ended (at once if it never started). */
  async done(): Promise<void> {
    await this.loop;
  }

  /** The latest pod object (its deletionTimestamp quiets liveness and startup). */
  updatePod(pod: V1Pod): void {
    this.pod = pod;
  }

  private async run(): Promise<void> {
    const { clock } = this.host;
    const signal = this.stopper.signal;
    const spec = probeSpec(this.container, this.type);
    const period = probeTiming(spec ?? {}).periodSeconds * 1000;
    try {
      // Right after a kubelet (re)start every worker starts at once: spread the first runs over a period.
      if (period > clock.now() - this.host.startedAt) await clock.sleep(this.host.random() * period, signal);
      let next = clock.now() + period;
      while (!signal.aborted && (await this.safeProbe(signal))) {
        const now = clock.now();
        if (now >= next) {
          // The run overran its tick: run again at once, then back on the grid.
          next += Math.floor((now - next) / period + 1) * period;
          continue;
        }
        const delay = next - now;
        next += period;
        if (await this.wakeup.wait(delay, signal, clock)) next = clock.now() + period;
      }
    } catch (err) {
      if (!signal.aborted) this.host.logger.warn({ probeType: this.type, container: this.container.name, err: errorMessage(err) }, "probe worker failed");
    } finally {
      this.stopper.abort();
      if (this.containerId) this.results.remove(this.containerId);
      this.metrics.forget();
      this.host.workerDone(this);
    }
  }

  /** A tick that throws is logged and the worker goes on, as upstream's doProbe recovers from panics. */
  private async safeProbe(signal: AbortSignal): Promise<boolean> {
    try {
      return await this.doProbe(signal);
    } catch (err) {
      if (!signal.aborted) this.host.logger.warn({ probeType: this.type, container: this.container.name, err: errorMessage(err) }, "probe worker tick failed");
      return true;
    }
  }

  /** One tick (upstream's doProbe). Returns whether the worker goes on. */
  async doProbe(signal: AbortSignal): Promise<boolean> {
    const startTime = performance.now();
    const spec = probeSpec(this.container, this.type);
    if (!spec) return false;
    const timing = probeTiming(spec);
    const obs = this.host.observe(this.podUid, this.container.name);
    // No status yet (pod not synced) or the container not created yet: wait for more information.
    if (!obs) return true;
    if (obs.terminal) return false;
    this.pod = obs.pod;
    const c = obs.container;
    if (!c?.id) return true;

    if (c.id !== this.containerId) {
      if (this.containerId) this.results.remove(this.containerId);
      this.containerId = c.id;
      // upstream's worker.doProbe with ChangeContainerStatusOnKubeletRestart off: no initial value for a container
      // running since before the grace period (its isRestart).
      const runningBeforeKubelet = c.state === "running" && c.startedAt > 0 && c.startedAt < this.host.startedAt - KUBELET_RESTART_GRACE_MS;
      if (!runningBeforeKubelet) this.results.set(c.id, INITIAL_VALUE[this.type], this.podUid);
      // (The run of equal results carries over, as upstream's.) A new container: probing resumes.
      this.onHold = false;
    }
    if (this.onHold) return true;

    if (c.state !== "running") {
      this.results.set(c.id, "Failure", this.podUid);
      // Go on unless the container has exited for good.
      const sidecar = this.container.restartPolicy === "Always";
      return c.state !== "exited" || this.pod.spec?.restartPolicy !== "Never" || sidecar;
    }

    // The pod is being deleted: liveness and startup say Success and stop, so nothing restarts it now.
    if (this.pod.metadata?.deletionTimestamp && (this.type === "liveness" || this.type === "startup")) {
      this.results.set(c.id, "Success", this.podUid);
      return false;
    }

    if (Math.floor((this.host.clock.now() - c.startedAt) / 1000) < timing.initialDelaySeconds) return true;

    if (this.host.isStarted(this.podUid, this.container.name, c)) {
      // A started container needs no startup probe (the worker stays for the container's next instance).
      if (this.type === "startup") return true;
    } else if (this.type !== "startup") return true;

    const attempt = await this.host.probe(this.type, { pod: this.pod, container: this.container, containerId: c.id, podIP: obs.podIP }, signal);
    // Stopped meanwhile, or a probe that could not run: the result is thrown away.
    if (signal.aborted) return false;
    if (attempt.error !== undefined) return true;
    const result = attempt.result;
    this.metrics.record(result, (performance.now() - startTime) / 1000);

    if (this.lastResult === result) this.resultRun++;
    else {
      this.lastResult = result;
      this.resultRun = 1;
    }
    if ((result === "Failure" && this.resultRun < timing.failureThreshold) || (result === "Success" && this.resultRun < timing.successThreshold)) return true;

    this.results.set(c.id, result, this.podUid);
    if ((this.type === "liveness" && result === "Failure") || this.type === "startup") {
      // The container is to be restarted (or has started): hold until a new container appears.
      this.onHold = true;
      this.resultRun = 0;
    }
    return true;
  }
}
