/**
 * Lifecycle hook handlers (upstream's pkg/kubelet/lifecycle/handlers.go, handlerRunner.Run): `exec` through
 * CRI ExecSync with no timeout of its own (upstream passes 0), `httpGet` with the prober's HTTP code and
 * redirect policy (host defaulting to the pod IP, User-Agent `kube-lifecycle/<version>`; the status code does
 * not matter, only a request that could not be made fails the hook; an HTTPS hook answered in plain HTTP is
 * retried over HTTP as upstream's), `sleep`. Anything else (the deprecated
 * `tcpSocket`, which upstream keeps in the API but never runs) fails at run time with upstream's "Cannot run
 * handler" message. The result is upstream's message for a failed hook, or undefined on success; how long a
 * hook may run is the caller's (preStop: the grace period) through `signal`.
 */
import type { V1Container, V1LifecycleHandler, V1Pod } from "@kubernetes/client-node";
import type { RuntimeService } from "../cri/services.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import { expandVars } from "../runtime/container-config.ts";
import { httpGetWithRedirects, newRequestForHttpGet, type HttpGetResult, type HttpProbeRequest } from "../prober/probe-http.ts";
import { podRef, type EventRecorder } from "../events.ts";
import { LIFECYCLE_USER_AGENT } from "../prober/probe.ts";

/** What a hook is run against. */
export interface HookTarget {
  pod: V1Pod;
  container: V1Container;
  containerId: string;
  /** The pod's primary IP: the default host of an httpGet hook ("" when the pod has none). */
  podIP: string;
}

/** upstream's format.Pod: `name_namespace(uid)`. */
export function formatPod(pod: V1Pod): string {
  return `${pod.metadata?.name ?? ""}_${pod.metadata?.namespace ?? ""}(${pod.metadata?.uid ?? ""})`;
}

/** Go's %v of a []string: `[sh -c echo hi]`. */
function goList(items: readonly string[]): string {
  return `[${items.join(" ")}]`;
}

/** The remote runtime's error for a command that exited non-zero (upstream's CodeExitError text). */
export function execExitError(cmd: readonly string[], exitCode: number, stderr: string): string {
  return `command '${cmd.join(" ")}' exited with ${exitCode}: ${stderr}`;
}

export function execHookMessage(target: Pick<HookTarget, "pod" | "container">, cmd: readonly string[], error: string, output: string): string {
  return `Exec lifecycle hook (${goList(cmd)}) for Container ${JSON.stringify(target.container.name)} in Pod ${JSON.stringify(formatPod(target.pod))} failed - error: ${error}, message: ${JSON.stringify(output)}`;
}

export function httpHookMessage(target: Pick<HookTarget, "pod" | "container">, path: string, error: string): string {
  return `HTTP lifecycle hook (${path}) for Container ${JSON.stringify(target.container.name)} in Pod ${JSON.stringify(formatPod(target.pod))} failed - error: ${error}`;
}

export function sleepHookMessage(target: Pick<HookTarget, "pod" | "container">, seconds: number, error: string): string {
  return `Sleep lifecycle hook (${seconds}) for Container ${JSON.stringify(target.container.name)} in Pod ${JSON.stringify(formatPod(target.pod))} failed - error: ${error}`;
}

export interface HookRunnerOptions {
  runtime: RuntimeService;
  clock?: Clock;
  /** For upstream's `LifecycleHTTPFallback` event. */
  recorder?: EventRecorder;
}

export class HookRunner {
  private readonly runtime: RuntimeService;
  private readonly clock: Clock;
  private readonly recorder: EventRecorder | undefined;

  constructor(options: HookRunnerOptions) {
    this.runtime = options.runtime;
    this.clock = options.clock ?? systemClock;
    this.recorder = options.recorder;
  }

  /** Runs one handler; resolves to upstream's failure message, or undefined when the hook succeeded. */
  async run(handler: V1LifecycleHandler, target: HookTarget, signal: AbortSignal): Promise<string | undefined> {
    if (handler.exec) return this.exec(handler.exec.command ?? [], target, signal);
    if (handler.httpGet) {
      const path = handler.httpGet.path ?? "";
      let error: string | undefined;
      try {
        if (!handler.httpGet.host && !target.podIP) error = "failed to find networking container: the pod has no IP";
        else {
          const res = await this.httpGet(newRequestForHttpGet(handler.httpGet, target.container, target.podIP, LIFECYCLE_USER_AGENT), target, signal);
          if (!res.ok) error = res.error;
        }
      } catch (err) {
        error = signal.aborted ? "context canceled" : errorMessage(err);
      }
      return error === undefined ? undefined : httpHookMessage(target, path, error);
    }
    if (handler.sleep) {
      const seconds = handler.sleep.seconds;
      try {
        await this.clock.sleep(seconds * 1000, signal);
        return undefined;
      } catch {
        return sleepHookMessage(target, seconds, "container terminated before sleep hook finished");
      }
    }
    return `Cannot run handler: invalid handler: ${JSON.stringify(handler)}`;
  }

  /**
   * The GET, and upstream's fallback: an HTTPS hook whose server answered in plain HTTP (the TLS exchange fails
   * with EPROTO) is tried again over HTTP without its Authorization header; if that works, a Warning
   * `LifecycleHTTPFallback` says so and the hook succeeds. Otherwise the first error stands.
   */
  private async httpGet(request: HttpProbeRequest, target: HookTarget, signal: AbortSignal): Promise<HttpGetResult> {
    const res = await httpGetWithRedirects(request, { signal });
    if (res.ok || res.code !== "EPROTO" || request.url.protocol !== "https:") return res;
    const url = new URL(request.url);
    const port = url.port || "443";
    url.protocol = "http:";
    url.port = port;
    const retry = await httpGetWithRedirects({ ...request, url, headers: request.headers.filter(([n]) => n.toLowerCase() !== "authorization") }, { signal });
    if (!retry.ok) return res;
    this.recorder?.event(podRef(target.pod), "Warning", "LifecycleHTTPFallback", `request to HTTPS lifecycle hook ${request.hostHeader} got HTTP response, retry with HTTP succeeded`);
    return retry;
  }

  private async exec(command: readonly string[], target: HookTarget, signal: AbortSignal): Promise<string | undefined> {
    // Only the container's literal env values expand, as for exec probes (ExpandContainerCommandOnlyStatic).
    const vars = new Map((target.container.env ?? []).map((e) => [e.name, e.value ?? ""] as const));
    const cmd = command.map((c) => expandVars(c, vars));
    try {
      // timeout 0: the runtime puts no limit on the command; the call has none either (upstream's context).
      const res = await this.runtime.runtime("ExecSync", { container_id: target.containerId, cmd, timeout: 0 }, { timeoutMs: Infinity, signal });
      if (res.exit_code === 0) return undefined;
      const output = Buffer.concat([res.stdout, res.stderr]).toString("utf8");
      return execHookMessage(target, cmd, execExitError(cmd, res.exit_code, res.stderr.toString("utf8")), output);
    } catch (err) {
      return execHookMessage(target, cmd, signal.aborted ? "context canceled" : errorMessage(err), "");
    }
  }
}
