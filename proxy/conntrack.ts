/**
 * Stale UDP conntrack entries (upstream pkg/proxy/conntrack/cleanup.go). UDP has no connection to close: a
 * client that keeps its source port keeps hitting the endpoint its conntrack entry was DNATed to, even after
 * that endpoint is gone. After a sync that changed UDP endpoints, every UDP entry whose original destination
 * is a Service IP:port (or a NodePort) but whose reply source is not one of that port's serving endpoints is
 * deleted, so the next packet is NEW and picks a live endpoint (or is rejected when there is none).
 *
 * Unlike upstream (kubernetes#139628) this also clears entries of ports that now have no endpoint at all.
 */
import type { Logger } from "../src-shared/log.ts";
import { hostExec, type Exec } from "./iptables.ts";
import type { EndpointsMap, ServiceMap, ServicePortInfo } from "./types.ts";

/** One UDP conntrack entry: original destination and the address that replies (the DNAT target). */
export interface UdpFlow {
  origDst: string;
  origDport: number;
  replySrc: string;
}

/** Parses `conntrack -L -p udp` output (default text format). */
export function parseConntrackUdp(text: string): UdpFlow[] {
  const flows: UdpFlow[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("udp")) continue;
    const dst = /\bdst=(\S+)/.exec(line);
    const dport = /\bdport=(\d+)/.exec(line);
    const srcs = [...line.matchAll(/\bsrc=(\S+)/g)];
    const reply = srcs[1];
    if (!dst?.[1] || !dport?.[1] || !reply?.[1]) continue;
    flows.push({ origDst: dst[1], origDport: Number(dport[1]), replySrc: reply[1] });
  }
  return flows;
}

/** A deletion: `conntrack -D -p udp` with these filters. */
export interface FlowFilter {
  origDst?: string;
  origDport: number;
  replySrc: string;
}

/**
 * Which entries are stale: destination is a UDP service IP:port (ClusterIP, external IP, LB IP) or a
 * NodePort, and the reply source is not one of its serving endpoints. Pure, for tests.
 */
export function staleFilters(flows: readonly UdpFlow[], services: ServiceMap, endpoints: EndpointsMap, removed: readonly ServicePortInfo[]): FlowFilter[] {
  const byDest = new Map<string, Set<string>>(); // "ip:port" → serving endpoint IPs
  const byNodePort = new Map<number, Set<string>>();
  const add = (svc: ServicePortInfo, serving: Set<string>): void => {
    for (const ip of [svc.clusterIP, ...svc.externalIPs, ...svc.loadBalancerVIPs]) byDest.set(`${ip}:${svc.port}`, serving);
    if (svc.nodePort) byNodePort.set(svc.nodePort, serving);
  };
  for (const svc of removed) add(svc, new Set());
  for (const ports of services.values()) {
    for (const svc of ports) {
      if (svc.protocol !== "UDP") continue;
      const serving = new Set((endpoints.get(svc.key) ?? []).filter((e) => e.ready || (e.serving && e.terminating)).map((e) => e.ip));
      add(svc, serving);
    }
  }
  const out = new Map<string, FlowFilter>();
  for (const f of flows) {
    const dest = byDest.get(`${f.origDst}:${f.origDport}`);
    if (dest) {
      if (!dest.has(f.replySrc)) out.set(`${f.origDst}:${f.origDport}>${f.replySrc}`, { origDst: f.origDst, origDport: f.origDport, replySrc: f.replySrc });
      continue;
    }
    const np = byNodePort.get(f.origDport);
    if (np && f.replySrc !== f.origDst && !np.has(f.replySrc)) out.set(`*:${f.origDport}>${f.replySrc}`, { origDport: f.origDport, replySrc: f.replySrc });
  }
  return [...out.values()];
}

export class ConntrackCleaner {
  private readonly exec: Exec;
  private readonly log: Logger;

  constructor(options: { exec?: Exec; log: Logger }) {
    this.exec = options.exec ?? hostExec;
    this.log = options.log;
  }

  /** Deletes the stale UDP entries; returns how many filters were applied. Errors are logged, not thrown. */
  async cleanStaleEntries(services: ServiceMap, endpoints: EndpointsMap, removed: readonly ServicePortInfo[], signal?: AbortSignal): Promise<number> {
    let listing: string;
    try {
      const r = await this.exec("conntrack", ["-L", "-p", "udp"], { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
      listing = r.stdout;
    } catch (err) {
      this.log.error({ err }, "listing conntrack entries failed; stale UDP entries stay");
      return 0;
    }
    const filters = staleFilters(parseConntrackUdp(listing), services, endpoints, removed);
    for (const f of filters) {
      const args = ["-D", "-p", "udp", ...(f.origDst ? ["--orig-dst", f.origDst] : []), "--orig-port-dst", String(f.origDport), "--reply-src", f.replySrc];
      // conntrack exits 1 when nothing matched (the entry may have expired meanwhile).
      const r = await this.exec("conntrack", args, { allowFailure: true, timeoutMs: 30_000, ...(signal ? { signal } : {}) }).catch((err: unknown) => {
        this.log.error({ err }, "deleting a conntrack entry failed");
        return undefined;
      });
      if (r && r.code !== 0 && r.code !== 1) this.log.warn({ args, stderr: r.stderr.trim() }, "conntrack -D failed");
    }
    if (filters.length > 0) this.log.debug({ deleted: filters.length }, "deleted stale UDP conntrack entries");
    return filters.length;
  }
}
