/**
 * /exec, /attach and /portForward as upstream's kubelet serves them without redirects (the only mode since
 * --redirect-container-streaming went away): the request names the pod and container, the kubelet asks the
 * runtime for a streaming URL (CRI Exec, Attach, PortForward) and proxies the client's upgrade request (SPDY or
 * WebSocket, as the client speaks it) to the runtime's streaming server, then copies bytes both ways until
 * either side closes. The kubelet does not read the stream protocol: exit codes, stdin, TTY resize and port
 * streams pass through as the runtime's server and the client exchange them.
 *
 * Paths: /exec/{ns}/{pod}[/{uid}]/{container}, /attach/… (the same), /portForward/{ns}/{pod}[/{uid}].
 */
import net from "node:net";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { DeckhandError } from "../../src-shared/errors.ts";

export type StreamKind = "exec" | "attach" | "portForward";

export interface StreamTarget {
  kind: StreamKind;
  namespace: string;
  pod: string;
  uid?: string;
  container?: string;
}

function bad(msg: string): never {
  throw new DeckhandError("InvalidArgument", msg);
}

/** The pod (and container) a streaming path names, or undefined when the path is not a streaming one. */
export function parseStreamPath(path: string): StreamTarget | undefined {
  const segs = path.split("/").slice(1).map((s) => decodeURIComponent(s));
  const kind = segs[0];
  if (kind !== "exec" && kind !== "attach" && kind !== "portForward") return undefined;
  const rest = segs.slice(1);
  if (rest.some((s) => s === "")) bad(`invalid path ${path}`);
  if (kind === "portForward") {
    if (rest.length === 2) return { kind, namespace: rest[0] ?? "", pod: rest[1] ?? "" };
    if (rest.length === 3) return { kind, namespace: rest[0] ?? "", pod: rest[1] ?? "", uid: rest[2] ?? "" };
    return bad(`expected /portForward/{podNamespace}/{podID}[/{uid}], got ${path}`);
  }
  if (rest.length === 3) return { kind, namespace: rest[0] ?? "", pod: rest[1] ?? "", container: rest[2] ?? "" };
  if (rest.length === 4) return { kind, namespace: rest[0] ?? "", pod: rest[1] ?? "", uid: rest[2] ?? "", container: rest[3] ?? "" };
  return bad(`expected /${kind}/{podNamespace}/{podID}[/{uid}]/{containerName}, got ${path}`);
}

export interface StreamOptions {
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  ports: number[];
}

function flag(q: URLSearchParams, k: string): boolean {
  const v = q.get(k);
  return v === "1" || v === "true" || v === "True" || v === "TRUE" || v === "t";
}

/** The remotecommand options of the query (upstream's NewOptions): at least one stream; no stderr with a TTY. */
export function streamOptions(kind: StreamKind, q: URLSearchParams): StreamOptions {
  const o: StreamOptions = {
    command: q.getAll("command"),
    stdin: flag(q, "stdin"),
    stdout: flag(q, "stdout"),
    stderr: flag(q, "stderr"),
    tty: flag(q, "tty"),
    ports: q.getAll("port").map((p) => {
      const n = Number(p);
      return Number.isInteger(n) && n > 0 && n < 65536 ? n : bad(`invalid port ${JSON.stringify(p)}`);
    }),
  };
  if (kind === "portForward") return o;
  if (o.tty && o.stderr) o.stderr = false; // a terminal has one output
  if (!o.stdin && !o.stdout && !o.stderr) bad("you must specify at least 1 of stdin, stdout, stderr");
  if (kind === "exec" && o.command.length === 0) bad("you must specify a command");
  return o;
}

/** Whether a request asks for a connection upgrade (SPDY or WebSocket). */
export function isUpgrade(req: IncomingMessage): boolean {
  return /\bupgrade\b/i.test(String(req.headers.connection ?? "")) && req.headers.upgrade !== undefined;
}

/** The request head to send upstream: the client's method and headers, the upstream's path and host. */
export function upstreamHead(req: IncomingMessage, target: URL, drop: readonly string[] = ["host", "authorization"]): string {
  const lines = [`${req.method ?? "GET"} ${target.pathname}${target.search} HTTP/1.1`, `Host: ${target.host}`];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] ?? "";
    if (drop.includes(name.toLowerCase())) continue;
    lines.push(`${name}: ${req.rawHeaders[i + 1] ?? ""}`);
  }
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/**
 * Sends the client's upgrade request to `upstream` (already connected) and copies bytes both ways; resolves
 * when both ends are closed. `signal` closes both.
 */
export function spliceUpgrade(req: IncomingMessage, client: Duplex, head: Buffer, upstream: Duplex, target: URL, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    let open = 2;
    const closed = (): void => {
      if (--open === 0) resolve();
    };
    const stop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.once("close", () => {
      upstream.destroy();
      closed();
    });
    upstream.once("close", () => {
      client.destroy();
      closed();
    });
    client.on("error", stop);
    upstream.on("error", stop);
    signal?.addEventListener("abort", stop, { once: true });
    upstream.write(upstreamHead(req, target));
    if (head.length > 0) upstream.write(head);
    client.pipe(upstream);
    upstream.pipe(client);
  });
}

/** A TCP connection to the runtime's streaming server (its URL is http://host:port/...). */
export function connectTo(url: URL): Promise<net.Socket> {
  if (url.protocol !== "http:") return Promise.reject(new DeckhandError("Unimplemented", `streaming server scheme ${url.protocol} is not supported (containerd's enable_tls_streaming)`));
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(url.port || 80), url.hostname.replace(/^\[|\]$/g, ""));
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

/** An HTTP error answer written on a raw socket (before any upgrade). */
export function rawHttpError(socket: Duplex, status: number, reason: string, body: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
