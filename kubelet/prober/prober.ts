/**
 * Runs one probe of a container (upstream's prober/prober.go): picks the handler (exec, httpGet, tcpSocket,
 * grpc), retries a probe that could not run at all up to 3 times, and reports the outcome as a result with
 * upstream's events: `Unhealthy` "Readiness probe failed: <output>", `ProbeWarning` "... probe warning: ...",
 * `Unhealthy` "... probe errored and resulted in unknown state: ...".
 */
import type { V1Container, V1Pod, V1Probe } from "@kubernetes/client-node";
import type { RuntimeService } from "../cri/services.ts";
import { podRef, type EventRecorder } from "../events.ts";
import { expandVars } from "../runtime/container-config.ts";
import { DeckhandError, errorMessage } from "../../src-shared/errors.ts";
import type { Logger } from "../../src-shared/log.ts";
import { execProbe } from "./probe-exec.ts";
import { grpcProbe } from "./probe-grpc.ts";
import { httpProbe, newRequestForHttpGet } from "./probe-http.ts";
import { tcpProbe } from "./probe-tcp.ts";
import { resolveContainerPort, type ProbeOutcome, type ProbeStatus } from "./probe.ts";
import type { ProbeResult, ProbeType } from "./results.ts";

const MAX_PROBE_RETRIES = 3;

/** upstream's probeType.String(), used in events and metric labels. */
export function probeTypeName(type: ProbeType): "Liveness" | "Readiness" | "Startup" {
  return type === "liveness" ? "Liveness" : type === "readiness" ? "Readiness" : "Startup";
}

export function probeSpec(container: V1Container, type: ProbeType): V1Probe | undefined {
  return type === "liveness" ? container.livenessProbe : type === "readiness" ? container.readinessProbe : container.startupProbe;
}

/** A probe's settings with the API's defaults (static pods are not defaulted by an API server). */
export function probeTiming(p: V1Probe): { initialDelaySeconds: number; periodSeconds: number; timeoutSeconds: number; successThreshold: number; failureThreshold: number } {
  return {
    initialDelaySeconds: Math.max(0, p.initialDelaySeconds ?? 0),
    periodSeconds: Math.max(1, p.periodSeconds || 10),
    timeoutSeconds: Math.max(1, p.timeoutSeconds || 1),
    successThreshold: Math.max(1, p.successThreshold || 1),
    failureThreshold: Math.max(1, p.failureThreshold || 3),
  };
}

/** What a probe is aimed at. */
export interface ProbeTarget {
  pod: V1Pod;
  container: V1Container;
  containerId: string;
  /** The pod's primary IP (the node's for host-network pods): the default host of network probes. */
  podIP: string;
}

/** The outcome for the worker; `error` set means the probe could not run and the result is thrown away. */
export interface ProbeAttempt {
  result: ProbeResult;
  error?: unknown;
}

export interface ProberOptions {
  runtime: RuntimeService;
  recorder?: EventRecorder;
  logger: Logger;
  /** Extra time the runtime gets past an exec probe's timeout (default: upstream's 2 minutes). */
  execDeadlineSlackMs?: number;
}

function isInitContainer(pod: V1Pod, name: string): boolean {
  return (pod.spec?.initContainers ?? []).some((c) => c.name === name);
}

export class Prober {
  private readonly o: ProberOptions;

  constructor(options: ProberOptions) {
    this.o = options;
  }

  /** One probe with upstream's retries, events and mapping of outcomes to results. */
  async probe(type: ProbeType, target: ProbeTarget, signal: AbortSignal): Promise<ProbeAttempt> {
    const spec = probeSpec(target.container, type);
    if (!spec) return { result: "Success" };
    const name = probeTypeName(type);
    let status: ProbeStatus = "unknown";
    let output = "";
    let error: unknown;
    for (let i = 0; i < MAX_PROBE_RETRIES; i++) {
      try {
        ({ status, output } = await this.runProbe(spec, target, signal));
        error = undefined;
        break;
      } catch (err) {
        if (signal.aborted) return { result: "Unknown", error: err };
        status = "unknown";
        output = "";
        error = err;
      }
    }
    const log = this.o.logger;
    if (error !== undefined) {
      log.debug({ probeType: type, container: target.container.name, err: errorMessage(error) }, "probe errored");
      this.event(target, "Unhealthy", `${name} probe errored and resulted in ${status} state: ${errorMessage(error)}`);
      return { result: "Failure", error };
    }
    switch (status) {
      case "success":
        return { result: "Success" };
      case "warning":
        this.event(target, "ProbeWarning", `${name} probe warning: ${output}`);
        return { result: "Success" };
      case "failure":
        log.debug({ probeType: type, container: target.container.name, output }, "probe failed");
        this.event(target, "Unhealthy", `${name} probe failed: ${output}`);
        return { result: "Failure" };
      default:
        return { result: "Failure" };
    }
  }

  /** Runs the probe's handler once; throws when it cannot run (a port that does not resolve, a runtime error). */
  runProbe(spec: V1Probe, target: ProbeTarget, signal: AbortSignal): Promise<ProbeOutcome> {
    const { timeoutSeconds } = probeTiming(spec);
    const { container } = target;
    if (spec.exec) {
      // Only the container's literal env values expand: no downward API, as upstream's
      // ExpandContainerCommandOnlyStatic.
      const vars = new Map((container.env ?? []).map((e) => [e.name, e.value ?? ""] as const));
      const cmd = (spec.exec.command ?? []).map((c) => expandVars(c, vars));
      return execProbe({
        runtime: this.o.runtime,
        containerId: target.containerId,
        cmd,
        timeoutSeconds,
        signal,
        ...(this.o.execDeadlineSlackMs === undefined ? {} : { deadlineSlackMs: this.o.execDeadlineSlackMs }),
      });
    }
    if (spec.httpGet) return httpProbe(newRequestForHttpGet(spec.httpGet, container, target.podIP), { timeoutSeconds, signal });
    if (spec.tcpSocket) {
      const port = resolveContainerPort(spec.tcpSocket.port, container);
      return tcpProbe({ host: spec.tcpSocket.host || target.podIP, port, timeoutSeconds, signal });
    }
    if (spec.grpc) return grpcProbe({ host: target.podIP, port: spec.grpc.port, service: spec.grpc.service ?? "", timeoutSeconds, signal });
    const pod = target.pod.metadata;
    throw new DeckhandError("InvalidArgument", `missing probe handler for ${pod?.name ?? ""}_${pod?.namespace ?? ""}(${pod?.uid ?? ""}):${container.name}`);
  }

  private event(target: ProbeTarget, reason: "Unhealthy" | "ProbeWarning", message: string): void {
    const name = target.container.name;
    const fieldPath = isInitContainer(target.pod, name) ? `spec.initContainers{${name}}` : `spec.containers{${name}}`;
    this.o.recorder?.event(podRef(target.pod, fieldPath), "Warning", reason, message);
  }
}

/**
 * The grace period for stopping a container (upstream's setTerminationGracePeriod in kuberuntime): a deletion's
 * grace first, then a failed liveness or startup probe's own `terminationGracePeriodSeconds`, then the pod's.
 * A pod without one gets the API's default of 30 s (upstream falls back to 2 s, but its pods always carry the
 * API server's default; static pods here are not defaulted by one).
 */
export function killGracePeriodSeconds(pod: V1Pod, container: V1Container | undefined, failedProbe?: "liveness" | "startup"): number {
  const deletion = pod.metadata?.deletionGracePeriodSeconds;
  if (deletion !== undefined && deletion !== null) return deletion;
  const probe = failedProbe && container ? probeSpec(container, failedProbe) : undefined;
  const probeGrace = probe?.terminationGracePeriodSeconds;
  if (probeGrace !== undefined && probeGrace !== null) return probeGrace;
  return pod.spec?.terminationGracePeriodSeconds ?? 30;
}
