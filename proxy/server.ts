/**
 * The health server (`healthzBindAddress`, :10256) and the metrics server (`metricsBindAddress`, :10249),
 * with upstream's semantics (pkg/proxy/healthcheck/proxy_health.go):
 *  - the proxier is unhealthy when an update has been queued for longer than healthTimeout (2 × syncPeriod)
 *    without a successful sync since;
 *  - /livez answers that alone; /healthz also requires the node to be eligible: known, not being deleted and
 *    not tainted ToBeDeletedByClusterAutoscaler;
 *  - both answer 200 or 503 with a JSON body and count themselves in kubeproxy_proxy_{healthz,livez}_total.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { V1Node } from "@kubernetes/client-node";
import type { Logger } from "../src-shared/log.ts";
import { DeckhandError } from "../src-shared/errors.ts";
import { parseHostPort } from "./config.ts";
import type { ProxyMetrics } from "./metrics.ts";
import { closeAll } from "./service-health.ts";
import { listenTcp } from "../src-shared/listen.ts";

export const TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler";
const IP_FAMILY = "IPv4";
const GO_ZERO_TIME = "0001-01-01T00:00:00Z";

export interface HealthReport {
  lastUpdated: string;
  currentTime: string;
  nodeEligible?: boolean;
  healthy: boolean;
  status: Record<string, { lastUpdated: string; healthy: boolean }>;
}

/** The proxier's health bookkeeping (upstream's ProxyHealthServer without the HTTP part). */
export class ProxyHealth {
  private readonly healthTimeoutMs: number;
  private readonly now: () => number;
  private lastUpdated: number | undefined;
  private oldestPendingQueued: number | undefined;
  private node: V1Node | undefined;

  constructor(options: { healthTimeoutMs: number; now?: () => number }) {
    this.healthTimeoutMs = options.healthTimeoutMs;
    this.now = options.now ?? Date.now;
  }

  /** A sync succeeded: nothing is pending any more. */
  updated(): void {
    this.oldestPendingQueued = undefined;
    this.lastUpdated = this.now();
  }

  /** A change arrived that needs a sync. */
  queuedUpdate(): void {
    this.oldestPendingQueued ??= this.now();
  }

  setNode(node: V1Node | undefined): void {
    this.node = node;
  }

  health(): HealthReport {
    const now = this.now();
    let healthy = true;
    if (this.lastUpdated !== undefined && this.oldestPendingQueued !== undefined && now - this.oldestPendingQueued >= this.healthTimeoutMs) healthy = false;
    const last = this.lastUpdated === undefined ? GO_ZERO_TIME : new Date(this.lastUpdated).toISOString();
    return {
      lastUpdated: last,
      currentTime: new Date(now).toISOString(),
      healthy,
      status: this.lastUpdated === undefined ? {} : { [IP_FAMILY]: { lastUpdated: last, healthy } },
    };
  }

  nodeEligible(): boolean {
    const node = this.node;
    if (!node) return false;
    if (node.metadata?.deletionTimestamp) return false;
    return !(node.spec?.taints ?? []).some((t) => t.key === TO_BE_DELETED_TAINT);
  }
}

export interface ProxyServerOptions {
  healthzBindAddress: string;
  metricsBindAddress: string;
  health: ProxyHealth;
  metrics: ProxyMetrics;
  log: Logger;
  proxyMode?: string;
}

/** Serves /healthz and /livez on the health address, /metrics (and /healthz "ok", /proxyMode) on the metrics one. */
export class ProxyServer {
  private readonly options: ProxyServerOptions;
  private readonly servers: Server[] = [];
  private healthzAddr: AddressInfo | undefined;
  private metricsAddr: AddressInfo | undefined;

  constructor(options: ProxyServerOptions) {
    this.options = options;
  }

  get healthzAddress(): AddressInfo | undefined {
    return this.healthzAddr;
  }

  get metricsAddress(): AddressInfo | undefined {
    return this.metricsAddr;
  }

  async start(signal?: AbortSignal): Promise<void> {
    const { healthzBindAddress, metricsBindAddress } = this.options;
    if (healthzBindAddress) this.healthzAddr = await this.listen(healthzBindAddress, (req, res) => this.serveHealth(req, res));
    if (metricsBindAddress) this.metricsAddr = await this.listen(metricsBindAddress, (req, res) => this.serveMetrics(req, res));
    signal?.addEventListener("abort", () => void this.close(), { once: true });
  }

  private async listen(addr: string, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<AddressInfo> {
    const hp = parseHostPort(addr);
    if (!hp) throw new DeckhandError("InvalidConfig", `bad bind address ${JSON.stringify(addr)}`);
    const server = createServer(handler);
    server.keepAliveTimeout = 5_000;
    const address = await listenTcp(server, hp.port, hp.host).catch((err: unknown) => {
      throw new DeckhandError("Unavailable", `cannot listen on ${addr}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
    this.servers.push(server);
    this.options.log.info({ address: addr }, "listening");
    return address;
  }

  private serveHealth(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0];
    const { health, metrics } = this.options;
    if (path !== "/healthz" && path !== "/livez") {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("404 page not found\n");
      return;
    }
    const report = health.health();
    let ok = report.healthy;
    if (path === "/healthz") {
      const eligible = health.nodeEligible();
      report.nodeEligible = eligible;
      ok = ok && eligible;
    }
    (path === "/healthz" ? metrics.proxyHealthzTotal : metrics.proxyLivezTotal).inc({ code: ok ? "200" : "503" });
    // As upstream: a healthy answer reports "now" as lastUpdated (older releases' semantics).
    if (ok) report.lastUpdated = new Date().toISOString();
    const body = JSON.stringify({
      lastUpdated: report.lastUpdated,
      currentTime: report.currentTime,
      ...(report.nodeEligible === undefined ? {} : { nodeEligible: report.nodeEligible }),
      healthy: report.healthy,
      ...(Object.keys(report.status).length > 0 ? { status: report.status } : {}),
    });
    res.writeHead(ok ? 200 : 503, { "Content-Type": "application/json", "X-Content-Type-Options": "nosniff" }).end(body);
  }

  private serveMetrics(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/metrics") {
      res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" }).end(this.options.metrics.render());
    } else if (path === "/healthz") {
      res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
    } else if (path === "/proxyMode") {
      res.writeHead(200, { "Content-Type": "text/plain" }).end(this.options.proxyMode ?? "iptables");
    } else {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("404 page not found\n");
    }
  }

  async close(): Promise<void> {
    await closeAll(this.servers.splice(0));
  }
}
