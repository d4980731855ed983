/**
 * nftables rule generation, pure: Services, endpoints and options in, one `nft -f` transaction out. Mirrors
 * upstream's pkg/proxy/nftables/proxier.go (setupNFTables + syncProxyRules): one `kube-proxy` table per family,
 * base chains at upstream's priorities, dispatch through the `service-ips` / `service-nodeports` verdict maps,
 * drop/reject through `no-endpoint-services` / `no-endpoint-nodeports`, loadBalancerSourceRanges through
 * `firewall-ips`, per service-port chains named `service-<hash>-ns/name/proto/port` (and `local-`,
 * `external-`, `firewall-`), per-endpoint chains `endpoint-<hash>-ns/name/proto/port__ip/port`, endpoint choice
 * by `numgen random mod N vmap`, ClientIP affinity in per-endpoint `affinity-...` timeout sets.
 *
 * A full sync re-creates and flushes every top-level chain, set and map and writes every element and every
 * Service's chains. A partial sync writes only the chains of Services that changed, and only the map and set
 * elements that differ from what the last successful sync left (`NftState.elements`). Service chains no longer
 * used are flushed now and deleted by a later sync (`staleChainsDeletion`): before kernel 6.2 a chain that a
 * just-deleted map element pointed to still counts as referenced for a short while.
 */
import { categorizeEndpoints, policyRouting } from "../rules.ts";
import { cidrContains, parseCidr } from "../ip.ts";
import { hash16, type EndpointInfo, type EndpointsMap, type ServiceMap, type ServicePortInfo } from "../types.ts";

export const KUBE_PROXY_TABLE = "kube-proxy";
export type NftFamily = "ip" | "ip6";

// Base chains (named "<type>-<hook>", as upstream).
export const FILTER_PREROUTING = "filter-prerouting";
export const FILTER_INPUT = "filter-input";
export const FILTER_FORWARD = "filter-forward";
export const FILTER_OUTPUT = "filter-output";
export const FILTER_OUTPUT_POST_DNAT = "filter-output-post-dnat";
export const NAT_PREROUTING = "nat-prerouting";
export const NAT_OUTPUT = "nat-output";
export const NAT_POSTROUTING = "nat-postrouting";
// Regular top-level chains.
export const SERVICES = "services";
export const SERVICE_ENDPOINTS_CHECK = "service-endpoints-check";
export const NODEPORT_ENDPOINTS_CHECK = "nodeport-endpoints-check";
export const REJECT_CHAIN = "reject-chain";
export const CLUSTER_IPS_CHECK = "cluster-ips-check";
export const FIREWALL_CHECK = "firewall-check";
export const MARK_MASQ = "mark-for-masquerade";
export const MASQUERADING = "masquerading";
// Sets and maps.
export const SERVICE_IPS = "service-ips";
export const SERVICE_NODEPORTS = "service-nodeports";
export const NODEPORT_IPS = "nodeport-ips";
export const CLUSTER_IPS = "cluster-ips";
export const NO_ENDPOINT_SERVICES = "no-endpoint-services";
export const NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports";
export const FIREWALL_IPS = "firewall-ips";

/** Priorities as numbers: dstnat = -100, srcnat = 100. */
const DSTNAT = -100;
const SRCNAT = 100;

interface BaseChain {
  name: string;
  type: "filter" | "nat";
  hook: "prerouting" | "input" | "forward" | "output" | "postrouting";
  priority: number;
}

/** upstream nftablesBaseChains: filtering before DNAT (so it sees Service IPs), one filter chain after it. */
export const BASE_CHAINS: readonly BaseChain[] = [
  { name: FILTER_PREROUTING, type: "filter", hook: "prerouting", priority: DSTNAT - 10 },
  { name: FILTER_INPUT, type: "filter", hook: "input", priority: DSTNAT - 10 },
  { name: FILTER_FORWARD, type: "filter", hook: "forward", priority: DSTNAT - 10 },
  { name: FILTER_OUTPUT, type: "filter", hook: "output", priority: DSTNAT - 10 },
  { name: FILTER_OUTPUT_POST_DNAT, type: "filter", hook: "output", priority: DSTNAT + 10 },
  { name: NAT_PREROUTING, type: "nat", hook: "prerouting", priority: DSTNAT },
  { name: NAT_OUTPUT, type: "nat", hook: "output", priority: DSTNAT },
  { name: NAT_POSTROUTING, type: "nat", hook: "postrouting", priority: SRCNAT },
];

/** upstream nftablesJumpChains: [destination, base chain, match]. */
export const JUMP_CHAINS: readonly (readonly [string, string, string])[] = [
  [NODEPORT_ENDPOINTS_CHECK, FILTER_INPUT, "ct state new"],
  [SERVICE_ENDPOINTS_CHECK, FILTER_INPUT, "ct state new"],
  [SERVICE_ENDPOINTS_CHECK, FILTER_FORWARD, "ct state new"],
  [SERVICE_ENDPOINTS_CHECK, FILTER_OUTPUT, "ct state new"],
  [FIREWALL_CHECK, FILTER_PREROUTING, "ct state new"],
  [FIREWALL_CHECK, FILTER_OUTPUT, "ct state new"],
  [SERVICES, NAT_OUTPUT, ""],
  [SERVICES, NAT_PREROUTING, ""],
  [MASQUERADING, NAT_POSTROUTING, ""],
  [CLUSTER_IPS_CHECK, FILTER_FORWARD, "ct state new"],
  [CLUSTER_IPS_CHECK, FILTER_OUTPUT_POST_DNAT, "ct state new"],
];

/** The element containers, in the order their elements are written. */
const CONTAINERS = [CLUSTER_IPS, SERVICE_IPS, FIREWALL_IPS, NO_ENDPOINT_SERVICES, NO_ENDPOINT_NODEPORTS, SERVICE_NODEPORTS] as const;
type Container = (typeof CONTAINERS)[number];

export interface NftOptions {
  family: NftFamily;
  /** "0x4000" for masqueradeBit 14. */
  masqueradeMark: string;
  masqueradeAll: boolean;
  /** Pod CIDR of the local-traffic detector, or undefined when unknown. */
  localCidr: string | undefined;
  /** The node's primary address of this family (loadBalancerSourceRanges containing it admit the LB IPs). */
  nodeIP: string | undefined;
  /** "all": NodePorts on every local address but loopback (`fib daddr type local`); else these addresses. */
  nodePortIPs: "all" | readonly string[];
  /** Service CIDRs of this family, when known: traffic to unallocated ClusterIPs is dropped. */
  serviceCIDRs?: readonly string[];
}

/** One service port's share of the table, remembered between syncs. */
interface PortOut {
  service: string;
  /** [container, key, value] of its map and set elements. */
  elements: [Container, string, string][];
  chains: string[];
  affinitySets: string[];
  endpoints: number;
  noLocalInternal: number;
  noLocalExternal: number;
}

/**
 * What the table holds after the last sync, per service port, with the elements' owners counted (two ports of
 * a Service share its ClusterIP in `cluster-ips`). Updated in place by every generation: after a transaction
 * that failed, the next sync must be full (which starts from scratch), as the proxier does anyway.
 */
export class NftState {
  readonly ports = new Map<string, PortOut>();
  readonly byService = new Map<string, Set<string>>();
  /** Elements by container: key → value (with its comment, as written). */
  readonly elements = new Map<Container, Map<string, string>>(CONTAINERS.map((c) => [c, new Map<string, string>()]));
  readonly refs = new Map<string, number>();
  /** Service and endpoint chains in use. */
  readonly chains = new Set<string>();
  /** Affinity sets in use. */
  readonly affinitySets = new Set<string>();
  endpoints = 0;
  noLocalInternal = 0;
  noLocalExternal = 0;

  clear(): void {
    this.ports.clear();
    this.byService.clear();
    for (const m of this.elements.values()) m.clear();
    this.refs.clear();
    this.chains.clear();
    this.affinitySets.clear();
    this.endpoints = this.noLocalInternal = this.noLocalExternal = 0;
  }
}

export function emptyNftState(): NftState {
  return new NftState();
}

export interface NftInput {
  services: ServiceMap;
  endpoints: EndpointsMap;
  nodeLabels: Readonly<Record<string, string>>;
  options: NftOptions;
  /** Re-create the table's skeleton and write everything (else only changed Services' chains and element diffs). */
  full: boolean;
  /** First sync of this process: base chains are deleted and re-created, so a changed priority applies. */
  recreateBaseChains?: boolean;
  /** "ns/name" of Services whose Service or EndpointSlices changed since the last successful sync. */
  changedServices: ReadonlySet<string>;
  /** What the table holds (see NftState): read, and updated in place to what it holds after this transaction. */
  previous: NftState;
  /** Full syncs: chains and sets that exist in the table (`nft list`); ours that are unused go. */
  existingChains?: ReadonlySet<string>;
  existingSets?: ReadonlySet<string>;
}

export interface NftResult {
  /** The transaction for `nft -f`. */
  text: string;
  /** The state after this transaction succeeds. */
  state: NftState;
  /** Service chains this transaction flushes because nothing uses them any more: delete them in a later sync. */
  staleChains: string[];
  /** Service ports whose chains were (re)written. */
  regeneratedPorts: number;
  noLocalEndpointsInternal: number;
  noLocalEndpointsExternal: number;
  totalEndpoints: number;
}

// ---- names -------------------------------------------------------------------------------------------------

/** nft names are at most 256 characters; upstream reserves 16 for the prefix. */
const CHAIN_NAME_BASE_MAX = 256 - 16;

/** upstream hashAndTruncate: the first 8 base32 characters of sha256(name), "-", the name. */
export function hashAndTruncate(name: string): string {
  const out = `${hash16(name).slice(0, 8)}-${name}`;
  return out.length > CHAIN_NAME_BASE_MAX ? `${out.slice(0, CHAIN_NAME_BASE_MAX - 3)}...` : out;
}

/** "ns/name/proto/port" of a service port. */
function portPath(svc: ServicePortInfo): string {
  const slash = svc.service.indexOf("/");
  return `${svc.service.slice(0, slash)}/${svc.service.slice(slash + 1)}/${svc.protocol.toLowerCase()}/${svc.portName}`;
}

export interface NftPortChains {
  cluster: string;
  local: string;
  external: string;
  firewall: string;
}

export function nftServicePortChains(svc: ServicePortInfo): NftPortChains {
  const base = hashAndTruncate(portPath(svc));
  return { cluster: `service-${base}`, local: `local-${base}`, external: `external-${base}`, firewall: `firewall-${base}` };
}

/** The endpoint's chain and affinity set: `endpoint-<hash>-ns/name/proto/port__ip/port` (":" of IPv6 as "."). */
export function nftEndpointNames(svc: ServicePortInfo, ep: EndpointInfo): { chain: string; affinitySet: string } {
  const base = hashAndTruncate(`${portPath(svc)}__${ep.ip.replaceAll(":", ".")}/${ep.port}`);
  return { chain: `endpoint-${base}`, affinitySet: `affinity-${base}` };
}

/** Service and endpoint chains carry a "/"; none of the fixed chains does. */
export function isServiceChainName(chain: string): boolean {
  return chain.includes("/");
}

export function isAffinitySetName(set: string): boolean {
  return set.startsWith("affinity-");
}

/** Name caches: sha256 per port and endpoint per sync would dominate large partial syncs. */
const portNames = new Map<ServicePortInfo, NftPortChains>();
const endpointNames = new WeakMap<ServicePortInfo, Map<string, { chain: string; affinitySet: string }>>();

function portChains(svc: ServicePortInfo): NftPortChains {
  let c = portNames.get(svc);
  if (!c) {
    if (portNames.size > 200_000) portNames.clear();
    portNames.set(svc, (c = nftServicePortChains(svc)));
  }
  return c;
}

function epNames(svc: ServicePortInfo, ep: EndpointInfo): { chain: string; affinitySet: string } {
  let m = endpointNames.get(svc);
  if (!m) endpointNames.set(svc, (m = new Map<string, { chain: string; affinitySet: string }>()));
  let n = m.get(ep.endpoint);
  if (!n) m.set(ep.endpoint, (n = nftEndpointNames(svc, ep)));
  return n;
}

// ---- the transaction -----------------------------------------------------------------------------------------

function addrType(family: NftFamily): string {
  return family === "ip" ? "ipv4_addr" : "ipv6_addr";
}

function quote(s: string): string {
  return `"${s.replaceAll('"', "'")}"`;
}

/** Lines of one transaction, with the table prefix filled in. */
class Tx {
  readonly lines: string[] = [];
  readonly t: string;
  constructor(family: NftFamily) {
    this.t = `${family} ${KUBE_PROXY_TABLE}`;
  }
  chain(name: string, spec = ""): void {
    this.lines.push(`add chain ${this.t} ${name}${spec}`);
  }
  flushChain(name: string): void {
    this.lines.push(`flush chain ${this.t} ${name}`);
  }
  rule(chain: string, rule: string, comment?: string): void {
    this.lines.push(`add rule ${this.t} ${chain} ${rule}${comment ? ` comment ${quote(comment)}` : ""}`);
  }
  raw(line: string): void {
    this.lines.push(line);
  }
}

/** upstream setupNFTables: the table, its fixed chains, rules, sets and maps, every container flushed. */
function writeSkeleton(tx: Tx, o: NftOptions, recreateBaseChains: boolean): void {
  const ipX = o.family;
  const noLocalhost = o.family === "ip" ? "ip daddr != 127.0.0.0/8" : "ip6 daddr != ::1";
  const addr = addrType(o.family);
  tx.raw(`add table ${tx.t} { comment "rules for kube-proxy" ; }`);
  if (recreateBaseChains) {
    for (const bc of BASE_CHAINS) {
      tx.chain(bc.name);
      tx.raw(`delete chain ${tx.t} ${bc.name}`);
    }
  }
  for (const bc of BASE_CHAINS) {
    tx.chain(bc.name, ` { type ${bc.type} hook ${bc.hook} priority ${bc.priority} ; }`);
    tx.flushChain(bc.name);
  }
  const created = new Set<string>();
  const ensure = (c: string): void => {
    if (created.has(c)) return;
    created.add(c);
    tx.chain(c);
    tx.flushChain(c);
  };
  for (const [dst, src, match] of JUMP_CHAINS) {
    ensure(dst);
    tx.rule(src, `${match ? `${match} ` : ""}jump ${dst}`);
  }
  for (const c of [SERVICES, CLUSTER_IPS_CHECK, MASQUERADING, MARK_MASQ]) ensure(c);
  tx.rule(MARK_MASQ, `mark set mark or ${o.masqueradeMark}`);
  tx.rule(MASQUERADING, `mark and ${o.masqueradeMark} == 0 return`);
  tx.rule(MASQUERADING, `mark set mark xor ${o.masqueradeMark}`);
  tx.rule(MASQUERADING, "masquerade fully-random");

  tx.raw(`add set ${tx.t} ${CLUSTER_IPS} { type ${addr} ; comment "Active ClusterIPs" ; }`);
  tx.rule(CLUSTER_IPS_CHECK, `${ipX} daddr @${CLUSTER_IPS} reject`, "Reject traffic to invalid ports of ClusterIPs");
  if (o.serviceCIDRs && o.serviceCIDRs.length > 0) {
    tx.rule(CLUSTER_IPS_CHECK, `${ipX} daddr { ${o.serviceCIDRs.join(", ")} } drop`, "Drop traffic to unallocated ClusterIPs");
  }

  tx.raw(`add set ${tx.t} ${NODEPORT_IPS} { type ${addr} ; comment "IPs that accept NodePort traffic" ; }`);
  if (o.nodePortIPs === "all") tx.raw(`delete set ${tx.t} ${NODEPORT_IPS}`);
  else {
    tx.raw(`flush set ${tx.t} ${NODEPORT_IPS}`);
    // Localhost NodePorts do not exist in this mode (upstream logs and skips them).
    const ips = o.nodePortIPs.filter((ip) => !(ip.startsWith("127.") || ip === "::1"));
    for (const ip of ips) tx.raw(`add element ${tx.t} ${NODEPORT_IPS} { ${ip} }`);
  }

  tx.raw(`add map ${tx.t} ${NO_ENDPOINT_SERVICES} { type ${addr} . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }`);
  tx.raw(`add map ${tx.t} ${NO_ENDPOINT_NODEPORTS} { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }`);
  tx.chain(REJECT_CHAIN, ` { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }`);
  tx.flushChain(REJECT_CHAIN);
  tx.rule(REJECT_CHAIN, "reject");
  tx.rule(SERVICE_ENDPOINTS_CHECK, `${ipX} daddr . meta l4proto . th dport vmap @${NO_ENDPOINT_SERVICES}`);
  if (o.nodePortIPs === "all") tx.rule(NODEPORT_ENDPOINTS_CHECK, `${noLocalhost} meta l4proto . th dport vmap @${NO_ENDPOINT_NODEPORTS}`);
  else tx.rule(NODEPORT_ENDPOINTS_CHECK, `${ipX} daddr @${NODEPORT_IPS} meta l4proto . th dport vmap @${NO_ENDPOINT_NODEPORTS}`);

  tx.raw(`add map ${tx.t} ${FIREWALL_IPS} { type ${addr} . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }`);
  tx.rule(FIREWALL_CHECK, `${ipX} daddr . meta l4proto . th dport vmap @${FIREWALL_IPS}`);

  tx.raw(`add map ${tx.t} ${SERVICE_IPS} { type ${addr} . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }`);
  tx.raw(`add map ${tx.t} ${SERVICE_NODEPORTS} { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }`);
  tx.rule(SERVICES, `${ipX} daddr . meta l4proto . th dport vmap @${SERVICE_IPS}`);
  if (o.nodePortIPs === "all") tx.rule(SERVICES, `fib daddr type local ${noLocalhost} meta l4proto . th dport vmap @${SERVICE_NODEPORTS}`);
  else tx.rule(SERVICES, `${ipX} daddr @${NODEPORT_IPS} meta l4proto . th dport vmap @${SERVICE_NODEPORTS}`);

  for (const c of CONTAINERS) tx.raw(`flush ${c === CLUSTER_IPS ? "set" : "map"} ${tx.t} ${c}`);
}

/** Per-sync context of the generator. */
interface Ctx {
  o: NftOptions;
  tx: Tx;
  nodeLabels: Readonly<Record<string, string>>;
  ifLocal: string | undefined;
  ifNotLocal: string | undefined;
}

/** One service port: its chains written to the transaction, its elements and names returned. */
function generatePort(svc: ServicePortInfo, all: readonly EndpointInfo[], ctx: Ctx): PortOut {
  const { o, tx, ifLocal, ifNotLocal } = ctx;
  const ipX = o.family;
  const protocol = svc.protocol.toLowerCase();
  const names = portChains(svc);
  const categorized = categorizeEndpoints(all, svc, ctx.nodeLabels);
  const { cluster, local, allReachable, hasAny } = categorized;
  const sticky = svc.stickyMaxAgeSeconds > 0;
  const out: PortOut = { service: svc.service, elements: [], chains: [], affinitySets: [], endpoints: all.length, noLocalInternal: 0, noLocalExternal: 0 };
  const put = (c: Container, key: string, value: string): void => void out.elements.push([c, key, value]);
  const chain = (name: string): void => {
    out.chains.push(name);
    tx.chain(name);
    tx.flushChain(name);
  };

  const clusterPolicyChain = names.cluster;
  const localPolicyChain = names.local;
  const externalTrafficChain = names.external;
  const { usesClusterPolicyChain, usesLocalPolicyChain, internalTrafficChain, hasInternalEndpoints, externalPolicyChain, hasExternalEndpoints, usesExternalTrafficChain } =
    policyRouting(svc, categorized, clusterPolicyChain, localPolicyChain);
  for (const ep of allReachable) {
    const n = epNames(svc, ep);
    chain(n.chain);
    if (sticky) out.affinitySets.push(n.affinitySet);
  }
  if (usesClusterPolicyChain) chain(clusterPolicyChain);
  if (usesLocalPolicyChain) chain(localPolicyChain);
  if (usesExternalTrafficChain) chain(externalTrafficChain);

  let internalVerdict = "";
  let externalVerdict = "";
  if (!hasAny) {
    internalVerdict = externalVerdict = `goto ${REJECT_CHAIN}`;
  } else {
    if (!hasInternalEndpoints) {
      internalVerdict = "drop";
      out.noLocalInternal = 1;
    }
    if (!hasExternalEndpoints) {
      externalVerdict = "drop";
      out.noLocalExternal = 1;
    }
  }
  const comment = ` comment ${quote(svc.name)}`;
  const portKey = (ip: string): string => `${ip} . ${protocol} . ${svc.port}`;

  // Capture the clusterIP.
  put(CLUSTER_IPS, svc.clusterIP, "");
  if (hasInternalEndpoints) put(SERVICE_IPS, portKey(svc.clusterIP), `goto ${internalTrafficChain}`);
  else put(NO_ENDPOINT_SERVICES, portKey(svc.clusterIP), `${comment} : ${internalVerdict}`);
  // Capture externalIPs.
  for (const ip of svc.externalIPs) {
    if (hasAny) put(SERVICE_IPS, portKey(ip), `goto ${externalTrafficChain}`);
    if (!hasExternalEndpoints) put(NO_ENDPOINT_SERVICES, portKey(ip), `${comment} : ${externalVerdict}`);
  }
  const usesFWChain = svc.loadBalancerVIPs.length > 0 && svc.loadBalancerSourceRanges.length > 0;
  if (usesFWChain) chain(names.firewall);
  // Capture load-balancer ingress.
  for (const ip of svc.loadBalancerVIPs) {
    if (hasAny) put(SERVICE_IPS, portKey(ip), `goto ${externalTrafficChain}`);
    if (usesFWChain) put(FIREWALL_IPS, portKey(ip), `goto ${names.firewall}`);
  }
  if (!hasExternalEndpoints) for (const ip of svc.loadBalancerVIPs) put(NO_ENDPOINT_SERVICES, portKey(ip), `${comment} : ${externalVerdict}`);
  // Capture nodeports (not subject to loadBalancerSourceRanges, as upstream).
  if (svc.nodePort !== 0) {
    const key = `${protocol} . ${svc.nodePort}`;
    if (hasAny) put(SERVICE_NODEPORTS, key, `goto ${externalTrafficChain}`);
    if (!hasExternalEndpoints) put(NO_ENDPOINT_NODEPORTS, key, `${comment} : ${externalVerdict}`);
  }

  // Internal traffic: masquerade off-cluster clients of the ClusterIP.
  if (hasInternalEndpoints) {
    const dst = `${ipX} daddr ${svc.clusterIP} ${protocol} dport ${svc.port}`;
    if (o.masqueradeAll) tx.rule(internalTrafficChain, `${dst} jump ${MARK_MASQ}`);
    else if (ifNotLocal) tx.rule(internalTrafficChain, `${dst} ${ifNotLocal} jump ${MARK_MASQ}`);
  }
  // External destinations.
  if (usesExternalTrafficChain) {
    if (!svc.externalPolicyLocal) tx.rule(externalTrafficChain, `jump ${MARK_MASQ}`);
    else {
      if (ifLocal) tx.rule(externalTrafficChain, `${ifLocal} goto ${clusterPolicyChain}`, "short-circuit pod traffic");
      tx.rule(externalTrafficChain, `fib saddr type local jump ${MARK_MASQ}`, "masquerade local traffic");
      tx.rule(externalTrafficChain, `fib saddr type local goto ${clusterPolicyChain}`, "short-circuit local traffic");
    }
    if (hasExternalEndpoints) tx.rule(externalTrafficChain, `goto ${externalPolicyChain}`);
  }
  if (usesFWChain) {
    const sources = [...svc.loadBalancerSourceRanges];
    let allowFromNode = false;
    for (const cidr of svc.loadBalancerSourceRanges) {
      const c = parseCidr(cidr);
      if (o.nodeIP && c && cidrContains(c, o.nodeIP)) allowFromNode = true;
    }
    if (allowFromNode) sources.push(...svc.loadBalancerVIPs);
    tx.rule(names.firewall, `${ipX} saddr != { ${sources.join(", ")} } drop`);
  }
  if (sticky) {
    for (const ep of allReachable) {
      tx.raw(`add set ${tx.t} ${epNames(svc, ep).affinitySet} { type ${addrType(o.family)} ; flags dynamic,timeout ; timeout ${svc.stickyMaxAgeSeconds}s ; }`);
    }
  }
  if (usesClusterPolicyChain) writeServiceToEndpointRules(tx, svc, clusterPolicyChain, cluster, sticky);
  if (usesLocalPolicyChain) writeServiceToEndpointRules(tx, svc, localPolicyChain, local, sticky);
  for (const ep of allReachable) {
    const n = epNames(svc, ep);
    tx.rule(n.chain, `${ipX} saddr ${ep.ip} jump ${MARK_MASQ}`);
    if (sticky) tx.rule(n.chain, `update @${n.affinitySet} { ${ipX} saddr }`);
    tx.rule(n.chain, `meta l4proto ${protocol} dnat to ${o.family === "ip6" ? `[${ep.ip}]:${ep.port}` : ep.endpoint}`);
  }
  return out;
}

/**
 * Generates one sync's transaction and brings `previous` (the state) up to date with it. A partial sync
 * regenerates only the ports of changed Services and diffs only their elements, so its cost does not grow with
 * the number of unchanged Services.
 */
export function generateNftRules(input: NftInput): NftResult {
  const o = input.options;
  const tx = new Tx(o.family);
  const state = input.previous;
  const full = input.full;
  // Stale candidates: what a full sync finds in the table or knew before; else what changed ports drop.
  const staleChainCandidates = new Set<string>();
  const staleSetCandidates = new Set<string>();
  if (full) {
    writeSkeleton(tx, o, input.recreateBaseChains ?? false);
    for (const c of state.chains) staleChainCandidates.add(c);
    for (const c of input.existingChains ?? []) if (isServiceChainName(c)) staleChainCandidates.add(c);
    for (const s of state.affinitySets) staleSetCandidates.add(s);
    for (const s of input.existingSets ?? []) if (isAffinitySetName(s)) staleSetCandidates.add(s);
    state.clear(); // the skeleton flushed every container
  }
  const ctx: Ctx = {
    o,
    tx,
    nodeLabels: input.nodeLabels,
    ifLocal: o.localCidr ? `${o.family} saddr ${o.localCidr}` : undefined,
    ifNotLocal: o.localCidr ? `${o.family} saddr != ${o.localCidr}` : undefined,
  };
  /** Element values before this sync, for the keys it touches ("container\0key"). */
  const touched = new Map<string, string | undefined>();
  const touch = (c: Container, key: string): void => {
    if (full) return; // a full sync writes every element after the flush
    const ck = `${c}\0${key}`;
    if (!touched.has(ck)) touched.set(ck, state.elements.get(c)?.get(key));
  };
  const removePort = (key: string): void => {
    const old = state.ports.get(key);
    if (!old) return;
    state.ports.delete(key);
    const keys = state.byService.get(old.service);
    keys?.delete(key);
    if (keys?.size === 0) state.byService.delete(old.service);
    for (const [c, k] of old.elements) {
      const ck = `${c}\0${k}`;
      const refs = (state.refs.get(ck) ?? 1) - 1;
      if (refs > 0) {
        state.refs.set(ck, refs);
        continue;
      }
      touch(c, k);
      state.refs.delete(ck);
      state.elements.get(c)?.delete(k);
    }
    for (const ch of old.chains) {
      state.chains.delete(ch);
      staleChainCandidates.add(ch);
    }
    for (const s of old.affinitySets) {
      state.affinitySets.delete(s);
      staleSetCandidates.add(s);
    }
    state.endpoints -= old.endpoints;
    state.noLocalInternal -= old.noLocalInternal;
    state.noLocalExternal -= old.noLocalExternal;
  };
  const addPort = (key: string, out: PortOut): void => {
    state.ports.set(key, out);
    let keys = state.byService.get(out.service);
    if (!keys) state.byService.set(out.service, (keys = new Set()));
    keys.add(key);
    for (const [c, k, v] of out.elements) {
      const ck = `${c}\0${k}`;
      state.refs.set(ck, (state.refs.get(ck) ?? 0) + 1);
      touch(c, k);
      state.elements.get(c)?.set(k, v); // on a conflict (two Services claiming one IP:port) the last one wins, as upstream
    }
    for (const ch of out.chains) state.chains.add(ch);
    for (const s of out.affinitySets) state.affinitySets.add(s);
    state.endpoints += out.endpoints;
    state.noLocalInternal += out.noLocalInternal;
    state.noLocalExternal += out.noLocalExternal;
  };

  let regenerated = 0;
  const regenerate = (svc: ServicePortInfo): void => {
    removePort(svc.key);
    addPort(svc.key, generatePort(svc, input.endpoints.get(svc.key) ?? [], ctx));
    regenerated++;
  };
  if (full) {
    for (const ports of input.services.values()) for (const svc of ports) regenerate(svc);
  } else {
    for (const name of input.changedServices) {
      const ports = input.services.get(name) ?? [];
      const now = new Set(ports.map((p) => p.key));
      for (const key of [...(state.byService.get(name) ?? [])]) if (!now.has(key)) removePort(key);
      for (const svc of ports) regenerate(svc);
    }
  }

  // Stale service chains: flushed now, deleted by a later sync. Affinity sets can go at once.
  const staleChains: string[] = [];
  for (const c of staleChainCandidates) {
    if (state.chains.has(c)) continue;
    tx.flushChain(c);
    staleChains.push(c);
  }
  for (const s of staleSetCandidates) if (!state.affinitySets.has(s)) tx.raw(`delete set ${tx.t} ${s}`);

  // Elements: those whose value this sync changed, deletions first (in container order, as written).
  const dels: string[] = [];
  const adds: string[] = [];
  const addLine = (c: Container, key: string, value: string): string =>
    `add element ${tx.t} ${c} { ${key}${c === CLUSTER_IPS ? "" : value.startsWith(" comment") ? value : ` : ${value}`} }`;
  if (full) for (const [c, m] of state.elements) for (const [key, value] of m) tx.raw(addLine(c, key, value));
  for (const [ck, before] of touched) {
    const sep = ck.indexOf("\0");
    const c = ck.slice(0, sep) as Container;
    const key = ck.slice(sep + 1);
    const after = state.elements.get(c)?.get(key);
    if (after === before) continue;
    if (before !== undefined) dels.push(`delete element ${tx.t} ${c} { ${key} }`);
    if (after !== undefined) adds.push(addLine(c, key, after));
  }
  for (const l of dels) tx.raw(l);
  for (const l of adds) tx.raw(l);

  return {
    text: tx.lines.length === 0 ? "" : tx.lines.join("\n") + "\n",
    state,
    staleChains,
    regeneratedPorts: regenerated,
    noLocalEndpointsInternal: state.noLocalInternal,
    noLocalEndpointsExternal: state.noLocalExternal,
    totalEndpoints: state.endpoints,
  };
}

function writeServiceToEndpointRules(tx: Tx, svc: ServicePortInfo, chain: string, endpoints: readonly EndpointInfo[], sticky: boolean): void {
  const ipX = tx.t.startsWith("ip6") ? "ip6" : "ip";
  if (sticky) {
    for (const ep of endpoints) {
      const n = epNames(svc, ep);
      tx.rule(chain, `${ipX} saddr @${n.affinitySet} goto ${n.chain}`);
    }
  }
  const vmap = endpoints.map((ep, i) => `${i} : goto ${epNames(svc, ep).chain}`).join(" , ");
  tx.rule(chain, `numgen random mod ${endpoints.length} vmap { ${vmap} }`);
}

/** The transaction deleting stale chains flushed at least `graceMs` before `now` (upstream: one second). */
export function staleChainsDeletion(family: NftFamily, stale: ReadonlyMap<string, number>, now: number, graceMs = 1000): { text: string; chains: string[] } {
  const chains = [...stale].filter(([, t]) => t <= now - graceMs).map(([c]) => c);
  const text = chains.map((c) => `delete chain ${family} ${KUBE_PROXY_TABLE} ${c}\n`).join("");
  return { text, chains };
}

/** Chain and set names from `nft list chains|sets <family>` output, for our table only. */
export function namesFromList(listing: string, kind: "chain" | "set"): Set<string> {
  const out = new Set<string>();
  let inTable = false;
  for (const raw of listing.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("table ")) {
      inTable = line.split(/\s+/)[2] === KUBE_PROXY_TABLE;
      continue;
    }
    if (!inTable) continue;
    const m = kind === "chain" ? /^chain (\S+) \{/.exec(line) : /^(?:set|map) (\S+) \{/.exec(line);
    if (m?.[1]) out.add(m[1]);
  }
  return out;
}
