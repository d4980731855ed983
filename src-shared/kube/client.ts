/**
 * A small REST client for the Kubernetes API, with the identity a kubeconfig gives (kubeconfig.ts: client
 * certificates, bearer tokens, token files, exec plugins, the cluster CA).
 *
 * Why not @kubernetes/client-node's generated API classes: a node agent makes a handful of calls (get, list,
 * watch, create, update, the three patch types, delete) on a hot path; speaking REST directly keeps them cheap,
 * gives patches their proper content types, lets errors come back as the API's own Status (reason, code, field
 * causes), and spares a long-running agent the ~80 MiB that loading that package costs.
 */
import https from "node:https";
import http from "node:http";
import { homedir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { TokenBucket } from "../rate-limit.ts";
import { DeckhandError, type ErrorCode } from "../errors.ts";
import { loadKubeconfig, type ClusterCredentials } from "./kubeconfig.ts";
import { countRequest } from "./client-metrics.ts";

/** The API's error body (meta/v1 Status). */
export interface ApiStatus {
  kind?: string;
  apiVersion?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; group?: string; kind?: string; causes?: { reason?: string; message?: string; field?: string }[]; retryAfterSeconds?: number };
}

const HTTP_TO_CODE: Record<number, ErrorCode> = {
  400: "InvalidArgument",
  401: "Unauthenticated",
  403: "PermissionDenied",
  404: "NotFound",
  409: "AlreadyExists", // or Conflict: see ApiError.reason
  410: "FailedPrecondition",
  422: "InvalidArgument",
  429: "ResourceExhausted",
  500: "Internal",
  503: "Unavailable",
  504: "DeadlineExceeded",
};

/** A failed API call: `status` is the HTTP code, `reason` the Status reason (NotFound, Conflict, Gone, Invalid...). */
export class ApiError extends DeckhandError {
  readonly status: number;
  readonly reason: string;
  readonly body: ApiStatus | undefined;
  constructor(status: number, method: string, path: string, body: ApiStatus | undefined, text: string) {
    const reason = body?.reason ?? (status === 0 ? "ConnectionFailed" : `HTTP${status}`);
    super(status === 0 ? "Unavailable" : (HTTP_TO_CODE[status] ?? (status >= 500 ? "Unavailable" : "Unknown")), `${method} ${path}: ${status || "no answer"} ${reason}: ${body?.message ?? text}`.trim(), {
      details: { status, reason },
    });
    this.name = "ApiError";
    this.status = status;
    this.reason = reason;
    this.body = body;
  }
}

export function isApiError(err: unknown, reasonOrStatus?: string | number): err is ApiError {
  if (!(err instanceof ApiError)) return false;
  if (reasonOrStatus === undefined) return true;
  return typeof reasonOrStatus === "number" ? err.status === reasonOrStatus : err.reason === reasonOrStatus;
}

export type PatchType = "strategic" | "merge" | "json" | "apply";
const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  strategic: "application/strategic-merge-patch+json",
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  apply: "application/apply-patch+yaml",
};

/** Where a resource lives: `/api/v1/namespaces/ns/pods/name/status` and the like. */
export interface ResourceRef {
  /** "" for the core group. */
  group: string;
  version: string;
  /** Plural: pods, nodes, leases... */
  resource: string;
  namespace?: string | undefined;
  name?: string | undefined;
  subresource?: string | undefined;
}

export function resourcePath(ref: ResourceRef): string {
  const base = ref.group === "" ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  const ns = ref.namespace ? `/namespaces/${encodeURIComponent(ref.namespace)}` : "";
  const name = ref.name ? `/${encodeURIComponent(ref.name)}` : "";
  const sub = ref.subresource ? `/${ref.subresource}` : "";
  return `${base}${ns}/${ref.resource}${name}${sub}`;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /** Whole-request deadline; default 30 s (watches have none). */
  timeoutMs?: number;
}

/** One event of a watch stream. */
export interface WatchEvent<T = unknown> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export interface KubeClientOptions {
  /** User-Agent, as `kubelet/v1.33.0 (linux/amd64) deckhand`. */
  userAgent?: string;
  /**
   * Requests per second the client lets through, after a burst of `burst` (client-go's QPS and Burst, a token
   * bucket over every request and watch start); default unlimited.
   */
  qps?: number;
  burst?: number;
}

export class KubeClient {
  readonly credentials: ClusterCredentials;
  private readonly server: URL;
  private readonly agent: https.Agent | http.Agent;
  private readonly userAgent: string;
  private readonly limiter: TokenBucket | undefined;

  constructor(credentials: ClusterCredentials, options: KubeClientOptions = {}) {
    this.credentials = credentials;
    this.server = credentials.server;
    this.userAgent = options.userAgent ?? "deckhand";
    this.limiter = options.qps !== undefined && options.qps > 0 ? new TokenBucket({ qps: options.qps, burst: options.burst ?? 1 }) : undefined;
    this.agent = this.server.protocol === "https:" ? new https.Agent({ keepAlive: true, maxSockets: 50 }) : new http.Agent({ keepAlive: true, maxSockets: 50 });
  }

  /** A client from a kubeconfig file ($KUBECONFIG, else ~/.kube/config, when no path is given). */
  static fromFile(path?: string, options: KubeClientOptions = {}): KubeClient {
    const file = path ?? process.env["KUBECONFIG"]?.split(":")[0] ?? join(homedir(), ".kube", "config");
    return new KubeClient(loadKubeconfig(file), options);
  }

  /** The same identity and server with another rate limit (upstream's kubelet sends events through its own). */
  withRateLimit(limit: { qps?: number; burst?: number }): KubeClient {
    return new KubeClient(this.credentials, { userAgent: this.userAgent, ...limit });
  }

  /** The same identity against another server URL (tests route through proxies this way). */
  withServer(server: string, options: KubeClientOptions = {}): KubeClient {
    return new KubeClient({ ...this.credentials, server: new URL(server) }, { userAgent: this.userAgent, ...options });
  }

  close(): void {
    this.agent.destroy();
  }

  private async requestOptions(method: string, path: string, query: RequestOptions["query"], headers: Record<string, string>): Promise<https.RequestOptions> {
    const url = new URL(this.server.pathname.replace(/\/$/, "") + path, this.server);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const opts: https.RequestOptions = {
      method,
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: url.port,
      path: url.pathname + url.search,
      headers: { Accept: "application/json", "User-Agent": this.userAgent, ...headers },
    };
    // Credentials as the kubeconfig says; tokens from files and exec plugins refresh here.
    const c = this.credentials;
    if (c.ca) opts.ca = c.ca;
    if (c.insecureSkipTLSVerify) opts.rejectUnauthorized = false;
    if (c.serverName) opts.servername = c.serverName;
    const execCert = await c.execCertificate?.();
    if (execCert) {
      opts.cert = execCert.cert;
      opts.key = execCert.key;
    } else if (c.cert && c.key) {
      opts.cert = c.cert;
      opts.key = c.key;
    }
    const token = await c.token();
    if (token) (opts.headers as Record<string, string>)["Authorization"] = `Bearer ${token}`;
    opts.agent = this.agent;
    return opts;
  }

  /** One request; the parsed JSON answer, or an ApiError carrying the API's Status. */
  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const body = options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    const headers: Record<string, string> = {};
    if (body !== undefined) {
      headers["Content-Type"] = options.contentType ?? "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(body));
    }
    await this.limiter?.take(options.signal);
    const reqOpts = await this.requestOptions(method, path, options.query, headers);
    const signals = [AbortSignal.timeout(options.timeoutMs ?? 30_000)];
    if (options.signal) signals.push(options.signal);
    reqOpts.signal = AbortSignal.any(signals);
    const mod = reqOpts.protocol === "https:" ? https : http;
    const host = this.server.host;
    return new Promise<T>((resolve, reject) => {
      const req = mod.request(reqOpts, (res) => {
        countRequest(res.statusCode, method, host);
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (err) => reject(new ApiError(0, method, path, undefined, err.message)));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const status = res.statusCode ?? 0;
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          if (status >= 200 && status < 300) resolve(parsed as T);
          else reject(new ApiError(status, method, path, parsed as ApiStatus | undefined, text.slice(0, 500)));
        });
      });
      req.on("error", (err) => {
        countRequest(undefined, method, host);
        if (options.signal?.aborted) reject(new DeckhandError("Cancelled", `${method} ${path}: aborted`, { cause: err }));
        else if (err.name === "AbortError" || err.name === "TimeoutError") reject(new ApiError(0, method, path, undefined, "timed out"));
        else reject(new ApiError(0, method, path, undefined, err.message));
      });
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  get<T>(ref: ResourceRef, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("GET", resourcePath(ref), options);
  }

  create<T>(ref: ResourceRef, object: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("POST", resourcePath({ ...ref, name: undefined }), { ...options, body: object });
  }

  update<T>(ref: ResourceRef, object: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("PUT", resourcePath(ref), { ...options, body: object });
  }

  patch<T>(ref: ResourceRef, type: PatchType, patch: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("PATCH", resourcePath(ref), { ...options, body: patch, contentType: PATCH_CONTENT_TYPES[type] });
  }

  delete<T>(ref: ResourceRef, deleteOptions: { gracePeriodSeconds?: number; preconditions?: { uid?: string; resourceVersion?: string } } = {}, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("DELETE", resourcePath(ref), { ...options, body: { kind: "DeleteOptions", apiVersion: "v1", ...deleteOptions } });
  }

  /**
   * A watch stream: yields events until the server ends it, the signal aborts, or the connection fails
   * (then it throws an ApiError with status 0). A watch refused at start (410 Gone...) throws its Status.
   */
  async *watch<T = unknown>(path: string, query: RequestOptions["query"], signal?: AbortSignal): AsyncGenerator<WatchEvent<T>> {
    await this.limiter?.take(signal);
    const reqOpts = await this.requestOptions("GET", path, { ...query, watch: "true" }, {});
    if (signal) reqOpts.signal = signal;
    const mod = reqOpts.protocol === "https:" ? https : http;
    const host = this.server.host;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = mod.request(reqOpts, (r) => {
        countRequest(r.statusCode, "GET", host);
        resolve(r);
      });
      req.on("error", () => countRequest(undefined, "GET", host));
      req.on("error", (err) => reject(signal?.aborted ? new DeckhandError("Cancelled", `watch ${path}: aborted`, { cause: err }) : new ApiError(0, "WATCH", path, undefined, err.message)));
      req.end();
    });
    if ((res.statusCode ?? 0) !== 200) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      const text = Buffer.concat(chunks).toString("utf8");
      let body: ApiStatus | undefined;
      try {
        body = JSON.parse(text) as ApiStatus;
      } catch {
        body = undefined;
      }
      throw new ApiError(res.statusCode ?? 0, "WATCH", path, body, text.slice(0, 500));
    }
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (!line.trim()) continue;
        yield JSON.parse(line) as WatchEvent<T>;
      }
    } catch (err) {
      if (signal?.aborted) return;
      throw new ApiError(0, "WATCH", path, undefined, err instanceof Error ? err.message : String(err));
    } finally {
      res.destroy();
    }
  }
}
