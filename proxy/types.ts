/**
 * The proxier's own view of Services and endpoints: what the trackers derive from the API objects and what
 * rule generation consumes. Names follow upstream's pkg/proxy (ServicePortName, BaseServicePortInfo,
 * BaseEndpointInfo) so the two read side by side.
 */
import { createHash } from "node:crypto";

export type Protocol = "TCP" | "UDP" | "SCTP";

/** One port of one Service, as the proxier programs it (upstream's servicePortInfo). */
export interface ServicePortInfo {
  /** "ns/name": the Service this port belongs to. */
  readonly service: string;
  /** upstream's ServicePortName.String(): "ns/name:port", or "ns/name" for an unnamed port. */
  readonly name: string;
  readonly portName: string;
  readonly protocol: Protocol;
  /** Map key for this port's endpoints: name + "/" + protocol (two ports may share a name across protocols). */
  readonly key: string;
  readonly clusterIP: string;
  readonly port: number;
  /** 0 when the port has none. */
  readonly nodePort: number;
  readonly externalIPs: readonly string[];
  readonly loadBalancerVIPs: readonly string[];
  /** Normalised CIDRs. */
  readonly loadBalancerSourceRanges: readonly string[];
  /** ClientIP affinity timeout in seconds; 0 when sessionAffinity is None. */
  readonly stickyMaxAgeSeconds: number;
  readonly externalPolicyLocal: boolean;
  readonly internalPolicyLocal: boolean;
  /** 0 unless type LoadBalancer with externalTrafficPolicy Local. */
  readonly healthCheckNodePort: number;
  readonly svcChain: string;
  readonly svlChain: string;
  readonly extChain: string;
  readonly fwChain: string;
}

/** One endpoint of one service port (upstream's BaseEndpointInfo plus its KUBE-SEP chain). */
export interface EndpointInfo {
  readonly ip: string;
  readonly port: number;
  /** "ip:port", upstream's Endpoint.String(). */
  readonly endpoint: string;
  readonly isLocal: boolean;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  /** Zone hints of the slice, or undefined when it carries none. */
  readonly zoneHints: readonly string[] | undefined;
  readonly chain: string;
}

/** Service ports by Service ("ns/name"), in arrival order. */
export type ServiceMap = Map<string, readonly ServicePortInfo[]>;
/** Endpoints by service-port key (ServicePortInfo.key), sorted by "ip:port" as upstream sorts them. */
export type EndpointsMap = Map<string, readonly EndpointInfo[]>;

export function externallyAccessible(svc: ServicePortInfo): boolean {
  return svc.nodePort !== 0 || svc.loadBalancerVIPs.length > 0 || svc.externalIPs.length > 0;
}

/** Cluster endpoints are needed unless internal traffic is Local and nothing external reaches the port. */
export function usesClusterEndpoints(svc: ServicePortInfo): boolean {
  return !svc.internalPolicyLocal || externallyAccessible(svc);
}

export function usesLocalEndpoints(svc: ServicePortInfo): boolean {
  return svc.internalPolicyLocal || (svc.externalPolicyLocal && externallyAccessible(svc));
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** The first 16 characters of base32(sha256(input)): 10 bytes → 16 characters, no padding involved. */
export function hash16(input: string): string {
  const d = createHash("sha256").update(input).digest();
  let out = "";
  for (let g = 0; g < 10; g += 5) {
    // 5 bytes = 40 bits = 8 base32 characters; 40 bits fit a double exactly.
    let v = 0;
    for (let i = 0; i < 5; i++) v = v * 256 + (d[g + i] ?? 0);
    for (let i = 7; i >= 0; i--) out += BASE32[Math.floor(v / 2 ** (i * 5)) % 32];
  }
  return out;
}

/** upstream portProtoHash: servicePortName + lower-case protocol. */
export function portProtoHash(servicePortName: string, protocol: string): string {
  return hash16(servicePortName + protocol);
}

export const SVC_PREFIX = "KUBE-SVC-";
export const SVL_PREFIX = "KUBE-SVL-";
export const FW_PREFIX = "KUBE-FW-";
export const EXT_PREFIX = "KUBE-EXT-";
export const SEP_PREFIX = "KUBE-SEP-";

export function servicePortChains(servicePortName: string, protocol: Protocol): { svcChain: string; svlChain: string; extChain: string; fwChain: string } {
  const h = portProtoHash(servicePortName, protocol.toLowerCase());
  return { svcChain: SVC_PREFIX + h, svlChain: SVL_PREFIX + h, extChain: EXT_PREFIX + h, fwChain: FW_PREFIX + h };
}

/** KUBE-SEP-<hash of servicePortName + protocol + "ip:port">. */
export function endpointChainName(servicePortName: string, protocol: Protocol, endpoint: string): string {
  return SEP_PREFIX + hash16(servicePortName + protocol.toLowerCase() + endpoint);
}

export function isServiceChainName(chain: string): boolean {
  return (
    chain.startsWith(SVC_PREFIX) || chain.startsWith(SVL_PREFIX) || chain.startsWith(SEP_PREFIX) || chain.startsWith(FW_PREFIX) || chain.startsWith(EXT_PREFIX)
  );
}
