/**
 * The HTTPS front of the control plane: authentication (client certificates, bearer tokens), discovery,
 * routing of REST paths to the Api, content negotiation (JSON, Table, PartialObjectMetadata; protobuf-only
 * clients get 406), watch streaming with bookmarks and timeouts, and Status errors.
 */
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { ADMIN, resource, type Api, type ListOptions, type PatchType, type RequestContext, type WatchEvent, type WatchOptions, type DeleteOptions } from "./api.ts";
import { ApiError, badRequest, internalError, methodNotAllowed, notAcceptable, pathNotFound, unauthorized, unsupportedMediaType } from "./status.ts";
import { RESOURCES, apiVersionOf, findResource, groupVersions, isVirtual, type ResourceDescriptor } from "./registry.ts";
import { toTable, type IncludeObject } from "./tables.ts";
import { openapiV3Doc, openapiV3Root } from "./openapi.ts";
import { decodeProtobufBody } from "./protobuf.ts";
import { parseFieldValidation } from "./fields.ts";
import type { Authenticator } from "./authn.ts";
import type { KubeletProxy } from "./kubelet-proxy.ts";
import { METRICS_GROUP, METRICS_VERSION, metricsDiscovery, serveMetrics, type MetricsStore } from "./metrics-api.ts";
import { isWebSocketUpgrade } from "./websocket.ts";
import { streamOptions } from "../../kubelet/server/streaming.ts";
import { isObject, type JsonObject, type KubeObject } from "./types.ts";
import { listenTcp } from "../../src-shared/listen.ts";

export interface ServerOptions {
  api: Api;
  authenticator: Authenticator;
  log: Logger;
  host: string;
  port: number;
  tls: { key: string; cert: string; ca: string };
  version: JsonObject;
  /** How often watches with allowWatchBookmarks get a BOOKMARK. */
  bookmarkIntervalMs: number;
  /** Upper bound of a watch's life when the client gives no timeoutSeconds (kube-apiserver: 30-60 min). */
  defaultWatchTimeoutSeconds: number;
  /** A watch whose unsent output exceeds this is closed, as kube-apiserver drops slow watchers. */
  maxWatchBacklogBytes: number;
  /** pods/log and nodes/proxy, through the kubelet. */
  kubelet?: KubeletProxy;
  /** metrics.k8s.io, as metrics-server serves it (when the control plane scrapes the kubelets). */
  metrics?: MetricsStore;
}

const MAX_BODY = 3 * 1024 * 1024;

interface Negotiated {
  table: boolean;
  partial: boolean;
  include: IncludeObject;
}

/** Parses Accept: JSON (plain, Table or PartialObjectMetadata); 406 when only protobuf or other types are acceptable. */
export function negotiate(accept: string | undefined, includeObject: string | null): Negotiated {
  const include: IncludeObject = includeObject === "Object" ? "Object" : includeObject === "None" ? "None" : "Metadata";
  if (accept === undefined || accept.trim() === "") return { table: false, partial: false, include };
  let json = false;
  for (const part of accept.split(",")) {
    const [type0, ...params] = part.split(";").map((s) => s.trim());
    const type = (type0 ?? "").toLowerCase();
    const p = new Map(params.map((x) => x.split("=").map((y) => y.trim()) as [string, string]));
    const isJson = type === "application/json" || type === "*/*" || type === "application/*";
    if (!isJson) continue;
    const as = p.get("as");
    if (as === "Table" && p.get("g") === "meta.k8s.io" && (p.get("v") === "v1" || p.get("v") === "v1beta1")) return { table: true, partial: false, include };
    if ((as === "PartialObjectMetadata" || as === "PartialObjectMetadataList") && p.get("g") === "meta.k8s.io") return { table: false, partial: true, include };
    if (as === undefined) json = true;
  }
  if (!json) throw notAcceptable();
  return { table: false, partial: false, include };
}

function serviceUnavailable(message: string): ApiError {
  return new ApiError(503, "ServiceUnavailable", message);
}

function partial(o: KubeObject): JsonObject {
  return { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata as unknown as JsonObject };
}

interface Route {
  kind: "resource";
  r: ResourceDescriptor;
  namespace: string;
  name: string;
  subresource: string;
  watchPath: boolean;
}

function parseResourcePath(segs: string[]): Route | undefined {
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === "api") {
    group = "";
    version = segs[1] ?? "";
    rest = segs.slice(2);
  } else if (segs[0] === "apis") {
    group = segs[1] ?? "";
    version = segs[2] ?? "";
    rest = segs.slice(3);
  } else return undefined;
  let watchPath = false;
  if (rest[0] === "watch") {
    watchPath = true;
    rest = rest.slice(1);
  }
  let namespace = "";
  if (rest[0] === "namespaces" && rest.length >= 3 && !(rest.length === 3 && (rest[2] === "status" || rest[2] === "finalize"))) {
    namespace = rest[1] ?? "";
    rest = rest.slice(2);
  }
  const plural = rest[0];
  if (plural === undefined || rest.length > 3) return undefined;
  const r = findResource(group, version, plural);
  if (r === undefined) return undefined;
  if (r.namespaced === false && namespace !== "") return undefined;
  return { kind: "resource", r, namespace, name: rest[1] ?? "", subresource: rest[2] ?? "", watchPath };
}

function boolParam(q: URLSearchParams, k: string): boolean | undefined {
  const v = q.get(k);
  if (v === null) return undefined;
  return v === "true" || v === "1";
}

function listOptions(q: URLSearchParams): ListOptions & WatchOptions {
  const o: ListOptions & WatchOptions = {};
  const ls = q.get("labelSelector");
  if (ls !== null) o.labelSelector = ls;
  const fs = q.get("fieldSelector");
  if (fs !== null) o.fieldSelector = fs;
  const limit = q.get("limit");
  if (limit !== null && limit !== "") {
    if (!/^\d+$/.test(limit)) throw badRequest(`invalid limit: ${limit}`);
    o.limit = Number(limit);
  }
  const cont = q.get("continue");
  if (cont !== null && cont !== "") o.continue = cont;
  const rv = q.get("resourceVersion");
  if (rv !== null) o.resourceVersion = rv;
  const rvm = q.get("resourceVersionMatch");
  if (rvm !== null && rvm !== "") o.resourceVersionMatch = rvm;
  const bm = boolParam(q, "allowWatchBookmarks");
  if (bm !== undefined) o.allowWatchBookmarks = bm;
  const sie = boolParam(q, "sendInitialEvents");
  if (sie !== undefined) o.sendInitialEvents = sie;
  return o;
}

export class ApiServer {
  private readonly o: ServerOptions;
  private server: https.Server | undefined;
  /** Open watches: how to end each, and what it watches (`<resource> <namespace> <fieldSelector>`). */
  private readonly watches = new Map<() => void, string>();
  private readonly fullJson = new WeakMap<object, string>();
  private readonly itemJson = new WeakMap<object, string>();
  private boundPort = 0;

  constructor(o: ServerOptions) {
    this.o = o;
  }

  get port(): number {
    return this.boundPort;
  }

  /**
   * Streaming upgrades (exec, attach, port-forward) by how they were served: `spdy` passed through,
   * `websocket-translated` (exec/attach to SPDY) and `websocket-tunneled` (port-forward), each with the
   * code logged (`101` for a spliced SPDY session): tests check which way kubectl went.
   */
  readonly streamRequests = new Map<string, number>();

  get activeWatches(): number {
    return this.watches.size;
  }

  /** What each open watch watches: `<resource> <namespace> <fieldSelector>` (tests check who watches what). */
  get openWatches(): string[] {
    return [...this.watches.values()];
  }

  async start(signal?: AbortSignal): Promise<void> {
    const server = https.createServer({
      key: this.o.tls.key,
      cert: this.o.tls.cert,
      ca: this.o.tls.ca,
      requestCert: true,
      rejectUnauthorized: false,
      keepAliveTimeout: 65_000,
      requestTimeout: 0,
    });
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.handleUpgrade(req, socket, head));
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((e: unknown) => {
        this.o.log.error({ err: e }, "request failed");
        if (!res.headersSent) this.sendError(res, internalError(e instanceof Error ? e.message : String(e)));
        else res.destroy();
      });
    });
    this.server = server;
    this.boundPort = (await listenTcp(server, this.o.port, this.o.host)).port;
    signal?.addEventListener("abort", () => void this.close(), { once: true });
  }

  async close(): Promise<void> {
    for (const stop of [...this.watches.keys()]) stop();
    this.watches.clear();
    const s = this.server;
    this.server = undefined;
    if (s === undefined) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  // -------------------------------------------------------------------------------------------------------

  private send(res: ServerResponse, code: number, body: string): void {
    res.writeHead(code, { "Content-Type": "application/json", "Cache-Control": "no-cache, private", "Content-Length": Buffer.byteLength(body) });
    res.end(body);
  }

  private sendJson(res: ServerResponse, code: number, body: unknown): void {
    this.send(res, code, JSON.stringify(body));
  }

  private sendError(res: ServerResponse, e: ApiError): void {
    if (e.code === 401) res.setHeader("WWW-Authenticate", 'Basic realm="kubernetes-master"');
    this.sendJson(res, e.code, e.toStatus());
  }

  private authenticate(req: IncomingMessage): RequestContext | undefined {
    const sock = req.socket as TLSSocket;
    const authz = req.headers.authorization;
    if (authz !== undefined) {
      const m = /^Bearer\s+(\S+)$/i.exec(authz);
      if (m === null) return undefined;
      const u = this.o.authenticator.authenticateToken(m[1] ?? "");
      return u === undefined ? undefined : { user: u.user };
    }
    if (sock.authorized) {
      const cert = sock.getPeerCertificate();
      const subj = cert.subject as unknown as Record<string, string | string[] | undefined> | undefined;
      const cn = subj?.["CN"];
      const o = subj?.["O"];
      const user = Array.isArray(cn) ? (cn[0] ?? "") : (cn ?? "");
      if (user === "") return undefined;
      const groups = o === undefined ? [] : Array.isArray(o) ? o : [o];
      return { user: { username: user, groups: [...groups, "system:authenticated"] } };
    }
    return undefined;
  }

  private async readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      const b = c as Buffer;
      size += b.length;
      if (size > MAX_BODY) throw new ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728");
      chunks.push(b);
    }
    const buf = Buffer.concat(chunks);
    const ct = (req.headers["content-type"] ?? "application/json").split(";")[0]?.trim().toLowerCase() ?? "";
    if (ct === "application/vnd.kubernetes.protobuf") return buf.length === 0 ? undefined : decodeProtobufBody(buf);
    const text = buf.toString("utf8");
    if (text.trim() === "") return undefined;
    if (ct.includes("protobuf")) throw unsupportedMediaType(ct);
    if (ct.includes("yaml") && !ct.startsWith("application/apply-patch")) {
      // JSON is YAML: accept YAML bodies that are JSON documents.
      try {
        return JSON.parse(text);
      } catch {
        throw unsupportedMediaType(ct);
      }
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      throw badRequest(`error decoding JSON body: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const url = new URL(req.url ?? "/", "https://localhost");
    const method = (req.method ?? "GET").toUpperCase();
    let ctx: RequestContext | undefined;
    try {
      const path = url.pathname.replace(/\/+$/, "") || "/";
      if (path === "/healthz" || path === "/livez" || path === "/readyz") {
        res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
        res.end("ok");
        return;
      }
      ctx = this.authenticate(req);
      if (ctx === undefined) throw unauthorized();
      if (await this.kubeletRoute(ctx, req, res, method, url)) return;
      await this.route(ctx, req, res, method, path, url.searchParams);
    } catch (e) {
      const err = e instanceof ApiError ? e : internalError(e instanceof Error ? e.message : String(e));
      if (!(e instanceof ApiError)) this.o.log.error({ err: e, method, path: url.pathname }, "internal error");
      if (!res.headersSent) this.sendError(res, err);
      else res.end();
    } finally {
      this.o.log.debug({ method, path: url.pathname, query: url.search, code: res.statusCode, user: ctx?.user.username, ms: Date.now() - started }, "request");
    }
  }

  /**
   * Upgrade requests: pods/exec, pods/attach, pods/portforward through the kubelet. SPDY is passed through;
   * WebSocket is translated (exec, attach) or tunnelled (port-forward) as kube-apiserver 1.31+ does, and
   * needs `create` on the subresource as well as `get` (AuthorizePodWebsocketUpgradeCreatePermission).
   */
  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? "/", "https://localhost");
    const ctl = new AbortController();
    socket.once("close", () => ctl.abort());
    socket.on("error", () => ctl.abort());
    let ctx: RequestContext | undefined;
    let code = 101;
    const websocket = isWebSocketUpgrade(req);
    let kind = websocket ? "websocket" : "spdy";
    try {
      ctx = this.authenticate(req);
      if (ctx === undefined) throw unauthorized();
      const segs = url.pathname.split("/").slice(1);
      const sub = segs[6];
      if (!(segs[0] === "api" && segs[1] === "v1" && segs[2] === "namespaces" && segs[4] === "pods" && segs.length === 7 && (sub === "exec" || sub === "attach" || sub === "portforward"))) throw pathNotFound();
      const namespace = decodeURIComponent(segs[3] ?? "");
      const name = decodeURIComponent(segs[5] ?? "");
      const verb = (req.method ?? "GET").toUpperCase() === "POST" ? "create" : "get";
      this.o.api.authorize(ctx, resource("", "pods"), verb, sub, namespace, name);
      if (websocket && verb !== "create") this.o.api.authorize(ctx, resource("", "pods"), "create", sub, namespace, name);
      if (this.o.kubelet === undefined) throw serviceUnavailable("no kubelet proxy configured");
      const { nodeName, path } = this.o.kubelet.streamPath(namespace, name, sub, url.searchParams);
      if (!websocket) {
        this.count(kind, code);
        await this.o.kubelet.upgrade(nodeName, path, req, socket, head, ctl.signal);
      } else if (sub === "portforward") {
        kind = "websocket-tunneled";
        code = await this.o.kubelet.tunnel(nodeName, path, req, socket, head, ctl.signal);
        this.count(kind, code);
      } else {
        kind = "websocket-translated";
        let opts;
        try {
          opts = streamOptions(sub === "exec" ? "exec" : "attach", url.searchParams);
        } catch (e) {
          throw badRequest(e instanceof Error ? e.message : String(e));
        }
        code = await this.o.kubelet.translate(nodeName, path, opts, req, socket, head, ctl.signal);
        this.count(kind, code);
      }
    } catch (e) {
      const err = e instanceof ApiError ? e : internalError(e instanceof Error ? e.message : String(e));
      code = err.code;
      this.count(kind, code);
      const body = JSON.stringify(err.toStatus());
      socket.end(`HTTP/1.1 ${err.code} ${err.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    } finally {
      this.o.log.debug({ method: req.method, path: url.pathname, query: url.search, upgrade: req.headers.upgrade, protocols: req.headers["sec-websocket-protocol"], served: kind, code, user: ctx?.user.username }, "upgrade request");
    }
  }

  private count(kind: string, code: number): void {
    const k = `${kind} ${code}`;
    this.streamRequests.set(k, (this.streamRequests.get(k) ?? 0) + 1);
  }

  /** pods/log, pods/exec|attach|portforward and nodes/proxy: handled through the kubelet. */
  private async kubeletRoute(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, method: string, url: URL): Promise<boolean> {
    const segs = url.pathname.split("/").slice(1);
    const api = this.o.api;
    const verbs: Record<string, string> = { GET: "get", HEAD: "get", POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete", OPTIONS: "options" };
    const ctl = new AbortController();
    res.on("close", () => ctl.abort());
    if (segs[0] === "api" && segs[1] === "v1" && segs[2] === "nodes" && segs[4] === "proxy" && segs[3] !== undefined && segs[3] !== "") {
      const nodeRef = decodeURIComponent(segs[3]);
      api.authorize(ctx, resource("", "nodes"), verbs[method] ?? method.toLowerCase(), "proxy", "", nodeRef.split(":").length === 3 ? (nodeRef.split(":")[1] ?? "") : (nodeRef.split(":")[0] ?? ""));
      if (this.o.kubelet === undefined) throw serviceUnavailable("no kubelet proxy configured");
      const sub = `/${segs.slice(5).join("/")}`;
      await this.o.kubelet.nodeProxy(nodeRef, sub, url.search, req, res, ctl.signal);
      return true;
    }
    if (segs[0] === "api" && segs[1] === "v1" && segs[2] === "namespaces" && segs[4] === "pods" && segs.length === 7) {
      const namespace = decodeURIComponent(segs[3] ?? "");
      const name = decodeURIComponent(segs[5] ?? "");
      const sub = segs[6] ?? "";
      const pods = resource("", "pods");
      if (sub === "log") {
        if (method !== "GET") throw methodNotAllowed();
        api.authorize(ctx, pods, "get", "log", namespace, name);
        if (this.o.kubelet === undefined) throw serviceUnavailable("no kubelet proxy configured");
        await this.o.kubelet.podLog(namespace, name, url.searchParams, res, ctl.signal);
        return true;
      }
      if (sub === "exec" || sub === "attach" || sub === "portforward") {
        api.authorize(ctx, pods, method === "POST" ? "create" : "get", sub, namespace, name);
        throw badRequest("Upgrade request required");
      }
    }
    return false;
  }

  private discovery(path: string): unknown {
    const segs = path.split("/").filter((s) => s !== "");
    const hostPort = `${this.o.host}:${this.boundPort}`;
    if (path === "/api") return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: hostPort }] };
    const groups = [...new Set(groupVersions().filter((g) => g.group !== "").map((g) => g.group))];
    const groupDoc = (g: string) => {
      const versions = groupVersions()
        .filter((x) => x.group === g)
        .map((x) => ({ groupVersion: `${g}/${x.version}`, version: x.version }));
      return { name: g, versions, preferredVersion: versions[0] };
    };
    if (path === "/apis") {
      const metrics = this.o.metrics === undefined ? [] : [{ name: METRICS_GROUP, versions: [{ groupVersion: `${METRICS_GROUP}/${METRICS_VERSION}`, version: METRICS_VERSION }], preferredVersion: { groupVersion: `${METRICS_GROUP}/${METRICS_VERSION}`, version: METRICS_VERSION } }];
      return { kind: "APIGroupList", apiVersion: "v1", groups: [...groups.map(groupDoc), ...metrics] };
    }
    if (segs[0] === "apis" && segs.length === 2) {
      const g = segs[1] ?? "";
      if (!groups.includes(g)) return undefined;
      return { kind: "APIGroup", apiVersion: "v1", ...groupDoc(g) };
    }
    const gv = path === "/api/v1" ? { group: "", version: "v1" } : segs[0] === "apis" && segs.length === 3 ? { group: segs[1] ?? "", version: segs[2] ?? "" } : undefined;
    if (gv === undefined) return undefined;
    const rs = RESOURCES.filter((r) => r.group === gv.group && r.version === gv.version);
    if (rs.length === 0) return undefined;
    const resources: unknown[] = [];
    for (const r of rs) {
      const entry: Record<string, unknown> = { name: r.plural, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: r.verbs };
      if (r.shortNames !== undefined) entry["shortNames"] = r.shortNames;
      if (r.categories !== undefined) entry["categories"] = r.categories;
      if (!isVirtual(r)) entry["storageVersionHash"] = Buffer.from(`${apiVersionOf(r)}/${r.kind}`).toString("base64").slice(0, 11);
      resources.push(entry);
      for (const sub of r.subresources) {
        const s: Record<string, unknown> = { name: `${r.plural}/${sub}`, singularName: "", namespaced: r.namespaced, kind: r.kind, verbs: ["get", "patch", "update"] };
        if (sub === "binding") Object.assign(s, { kind: "Binding", verbs: ["create"] });
        if (sub === "eviction") Object.assign(s, { group: "policy", version: "v1", kind: "Eviction", verbs: ["create"] });
        if (sub === "token") Object.assign(s, { group: "authentication.k8s.io", version: "v1", kind: "TokenRequest", verbs: ["create"] });
        if (sub === "finalize") Object.assign(s, { verbs: ["update"] });
        if (sub === "ephemeralcontainers") continue;
        resources.push(s);
      }
    }
    return { kind: "APIResourceList", apiVersion: "v1", groupVersion: apiVersionOf(gv), resources };
  }

  private async route(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, method: string, path: string, q: URLSearchParams): Promise<void> {
    const segs = path.split("/").filter((s) => s !== "");
    if (path === "/version") {
      this.sendJson(res, 200, this.o.version);
      return;
    }
    if (method === "GET" && segs[0] === "openapi" && segs[1] === "v3") {
      const doc =
        segs.length === 2
          ? openapiV3Root()
          : segs[2] === "api"
            ? openapiV3Doc("", segs[3] ?? "")
            : segs[2] === "apis" && segs.length === 5
              ? openapiV3Doc(segs[3] ?? "", segs[4] ?? "")
              : undefined;
      if (doc === undefined) throw pathNotFound();
      this.sendJson(res, 200, doc);
      return;
    }
    if (this.o.metrics !== undefined && segs[0] === "apis" && segs[1] === METRICS_GROUP) {
      const doc = segs.length <= 3 ? (method === "GET" ? metricsDiscovery(path) : undefined) : serveMetrics(ctx, this.o.api, this.o.api.store, this.o.metrics, method, segs, q);
      if (doc === undefined) throw pathNotFound();
      this.sendJson(res, 200, doc);
      return;
    }
    const route = parseResourcePath(segs);
    if (route === undefined) {
      const doc = method === "GET" ? this.discovery(path) : undefined;
      if (doc === undefined) throw pathNotFound();
      negotiate(req.headers.accept, null);
      this.sendJson(res, 200, doc);
      return;
    }
    const { r, namespace, name, subresource } = route;
    const api = this.o.api;
    const dryRun = q.getAll("dryRun").includes("All");
    const warnings: string[] = [];
    const writeOpts = { dryRun, fieldValidation: parseFieldValidation(q.get("fieldValidation")), warnings };
    const warn = () => {
      if (warnings.length > 0) res.setHeader("Warning", [...new Set(warnings)].map((w) => `299 - ${JSON.stringify(w)}`));
    };
    switch (method) {
      case "GET": {
        const neg = negotiate(req.headers.accept, q.get("includeObject"));
        const watch = route.watchPath || boolParam(q, "watch") === true;
        if (isVirtual(r)) throw methodNotAllowed();
        if (watch) {
          this.serveWatch(ctx, req, res, r, namespace, name, q, neg);
          return;
        }
        if (name !== "") {
          const o = api.get(ctx, r, namespace, name, subresource);
          if (neg.table) this.sendJson(res, 200, toTable(r, [o], { resourceVersion: o.metadata.resourceVersion ?? "" }, neg.include, Date.now()));
          else if (neg.partial) this.sendJson(res, 200, partial(o));
          else this.send(res, 200, this.objectJson(o));
          return;
        }
        const lo = listOptions(q);
        const result = api.list(ctx, r, namespace, lo);
        const meta: JsonObject = { resourceVersion: result.resourceVersion };
        if (result.continue !== undefined) meta["continue"] = result.continue;
        if (result.remainingItemCount !== undefined) meta["remainingItemCount"] = result.remainingItemCount;
        if (neg.table) {
          this.sendJson(res, 200, toTable(r, result.items, meta, neg.include, Date.now()));
          return;
        }
        if (neg.partial) {
          this.sendJson(res, 200, { kind: "PartialObjectMetadataList", apiVersion: "meta.k8s.io/v1", metadata: meta, items: result.items.map(partial) });
          return;
        }
        const head = `{"kind":"${r.kind}List","apiVersion":"${apiVersionOf(r)}","metadata":${JSON.stringify(meta)},"items":[`;
        const parts: string[] = [];
        for (const it of result.items) parts.push(this.listItemJson(it));
        this.send(res, 200, head + parts.join(",") + "]}");
        return;
      }
      case "POST": {
        const body = await this.readBody(req);
        if (name !== "" && subresource === "") throw methodNotAllowed();
        if (r.plural === "pods" && subresource === "binding") {
          api.bind(ctx, namespace, name, body);
          this.sendJson(res, 201, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", code: 201 });
          return;
        }
        if (r.plural === "pods" && subresource === "eviction") {
          api.evict(ctx, namespace, name, body);
          this.sendJson(res, 201, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", code: 201 });
          return;
        }
        if (r.plural === "serviceaccounts" && subresource === "token") {
          this.sendJson(res, 201, api.requestToken(ctx, namespace, name, body));
          return;
        }
        if (subresource !== "") throw methodNotAllowed();
        if (r.plural === "tokenreviews") {
          this.sendJson(res, 201, api.tokenReview(ctx, body));
          return;
        }
        if (r.plural === "subjectaccessreviews" || r.plural === "selfsubjectaccessreviews") {
          this.sendJson(res, 201, api.subjectAccessReview(ctx, body, r.plural === "selfsubjectaccessreviews"));
          return;
        }
        if (r.plural === "selfsubjectreviews") {
          this.sendJson(res, 201, api.selfSubjectReview(ctx));
          return;
        }
        const created = api.create(ctx, r, namespace, body, writeOpts);
        warn();
        this.send(res, 201, this.objectJson(created));
        return;
      }
      case "PUT": {
        if (name === "") throw methodNotAllowed();
        const body = await this.readBody(req);
        if (r.plural === "namespaces" && subresource === "finalize") {
          this.sendJson(res, 200, api.update(ctx, r, namespace, name, body, "", writeOpts));
          return;
        }
        const existed = api.store.get(r.storage, r.namespaced ? namespace : undefined, name) !== undefined;
        const updated = api.update(ctx, r, namespace, name, body, subresource, writeOpts);
        warn();
        this.send(res, existed ? 200 : 201, this.objectJson(updated));
        return;
      }
      case "PATCH": {
        if (name === "") throw methodNotAllowed();
        const ct = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
        const types: Record<string, PatchType> = {
          "application/json-patch+json": "json",
          "application/merge-patch+json": "merge",
          "application/strategic-merge-patch+json": "strategic",
          "application/apply-patch+yaml": "apply",
          "application/apply-patch+cbor": "apply",
        };
        const type = types[ct];
        if (type === undefined) throw unsupportedMediaType(ct);
        if (type === "apply") throw unsupportedMediaType(ct);
        const body = await this.readBody(req);
        const patched = api.patch(ctx, r, namespace, name, type, body, subresource, writeOpts);
        warn();
        this.send(res, 200, this.objectJson(patched));
        return;
      }
      case "DELETE": {
        const body = await this.readBody(req).catch(() => undefined);
        const opts: DeleteOptions = { dryRun };
        const b = isObject(body) ? body : {};
        const g = q.get("gracePeriodSeconds") ?? (typeof b["gracePeriodSeconds"] === "number" ? String(b["gracePeriodSeconds"]) : null);
        if (g !== null && g !== "") opts.gracePeriodSeconds = Number(g);
        const pp = q.get("propagationPolicy") ?? (typeof b["propagationPolicy"] === "string" ? b["propagationPolicy"] : null);
        if (pp !== null) opts.propagationPolicy = pp;
        const pre = b["preconditions"];
        if (isObject(pre)) {
          const p: { uid?: string; resourceVersion?: string } = {};
          if (typeof pre["uid"] === "string") p.uid = pre["uid"];
          if (typeof pre["resourceVersion"] === "string") p.resourceVersion = pre["resourceVersion"];
          opts.preconditions = p;
        }
        if (b["dryRun"] !== undefined && Array.isArray(b["dryRun"]) && b["dryRun"].includes("All")) opts.dryRun = true;
        if (name === "") {
          const result = api.deleteCollection(ctx, r, namespace, listOptions(q), opts);
          this.sendJson(res, 200, { kind: `${r.kind}List`, apiVersion: apiVersionOf(r), metadata: { resourceVersion: result.resourceVersion }, items: result.items });
          return;
        }
        if (subresource !== "") throw methodNotAllowed();
        const d = api.delete(ctx, r, namespace, name, opts);
        this.sendJson(res, d.code, d.body);
        return;
      }
      default:
        throw methodNotAllowed();
    }
  }

  private objectJson(o: KubeObject): string {
    let s = this.fullJson.get(o);
    if (s === undefined) {
      s = JSON.stringify(o);
      this.fullJson.set(o, s);
    }
    return s;
  }

  /** List items are serialized without apiVersion and kind, as kube-apiserver's typed lists are. */
  private listItemJson(o: KubeObject): string {
    let s = this.itemJson.get(o);
    if (s === undefined) {
      const { apiVersion: _a, kind: _k, ...rest } = o;
      s = JSON.stringify(rest);
      this.itemJson.set(o, s);
    }
    return s;
  }

  private serveWatch(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, r: ResourceDescriptor, namespace: string, name: string, q: URLSearchParams, neg: Negotiated): void {
    const o = listOptions(q);
    if (name !== "") o.fieldSelector = [`metadata.name=${name}`, o.fieldSelector ?? ""].filter((s) => s !== "").join(",");
    const tsParam = q.get("timeoutSeconds");
    const timeoutS = tsParam !== null && /^\d+$/.test(tsParam) ? Number(tsParam) : this.o.defaultWatchTimeoutSeconds * (1 + Math.random());
    const api = this.o.api;
    let open = true;
    let handle: { stop(): void } | undefined;
    const queue: string[] = [];
    let headerSent = false;
    const sendHeader = () => {
      if (headerSent) return;
      headerSent = true;
      res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache, private", "Transfer-Encoding": "chunked" });
      res.flushHeaders();
    };
    const line = (ev: WatchEvent): string => {
      if (neg.table && ev.type !== "ERROR" && ev.type !== "BOOKMARK") {
        const t = toTable(r, [ev.object as KubeObject], {}, neg.include, Date.now());
        return `{"type":"${ev.type}","object":${JSON.stringify(t)}}\n`;
      }
      if (neg.partial && ev.type !== "ERROR" && ev.type !== "BOOKMARK") return `{"type":"${ev.type}","object":${JSON.stringify(partial(ev.object as KubeObject))}}\n`;
      const body = ev.type === "ERROR" || ev.type === "BOOKMARK" ? JSON.stringify(ev.object) : this.objectJson(ev.object as KubeObject);
      return `{"type":"${ev.type}","object":${body}}\n`;
    };
    const finish = () => {
      if (!open) return;
      open = false;
      handle?.stop();
      clearInterval(bookmarkTimer);
      clearTimeout(timeoutTimer);
      this.watches.delete(finish);
      if (!res.writableEnded) {
        sendHeader();
        res.end();
      }
    };
    const write = (s: string) => {
      if (!open) return;
      if (!headerSent) {
        queue.push(s);
        return;
      }
      res.write(s);
      if (res.writableLength > this.o.maxWatchBacklogBytes) {
        this.o.log.warn({ resource: r.plural, backlog: res.writableLength }, "closing slow watch");
        finish();
      }
    };
    this.watches.set(finish, `${r.plural} ${namespace} ${o.fieldSelector ?? ""}`);
    const bookmarks = o.allowWatchBookmarks === true;
    const bookmarkTimer = setInterval(() => {
      if (bookmarks) write(line(api.bookmark(r)));
    }, this.o.bookmarkIntervalMs);
    const timeoutTimer = setTimeout(() => {
      if (bookmarks) write(line(api.bookmark(r)));
      finish();
    }, timeoutS * 1000);
    req.on("close", finish);
    res.on("close", finish);
    try {
      handle = api.watch(ctx, r, namespace, o, (ev) => write(line(ev)));
    } catch (e) {
      if (e instanceof ApiError && (e.code === 410 || e.code === 504)) {
        // Like the watch cache: a 200 stream that carries one ERROR event.
        sendHeader();
        res.write(line({ type: "ERROR", object: e.toStatus() }));
        finish();
        return;
      }
      clearInterval(bookmarkTimer);
      clearTimeout(timeoutTimer);
      this.watches.delete(finish);
      open = false;
      throw e;
    }
    sendHeader();
    if (queue.length > 0) res.write(queue.join(""));
    queue.length = 0;
    if (!open) handle.stop();
  }
}

export { ADMIN };
