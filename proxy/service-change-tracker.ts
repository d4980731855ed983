/**
 * Tracks Service changes between syncs (upstream's ServiceChangeTracker + ServicePortMap.Update): events only
 * record the newest object per Service; `apply` turns the pending ones into ServicePortInfo and reports which
 * Services really changed, so a partial sync rewrites only their chains.
 */
import type { V1Service } from "@kubernetes/client-node";
import { canonicalIPv4, parseCidr } from "./ip.ts";
import { servicePortChains, type Protocol, type ServiceMap, type ServicePortInfo } from "./types.ts";

/** Services carrying this label belong to another service proxy (upstream's informer skips them). */
export const SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name";
/** The API server's default ClientIP affinity timeout (3 h). */
export const DEFAULT_STICKY_SECONDS = 10800;

export interface ServiceUpdateResult {
  /** "ns/name" of every Service whose ports (and so chains) changed. */
  updatedServices: Set<string>;
  /** UDP ports that went away or changed address: their conntrack entries are stale. */
  removedUDPPorts: ServicePortInfo[];
}

export function serviceName(svc: V1Service): string {
  return `${svc.metadata?.namespace ?? ""}/${svc.metadata?.name ?? ""}`;
}

function protocolOf(p: string | undefined): Protocol | undefined {
  const v = p ?? "TCP";
  return v === "TCP" || v === "UDP" || v === "SCTP" ? v : undefined;
}

/** The IPv4 ClusterIP of a Service, or undefined for headless, ExternalName and IPv6-only Services. */
function ipv4ClusterIP(svc: V1Service): string | undefined {
  const spec = svc.spec;
  if (!spec || spec.type === "ExternalName") return undefined;
  const candidates = spec.clusterIPs && spec.clusterIPs.length > 0 ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : [];
  for (const c of candidates) {
    if (c === "None" || c === "") return undefined;
    const ip = canonicalIPv4(c);
    if (ip) return ip;
  }
  return undefined;
}

/** upstream serviceToServiceMap + newBaseServiceInfo + newServiceInfo, IPv4 family. */
export function servicePorts(svc: V1Service): ServicePortInfo[] {
  if (svc.metadata?.labels?.[SERVICE_PROXY_NAME_LABEL] !== undefined) return [];
  const clusterIP = ipv4ClusterIP(svc);
  if (!clusterIP) return [];
  const spec = svc.spec ?? {};
  const service = serviceName(svc);
  const type = spec.type ?? "ClusterIP";
  const externalPolicyLocal = (type === "NodePort" || type === "LoadBalancer") && spec.externalTrafficPolicy === "Local";
  const internalPolicyLocal = spec.internalTrafficPolicy === "Local";
  const sticky = spec.sessionAffinity === "ClientIP" ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_STICKY_SECONDS) : 0;
  const externalIPs = (spec.externalIPs ?? []).map((ip) => canonicalIPv4(ip)).filter((ip): ip is string => ip !== undefined);
  const sourceRanges = (spec.loadBalancerSourceRanges ?? [])
    .map((c) => parseCidr(c))
    .filter((c) => c !== undefined && c.family === 4)
    .map((c) => c?.text ?? "");
  const lbVIPs: string[] = [];
  for (const ing of svc.status?.loadBalancer?.ingress ?? []) {
    if (!ing.ip) continue;
    if (ing.ipMode === "Proxy") continue; // the load balancer proxies: the VIP never reaches the node
    const ip = canonicalIPv4(ing.ip);
    if (ip) lbVIPs.push(ip);
  }
  const healthCheckNodePort = type === "LoadBalancer" && externalPolicyLocal ? (spec.healthCheckNodePort ?? 0) : 0;
  const out: ServicePortInfo[] = [];
  for (const p of spec.ports ?? []) {
    const protocol = protocolOf(p.protocol);
    if (!protocol || !p.port) continue;
    const portName = p.name ?? "";
    const name = portName === "" ? service : `${service}:${portName}`;
    out.push({
      service,
      name,
      portName,
      protocol,
      key: `${name}/${protocol}`,
      clusterIP,
      port: p.port,
      nodePort: type === "NodePort" || type === "LoadBalancer" ? (p.nodePort ?? 0) : 0,
      externalIPs,
      loadBalancerVIPs: lbVIPs,
      loadBalancerSourceRanges: sourceRanges,
      stickyMaxAgeSeconds: sticky,
      externalPolicyLocal,
      internalPolicyLocal,
      healthCheckNodePort,
      ...servicePortChains(name, protocol),
    });
  }
  return out;
}

function samePorts(a: readonly ServicePortInfo[] | undefined, b: readonly ServicePortInfo[]): boolean {
  if (a === undefined) return b.length === 0;
  if (a.length !== b.length) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

export class ServiceChangeTracker {
  /** Newest object per Service since the last apply; null when deleted. */
  private readonly pending = new Map<string, V1Service | null>();
  private totalChanges = 0;

  /** Records an add (prev undefined), update or delete (cur undefined). True when changes are pending. */
  update(prev: V1Service | undefined, cur: V1Service | undefined): boolean {
    const obj = cur ?? prev;
    if (!obj) return this.pending.size > 0;
    this.pending.set(serviceName(obj), cur ?? null);
    this.totalChanges++;
    return true;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Cumulative count of Service events seen (kubeproxy_sync_proxy_rules_service_changes_total). */
  get changesTotal(): number {
    return this.totalChanges;
  }

  /** Folds the pending changes into `map` and reports which Services changed. */
  apply(map: ServiceMap): ServiceUpdateResult {
    const result: ServiceUpdateResult = { updatedServices: new Set(), removedUDPPorts: [] };
    for (const [name, svc] of this.pending) {
      const next = svc ? servicePorts(svc) : [];
      const prev = map.get(name);
      if (samePorts(prev, next)) continue;
      result.updatedServices.add(name);
      for (const old of prev ?? []) {
        if (old.protocol !== "UDP") continue;
        const now = next.find((p) => p.key === old.key);
        if (!now || now.clusterIP !== old.clusterIP || now.port !== old.port || now.nodePort !== old.nodePort) result.removedUDPPorts.push(old);
      }
      if (next.length === 0) map.delete(name);
      else map.set(name, next);
    }
    this.pending.clear();
    return result;
  }
}
