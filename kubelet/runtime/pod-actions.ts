/**
 * What must change for a pod's runtime state to match its spec: upstream's computePodActions
 * (pkg/kubelet/kuberuntime/kuberuntime_manager.go), pure. It decides whether the sandbox must be (re)created
 * with which attempt, which containers to start (init containers one at a time, sidecars kept running, app
 * containers by restart policy, the next init container only once a sidecar with a startup probe has started)
 * and which to kill (spec hash changed, liveness or startup probe failed, unknown state).
 * Back-off is not decided here: the runtime manager applies it when it starts what this returns.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { PodRuntimeStatus, RuntimeContainer } from "./types.ts";
import { latestContainer } from "./types.ts";
import { containerHash } from "./container-hash.ts";
import type { ContainerKind } from "./container-config.ts";
import { isSidecar, podSandboxChanged, restartPolicy, shouldContainerBeRestarted } from "../pod-helpers.ts";

export interface ContainerToStart {
  container: V1Container;
  kind: ContainerKind;
  /** CRI attempt = restart count: the previous attempt + 1, or 0. */
  restartCount: number;
  /** When it ran before: when the last attempt finished (for back-off). */
  previous: RuntimeContainer | undefined;
}

export interface ContainerToKill {
  id: string;
  name: string;
  /** Event message, as upstream's ("Container app definition changed, will be restarted", ...). */
  reason: string;
  /** Init containers and sidecars: their events name them under spec.initContainers. */
  kind?: ContainerKind;
  /** The probe that failed: its own terminationGracePeriodSeconds applies to the kill. */
  probe?: "liveness" | "startup";
}

export interface PodActions {
  /** Stop every container and sandbox of the pod (before a new sandbox, or because nothing is left to run). */
  killPod: boolean;
  createSandbox: boolean;
  /** The ready sandbox to start containers in, when not creating one. */
  sandboxId: string;
  /** Attempt for the new sandbox. */
  attempt: number;
  containersToStart: ContainerToStart[];
  containersToKill: ContainerToKill[];
  /** Set when an init container failed under restartPolicy Never: the pod has failed. */
  initFailed?: { container: string; exitCode: number };
}

export interface ProbeFailures {
  /** Containers whose liveness probe says restart. */
  liveness?: ReadonlySet<string>;
  /** Containers whose startup probe gave up. */
  startup?: ReadonlySet<string>;
  /**
   * Running containers with a startup probe that has not succeeded yet: such a sidecar holds back the next
   * init container (upstream waits for the startup result before it counts a sidecar as initialized).
   */
  notStarted?: ReadonlySet<string>;
}

function nextAttempt(previous: RuntimeContainer | undefined): number {
  return previous ? previous.attempt + 1 : 0;
}

export function computePodActions(pod: V1Pod, status: PodRuntimeStatus | undefined, probes: ProbeFailures = {}): PodActions {
  const actions: PodActions = { killPod: false, createSandbox: false, sandboxId: "", attempt: 0, containersToStart: [], containersToKill: [] };
  const initContainers = pod.spec?.initContainers ?? [];
  const containers = pod.spec?.containers ?? [];
  const policy = restartPolicy(pod);
  const sandbox = podSandboxChanged(pod, status);
  const latest = (name: string): RuntimeContainer | undefined => (status ? latestContainer(status, name) : undefined);

  if (sandbox.changed) {
    // A pod that must not restart and already ran keeps its (dead) sandbox: it is done.
    if (policy === "Never" && sandbox.attempt !== 0 && (status?.containers.length ?? 0) > 0) return actions;
    actions.createSandbox = true;
    actions.killPod = true;
    actions.attempt = sandbox.attempt;
    if (initContainers.length > 0) {
      const first = initContainers[0];
      if (first) actions.containersToStart.push({ container: first, kind: isSidecar(first) ? "sidecar" : "init", restartCount: nextAttempt(latest(first.name)), previous: latest(first.name) });
      return actions;
    }
    for (const c of containers) {
      const prev = latest(c.name);
      if (policy === "OnFailure" && prev?.state === "exited" && prev.exitCode === 0) continue;
      actions.containersToStart.push({ container: c, kind: "regular", restartCount: nextAttempt(prev), previous: prev });
    }
    if (actions.containersToStart.length === 0) {
      // Everything already succeeded (OnFailure): nothing to run, nothing to create.
      actions.createSandbox = false;
      actions.killPod = false;
    }
    return actions;
  }
  actions.sandboxId = sandbox.sandboxId;

  const keep = new Set<string>();
  // Whether a running container stays ("keep"), or is killed and started again ("restart") or not ("kill").
  // A changed definition restarts whatever the policy (upstream: "Restart regardless of the restart policy
  // because the container spec changed"); a failed probe restarts by the policy (a sidecar always).
  // Upstream's messages: an app container's say ", will be restarted" when it will; a sidecar's do not.
  const checkRunning = (c: V1Container, running: RuntimeContainer, kind: "regular" | "sidecar"): "keep" | "restart" | "kill" => {
    let why: string;
    let probe: ContainerToKill["probe"];
    if (running.hash !== "" && running.hash !== containerHash(c)) why = "definition changed";
    else if (probes.liveness?.has(c.name)) [why, probe] = ["failed liveness probe", "liveness"];
    else if (probes.startup?.has(c.name)) [why, probe] = ["failed startup probe", "startup"];
    else return "keep";
    const restart = kind === "sidecar" || probe === undefined || policy !== "Never";
    const reason = kind === "sidecar" ? `Init container ${c.name} ${why}` : `Container ${c.name} ${why}${restart ? ", will be restarted" : ""}`;
    actions.containersToKill.push({ id: running.id, name: c.name, reason, kind, ...(probe ? { probe } : {}) });
    return restart ? "restart" : "kill";
  };
  // Once an app container exists the pod has initialized: a sidecar started again does not hold the app back.
  const initialized = (status?.containers ?? []).some((rc) => rc.kind === "regular");

  // Init containers, in order: regular ones must each succeed before the next; sidecars must be running, and
  // started when they have a startup probe.
  let initDone = true;
  for (const c of initContainers) {
    const prev = latest(c.name);
    if (isSidecar(c)) {
      if (prev?.state === "running") {
        if (checkRunning(c, prev, "sidecar") === "keep") {
          keep.add(prev.id);
          if (probes.notStarted?.has(c.name) && !initialized) {
            initDone = false;
            break;
          }
          continue;
        }
      }
      actions.containersToStart.push({ container: c, kind: "sidecar", restartCount: nextAttempt(prev), previous: prev });
      initDone = false;
      break;
    }
    if (prev?.state === "exited" && prev.exitCode === 0) continue;
    initDone = false;
    if (prev?.state === "running") {
      keep.add(prev.id);
      break;
    }
    if (prev?.state === "exited" && policy === "Never") {
      actions.initFailed = { container: c.name, exitCode: prev.exitCode };
      actions.killPod = true;
      return actions;
    }
    if (prev?.state === "unknown" || prev?.state === "created") actions.containersToKill.push({ id: prev.id, name: c.name, kind: "init", reason: "Init container is in unknown state, try killing it before restart" });
    actions.containersToStart.push({ container: c, kind: "init", restartCount: nextAttempt(prev), previous: prev });
    break;
  }
  if (!initDone) return actions;

  let regularKeep = 0;
  for (const c of containers) {
    const prev = latest(c.name);
    if (prev?.state === "running") {
      const decision = checkRunning(c, prev, "regular");
      if (decision === "keep") {
        keep.add(prev.id);
        regularKeep++;
        continue;
      }
      // Killed for a restart: the next attempt starts in the same sync.
      if (decision === "restart") actions.containersToStart.push({ container: c, kind: "regular", restartCount: nextAttempt(prev), previous: prev });
      continue;
    }
    if (prev && (prev.state === "unknown" || prev.state === "created")) {
      actions.containersToKill.push({ id: prev.id, name: c.name, reason: "Container is in unknown state, try killing it before restart" });
    }
    if (shouldContainerBeRestarted(pod, prev)) actions.containersToStart.push({ container: c, kind: "regular", restartCount: nextAttempt(prev), previous: prev });
  }
  // Nothing of the app is running or about to: stop the pod (its sidecars and sandbox), as upstream does.
  if (regularKeep === 0 && actions.containersToStart.length === 0) actions.killPod = true;
  return actions;
}

/**
 * Crash-loop back-off per container, as upstream's flowcontrol.Backoff used by doBackOff: the first restart
 * is immediate, later ones wait 10 s, 20 s, 40 s... up to the cap, counted from when the last attempt
 * finished; an entry whose container ran longer than twice the cap since its last restart has expired
 * (restart at once, start over from 10 s) — the "reset after 10 minutes of running".
 */
export class CrashLoopBackoff {
  private readonly entries = new Map<string, { delayMs: number; lastUpdate: number }>();
  private readonly initialMs: number;
  private readonly maxMs: number;

  constructor(options: { initialMs?: number; maxMs?: number } = {}) {
    this.initialMs = options.initialMs ?? 10_000;
    this.maxMs = options.maxMs ?? 300_000;
  }

  static key(podUid: string, containerName: string, hash: string): string {
    return `${podUid}/${containerName}/${hash}`;
  }

  private expired(entry: { lastUpdate: number }, eventTime: number): boolean {
    return eventTime - entry.lastUpdate > 2 * this.maxMs;
  }

  /** How long until a restart may happen, for an attempt that finished at `finishedAt`; 0 when it may go now. */
  remaining(key: string, finishedAt: number, now: number): number {
    const e = this.entries.get(key);
    if (!e || this.expired(e, finishedAt)) return 0;
    return Math.max(0, finishedAt + e.delayMs - now);
  }

  /** The delay in force (for the CrashLoopBackOff message). */
  delay(key: string): number {
    return this.entries.get(key)?.delayMs ?? 0;
  }

  /** Records a restart of an attempt that finished at `finishedAt`. */
  next(key: string, finishedAt: number, now: number): void {
    const e = this.entries.get(key);
    if (!e || this.expired(e, finishedAt)) this.entries.set(key, { delayMs: this.initialMs, lastUpdate: now });
    else this.entries.set(key, { delayMs: Math.min(this.maxMs, e.delayMs * 2), lastUpdate: now });
  }

  forgetPod(podUid: string): void {
    for (const k of this.entries.keys()) if (k.startsWith(`${podUid}/`)) this.entries.delete(k);
  }

  /**
   * Drops the entries no restart has touched for twice the longest delay (those of a container whose spec, and
   * so hash, changed, would stay until the pod goes): upstream's backOff.GC() in HandlePodCleanups.
   */
  gc(now: number): void {
    for (const [k, e] of this.entries) if (this.expired(e, now)) this.entries.delete(k);
  }

  get size(): number {
    return this.entries.size;
  }
}
