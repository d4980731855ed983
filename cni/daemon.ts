/**
 * The deckhand CNI daemon: serves deckhand-bridge invocations over a unix socket (the Multus "thick plugin"
 * design), so a CNI command costs a connect and the work itself instead of a Node start.
 *
 * Why, by measurement on this kind of machine (2 vCPU): Node 24 starts in ~21 ms before loading anything,
 * loading the netlink addon adds ~20 ms, so a one-shot Node plugin cannot come near the reference Go `bridge`
 * (~11-14 ms for a whole ADD). The launcher bin/deckhand-bridge is a perl script using builtins only (~1.6 ms
 * to start, ~2 ms for a round trip to this daemon); the daemon keeps a netlink socket and the IPAM lock
 * helpers open, and an ADD costs one child process (the pod side, ~3-4 ms). When no daemon answers, or the
 * one that answers runs in another network or mount namespace than the caller (it would configure the wrong
 * node), the launcher runs the plugin in-process instead (cni/main.ts): slower, same result.
 *
 * Wire protocol (client → daemon): "DHCNI1 <net ns> <mnt ns>\n", then "CNI_X=value\n" lines, an empty line,
 * the raw stdin; the client then shuts down its writing side. Daemon → client: "<exit code>\n<stdout>", or
 * "F\n" to ask the client to fall back to the one-shot plugin. The socket is root-only (0600 in a 0700 folder):
 * whoever can talk to it can plumb interfaces.
 */
import { chmodSync, mkdirSync, readlinkSync, unlinkSync, existsSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "../src-shared/log.ts";
import { InFlight } from "../src-shared/concurrency.ts";
import { listen } from "../src-shared/listen.ts";
import { BridgePlugin } from "./plugin.ts";
import { Rtnl } from "./rtnl.ts";
import { closeLocks } from "./ipam-disk.ts";
import { DEFAULT_DAEMON_SOCKET } from "./config.ts";
import { NetnsRunner } from "./nsexec.ts";
import { LinkReaper } from "./link-reaper.ts";
import { tools } from "./podside.ts";
import { CniCode, CniError } from "./spec.ts";

export const PROTOCOL_MAGIC = "DHCNI1";

export interface CniDaemonOptions {
  socketPath?: string;
  log: Logger;
}

export interface DaemonRequest {
  namespaces: string;
  env: Record<string, string>;
  stdin: string;
}

/** Parses one request as the launcher sends it; undefined when malformed. */
export function parseRequest(buf: Buffer): DaemonRequest | undefined {
  const end = buf.indexOf("\n\n");
  if (end < 0) return undefined;
  const head = buf.subarray(0, end).toString("utf8").split("\n");
  const first = head.shift() ?? "";
  if (!first.startsWith(`${PROTOCOL_MAGIC} `)) return undefined;
  const env: Record<string, string> = {};
  for (const line of head) {
    const eq = line.indexOf("=");
    if (eq <= 0 || !line.startsWith("CNI_")) return undefined;
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return { namespaces: first.slice(PROTOCOL_MAGIC.length + 1), env, stdin: buf.subarray(end + 2).toString("utf8") };
}

export function ownNamespaces(): string {
  return `${readlinkSync("/proc/self/ns/net")} ${readlinkSync("/proc/self/ns/mnt")}`;
}

export class CniDaemon {
  readonly socketPath: string;
  private readonly log: Logger;
  private server: Server | undefined;
  private rtnl: Rtnl | undefined;
  private runner: NetnsRunner | undefined;
  private reaper: LinkReaper | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly inFlight = new InFlight();

  constructor(options: CniDaemonOptions) {
    this.socketPath = options.socketPath ?? DEFAULT_DAEMON_SOCKET;
    this.log = options.log.child({ component: "cni-daemon" });
  }

  async start(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    mkdirSync(dirname(this.socketPath), { recursive: true, mode: 0o700 });
    if (existsSync(this.socketPath)) {
      if (await answers(this.socketPath)) throw new Error(`another CNI daemon already serves ${this.socketPath}`);
      unlinkSync(this.socketPath);
    }
    const namespaces = ownNamespaces();
    this.rtnl = new Rtnl();
    const rtnl = this.rtnl;
    const runner = NetnsRunner.supported() ? new NetnsRunner(tools().ip) : undefined;
    this.runner = runner;
    const reaper = new LinkReaper(runner ? { runner } : {});
    this.reaper = reaper;
    const plugin = new BridgePlugin({
      rtnl: () => rtnl,
      log: (line) => this.log.info(line),
      deferLinkDeletion: (name) => {
        reaper.delete(name).catch((err: unknown) => this.log.warn({ link: name, err: String(err) }, "deleting a veth pair after DEL failed"));
      },
      ...(runner
        ? {
            podExec: async (netns: string, script: string, what: string) => {
              const r = await runner.run(netns, script);
              if (r.code !== 0) throw new CniError(CniCode.Internal, `${what} in ${netns} failed: ${r.output.trim() || `exit code ${r.code}`}`);
              return r.output;
            },
            podNetlink: async (netns: string, messages: readonly Buffer[]) => {
              const r = await runner.netlink(netns, messages);
              if (r.code >= 250) throw new CniError(CniCode.Internal, `configuring the pod's interface in ${netns}: ${r.output.trim()}`);
              return { errno: r.code, failed: Number(r.output) || 0 };
            },
          }
        : {}),
    });
    // allowHalfOpen: the client shuts its writing side to mark the end of the request, then reads the answer.
    const server = createServer({ allowHalfOpen: true }, (socket) => this.serve(socket, plugin, namespaces));
    this.server = server;
    // The socket is created owner-only (umask) and not chmod-ed afterwards only: no window where others may connect.
    const old = process.umask(0o177);
    try {
      await listen(server, this.socketPath);
    } finally {
      process.umask(old);
    }
    chmodSync(this.socketPath, 0o600);
    signal?.addEventListener("abort", () => void this.close(), { once: true });
    this.log.info({ socket: this.socketPath }, "CNI daemon listening");
  }

  private serve(socket: Socket, plugin: BridgePlugin, namespaces: string): void {
    this.sockets.add(socket);
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => undefined); // a client killed mid-request: its answer has nowhere to go
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("end", () => {
      const req = parseRequest(Buffer.concat(chunks));
      if (!req) {
        socket.end("F\n");
        return;
      }
      if (req.namespaces !== namespaces) {
        // Not our node: the caller must do the work itself in its own namespaces.
        socket.end("F\n");
        return;
      }
      const t0 = performance.now();
      void this.inFlight.track(
        plugin.handle({ env: req.env, stdin: req.stdin }).then((res) => {
          this.log.debug({ command: req.env["CNI_COMMAND"], container: req.env["CNI_CONTAINERID"], code: res.code, ms: +(performance.now() - t0).toFixed(2) }, "CNI request");
          if (res.code !== 0) this.log.info({ command: req.env["CNI_COMMAND"], container: req.env["CNI_CONTAINERID"], error: res.stdout }, "CNI request failed");
          socket.end(`${res.code}\n${res.stdout}`);
        }),
      );
    });
  }

  /** Stops listening, waits (up to 10 s) for requests in flight, and releases the netlink socket and locks. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await this.inFlight.idle(10_000);
    for (const s of this.sockets) s.destroy();
    closeLocks();
    // The reaper's deletions go through the runner: drained first.
    await this.reaper?.close();
    this.reaper = undefined;
    this.runner?.close();
    this.runner = undefined;
    this.rtnl?.close();
    this.rtnl = undefined;
  }
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}
