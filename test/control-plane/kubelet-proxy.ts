/**
 * What kube-apiserver does with the kubelet: `pods/log` (LogREST: the container chosen or checked, the
 * options validated, then the kubelet's /containerLogs streamed back) and `nodes/proxy` (ProxyREST: any
 * method and sub-path passed to the kubelet, status, headers and body returned as they come). The kubelet is
 * reached at the Node's address (`--kubelet-preferred-address-types`, upstream's default order unless set)
 * and `status.daemonEndpoints.kubeletEndpoint.Port` (10250 when unset), over TLS with the apiserver's
 * kubelet-client certificate (`--kubelet-client-certificate`), the kubelet's serving certificate not verified
 * (no `--kubelet-certificate-authority`, kube-apiserver's default). Connections go through an optional dialer,
 * as kube-apiserver's egress selector (`cluster` network context) sends them through a konnectivity proxy.
 *
 * pods/exec, pods/attach and pods/portforward: a SPDY upgrade request is passed to the kubelet's /exec,
 * /attach and /portForward and the connection spliced both ways. A WebSocket one (kubectl 1.30+ tries it
 * first) is handled as kube-apiserver 1.31+ does: exec and attach translated to SPDY towards the kubelet
 * (stream-translator.ts), port-forward's SPDY carried inside the WebSocket and unwrapped (stream-tunnel.ts).
 * The kubelet thus only ever gets SPDY from the control plane, as from a real API server.
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import net from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import { spliceUpgrade } from "../../kubelet/server/streaming.ts";
import { readBody, readHead, type ResponseHead } from "./http-head.ts";
import type { KeyAndCert } from "./pki.ts";
import { SpdySession } from "./spdy.ts";
import { REMOTE_COMMAND_V4, TranslatorError, translateStream, type TranslateOptions } from "./stream-translator.ts";
import { tunnelStream } from "./stream-tunnel.ts";
import type { Store } from "./store.ts";
import { ApiError, badRequest, internalError, invalid, invalidValue, forbidden, notFound, type FieldError } from "./status.ts";
import { arr, dig, str, type KubeObject } from "./types.ts";

/** Opens a TCP connection to host:port on the cluster network. */
export type ClusterDialer = (host: string, port: number) => Promise<Duplex>;

export const DEFAULT_PREFERRED_ADDRESS_TYPES = ["Hostname", "InternalDNS", "InternalIP", "ExternalDNS", "ExternalIP"];

export interface KubeletProxyOptions {
  store: Store;
  clientCert: KeyAndCert;
  dial?: ClusterDialer;
  preferredAddressTypes?: string[];
}

/** The node's address of the first preferred type it has. */
export function nodeAddress(node: KubeObject, preferred: readonly string[]): string | undefined {
  const addrs = arr(dig(node, "status", "addresses")) as { type?: string; address?: string }[];
  for (const t of preferred) {
    const a = addrs.find((x) => x.type === t && x.address);
    if (a?.address) return a.address;
  }
  return undefined;
}

/** kube-apiserver's GenericHttpResponseChecker: a kubelet error answer as a Status error. */
export function kubeletError(status: number, body: string, resource: string, name: string): ApiError {
  if (status === 500) return internalError(body);
  if (status === 400) return badRequest(body);
  const details = { name, kind: resource, causes: [{ reason: "UnexpectedServerResponse", message: body }] };
  switch (status) {
    case 401:
      return new ApiError(401, "Unauthorized", "the server has asked for the client to provide credentials", details);
    case 403:
      return new ApiError(403, "Forbidden", body, details);
    case 404:
      return new ApiError(404, "NotFound", "the server could not find the requested resource", details);
    default:
      return new ApiError(status, "Unknown", `the server responded with the status code ${status} but did not return more information`, details);
  }
}

const LOG_PARAMS = ["container", "follow", "previous", "sinceSeconds", "sinceTime", "timestamps", "tailLines", "limitBytes", "insecureSkipTLSVerifyBackend", "stream"];

export class KubeletProxy {
  private readonly o: KubeletProxyOptions;

  constructor(o: KubeletProxyOptions) {
    this.o = o;
  }

  private location(nodeName: string): { host: string; port: number } {
    const node = this.o.store.get("core/nodes", undefined, nodeName);
    if (node === undefined) throw notFound("", "nodes", nodeName);
    const host = nodeAddress(node, this.o.preferredAddressTypes ?? DEFAULT_PREFERRED_ADDRESS_TYPES);
    if (host === undefined) throw internalError(`no preferred addresses found; known addresses: []`);
    const port = Number(dig(node, "status", "daemonEndpoints", "kubeletEndpoint", "Port") ?? 0);
    return { host, port: port > 0 ? port : 10250 };
  }

  private async request(target: { host: string; port: number }, method: string, path: string, headers: http.OutgoingHttpHeaders, signal: AbortSignal, body?: IncomingMessage): Promise<IncomingMessage> {
    let raw: Duplex;
    try {
      raw = this.o.dial ? await this.o.dial(target.host, target.port) : net.connect(target.port, target.host);
    } catch (err) {
      throw new ApiError(503, "ServiceUnavailable", `error trying to reach service: ${err instanceof Error ? err.message : String(err)}`);
    }
    const socket = tls.connect({ socket: raw, key: this.o.clientCert.keyPem, cert: this.o.clientCert.certPem, rejectUnauthorized: false, ...(net.isIP(target.host) === 0 ? { servername: target.host } : {}) });
    return new Promise((resolve, reject) => {
      const req = http.request({ method, path, headers: { ...headers, host: `${target.host}:${target.port}` }, createConnection: () => socket, signal });
      req.once("response", resolve);
      req.once("error", (err) => reject(new ApiError(503, "ServiceUnavailable", `error trying to reach service: ${err.message}`)));
      if (body === undefined) req.end();
      else body.pipe(req);
    });
  }

  /** GET pods/{name}/log. */
  async podLog(namespace: string, name: string, q: URLSearchParams, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const pod = this.o.store.get("core/pods", namespace, name);
    if (pod === undefined) throw notFound("", "pods", name);
    const names = (k: string): string[] => arr(dig(pod, "spec", k)).map((c) => str(dig(c, "name")) ?? "");
    const containers = names("containers");
    const inits = names("initContainers");
    const ephemeral = names("ephemeralContainers");
    let container = q.get("container") ?? "";
    if (container === "") {
      if (containers.length === 1) container = containers[0] ?? "";
      else {
        let msg = `a container name must be specified for pod ${name}, choose one of: [${containers.join(" ")}]`;
        if (inits.length > 0) msg += ` or one of the init containers: [${inits.join(" ")}]`;
        if (ephemeral.length > 0) msg += ` or one of the ephemeral containers: [${ephemeral.join(" ")}]`;
        throw badRequest(msg);
      }
    } else if (![...containers, ...inits, ...ephemeral].includes(container)) {
      throw badRequest(`container ${container} is not valid for pod ${name}`);
    }
    const errs: FieldError[] = [];
    const num = (k: string): number | undefined => {
      const v = q.get(k);
      if (v === null || v === "") return undefined;
      if (!/^-?\d+$/.test(v)) throw badRequest(`${k}: invalid value ${v}`);
      return Number(v);
    };
    const tail = num("tailLines");
    const limit = num("limitBytes");
    const since = num("sinceSeconds");
    if (tail !== undefined && tail < 0) errs.push(invalidValue("tailLines", tail, "must be greater than or equal to 0"));
    if (limit !== undefined && limit < 1) errs.push(invalidValue("limitBytes", limit, "must be greater than 0"));
    if (since !== undefined && since < 1) errs.push(invalidValue("sinceSeconds", since, "must be greater than 0"));
    if (since !== undefined && (q.get("sinceTime") ?? "") !== "") errs.push(forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified"));
    if (errs.length > 0) throw invalid("", "PodLogOptions", "", errs);
    const nodeName = str(dig(pod, "spec", "nodeName")) ?? "";
    if (nodeName === "") throw badRequest(`pod ${name} does not have a host assigned`);
    const params = new URLSearchParams();
    for (const k of LOG_PARAMS) {
      const v = q.get(k);
      if (v !== null && v !== "" && k !== "container" && k !== "insecureSkipTLSVerifyBackend") params.set(k, v);
    }
    const qs = params.toString();
    const path = `/containerLogs/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/${encodeURIComponent(container)}${qs === "" ? "" : `?${qs}`}`;
    const up = await this.request(this.location(nodeName), "GET", path, {}, signal);
    const status = up.statusCode ?? 0;
    if (status < 200 || status > 206) {
      const chunks: Buffer[] = [];
      for await (const c of up) chunks.push(c as Buffer);
      throw kubeletError(status, Buffer.concat(chunks).toString("utf8").slice(0, 50_000), "pods/log", name);
    }
    res.writeHead(200, { "Content-Type": "text/plain", "Cache-Control": "no-cache, private", "Transfer-Encoding": "chunked" });
    res.flushHeaders();
    await pipeTo(up, res);
  }

  /** pods/{name}/exec|attach|portforward: the checks of kube-apiserver's streamLocation, then the kubelet path. */
  streamPath(namespace: string, name: string, sub: "exec" | "attach" | "portforward", q: URLSearchParams): { nodeName: string; path: string } {
    const pod = this.o.store.get("core/pods", namespace, name);
    if (pod === undefined) throw notFound("", "pods", name);
    const nodeName = str(dig(pod, "spec", "nodeName")) ?? "";
    if (nodeName === "") throw badRequest(`pod ${name} does not have a host assigned`);
    const params = new URLSearchParams(q);
    params.delete("container");
    const qs = params.toString() === "" ? "" : `?${params.toString()}`;
    const enc = encodeURIComponent;
    if (sub === "portforward") return { nodeName, path: `/portForward/${enc(namespace)}/${enc(name)}${qs}` };
    const containers = arr(dig(pod, "spec", "containers")).map((c) => str(dig(c, "name")) ?? "");
    const all = [...containers, ...arr(dig(pod, "spec", "initContainers")).map((c) => str(dig(c, "name")) ?? ""), ...arr(dig(pod, "spec", "ephemeralContainers")).map((c) => str(dig(c, "name")) ?? "")];
    let container = q.get("container") ?? "";
    if (container === "") {
      if (containers.length !== 1) throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${containers.join(" ")}]`);
      container = containers[0] ?? "";
    } else if (!all.includes(container)) throw badRequest(`container ${container} is not valid for pod ${name}`);
    const kubeletSub = sub === "exec" ? "exec" : "attach";
    return { nodeName, path: `/${kubeletSub}/${enc(namespace)}/${enc(name)}/${enc(container)}${qs}` };
  }

  /** A TLS connection to the node's kubelet with the kubelet-client certificate, handshake done. */
  private async dialKubelet(nodeName: string): Promise<{ socket: tls.TLSSocket; host: string; port: number }> {
    const target = this.location(nodeName);
    let raw: Duplex;
    try {
      raw = this.o.dial ? await this.o.dial(target.host, target.port) : net.connect(target.port, target.host);
    } catch (err) {
      throw new ApiError(503, "ServiceUnavailable", `error dialing backend: ${err instanceof Error ? err.message : String(err)}`);
    }
    const socket = tls.connect({ socket: raw, key: this.o.clientCert.keyPem, cert: this.o.clientCert.certPem, rejectUnauthorized: false, ...(net.isIP(target.host) === 0 ? { servername: target.host } : {}) });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", (err: Error) => reject(new ApiError(503, "ServiceUnavailable", `error dialing backend: ${err.message}`)));
    });
    return { socket, host: target.host.includes(":") ? `[${target.host}]` : target.host, port: target.port };
  }

  /** The client's upgrade request passed to the kubelet over TLS, then the connection spliced both ways. */
  async upgrade(nodeName: string, path: string, req: IncomingMessage, socket: Duplex, head: Buffer, signal: AbortSignal): Promise<void> {
    const up = await this.dialKubelet(nodeName);
    await spliceUpgrade(req, socket, head, up.socket, new URL(`https://${up.host}:${up.port}${path}`), signal);
  }

  /** A SPDY upgrade request of our own to the kubelet (as upstream's, POST), for the protocols given: its answer's head and the connection. */
  async spdyUpgrade(nodeName: string, path: string, protocols: string[]): Promise<{ socket: Duplex; head: ResponseHead }> {
    const up = await this.dialKubelet(nodeName);
    const lines = [`POST ${path} HTTP/1.1`, `Host: ${up.host}:${up.port}`, "Connection: Upgrade", "Upgrade: SPDY/3.1", ...protocols.map((p) => `X-Stream-Protocol-Version: ${p}`), "Content-Length: 0"];
    up.socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    try {
      return { socket: up.socket, head: await readHead(up.socket) };
    } catch (err) {
      up.socket.destroy();
      throw new ApiError(503, "ServiceUnavailable", `error dialing backend: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** pods/exec and pods/attach over WebSocket: translated to SPDY towards the kubelet. Resolves with the code for the log. */
  translate(nodeName: string, path: string, opts: TranslateOptions, req: IncomingMessage, socket: Duplex, head: Buffer, signal: AbortSignal): Promise<number> {
    const openSpdy = async (): Promise<SpdySession> => {
      const up = await this.spdyUpgrade(nodeName, path, [REMOTE_COMMAND_V4]);
      const h = up.head;
      if (h.status !== 101 || !(h.headers["upgrade"] ?? "").toLowerCase().includes("spdy/3.1")) {
        const body = await readBody(up.socket, h);
        up.socket.destroy();
        throw new TranslatorError(`unable to upgrade connection: ${body.trim()}`);
      }
      if ((h.headers["x-stream-protocol-version"] ?? "") !== REMOTE_COMMAND_V4) {
        up.socket.destroy();
        throw new TranslatorError(`unable to upgrade streaming request: the kubelet chose protocol ${JSON.stringify(h.headers["x-stream-protocol-version"] ?? "")}, want ${REMOTE_COMMAND_V4}`);
      }
      return new SpdySession(up.socket);
    };
    return translateStream(req, socket, head, opts, openSpdy, signal);
  }

  /** pods/portforward over WebSocket: the client's SPDY tunnelled to the kubelet. Resolves with the code for the log. */
  tunnel(nodeName: string, path: string, req: IncomingMessage, socket: Duplex, head: Buffer, signal: AbortSignal): Promise<number> {
    return tunnelStream(req, socket, head, (protocols) => this.spdyUpgrade(nodeName, path, protocols), signal);
  }

  /** GET of a path on the node's kubelet, the body as text (metrics-server's scrape); an error status throws. */
  async get(nodeName: string, path: string, signal: AbortSignal): Promise<string> {
    const up = await this.request(this.location(nodeName), "GET", path, { accept: "text/plain" }, signal);
    const chunks: Buffer[] = [];
    for await (const c of up) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    if ((up.statusCode ?? 0) !== 200) throw kubeletError(up.statusCode ?? 502, body, "nodes", nodeName);
    return body;
  }

  /** Any method on nodes/{name}/proxy/{path}: the kubelet's answer as it is. */
  async nodeProxy(nodeRef: string, subpath: string, query: string, req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
    // name, name:port or scheme:name:port
    const parts = nodeRef.split(":");
    const scheme = parts.length === 3 ? parts[0] : "https";
    const nodeName = parts.length === 3 ? (parts[1] ?? "") : (parts[0] ?? "");
    const portText = parts.length === 3 ? parts[2] : parts[1];
    if (scheme !== "https" && scheme !== "") throw badRequest(`unsupported scheme ${scheme ?? ""} for the kubelet proxy`);
    const target = this.location(nodeName);
    if (portText !== undefined && portText !== "") target.port = Number(portText);
    const headers: http.OutgoingHttpHeaders = {};
    for (const h of ["accept", "content-type", "content-length", "user-agent"]) if (req.headers[h] !== undefined) headers[h] = req.headers[h];
    const method = (req.method ?? "GET").toUpperCase();
    const up = await this.request(target, method, `${subpath === "" ? "/" : subpath}${query}`, headers, signal, method === "GET" || method === "HEAD" ? undefined : req);
    const outHeaders: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && k !== "connection" && k !== "keep-alive") outHeaders[k] = v;
    res.writeHead(up.statusCode ?? 502, outHeaders);
    await pipeTo(up, res);
  }
}

/** Copies the kubelet's answer to the client as it comes; either side closing ends both. */
function pipeTo(up: IncomingMessage, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      up.destroy();
      resolve();
    };
    up.on("data", (c: Buffer) => {
      if (!res.write(c)) {
        up.pause();
        res.once("drain", () => up.resume());
      }
    });
    up.on("end", () => {
      res.end();
      resolve();
    });
    up.on("error", () => {
      res.destroy();
      done();
    });
    res.on("close", done);
  });
}
