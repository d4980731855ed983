/**
 * The kubelet API (upstream's pkg/kubelet/server): HTTPS on `address:port` (10250) where every request is
 * authenticated (authn.ts) and authorized (authz.ts, attributes from auth-attributes.ts) first — 401
 * `Unauthorized`, 403 `Forbidden (user=…, verb=…, resource=…, subresource=…)` as upstream writes them — then:
 *
 *   /healthz[/<check>]  ping, log, syncloop            /pods            pods bound here, with their status
 *   /configz            the running configuration      /runningpods/    what the runtime runs
 *   /metrics            the kubelet's metrics          /metrics/probes  prober_probe_total, _duration_seconds
 *   /containerLogs/{namespace}/{pod}/{container}       follow, tailLines, limitBytes, sinceSeconds, sinceTime,
 *                                                      timestamps, previous (container-logs.ts)
 *   /logs/              files under /var/log (enableSystemLogHandler)
 *
 *   /stats/summary      stats/v1alpha1 Summary ([?only_cpu_and_memory=true]); /metrics/resource (cadvisor/summary.ts)
 *   /metrics/cadvisor   cAdvisor's container and machine metrics (cadvisor/cadvisor-metrics.ts)
 *
 *   /exec, /attach, /portForward  upgrade requests (SPDY, or WebSocket channel.k8s.io as older API servers and
 *                      direct clients send), proxied to the runtime's streaming server (streaming.ts)
 *
 * Not implemented yet, answered 501 with a message: /run, and the other stats routes (/stats/<container>).
 * With enableDebuggingHandlers
 * false the debugging routes answer 405 "Debug endpoints are disabled." as upstream's.
 *
 * The health server (`healthzBindAddress:healthzPort`, 127.0.0.1:10248) is plain HTTP with /healthz alone,
 * the same checks, no authentication. Every request is logged at debug with its identity and verdict.
 */
import https from "node:https";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join, normalize } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage, isDeckhandError } from "../../src-shared/errors.ts";
import { closeServers, listenTcp } from "../../src-shared/listen.ts";
import { authorizationErrorMessage, forbiddenMessage, requestAttributes, type KubeletUser } from "./auth-attributes.ts";
import type { KubeletAuthenticator } from "./authn.ts";
import type { KubeletAuthorizer } from "./authz.ts";
import { LogQueryError, parseLogQuery } from "./cri-log.ts";
import { logContainerId, readContainerLog } from "./container-logs.ts";
import type { NodeTlsSettings } from "./tls-options.ts";
import type { TlsMaterial } from "./serving-cert.ts";
import type { Duplex } from "node:stream";
import { connectTo, parseStreamPath, rawHttpError, spliceUpgrade, streamOptions, type StreamOptions, type StreamTarget } from "./streaming.ts";

/** What the server reads from the kubelet. */
export interface ServerHost {
  /** Pods bound to the node, with the status the kubelet has for them (/pods). */
  pods(): V1Pod[];
  /** What the runtime runs, as pods with container names and images (/runningpods/). */
  runningPods(): V1Pod[];
  configz(): unknown;
  metrics(): string;
  probeMetrics(): string;
  /** The healthz checks (ping and log always pass): each name with its failure, if any. */
  healthChecks(): { name: string; error?: string }[];
  /** The pod of that namespace and name (as the API knows it, static pods by their mirror's name). */
  pod(namespace: string, name: string): V1Pod | undefined;
  /** The CRI log path of a container (ContainerStatus). */
  containerLogPath(containerId: string, signal: AbortSignal): Promise<string>;
  containerRunning(containerId: string, signal: AbortSignal): Promise<boolean>;
  /** The runtime's streaming URL for exec, attach or port-forward (CRI Exec, Attach, PortForward). */
  streamURL(target: StreamTarget, options: StreamOptions, signal: AbortSignal): Promise<string>;
  /** /stats/summary (cadvisor/summary.ts); absent: the stats routes answer 501. */
  statsSummary?(onlyCpuAndMemory: boolean): unknown;
  /** /metrics/resource. */
  resourceMetrics?(): string;
  /** /metrics/cadvisor. */
  cadvisorMetrics?(): string;
}

export interface KubeletServerOptions {
  host: ServerHost;
  nodeName: string;
  address: string;
  port: number;
  tls: { certPem: string; keyPem: string; clientCAPem?: string; settings: NodeTlsSettings };
  authenticator: KubeletAuthenticator;
  authorizer: KubeletAuthorizer;
  /** KubeletFineGrainedAuthz. */
  fineGrainedAuthz: boolean;
  enableDebuggingHandlers: boolean;
  enableSystemLogHandler: boolean;
  /** Root of /logs/ (upstream: /var/log). */
  systemLogDir?: string;
  log: Logger;
}

/** A handled failure: status and a text body (restful's WriteErrorString). */
class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const DEBUG_PREFIXES = ["/run/", "/exec/", "/attach/", "/portForward/", "/containerLogs/", "/runningpods/", "/debug/pprof/", "/logs/"];
const STREAMING_PREFIXES = ["/run/", "/exec/", "/attach/", "/portForward/"];
const STATS_ROUTES = ["/stats", "/metrics/cadvisor", "/metrics/resource"];

function under(path: string, prefix: string): boolean {
  const p = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
  return path === p || path.startsWith(`${p}/`);
}

function sendText(res: ServerResponse, status: number, body: string, contentType = "text/plain; charset=utf-8"): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(body), "X-Content-Type-Options": "nosniff" });
  res.end(body);
}

function sendJson(res: ServerResponse, body: unknown): void {
  sendText(res, 200, JSON.stringify(body), "application/json");
}

/** healthz's body: "ok", or every check with its verdict and 500. */
export function healthzResponse(checks: { name: string; error?: string }[], only?: string): { status: number; body: string } {
  const selected = only === undefined ? checks : checks.filter((c) => c.name === only);
  if (only !== undefined && selected.length === 0) return { status: 404, body: "404 page not found\n" };
  const failed = selected.filter((c) => c.error !== undefined);
  if (failed.length === 0) return { status: 200, body: "ok" };
  const lines = selected.map((c) => (c.error === undefined ? `[+]${c.name} ok` : `[-]${c.name} failed: reason withheld`));
  return { status: 500, body: `${lines.join("\n")}\nhealthz check failed\n` };
}

export class KubeletServer {
  private readonly o: KubeletServerOptions;
  private readonly log: Logger;
  private server: https.Server | undefined;
  private readonly streams = new Set<AbortController>();
  private boundPort = 0;

  constructor(o: KubeletServerOptions) {
    this.o = o;
    this.log = o.log.child({ component: "kubelet-server" });
  }

  get port(): number {
    return this.boundPort;
  }

  /** Streams (log follows) under way: for tests that check nothing is left behind. */
  get activeStreams(): number {
    return this.streams.size;
  }

  async start(signal: AbortSignal): Promise<void> {
    const t = this.o.tls;
    const server = https.createServer({
      key: t.keyPem,
      cert: t.certPem,
      ...(t.clientCAPem === undefined ? {} : { ca: t.clientCAPem, requestCert: true, rejectUnauthorized: false }),
      ...t.settings,
      keepAliveTimeout: 90_000,
      requestTimeout: 0,
      maxHeaderSize: 1 << 20,
    });
    server.on("request", (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res));
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.handleUpgrade(req, socket, head));
    server.on("tlsClientError", (err) => this.log.debug({ err: err.message }, "TLS handshake failed"));
    this.server = server;
    this.boundPort = (await listenTcp(server, this.o.port, this.o.address)).port;
    this.log.info({ address: this.o.address, port: this.boundPort }, "kubelet API serving");
    signal.addEventListener("abort", () => void this.close(), { once: true });
  }

  /** New connections get this serving pair and client CA (replaced on disk: TlsFilesReloader). */
  setTlsMaterial(m: TlsMaterial): void {
    const t = this.o.tls;
    if (m.clientCAPem !== undefined) t.clientCAPem = m.clientCAPem;
    t.certPem = m.certPem;
    t.keyPem = m.keyPem;
    this.server?.setSecureContext({ key: m.keyPem, cert: m.certPem, ...(t.clientCAPem === undefined ? {} : { ca: t.clientCAPem }), ...t.settings });
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.abort();
    const s = this.server;
    this.server = undefined;
    if (s !== undefined) await closeServers([s]);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ctl = new AbortController();
    const onClose = (): void => ctl.abort();
    res.on("close", onClose);
    try {
      await this.authorizedCall(req, ctl.signal, "kubelet API request", {
        serve: (method, url) => this.route(method, url, res, ctl.signal),
        fail: (e) => sendText(res, e.status, e.message),
        logFields: () => ({ code: res.statusCode }),
      });
    } finally {
      res.off("close", onClose);
    }
  }

  /** exec, attach, portForward: the upgrade request proxied to the runtime's streaming server. */
  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const ctl = new AbortController();
    socket.once("close", () => ctl.abort());
    socket.on("error", () => ctl.abort());
    await this.authorizedCall(req, ctl.signal, "kubelet API stream", {
      serve: (_method, url) => this.stream(req, url, socket, head, ctl),
      fail: (e) => rawHttpError(socket, e.status, http.STATUS_CODES[e.status] ?? "Error", e.message),
      logFields: () => ({ upgrade: req.headers.upgrade }),
    });
  }

  /**
   * The frame of every request: authentication and authorization (401/403 as upstream's), then `serve`;
   * failures answered through `fail` (an unexpected error as 500, a missing pod or container as 404); one
   * debug line at the end with the identity, the verdict and the time taken.
   */
  private async authorizedCall(
    req: IncomingMessage,
    signal: AbortSignal,
    msg: string,
    h: { serve: (method: string, url: URL) => Promise<void>; fail: (e: HttpError) => void; logFields: () => Record<string, unknown> },
  ): Promise<void> {
    const started = Date.now();
    const url = new URL(req.url ?? "/", "https://kubelet");
    const method = (req.method ?? "GET").toUpperCase();
    let user: KubeletUser | undefined;
    let verdict = "allowed";
    try {
      const who = await this.authorize(req, method, url.pathname, signal);
      user = who.user;
      verdict = who.verdict;
      if (who.error !== undefined) throw who.error;
      await h.serve(method, url);
    } catch (err) {
      let e: HttpError;
      if (err instanceof HttpError) e = err;
      else if (isDeckhandError(err, "NotFound")) e = new HttpError(404, errorMessage(err));
      else {
        this.log.error({ err: errorMessage(err), path: url.pathname }, "kubelet API request failed");
        e = new HttpError(500, errorMessage(err));
      }
      if (verdict === "allowed") verdict = `error: ${e.message}`;
      h.fail(e);
    } finally {
      this.log.debug({ method, path: url.pathname, query: url.search, user: user?.username, groups: user?.groups, verdict, ...h.logFields(), ms: Date.now() - started }, msg);
    }
  }

  /** Authentication then authorization: the user, the verdict for the log, and the error to answer with, if any. */
  private async authorize(req: IncomingMessage, method: string, path: string, signal: AbortSignal): Promise<{ user?: KubeletUser; verdict: string; error?: HttpError }> {
    const authn = await this.o.authenticator.authenticate(req, signal);
    if (!authn.ok) return { verdict: `unauthenticated: ${authn.reason}`, error: new HttpError(401, "Unauthorized") };
    const user = authn.user;
    const attrs = requestAttributes(user, method, path, this.o.nodeName, this.o.fineGrainedAuthz);
    for (const a of attrs) {
      try {
        if ((await this.o.authorizer.authorize(a, signal)).allowed) return { user, verdict: "allowed" };
      } catch (err) {
        return { user, verdict: `authorization error: ${errorMessage(err)}`, error: new HttpError(500, authorizationErrorMessage(a)) };
      }
    }
    // The last attributes asked (the broadest: proxy, or the path's own subresource) name the denial.
    const last = attrs[attrs.length - 1];
    return { user, verdict: "forbidden", error: new HttpError(403, last === undefined ? "Forbidden" : forbiddenMessage(last)) };
  }

  /** An authorized upgrade: the runtime's streaming URL for the target, then the connection spliced to it. */
  private async stream(req: IncomingMessage, url: URL, socket: Duplex, head: Buffer, ctl: AbortController): Promise<void> {
    if (!this.o.enableDebuggingHandlers) throw new HttpError(405, "Debug endpoints are disabled.");
    let target: StreamTarget | undefined;
    let options: StreamOptions;
    try {
      target = parseStreamPath(url.pathname);
      if (target === undefined) throw new HttpError(404, "404 page not found\n");
      options = streamOptions(target.kind, url.searchParams);
    } catch (err) {
      throw err instanceof HttpError ? err : new HttpError(400, errorMessage(err));
    }
    const streamUrl = new URL(await this.o.host.streamURL(target, options, ctl.signal));
    const upstream = await connectTo(streamUrl);
    this.streams.add(ctl);
    try {
      await spliceUpgrade(req, socket, head, upstream, streamUrl, ctl.signal);
    } finally {
      this.streams.delete(ctl);
    }
  }

  private async route(method: string, url: URL, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const path = url.pathname;
    const h = this.o.host;
    const get = method === "GET" || method === "HEAD";
    if (!this.o.enableDebuggingHandlers && DEBUG_PREFIXES.some((p) => under(path, p))) throw new HttpError(405, "Debug endpoints are disabled.");
    if (under(path, "/healthz")) {
      const only = path === "/healthz" ? undefined : path.slice("/healthz/".length);
      const r = healthzResponse(h.healthChecks(), only);
      sendText(res, r.status, r.body);
      return;
    }
    if (path === "/pods" || path === "/pods/") {
      if (!get) throw new HttpError(405, "Method Not Allowed");
      sendJson(res, { kind: "PodList", apiVersion: "v1", metadata: {}, items: h.pods() });
      return;
    }
    if (path === "/runningpods/" || path === "/runningpods") {
      sendJson(res, { kind: "PodList", apiVersion: "v1", metadata: {}, items: h.runningPods() });
      return;
    }
    if (path === "/configz") {
      sendJson(res, h.configz());
      return;
    }
    if ((path === "/stats/summary" || path === "/stats/summary/") && h.statsSummary !== undefined) {
      if (!get && method !== "POST") throw new HttpError(405, "Method Not Allowed");
      sendJson(res, h.statsSummary(url.searchParams.get("only_cpu_and_memory") === "true"));
      return;
    }
    if (path === "/metrics/resource" && h.resourceMetrics !== undefined) {
      sendText(res, 200, h.resourceMetrics(), "text/plain; version=0.0.4; charset=utf-8");
      return;
    }
    if (path === "/metrics/cadvisor" && h.cadvisorMetrics !== undefined) {
      sendText(res, 200, h.cadvisorMetrics(), "text/plain; version=0.0.4; charset=utf-8");
      return;
    }
    if (STATS_ROUTES.some((p) => under(path, p))) throw new HttpError(501, `${path} is not implemented by this kubelet yet (stats and resource metrics)`);
    if (path === "/metrics") {
      sendText(res, 200, h.metrics(), "text/plain; version=0.0.4; charset=utf-8");
      return;
    }
    if (path === "/metrics/probes") {
      sendText(res, 200, h.probeMetrics(), "text/plain; version=0.0.4; charset=utf-8");
      return;
    }
    if (under(path, "/containerLogs")) {
      await this.containerLogs(path, url.searchParams, res, signal);
      return;
    }
    if (under(path, "/run")) throw new HttpError(501, "/run is not implemented by this kubelet yet (use /exec)");
    if (STREAMING_PREFIXES.some((p) => under(path, p))) throw new HttpError(400, "Upgrade request required");
    if (under(path, "/logs") && this.o.enableSystemLogHandler) {
      await this.systemLogs(path, res);
      return;
    }
    throw new HttpError(404, "404 page not found\n");
  }

  private async containerLogs(path: string, query: URLSearchParams, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const parts = path.split("/").slice(2).map((s) => decodeURIComponent(s));
    if (parts.length !== 3 || parts.some((p) => p === "")) throw new HttpError(400, `Bad Request: expected /containerLogs/{podNamespace}/{podID}/{containerName}, got ${path}`);
    const [namespace = "", podName = "", container = ""] = parts;
    let opts;
    try {
      opts = parseLogQuery(query, Date.now());
    } catch (err) {
      if (err instanceof LogQueryError) throw new HttpError(err.status, err.message);
      throw err;
    }
    const pod = this.o.host.pod(namespace, podName);
    if (pod === undefined) throw new HttpError(404, `pod "${podName}" does not exist`);
    const spec = pod.spec;
    const known = [...(spec?.containers ?? []), ...(spec?.initContainers ?? []), ...(spec?.ephemeralContainers ?? [])].some((c) => c.name === container);
    if (!known) throw new HttpError(404, `container "${container}" not found in pod "${podName}"`);
    let id: string;
    let logPath: string;
    try {
      id = logContainerId(pod.status, container, `${podName}_${namespace}`, opts.previous);
      logPath = await this.o.host.containerLogPath(id, signal);
    } catch (err) {
      throw new HttpError(400, errorMessage(err));
    }
    const ctl = new AbortController();
    signal.addEventListener("abort", () => ctl.abort(), { once: true });
    this.streams.add(ctl);
    try {
      let started = false;
      const start = (): void => {
        if (started) return;
        started = true;
        res.writeHead(200, { "Content-Type": "text/plain", "Transfer-Encoding": "chunked" });
        res.flushHeaders();
      };
      // Headers go at once when following (the client waits for lines), else with the first bytes.
      if (opts.follow) start();
      await readContainerLog(
        logPath,
        opts,
        {
          write: (data) => {
            start();
            if (res.write(data)) return Promise.resolve();
            return new Promise<void>((resolve) => {
              const done = (): void => {
                res.off("drain", done);
                res.off("close", done);
                resolve();
              };
              res.on("drain", done);
              res.on("close", done);
            });
          },
        },
        { isRunning: () => this.o.host.containerRunning(id, ctl.signal), signal: ctl.signal, log: this.log },
      ).catch((err: unknown) => {
        if (!started && isDeckhandError(err, "NotFound")) throw new HttpError(400, errorMessage(err));
        throw err;
      });
      start();
      res.end();
    } finally {
      this.streams.delete(ctl);
    }
  }

  private async systemLogs(path: string, res: ServerResponse): Promise<void> {
    const root = this.o.systemLogDir || "/var/log";
    const rel = normalize(decodeURIComponent(path.slice("/logs".length)) || "/");
    if (rel.startsWith("..")) throw new HttpError(400, "invalid URL path");
    const file = join(root, rel);
    const st = await stat(file).catch(() => undefined);
    if (st === undefined) throw new HttpError(404, "404 page not found\n");
    if (st.isDirectory()) {
      if (!path.endsWith("/")) {
        res.writeHead(301, { Location: `${path}/` });
        res.end();
        return;
      }
      const entries = await readdir(file, { withFileTypes: true });
      const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
      const items = entries.map((e) => e.name + (e.isDirectory() ? "/" : "")).sort();
      sendText(res, 200, `<pre>\n${items.map((n) => `<a href="${esc(encodeURI(n))}">${esc(n)}</a>`).join("\n")}\n</pre>\n`, "text/html; charset=utf-8");
      return;
    }
    res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": st.size });
    await new Promise<void>((resolve) => {
      const s = createReadStream(file);
      s.on("error", () => {
        res.destroy();
        resolve();
      });
      s.on("end", resolve);
      res.on("close", () => {
        s.destroy();
        resolve();
      });
      s.pipe(res);
    });
  }
}

/** The health server: plain HTTP, /healthz only, no authentication. */
export class HealthzServer {
  private readonly o: { address: string; port: number; checks: () => { name: string; error?: string }[]; log: Logger };
  private server: http.Server | undefined;
  private boundPort = 0;

  constructor(o: { address: string; port: number; checks: () => { name: string; error?: string }[]; log: Logger }) {
    this.o = o;
  }

  get port(): number {
    return this.boundPort;
  }

  async start(signal: AbortSignal): Promise<void> {
    const server = http.createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://kubelet").pathname;
      if (!under(path, "/healthz")) {
        sendText(res, 404, "404 page not found\n");
        return;
      }
      const r = healthzResponse(this.o.checks(), path === "/healthz" ? undefined : path.slice("/healthz/".length));
      sendText(res, r.status, r.body);
    });
    this.server = server;
    this.boundPort = (await listenTcp(server, this.o.port, this.o.address)).port;
    signal.addEventListener("abort", () => void this.close(), { once: true });
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s !== undefined) await closeServers([s]);
  }
}
