import { afterAll, beforeAll, describe, expect, it } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { CriCallOptions, RuntimeService } from "../../../../kubelet/cri/services.ts";
import { CriError } from "../../../../kubelet/cri/client.ts";
import type { ExecSyncRequest, ExecSyncResponse } from "../../../../kubelet/cri/types.ts";
import type { EventRecorder, EventType, ObjectReference } from "../../../../kubelet/events.ts";
import { Prober, killGracePeriodSeconds } from "../../../../kubelet/prober/prober.ts";
import { silentLogger } from "../../../../src-shared/log.ts";

interface ExecCall {
  request: ExecSyncRequest;
  options: CriCallOptions | undefined;
}

/** A RuntimeService that answers ExecSync from a script keyed by the command's first word. */
class FakeExecRuntime implements RuntimeService {
  readonly calls: ExecCall[] = [];
  runtime<M extends string>(method: M, request: unknown, options?: CriCallOptions): Promise<never> {
    if (method !== "ExecSync") return Promise.reject(new Error(`unexpected ${method}`));
    const req = request as ExecSyncRequest;
    this.calls.push({ request: req, options });
    const out = (stdout: string, stderr: string, exit_code: number): Promise<never> =>
      Promise.resolve({ stdout: Buffer.from(stdout), stderr: Buffer.from(stderr), exit_code } satisfies ExecSyncResponse as never);
    switch (req.cmd[0]) {
      case "ok":
        return out("all good\n", "", 0);
      case "bad":
        return out("partial\n", "cat: can't open '/tmp/healthy': No such file or directory\n", 1);
      case "loud":
        return out("y".repeat(20_000), "", 2);
      case "slow":
        return Promise.reject(new CriError("DeadlineExceeded", "ExecSync", "timeout 1s exceeded: context deadline exceeded", 4));
      default:
        return Promise.reject(new CriError("NotFound", "ExecSync", `container ${req.container_id} not found`, 5));
    }
  }
}

class Recorder implements EventRecorder {
  readonly events: { ref: ObjectReference; type: EventType; reason: string; message: string }[] = [];
  event(ref: ObjectReference, type: EventType, reason: string, message: string): void {
    this.events.push({ ref, type, reason, message });
  }
}

const pod: V1Pod = { metadata: { name: "web", namespace: "ns", uid: "u1" }, spec: { containers: [] } };

function setup() {
  const runtime = new FakeExecRuntime();
  const recorder = new Recorder();
  const prober = new Prober({ runtime, recorder, logger: silentLogger() });
  const signal = new AbortController().signal;
  return { runtime, recorder, prober, signal };
}

describe("exec probes through CRI ExecSync", () => {
  it("passes the command, its $(VAR) expansion from literal env, and the probe's timeout", async () => {
    const t = setup();
    const c: V1Container = {
      name: "app",
      env: [{ name: "FILE", value: "/tmp/healthy" }, { name: "FROM_API", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }],
      livenessProbe: { exec: { command: ["ok", "$(FILE)", "$(FROM_API)", "$$(FILE)", "$(UNSET)"] }, timeoutSeconds: 3 },
    };
    expect(await t.prober.probe("liveness", { pod, container: c, containerId: "c1", podIP: "" }, t.signal)).toEqual({ result: "Success" });
    expect(t.runtime.calls).toHaveLength(1);
    expect(t.runtime.calls[0]!.request).toEqual({ container_id: "c1", cmd: ["ok", "/tmp/healthy", "", "$(FILE)", "$(UNSET)"], timeout: 3 });
    // The call's own deadline leaves the runtime time to kill the command and answer.
    expect(t.runtime.calls[0]!.options?.timeoutMs).toBe(3_000 + 120_000);
    expect(t.recorder.events).toEqual([]);
  });

  it("fails on a non-zero exit with stdout and stderr in the Unhealthy event", async () => {
    const t = setup();
    const c: V1Container = { name: "app", livenessProbe: { exec: { command: ["bad"] } } };
    expect(await t.prober.probe("liveness", { pod, container: c, containerId: "c1", podIP: "" }, t.signal)).toEqual({ result: "Failure" });
    expect(t.recorder.events).toEqual([
      {
        ref: { kind: "Pod", apiVersion: "v1", name: "web", namespace: "ns", uid: "u1", fieldPath: "spec.containers{app}" },
        type: "Warning",
        reason: "Unhealthy",
        message: "Liveness probe failed: partial\ncat: can't open '/tmp/healthy': No such file or directory\n",
      },
    ]);
  });

  it("keeps 10 KiB of output, and fails a command that outlives its timeout", async () => {
    const t = setup();
    const loud: V1Container = { name: "app", readinessProbe: { exec: { command: ["loud"] } } };
    await t.prober.probe("readiness", { pod, container: loud, containerId: "c1", podIP: "" }, t.signal);
    expect(t.recorder.events[0]!.message).toBe(`Readiness probe failed: ${"y".repeat(10 * 1024)}`);
    const slow: V1Container = { name: "app", startupProbe: { exec: { command: ["slow", "10"] } } };
    expect(await t.prober.probe("startup", { pod, container: slow, containerId: "c1", podIP: "" }, t.signal)).toEqual({ result: "Failure" });
    expect(t.recorder.events[1]!.message).toBe('Startup probe failed: command "slow 10" timed out');
  });

  it("retries a probe the runtime cannot run 3 times, then reports the error and no result", async () => {
    const t = setup();
    const c: V1Container = { name: "app", readinessProbe: { exec: { command: ["gone"] } } };
    const attempt = await t.prober.probe("readiness", { pod, container: c, containerId: "c1", podIP: "" }, t.signal);
    expect(attempt.result).toBe("Failure");
    expect(attempt.error).toBeInstanceOf(CriError);
    expect(t.runtime.calls).toHaveLength(3);
    expect(t.recorder.events.map((e) => e.message)).toEqual(["Readiness probe errored and resulted in unknown state: CRI ExecSync: container c1 not found"]);
  });
});

describe("prober dispatch", () => {
  let server: http.Server;
  let port = 0;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === "/ok") res.end("ok");
      else if (req.url === "/away") res.writeHead(302, { location: `http://localhost:${port}/ok` }).end("bye");
      else res.writeHead(500).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("probes HTTP and TCP at the pod IP with upstream's events, init containers referenced as such", async () => {
    const t = setup();
    const sidecarPod: V1Pod = { ...pod, spec: { containers: [], initContainers: [{ name: "side", restartPolicy: "Always" }] } };
    const target = (container: V1Container, p: V1Pod = pod) => ({ pod: p, container, containerId: "c1", podIP: "127.0.0.1" });
    expect(await t.prober.probe("readiness", target({ name: "app", readinessProbe: { httpGet: { path: "/ok", port } } }), t.signal)).toEqual({ result: "Success" });
    expect(await t.prober.probe("readiness", target({ name: "app", readinessProbe: { tcpSocket: { port } } }), t.signal)).toEqual({ result: "Success" });
    expect(await t.prober.probe("liveness", target({ name: "side", livenessProbe: { httpGet: { path: "/boom", port } } }, sidecarPod), t.signal)).toEqual({ result: "Failure" });
    expect(await t.prober.probe("readiness", target({ name: "app", readinessProbe: { httpGet: { path: "/away", port } } }), t.signal)).toEqual({ result: "Success" });
    expect(t.recorder.events.map((e) => [e.ref.fieldPath, e.reason, e.message])).toEqual([
      ["spec.initContainers{side}", "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500"],
      ["spec.containers{app}", "ProbeWarning", "Readiness probe warning: Probe terminated redirects, Response body: bye"],
    ]);
  });

  it("reports a probe with no handler, or a port it cannot resolve, as an error", async () => {
    const t = setup();
    const none = await t.prober.probe("liveness", { pod, container: { name: "app", livenessProbe: {} }, containerId: "c1", podIP: "127.0.0.1" }, t.signal);
    expect(none.error).toBeDefined();
    const badPort = await t.prober.probe("liveness", { pod, container: { name: "app", livenessProbe: { tcpSocket: { port: "metrics" } } }, containerId: "c1", podIP: "127.0.0.1" }, t.signal);
    expect(badPort.error).toBeDefined();
    expect(t.recorder.events.map((e) => e.message)).toEqual([
      "Liveness probe errored and resulted in unknown state: missing probe handler for web_ns(u1):app",
      'Liveness probe errored and resulted in unknown state: strconv.Atoi: parsing "metrics": invalid syntax',
    ]);
  });
});

describe("grace period of a container stopped after a probe failure", () => {
  it("prefers the deletion's grace, then the failed probe's own, then the pod's", () => {
    const c: V1Container = { name: "app", livenessProbe: { exec: { command: ["x"] }, terminationGracePeriodSeconds: 5 }, startupProbe: { exec: { command: ["x"] } } };
    const p: V1Pod = { metadata: { name: "p" }, spec: { containers: [c], terminationGracePeriodSeconds: 40 } };
    expect(killGracePeriodSeconds(p, c, "liveness")).toBe(5);
    expect(killGracePeriodSeconds(p, c, "startup")).toBe(40);
    expect(killGracePeriodSeconds(p, c)).toBe(40);
    expect(killGracePeriodSeconds({ ...p, metadata: { name: "p", deletionGracePeriodSeconds: 1 } }, c, "liveness")).toBe(1);
    expect(killGracePeriodSeconds({ metadata: { name: "p" }, spec: { containers: [c] } }, c, "startup")).toBe(30);
  });
});
