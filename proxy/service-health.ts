/**
 * Per-Service health checks on `healthCheckNodePort` (upstream pkg/proxy/healthcheck/service_health.go): a
 * LoadBalancer Service with externalTrafficPolicy Local gets an HTTP listener on its healthCheckNodePort that
 * answers 200 when this node has ready local endpoints for it (and kube-proxy is healthy), 503 otherwise, so
 * the load balancer sends traffic only to nodes that can serve it without a second hop.
 */
import { createServer, type Server } from "node:http";
import type { Logger } from "../src-shared/log.ts";
import { errorMessage } from "../src-shared/errors.ts";
import { listenTcp } from "../src-shared/listen.ts";

interface Listener {
  port: number;
  servers: Server[];
}

export class ServiceHealthServer {
  private readonly hosts: readonly string[];
  private readonly log: Logger;
  private readonly healthy: () => boolean;
  /** "ns/name" → its health check port and listeners. */
  private readonly services = new Map<string, Listener>();
  private localEndpoints = new Map<string, number>();
  private closed = false;

  /** `hosts`: addresses to listen on (the nodePortAddresses IPs; ["0.0.0.0"] when NodePorts use every address). */
  constructor(options: { hosts: readonly string[]; log: Logger; healthy: () => boolean }) {
    this.hosts = options.hosts;
    this.log = options.log;
    this.healthy = options.healthy;
  }

  /** The Services that need a health check, "ns/name" → port: opens new listeners, closes stale ones. */
  async syncServices(wanted: ReadonlyMap<string, number>): Promise<void> {
    if (this.closed) return;
    for (const [name, l] of [...this.services]) {
      if (wanted.get(name) === l.port) continue;
      this.services.delete(name);
      await closeAll(l.servers);
    }
    for (const [name, port] of wanted) {
      if (this.services.has(name)) continue;
      const listener: Listener = { port, servers: [] };
      this.services.set(name, listener);
      for (const host of this.hosts) {
        const server = createServer((req, res) => {
          const count = this.localEndpoints.get(name) ?? 0;
          const proxyHealthy = this.healthy();
          const [namespace = "", svcName = ""] = name.split("/");
          res.writeHead(count !== 0 && proxyHealthy ? 200 : 503, {
            "Content-Type": "application/json",
            "X-Content-Type-Options": "nosniff",
            "X-Load-Balancing-Endpoint-Weight": String(count),
          });
          res.end(JSON.stringify({ service: { namespace, name: svcName }, localEndpoints: count, serviceProxyHealthy: proxyHealthy }, null, "\t"));
          req.resume();
        });
        try {
          await listenTcp(server, port, host);
          listener.servers.push(server);
        } catch (err) {
          // upstream logs and carries on (another process may hold the port)
          this.log.error({ service: name, port, host, err: errorMessage(err) }, "failed to open the health check node port");
        }
      }
    }
  }

  /** Ready local endpoints per Service ("ns/name" → count). */
  syncEndpoints(counts: ReadonlyMap<string, number>): void {
    this.localEndpoints = new Map(counts);
  }

  get ports(): number[] {
    return [...this.services.values()].map((l) => l.port);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.services.values()].flatMap((l) => l.servers);
    this.services.clear();
    await closeAll(all);
  }
}

/** Closes HTTP servers at once: stop listening and drop the connections they hold. */
export function closeAll(servers: readonly Server[]): Promise<void> {
  return Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        }),
    ),
  ).then(() => undefined);
}
