import { afterAll, beforeAll, describe, expect, it } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { HookRunner, formatPod } from "../../../../kubelet/lifecycle/handlers.ts";
import { LIFECYCLE_USER_AGENT } from "../../../../kubelet/prober/probe.ts";
import type { RuntimeService } from "../../../../kubelet/cri/services.ts";
import { FakeClock } from "../../../harness/fake-clock.ts";

const pod: V1Pod = { metadata: { name: "web", namespace: "shop", uid: "u-1" }, spec: { containers: [] } };
const container: V1Container = { name: "app", ports: [{ name: "admin", containerPort: 0 }], env: [{ name: "WHO", value: "me" }] };

/** A runtime whose ExecSync answers with `answer`, recording the requests. */
function execRuntime(answer: { exit_code: number; stdout?: string; stderr?: string } | Error) {
  const requests: { cmd: string[]; timeout: number; timeoutMs: number | undefined }[] = [];
  const runtime = {
    runtime: (method: string, request: { cmd: string[]; timeout: number }, options: { timeoutMs?: number } = {}) => {
      if (method !== "ExecSync") throw new Error(`unexpected ${method}`);
      requests.push({ cmd: request.cmd, timeout: request.timeout, timeoutMs: options.timeoutMs });
      if (answer instanceof Error) return Promise.reject(answer);
      return Promise.resolve({ exit_code: answer.exit_code, stdout: Buffer.from(answer.stdout ?? ""), stderr: Buffer.from(answer.stderr ?? "") });
    },
  } as unknown as RuntimeService;
  return { runtime, requests };
}

const never = new AbortController().signal;

describe("exec hooks", () => {
  it("runs through ExecSync without a timeout, with the container's literal env expanded", async () => {
    const { runtime, requests } = execRuntime({ exit_code: 0 });
    const hooks = new HookRunner({ runtime });
    expect(await hooks.run({ exec: { command: ["echo", "$(WHO)"] } }, { pod, container, containerId: "c1", podIP: "" }, never)).toBeUndefined();
    expect(requests).toEqual([{ cmd: ["echo", "me"], timeout: 0, timeoutMs: Infinity }]);
  });

  it("words a failure as upstream: the command, the container, the pod, the exit and the output", async () => {
    const { runtime } = execRuntime({ exit_code: 2, stdout: "partial\n", stderr: "bad thing\n" });
    const message = await new HookRunner({ runtime }).run({ exec: { command: ["sh", "-c", "exit 2"] } }, { pod, container, containerId: "c1", podIP: "" }, never);
    expect(message).toBe(`Exec lifecycle hook ([sh -c exit 2]) for Container "app" in Pod "web_shop(u-1)" failed - error: command 'sh -c exit 2' exited with 2: bad thing\n, message: "partial\\nbad thing\\n"`);
    const failed = await new HookRunner({ runtime: execRuntime(new Error("container not running")).runtime }).run({ exec: { command: ["true"] } }, { pod, container, containerId: "c1", podIP: "" }, never);
    expect(failed).toBe(`Exec lifecycle hook ([true]) for Container "app" in Pod "web_shop(u-1)" failed - error: container not running, message: ""`);
  });
});

describe("httpGet hooks", () => {
  let server: http.Server;
  let port = 0;
  const seen: { url: string; agent: string | undefined }[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push({ url: req.url ?? "", agent: req.headers["user-agent"] });
      if (req.url === "/moved") res.writeHead(302, { location: "/fail" }).end();
      else if (req.url === "/fail") res.writeHead(500).end("no");
      else res.end("ok");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("sends kube-lifecycle's GET to the pod IP on a named port; the status code does not matter", async () => {
    const hooks = new HookRunner({ runtime: execRuntime({ exit_code: 0 }).runtime });
    const named = { ...container, ports: [{ name: "admin", containerPort: port }] };
    expect(await hooks.run({ httpGet: { port: "admin", path: "/moved" } }, { pod, container: named, containerId: "c1", podIP: "127.0.0.1" }, never)).toBeUndefined();
    expect(seen).toEqual([
      { url: "/moved", agent: LIFECYCLE_USER_AGENT },
      { url: "/fail", agent: LIFECYCLE_USER_AGENT },
    ]);
    expect(LIFECYCLE_USER_AGENT).toMatch(/^kube-lifecycle\/\d+\.\d+$/);
  });

  it("retries over HTTP an HTTPS hook whose server speaks plain HTTP, with a LifecycleHTTPFallback event", async () => {
    const events: { reason: string; message: string }[] = [];
    const hooks = new HookRunner({ runtime: execRuntime({ exit_code: 0 }).runtime, recorder: { event: (_o, _t, reason, message) => events.push({ reason, message }) } });
    seen.length = 0;
    const message = await hooks.run({ httpGet: { scheme: "HTTPS", port, path: "/tls", httpHeaders: [{ name: "Authorization", value: "Bearer x" }] } }, { pod, container, containerId: "c1", podIP: "127.0.0.1" }, never);
    expect(message).toBeUndefined();
    expect(seen.map((s) => s.url)).toEqual(["/tls"]);
    expect(events).toEqual([{ reason: "LifecycleHTTPFallback", message: `request to HTTPS lifecycle hook 127.0.0.1:${port} got HTTP response, retry with HTTP succeeded` }]);
  });

  it("fails when the request cannot be made, with upstream's message", async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const hooks = new HookRunner({ runtime: execRuntime({ exit_code: 0 }).runtime });
    const message = await hooks.run({ httpGet: { port: deadPort, path: "/stop" } }, { pod, container, containerId: "c1", podIP: "127.0.0.1" }, never);
    expect(message).toBe(`HTTP lifecycle hook (/stop) for Container "app" in Pod "web_shop(u-1)" failed - error: Get "http://127.0.0.1:${deadPort}/stop": dial tcp 127.0.0.1:${deadPort}: connect: connection refused`);
    expect(await hooks.run({ httpGet: { port: 80, path: "/x" } }, { pod, container, containerId: "c1", podIP: "" }, never)).toMatch(/^HTTP lifecycle hook \(\/x\) .* failed - error: failed to find networking container/);
  });
});

describe("sleep hooks and handlers upstream does not run", () => {
  it("sleeps on the clock; an abort before the end fails the hook", async () => {
    const clock = new FakeClock();
    const hooks = new HookRunner({ runtime: execRuntime({ exit_code: 0 }).runtime, clock });
    let done: string | undefined | null = null;
    const sleeping = hooks.run({ sleep: { seconds: 5 } }, { pod, container, containerId: "c1", podIP: "" }, never).then((m) => (done = m));
    await clock.advance(4_999);
    expect(done).toBeNull();
    await clock.advance(1);
    await sleeping;
    expect(done).toBeUndefined();
    const stop = new AbortController();
    const cut = hooks.run({ sleep: { seconds: 5 } }, { pod, container, containerId: "c1", podIP: "" }, stop.signal);
    stop.abort();
    expect(await cut).toBe(`Sleep lifecycle hook (5) for Container "app" in Pod "web_shop(u-1)" failed - error: container terminated before sleep hook finished`);
  });

  it("refuses at run time a tcpSocket handler (deprecated, never run upstream)", async () => {
    const hooks = new HookRunner({ runtime: execRuntime({ exit_code: 0 }).runtime });
    expect(await hooks.run({ tcpSocket: { port: 80 } }, { pod, container, containerId: "c1", podIP: "10.0.0.1" }, never)).toBe('Cannot run handler: invalid handler: {"tcpSocket":{"port":80}}');
    expect(formatPod(pod)).toBe("web_shop(u-1)");
  });
});
