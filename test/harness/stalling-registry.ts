/**
 * A front for the test registry (registry.ts) that can hold blob downloads: an HTTPS reverse proxy with the
 * registry's own certificate, reached by a node's containerd at 127.0.0.1:<port> inside the node (through
 * netns-forwarder.ts and a unix socket), passing everything through to the registry on the host's loopback,
 * except, while `holdBlobs` is on, `GET .../blobs/...` requests: those get no answer, and the proxy records
 * when each arrived and when the client gave up (closed the connection). That is how a test sees, at the
 * source, that a pull is in progress and that the runtime abandoned it.
 */
import type { ChildProcess } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { startNetnsForwarder } from "./cluster.ts";
import type { PrivateRegistry } from "./registry.ts";

export interface HeldRequest {
  path: string;
  /** performance.now() when the request arrived, and when its connection closed. */
  arrivedAt: number;
  closedAt: number | undefined;
}

export interface StallingRegistryOptions {
  registry: PrivateRegistry;
  /** The node's network namespace, and a folder of the node's for the unix socket. */
  netnsPath: string;
  dir: string;
  /** The port inside the node; default a random one above 20000 (the node's namespace is otherwise empty). */
  port?: number;
}

export class StallingRegistry {
  /** Hold blob downloads (no answer) while true. */
  holdBlobs = false;
  readonly held: HeldRequest[] = [];
  readonly port: number;
  private readonly options: StallingRegistryOptions;
  private readonly socketPath: string;
  private server: https.Server | undefined;
  private forwarder: ChildProcess | undefined;
  private readonly waiting = new Set<ServerResponse>();

  /** Does no I/O. */
  constructor(options: StallingRegistryOptions) {
    this.options = options;
    this.port = options.port ?? 20_000 + Math.floor(Math.random() * 20_000);
    this.socketPath = join(options.dir, `stalling-registry-${this.port}.sock`);
  }

  /** `127.0.0.1:<port>`: the registry host part of image references, as the node sees it. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  ref(repoTag: string): string {
    return `${this.host}/${repoTag}`;
  }

  async start(): Promise<void> {
    const pki = join(this.options.registry.dir, "pki");
    const [key, cert] = await Promise.all([readFile(join(pki, "server.key")), readFile(join(pki, "server.crt"))]);
    const server = https.createServer({ key, cert }, (req, res) => this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.socketPath, resolve);
    });
    this.forwarder = await startNetnsForwarder(this.options.netnsPath, this.port, this.socketPath, "the stalling registry's forwarder");
  }

  /** Stops holding and answers every held request 503, so that the pulls behind them end. */
  release(): void {
    this.holdBlobs = false;
    for (const res of this.waiting) res.writeHead(503).end();
    this.waiting.clear();
  }

  async close(): Promise<void> {
    this.release();
    this.forwarder?.kill("SIGKILL");
    const server = this.server;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await rm(this.socketPath, { force: true });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? "/";
    if (this.holdBlobs && req.method === "GET" && /\/blobs\/sha256:[0-9a-f]{64}$/.test(path)) {
      const h: HeldRequest = { path, arrivedAt: performance.now(), closedAt: undefined };
      this.held.push(h);
      this.waiting.add(res);
      const closed = (): void => {
        h.closedAt ??= performance.now();
        this.waiting.delete(res);
      };
      req.socket.once("end", closed);
      req.socket.once("close", closed);
      return;
    }
    const upstream = https.request(
      {
        host: "127.0.0.1",
        port: Number(this.options.registry.host.split(":")[1]),
        method: req.method,
        path,
        headers: { ...req.headers, host: this.options.registry.host },
        ca: this.options.registry.caCertPem,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  }
}
