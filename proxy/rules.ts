/**
 * Rule generation, pure: Services, endpoints and options in, `iptables-restore --noflush` text out. Mirrors
 * upstream's syncProxyRules (pkg/proxy/iptables/proxier.go) rule for rule, so `iptables-save` reads the same
 * as on any Kubernetes node: KUBE-SERVICES → KUBE-SVC/SVL/EXT/FW-<hash> → KUBE-SEP-<hash>, REJECT/DROP in
 * filter for Services without (local) endpoints, masquerading through KUBE-MARK-MASQ and KUBE-POSTROUTING.
 *
 * A partial sync (full=false) regenerates only the ports of Services in `changedServices` and writes their
 * chains; `--noflush` leaves unmentioned chains as they are. Each port's output is remembered (`RulesCache`),
 * so the top-level chains can be rebuilt in order without regenerating the others, and — given what the last
 * successful sync wrote (`previousTopChains`) — left out when they did not change. Chains no longer used are
 * flushed and deleted (`:CHAIN` + `-X CHAIN`).
 */
import { cidrContains, parseCidr } from "./ip.ts";
import {
  externallyAccessible,
  isServiceChainName,
  usesClusterEndpoints,
  usesLocalEndpoints,
  type EndpointInfo,
  type EndpointsMap,
  type ServiceMap,
  type ServicePortInfo,
} from "./types.ts";

export const KUBE_SERVICES = "KUBE-SERVICES";
export const KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES";
export const KUBE_NODEPORTS = "KUBE-NODEPORTS";
export const KUBE_POSTROUTING = "KUBE-POSTROUTING";
export const KUBE_MARK_MASQ = "KUBE-MARK-MASQ";
export const KUBE_FORWARD = "KUBE-FORWARD";
export const KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL";
export const KUBE_PROXY_CANARY = "KUBE-PROXY-CANARY";
export const KUBE_FIREWALL = "KUBE-FIREWALL";

/** Above this many endpoints in total, per-endpoint comments are dropped ("large cluster mode"). */
export const LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000;
export const CT_STATE_INVALID_NFACCT = "ct_state_invalid_dropped_pkts";
export const LOCALHOST_NODEPORT_NFACCT = "localhost_nps_accepted_pkts";
export const ZONE_LABEL = "topology.kubernetes.io/zone";

export type Table = "filter" | "nat" | "mangle";

/** A rule in a built-in chain that sends packets into ours (upstream's iptablesJumpChains). */
export interface JumpRule {
  table: "filter" | "nat";
  /** The built-in chain holding the rule. */
  chain: string;
  target: string;
  comment: string;
  extra: readonly string[];
}

const NEW = ["-m", "conntrack", "--ctstate", "NEW"] as const;

export const JUMP_RULES: readonly JumpRule[] = [
  { table: "filter", chain: "INPUT", target: KUBE_EXTERNAL_SERVICES, comment: "kubernetes externally-visible service portals", extra: NEW },
  { table: "filter", chain: "FORWARD", target: KUBE_EXTERNAL_SERVICES, comment: "kubernetes externally-visible service portals", extra: NEW },
  { table: "filter", chain: "INPUT", target: KUBE_NODEPORTS, comment: "kubernetes health check service ports", extra: [] },
  { table: "filter", chain: "FORWARD", target: KUBE_SERVICES, comment: "kubernetes service portals", extra: NEW },
  { table: "filter", chain: "OUTPUT", target: KUBE_SERVICES, comment: "kubernetes service portals", extra: NEW },
  { table: "filter", chain: "FORWARD", target: KUBE_FORWARD, comment: "kubernetes forwarding rules", extra: [] },
  { table: "filter", chain: "INPUT", target: KUBE_PROXY_FIREWALL, comment: "kubernetes load balancer firewall", extra: NEW },
  { table: "filter", chain: "OUTPUT", target: KUBE_PROXY_FIREWALL, comment: "kubernetes load balancer firewall", extra: NEW },
  { table: "filter", chain: "FORWARD", target: KUBE_PROXY_FIREWALL, comment: "kubernetes load balancer firewall", extra: NEW },
  { table: "nat", chain: "OUTPUT", target: KUBE_SERVICES, comment: "kubernetes service portals", extra: [] },
  { table: "nat", chain: "PREROUTING", target: KUBE_SERVICES, comment: "kubernetes service portals", extra: [] },
  { table: "nat", chain: "POSTROUTING", target: KUBE_POSTROUTING, comment: "kubernetes postrouting rules", extra: [] },
];

/** The kubelet's copies (filter INPUT/OUTPUT → KUBE-FIREWALL), managed here only with localhost NodePorts. */
export const KUBELET_JUMP_RULES: readonly JumpRule[] = [
  { table: "filter", chain: "INPUT", target: KUBE_FIREWALL, comment: "", extra: [] },
  { table: "filter", chain: "OUTPUT", target: KUBE_FIREWALL, comment: "", extra: [] },
];

/** The rule's arguments after `-A/-I/-D <chain>`, as upstream builds them. */
export function jumpRuleArgs(j: JumpRule): string {
  const parts = [...j.extra];
  if (j.comment) parts.push("-m", "comment", "--comment", `"${j.comment}"`);
  parts.push("-j", j.target);
  return parts.join(" ");
}

export interface RulesOptions {
  nodeName: string;
  /** The node's primary IPv4 address (LoadBalancer source ranges that contain it let the node in). */
  nodeIP: string | undefined;
  /** "0x4000" for masqueradeBit 14 (Go's %#08x). */
  masqueradeMark: string;
  masqueradeAll: boolean;
  /** Pod CIDR of the local-traffic detector (detectLocalMode ClusterCIDR/NodeCIDR), or undefined when unknown. */
  localCidr: string | undefined;
  /** iptables.localhostNodePorts, already and-ed with "nodePortAddresses includes 127.0.0.1". */
  localhostNodePorts: boolean;
  /** "all": NodePorts on every local address (addrtype LOCAL); else the node IPs nodePortAddresses selects. */
  nodePortIPs: "all" | readonly string[];
  /** iptables supports MASQUERADE --random-fully (1.6.2 and later). */
  randomFully: boolean;
  /** net.netfilter.nf_conntrack_tcp_be_liberal is set: no INVALID drop rule. */
  conntrackTCPLiberal: boolean;
  /** nfacct counters that exist (the xt_nfacct match and the counters are optional). */
  nfacct: { ctStateInvalid: boolean; localhostNodePorts: boolean };
}

/** One service port's output, remembered between syncs. */
export interface PortOutput {
  service: string;
  /** Its rules in the top-level chains, by "table/CHAIN". */
  top: ReadonlyMap<string, readonly string[]>;
  /** Its own chains (SVC/SVL/EXT/FW/SEP). */
  chains: readonly string[];
  /** Rules in those chains. */
  natRules: number;
  noLocalInternal: number;
  noLocalExternal: number;
}

/** Per service-port outputs of earlier syncs, indexed by Service, with running totals for the metrics. */
export class RulesCache {
  private readonly ports = new Map<string, PortOutput>();
  private readonly byService = new Map<string, Set<string>>();
  filterTopRules = 0;
  natTopRules = 0;
  natChainRules = 0;
  noLocalInternal = 0;
  noLocalExternal = 0;

  get size(): number {
    return this.ports.size;
  }
  get(key: string): PortOutput | undefined {
    return this.ports.get(key);
  }
  has(key: string): boolean {
    return this.ports.has(key);
  }
  keys(): IterableIterator<string> {
    return this.ports.keys();
  }
  portsOf(service: string): ReadonlySet<string> {
    return this.byService.get(service) ?? new Set();
  }
  set(key: string, out: PortOutput): void {
    this.delete(key);
    this.ports.set(key, out);
    let keys = this.byService.get(out.service);
    if (!keys) this.byService.set(out.service, (keys = new Set()));
    keys.add(key);
    this.account(out, 1);
  }
  delete(key: string): void {
    const old = this.ports.get(key);
    if (!old) return;
    this.ports.delete(key);
    const keys = this.byService.get(old.service);
    keys?.delete(key);
    if (keys?.size === 0) this.byService.delete(old.service);
    this.account(old, -1);
  }
  private account(out: PortOutput, sign: 1 | -1): void {
    for (const [k, lines] of out.top) {
      if (k.startsWith("nat/")) this.natTopRules += sign * lines.length;
      else this.filterTopRules += sign * lines.length;
    }
    this.natChainRules += sign * out.natRules;
    this.noLocalInternal += sign * out.noLocalInternal;
    this.noLocalExternal += sign * out.noLocalExternal;
  }
}

export interface RulesInput {
  services: ServiceMap;
  endpoints: EndpointsMap;
  nodeLabels: Readonly<Record<string, string>>;
  options: RulesOptions;
  /** Regenerate and rewrite every chain (else only the chains of changedServices, see the file comment). */
  full: boolean;
  /** "ns/name" of Services whose Service or EndpointSlices changed since the last successful sync. */
  changedServices: ReadonlySet<string>;
  /** Full syncs: the nat chains that exist (iptables-save); ours that are no longer used are deleted. */
  existingNatChains: ReadonlySet<string>;
  /** Partial syncs: stale chains an earlier sync left for later (`RulesResult.staleNatChains`). */
  staleNatChains?: Iterable<string>;
  /** Jump rules found missing from the built-in chains: inserted at the top (full syncs only). */
  missingJumps?: readonly JumpRule[];
  /** Declare the KUBE-PROXY-CANARY chains in mangle, nat and filter (full syncs). */
  canary?: boolean;
  /** Per service-port outputs: read for unchanged ports, refreshed for regenerated ones. */
  cache: RulesCache;
  /**
   * The top-level chains' rules as the last successful sync wrote them (RulesResult.topChains). When given,
   * a partial sync leaves out those that did not change; without it every top-level chain is rewritten, as
   * upstream does.
   */
  previousTopChains?: ReadonlyMap<string, string>;
  /** In large cluster mode, leave stale chains for a later sync (upstream: cleanup at most once per syncPeriod). */
  deferStaleCleanup?: boolean;
}

export interface RulesResult {
  text: string;
  /** Full syncs: every nat chain of ours in use after this sync (partial syncs do not compute it). */
  activeNatChains: Set<string> | undefined;
  deletedChains: string[];
  /** Stale chains left for a later sync (large cluster mode with deferStaleCleanup): pass back as staleNatChains. */
  staleNatChains: string[];
  /** Rules of each top-level chain ("table/CHAIN" → text), to pass back as previousTopChains. */
  topChains: Map<string, string>;
  /** Rules in filter (all of them: sync_proxy_rules_iptables_total{table=filter}). */
  filterRules: number;
  /** Lines written in nat this sync (upstream's sync_proxy_rules_iptables_last{table=nat}). */
  natRulesWritten: number;
  /** nat rules kube-proxy owns after this sync (sync_proxy_rules_iptables_total{table=nat}). */
  natRulesTotal: number;
  noLocalEndpointsInternal: number;
  noLocalEndpointsExternal: number;
  totalEndpoints: number;
  largeClusterMode: boolean;
  /** Service ports regenerated this sync. */
  regeneratedPorts: number;
}

const probabilityCache: string[] = ["<bad value>"];

/** upstream computeProbability: fmt.Sprintf("%0.10f", 1.0/float64(n)). */
export function computeProbability(n: number): string {
  return (1 / n).toFixed(10);
}

function probability(n: number): string {
  for (let i = probabilityCache.length; i <= n; i++) probabilityCache.push(computeProbability(i));
  return probabilityCache[n] ?? computeProbability(n);
}

export interface Categorized {
  cluster: readonly EndpointInfo[];
  local: readonly EndpointInfo[];
  allReachable: readonly EndpointInfo[];
  hasAny: boolean;
}

/** upstream CategorizeEndpoints: ready endpoints first, serving-terminating ones only when no ready one exists. */
export function categorizeEndpoints(endpoints: readonly EndpointInfo[], svc: ServicePortInfo, nodeLabels: Readonly<Record<string, string>>): Categorized {
  let cluster: readonly EndpointInfo[] = [];
  let local: readonly EndpointInfo[] = [];
  let hasAny = false;
  let topologyZone: string | undefined;
  if (usesClusterEndpoints(svc)) {
    const zone = nodeLabels[ZONE_LABEL] ?? "";
    topologyZone = zoneMode(endpoints, zone) ? zone : undefined;
    cluster = endpoints.filter((ep) => ep.ready && (topologyZone === undefined || (ep.zoneHints?.includes(topologyZone) ?? false)));
    if (cluster.length === 0) cluster = endpoints.filter((ep) => ep.serving && ep.terminating);
    if (cluster.length > 0) hasAny = true;
  }
  if (!usesLocalEndpoints(svc)) return { cluster, local, allReachable: cluster, hasAny };
  let localReady = false;
  let localServingTerminating = false;
  for (const ep of endpoints) {
    if (ep.ready) {
      hasAny = true;
      if (ep.isLocal) localReady = true;
    } else if (ep.serving && ep.terminating) {
      hasAny = true;
      if (ep.isLocal) localServingTerminating = true;
    }
  }
  let useTerminating = false;
  if (localReady) local = endpoints.filter((ep) => ep.isLocal && ep.ready);
  else if (localServingTerminating) {
    useTerminating = true;
    local = endpoints.filter((ep) => ep.isLocal && ep.serving && ep.terminating);
  }
  if (!usesClusterEndpoints(svc)) return { cluster, local, allReachable: local, hasAny };
  if (topologyZone === undefined && !useTerminating) return { cluster, local, allReachable: cluster, hasAny };
  const merged = new Map<string, EndpointInfo>();
  for (const ep of cluster) merged.set(ep.endpoint, ep);
  for (const ep of local) merged.set(ep.endpoint, ep);
  const allReachable = [...merged.values()].sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0));
  return { cluster, local, allReachable, hasAny };
}

/** Where a service port's traffic goes (upstream syncProxyRules, the same in both modes). */
export interface PolicyRouting {
  usesClusterPolicyChain: boolean;
  usesLocalPolicyChain: boolean;
  /** The policy chain ClusterIP traffic goes to, and whether it has endpoints (else DROP/REJECT). */
  internalTrafficChain: string;
  hasInternalEndpoints: boolean;
  /** The policy chain the external chain ends in, and whether it has endpoints. */
  externalPolicyChain: string;
  hasExternalEndpoints: boolean;
  /** The external chain is needed (even without external endpoints: it short-circuits local traffic). */
  usesExternalTrafficChain: boolean;
}

/** Chooses between the "Cluster" and "Local" policy chains for internal and external traffic. */
export function policyRouting(svc: ServicePortInfo, c: Categorized, clusterPolicyChain: string, localPolicyChain: string): PolicyRouting {
  const localOnly = c.local.length === 0;
  return {
    usesClusterPolicyChain: c.cluster.length > 0 && usesClusterEndpoints(svc),
    usesLocalPolicyChain: c.local.length > 0 && usesLocalEndpoints(svc),
    internalTrafficChain: svc.internalPolicyLocal ? localPolicyChain : clusterPolicyChain,
    hasInternalEndpoints: c.hasAny && !(svc.internalPolicyLocal && localOnly),
    externalPolicyChain: svc.externalPolicyLocal ? localPolicyChain : clusterPolicyChain,
    hasExternalEndpoints: c.hasAny && !(svc.externalPolicyLocal && localOnly),
    usesExternalTrafficChain: c.hasAny && externallyAccessible(svc),
  };
}

/** PreferSameZone applies when every ready endpoint carries zone hints and one of them names this node's zone. */
function zoneMode(endpoints: readonly EndpointInfo[], zone: string): boolean {
  let all = true;
  let forZone = false;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    if (!ep.zoneHints) all = false;
    else if (ep.zoneHints.includes(zone)) forZone = true;
  }
  return all && forZone && zone !== "";
}

/** The top-level chains, keyed "table/CHAIN", in upstream's declaration order. */
function topChainKeys(o: RulesOptions): string[] {
  const keys = [KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL].map((c) => `filter/${c}`);
  if (o.localhostNodePorts) keys.push(`filter/${KUBE_FIREWALL}`);
  keys.push(...[KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ].map((c) => `nat/${c}`));
  return keys;
}

/** Rules of the top-level chains that depend on the options only: [before the Services' rules, after them]. */
function staticTopRules(o: RulesOptions): Map<string, [string[], string[]]> {
  const mark = o.masqueradeMark;
  const rules = new Map<string, [string[], string[]]>();
  rules.set(`nat/${KUBE_POSTROUTING}`, [
    [
      `-A ${KUBE_POSTROUTING} -m mark ! --mark ${mark}/${mark} -j RETURN`,
      `-A ${KUBE_POSTROUTING} -j MARK --xor-mark ${mark}`,
      `-A ${KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE${o.randomFully ? " --random-fully" : ""}`,
    ],
    [],
  ]);
  rules.set(`nat/${KUBE_MARK_MASQ}`, [[`-A ${KUBE_MARK_MASQ} -j MARK --or-mark ${mark}`], []]);
  if (o.localhostNodePorts) {
    rules.set(`filter/${KUBE_FIREWALL}`, [
      [
        `-A ${KUBE_FIREWALL} -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
      ],
      [],
    ]);
  }
  // The tail-call to the nodePorts chain: this must be the last rule of KUBE-SERVICES.
  const npComment = `-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"`;
  const tail: string[] = [];
  if (o.nodePortIPs === "all") {
    tail.push(`-A ${KUBE_SERVICES} ${npComment} -m addrtype --dst-type LOCAL${o.localhostNodePorts ? "" : " ! -d 127.0.0.0/8"} -j ${KUBE_NODEPORTS}`);
  } else {
    for (const ip of o.nodePortIPs) {
      if (ip.startsWith("127.") && !o.localhostNodePorts) continue;
      tail.push(`-A ${KUBE_SERVICES} ${npComment} -d ${ip} -j ${KUBE_NODEPORTS}`);
    }
  }
  rules.set(`nat/${KUBE_SERVICES}`, [[], tail]);
  const forward: string[] = [];
  if (!o.conntrackTCPLiberal) {
    forward.push(`-A ${KUBE_FORWARD} -m conntrack --ctstate INVALID${o.nfacct.ctStateInvalid ? ` -m nfacct --nfacct-name ${CT_STATE_INVALID_NFACCT}` : ""} -j DROP`);
  }
  forward.push(`-A ${KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules" -m mark --mark ${mark}/${mark} -j ACCEPT`);
  forward.push(`-A ${KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
  rules.set(`filter/${KUBE_FORWARD}`, [[], forward]);
  return rules;
}

interface PortContext {
  o: RulesOptions;
  nodeLabels: Readonly<Record<string, string>>;
  largeClusterMode: boolean;
}

/** Everything one service port contributes: top-level rules, its own chains and their rules. */
function generatePort(svc: ServicePortInfo, all: readonly EndpointInfo[], ctx: PortContext, chainDecls: string[], chainRules: string[]): PortOutput {
  const { o, largeClusterMode } = ctx;
  const top = new Map<string, string[]>();
  const add = (key: string, line: string): void => {
    const l = top.get(key);
    if (l) l.push(line);
    else top.set(key, [line]);
  };
  const svcComment = largeClusterMode ? "" : ` -m comment --comment ${svc.name}`;
  const epComment = (ep: EndpointInfo): string => (largeClusterMode ? "" : ` -m comment --comment "${svc.name} -> ${ep.endpoint}"`);
  const ifLocal = o.localCidr ? `-s ${o.localCidr}` : undefined;
  const ifNotLocal = o.localCidr ? `! -s ${o.localCidr}` : undefined;
  const protocol = svc.protocol.toLowerCase();
  const proto = `-m ${protocol} -p ${protocol}`;
  const name = svc.name;
  const { cluster, local, allReachable, hasAny } = categorizeEndpoints(all, svc, ctx.nodeLabels);
  let noLocalInternal = 0;
  let noLocalExternal = 0;

  const clusterPolicyChain = svc.svcChain;
  const localPolicyChain = svc.svlChain;
  const { usesClusterPolicyChain, usesLocalPolicyChain, internalTrafficChain, hasInternalEndpoints, externalPolicyChain, hasExternalEndpoints, usesExternalTrafficChain } =
    policyRouting(svc, { cluster, local, allReachable, hasAny }, clusterPolicyChain, localPolicyChain);
  const externalTrafficChain = svc.extChain;
  const usesFWChain = hasAny && svc.loadBalancerVIPs.length > 0 && svc.loadBalancerSourceRanges.length > 0;
  const loadBalancerTrafficChain = usesFWChain ? svc.fwChain : externalTrafficChain;

  let internalFilterTarget = "";
  let internalFilterComment = "";
  let externalFilterTarget = "";
  let externalFilterComment = "";
  if (!hasAny) {
    internalFilterTarget = externalFilterTarget = "REJECT";
    internalFilterComment = externalFilterComment = `"${name} has no endpoints"`;
  } else {
    if (!hasInternalEndpoints) {
      internalFilterTarget = "DROP";
      internalFilterComment = `"${name} has no local endpoints"`;
      noLocalInternal++;
    }
    if (!hasExternalEndpoints) {
      externalFilterTarget = "DROP";
      externalFilterComment = `"${name} has no local endpoints"`;
      noLocalExternal++;
    }
  }

  const NS = `nat/${KUBE_SERVICES}`;
  const NNP = `nat/${KUBE_NODEPORTS}`;
  const FS = `filter/${KUBE_SERVICES}`;
  const FES = `filter/${KUBE_EXTERNAL_SERVICES}`;
  const FNP = `filter/${KUBE_NODEPORTS}`;
  const FFW = `filter/${KUBE_PROXY_FIREWALL}`;

  // Capture the clusterIP.
  const clusterDst = `${proto} -d ${svc.clusterIP} --dport ${svc.port}`;
  if (hasInternalEndpoints) add(NS, `-A ${KUBE_SERVICES} -m comment --comment "${name} cluster IP" ${clusterDst} -j ${internalTrafficChain}`);
  else add(FS, `-A ${KUBE_SERVICES} -m comment --comment ${internalFilterComment} ${clusterDst} -j ${internalFilterTarget}`);
  // Capture externalIPs.
  for (const ip of svc.externalIPs) {
    if (hasAny) add(NS, `-A ${KUBE_SERVICES} -m comment --comment "${name} external IP" ${proto} -d ${ip} --dport ${svc.port} -j ${externalTrafficChain}`);
    if (!hasExternalEndpoints) add(FES, `-A ${KUBE_EXTERNAL_SERVICES} -m comment --comment ${externalFilterComment} ${proto} -d ${ip} --dport ${svc.port} -j ${externalFilterTarget}`);
  }
  // Capture load-balancer ingress.
  for (const ip of svc.loadBalancerVIPs) {
    if (hasAny) add(NS, `-A ${KUBE_SERVICES} -m comment --comment "${name} loadbalancer IP" ${proto} -d ${ip} --dport ${svc.port} -j ${loadBalancerTrafficChain}`);
    if (usesFWChain) add(FFW, `-A ${KUBE_PROXY_FIREWALL} -m comment --comment "${name} traffic not accepted by ${svc.fwChain}" ${proto} -d ${ip} --dport ${svc.port} -j DROP`);
  }
  if (!hasExternalEndpoints) {
    for (const ip of svc.loadBalancerVIPs) add(FES, `-A ${KUBE_EXTERNAL_SERVICES} -m comment --comment ${externalFilterComment} ${proto} -d ${ip} --dport ${svc.port} -j ${externalFilterTarget}`);
  }
  // Capture nodeports.
  if (svc.nodePort !== 0) {
    if (hasAny) {
      if (o.localhostNodePorts && o.nfacct.localhostNodePorts) {
        add(NNP, `-A ${KUBE_NODEPORTS} -m comment --comment ${name} ${proto} -d 127.0.0.0/8 --dport ${svc.nodePort} -m nfacct --nfacct-name ${LOCALHOST_NODEPORT_NFACCT} -j ${externalTrafficChain}`);
      }
      add(NNP, `-A ${KUBE_NODEPORTS} -m comment --comment ${name} ${proto} --dport ${svc.nodePort} -j ${externalTrafficChain}`);
    }
    if (!hasExternalEndpoints) {
      add(FES, `-A ${KUBE_EXTERNAL_SERVICES} -m comment --comment ${externalFilterComment} -m addrtype --dst-type LOCAL ${proto} --dport ${svc.nodePort} -j ${externalFilterTarget}`);
    }
  }
  // Capture healthCheckNodePorts.
  if (svc.healthCheckNodePort !== 0) add(FNP, `-A ${KUBE_NODEPORTS} -m comment --comment "${name} health check node port" -m tcp -p tcp --dport ${svc.healthCheckNodePort} -j ACCEPT`);

  // The port's own chains.
  const chains: string[] = [];
  const rulesBefore = chainRules.length;
  const declare = (chain: string): void => {
    chainDecls.push(`:${chain} - [0:0]`);
    chains.push(chain);
  };
  if (hasInternalEndpoints) {
    const args = `-m comment --comment "${name} cluster IP" ${clusterDst}`;
    if (o.masqueradeAll) chainRules.push(`-A ${internalTrafficChain} ${args} -j ${KUBE_MARK_MASQ}`);
    else if (ifNotLocal) chainRules.push(`-A ${internalTrafficChain} ${args} ${ifNotLocal} -j ${KUBE_MARK_MASQ}`);
  }
  if (usesExternalTrafficChain) {
    declare(externalTrafficChain);
    if (!svc.externalPolicyLocal) {
      chainRules.push(`-A ${externalTrafficChain} -m comment --comment "masquerade traffic for ${name} external destinations" -j ${KUBE_MARK_MASQ}`);
    } else {
      if (ifLocal) chainRules.push(`-A ${externalTrafficChain} -m comment --comment "pod traffic for ${name} external destinations" ${ifLocal} -j ${clusterPolicyChain}`);
      chainRules.push(`-A ${externalTrafficChain} -m comment --comment "masquerade LOCAL traffic for ${name} external destinations" -m addrtype --src-type LOCAL -j ${KUBE_MARK_MASQ}`);
      chainRules.push(`-A ${externalTrafficChain} -m comment --comment "route LOCAL traffic for ${name} external destinations" -m addrtype --src-type LOCAL -j ${clusterPolicyChain}`);
    }
    if (hasExternalEndpoints) chainRules.push(`-A ${externalTrafficChain} -j ${externalPolicyChain}`);
  }
  if (usesFWChain) {
    const fw = svc.fwChain;
    declare(fw);
    const args = `-A ${fw} -m comment --comment "${name} loadbalancer IP"`;
    let allowFromNode = false;
    for (const cidr of svc.loadBalancerSourceRanges) {
      chainRules.push(`${args} -s ${cidr} -j ${externalTrafficChain}`);
      const c = parseCidr(cidr);
      if (o.nodeIP && c && cidrContains(c, o.nodeIP)) allowFromNode = true;
    }
    if (allowFromNode) for (const ip of svc.loadBalancerVIPs) chainRules.push(`${args} -s ${ip} -j ${externalTrafficChain}`);
    chainRules.push(`-A ${fw} -m comment --comment "other traffic to ${name} will be dropped by ${KUBE_PROXY_FIREWALL}"`);
  }
  if (usesClusterPolicyChain) {
    declare(clusterPolicyChain);
    writeServiceToEndpointRules(chainRules, svc, clusterPolicyChain, cluster, epComment);
  }
  if (usesLocalPolicyChain) {
    declare(localPolicyChain);
    writeServiceToEndpointRules(chainRules, svc, localPolicyChain, local, epComment);
  }
  for (const ep of allReachable) {
    declare(ep.chain);
    const head = `-A ${ep.chain}${svcComment}`;
    chainRules.push(`${head} -s ${ep.ip} -j ${KUBE_MARK_MASQ}`);
    const affinity = svc.stickyMaxAgeSeconds > 0 ? ` -m recent --name ${ep.chain} --set` : "";
    chainRules.push(`${head}${affinity} ${proto} -j DNAT --to-destination ${ep.endpoint}`);
  }
  return { service: svc.service, top, chains, natRules: chainRules.length - rulesBefore, noLocalInternal, noLocalExternal };
}

function sameLines(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return (a?.length ?? 0) === (b?.length ?? 0);
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Generates the restore input for one sync. Deterministic for a given input (and cache). */
export function generateRules(input: RulesInput): RulesResult {
  const o = input.options;
  const cache = input.cache;
  const prev = input.previousTopChains;
  const staticSig = staticSignature(o);
  // Cached outputs are valid only under the same options (the proxier changes them with full syncs).
  const regenerateAll = input.full || (prev !== undefined && prev.get(STATIC_KEY) !== staticSig);

  let totalEndpoints = 0;
  const toGenerate: ServicePortInfo[] = [];
  const seen = regenerateAll ? new Set<string>() : undefined;
  for (const ports of input.services.values()) {
    for (const svc of ports) {
      totalEndpoints += input.endpoints.get(svc.key)?.length ?? 0;
      if (regenerateAll) {
        seen?.add(svc.key);
        toGenerate.push(svc);
      } else if (input.changedServices.has(svc.service) || !cache.has(svc.key)) toGenerate.push(svc);
    }
  }
  const largeClusterMode = totalEndpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD;
  const ctx: PortContext = { o, nodeLabels: input.nodeLabels, largeClusterMode };

  const chainDecls: string[] = [];
  const chainRules: string[] = [];
  const dirty = new Set<string>();
  const staleCandidates = new Set<string>(regenerateAll ? [] : (input.staleNatChains ?? []));
  const regenerated = new Set<string>();
  for (const svc of toGenerate) {
    const old = cache.get(svc.key);
    const out = generatePort(svc, input.endpoints.get(svc.key) ?? [], ctx, chainDecls, chainRules);
    regenerated.add(svc.key);
    for (const key of new Set([...out.top.keys(), ...(old?.top.keys() ?? [])])) if (!sameLines(out.top.get(key), old?.top.get(key))) dirty.add(key);
    if (old) {
      const now = new Set(out.chains);
      for (const c of old.chains) if (!now.has(c)) staleCandidates.add(c);
    }
    cache.set(svc.key, out);
  }
  // Ports gone since the last sync: their rules and chains go.
  const gone: string[] = [];
  if (seen) {
    for (const key of cache.keys()) if (!seen.has(key)) gone.push(key);
  } else {
    for (const name of input.changedServices) for (const key of cache.portsOf(name)) if (!regenerated.has(key)) gone.push(key);
  }
  for (const key of gone) {
    const old = cache.get(key);
    if (!old) continue;
    for (const k of old.top.keys()) dirty.add(k);
    for (const c of old.chains) staleCandidates.add(c);
    cache.delete(key);
  }

  // Stale chains: on a full sync, ours that exist but are unused; on a partial one, those the changed ports
  // dropped (chain names are unique to their port). Large cluster mode may defer the deletion (upstream: once
  // per syncPeriod; stale chains are unreferenced, so harmless meanwhile).
  let activeNatChains: Set<string> | undefined;
  let stale: string[];
  if (regenerateAll) {
    activeNatChains = new Set<string>();
    for (const ports of input.services.values()) for (const svc of ports) for (const c of cache.get(svc.key)?.chains ?? []) activeNatChains.add(c);
    const active = activeNatChains;
    stale = [...input.existingNatChains].filter((c) => isServiceChainName(c) && !active.has(c));
  } else {
    stale = [...staleCandidates];
  }
  const deletedChains: string[] = [];
  const staleKept: string[] = [];
  for (const chain of stale) {
    if (largeClusterMode && input.deferStaleCleanup && !regenerateAll) staleKept.push(chain);
    else {
      chainDecls.push(`:${chain} - [0:0]`);
      deletedChains.push(chain);
    }
  }

  // Top-level chains: Services' rules in Service order from the cache, plus the option-only rules. A chain
  // no regenerated port changed is known to be unchanged; on a partial sync with previousTopChains it is left
  // out (iptables-nft pays per rule written; KUBE-SERVICES holds one per Service port), as is one whose text
  // comes out identical.
  const keys = topChainKeys(o);
  const statics = staticTopRules(o);
  const writeAll = regenerateAll || prev === undefined;
  const build = keys.filter((k) => writeAll || dirty.has(k) || !prev.has(k));
  const built = new Map<string, string[]>(build.map((k) => [k, [...(statics.get(k)?.[0] ?? [])]]));
  if (build.length > 0) {
    for (const ports of input.services.values()) {
      for (const svc of ports) {
        const top = cache.get(svc.key)?.top;
        if (!top) continue;
        for (const [k, lines] of top) built.get(k)?.push(...lines);
      }
    }
    for (const k of build) built.get(k)?.push(...(statics.get(k)?.[1] ?? []));
  }
  const topChains = new Map<string, string>([[STATIC_KEY, staticSig]]);
  const filterChains: string[] = [];
  const filterRules: string[] = [];
  const natTopChains: string[] = [];
  const natTopRules: string[] = [];
  let natTopWritten = 0;
  for (const key of keys) {
    const lines = built.get(key);
    const prevText = prev?.get(key);
    if (!lines) {
      topChains.set(key, prevText ?? "");
      continue;
    }
    const text = lines.join("\n");
    topChains.set(key, text);
    if (!writeAll && prevText === text) continue;
    const nat = key.startsWith("nat/");
    const chain = key.slice(key.indexOf("/") + 1);
    (nat ? natTopChains : filterChains).push(`:${chain} - [0:0]`);
    (nat ? natTopRules : filterRules).push(...lines);
    if (nat) natTopWritten += lines.length;
  }
  let staticFilter = 0;
  let staticNat = 0;
  for (const [k, [before, after]] of statics) {
    if (k.startsWith("nat/")) staticNat += before.length + after.length;
    else staticFilter += before.length + after.length;
  }

  // Jump rules (full syncs): after our chains are declared, prepended to the built-in chains as upstream's
  // EnsureRule(Prepend) does, in the same order.
  if (input.canary) {
    filterChains.push(`:${KUBE_PROXY_CANARY} - [0:0]`);
    natTopChains.push(`:${KUBE_PROXY_CANARY} - [0:0]`);
  }
  const filterJumps: string[] = [];
  const natJumps: string[] = [];
  for (const j of input.missingJumps ?? []) (j.table === "filter" ? filterJumps : natJumps).push(`-I ${j.chain} 1 ${jumpRuleArgs(j)}`);

  // Tables with nothing to write are left out; a sync with nothing to write at all has empty text.
  const parts: string[] = [];
  if (input.canary) parts.push(`*mangle\n:${KUBE_PROXY_CANARY} - [0:0]\nCOMMIT\n`);
  if (filterChains.length + filterRules.length + filterJumps.length > 0) {
    parts.push("*filter\n", joinLines(filterChains), joinLines(filterRules), joinLines(filterJumps), "COMMIT\n");
  }
  if (natTopChains.length + chainDecls.length + natTopRules.length + chainRules.length + deletedChains.length + natJumps.length > 0) {
    parts.push(
      "*nat\n",
      joinLines(natTopChains),
      joinLines(chainDecls),
      joinLines(natTopRules),
      joinLines(chainRules),
      joinLines(deletedChains.map((c) => `-X ${c}`)),
      joinLines(natJumps),
      "COMMIT\n",
    );
  }
  return {
    text: parts.join(""),
    activeNatChains,
    deletedChains,
    staleNatChains: staleKept,
    topChains,
    filterRules: staticFilter + cache.filterTopRules,
    natRulesWritten: natTopWritten + chainRules.length,
    natRulesTotal: staticNat + cache.natTopRules + cache.natChainRules,
    noLocalEndpointsInternal: cache.noLocalInternal,
    noLocalEndpointsExternal: cache.noLocalExternal,
    totalEndpoints,
    largeClusterMode,
    regeneratedPorts: toGenerate.length,
  };
}

const STATIC_KEY = "#options";

/** What the option-dependent top-level rules depend on: when it changes, every port is regenerated. */
function staticSignature(o: RulesOptions): string {
  return JSON.stringify([o.masqueradeMark, o.randomFully, o.localhostNodePorts, o.nodePortIPs, o.conntrackTCPLiberal, o.nfacct, o.localCidr, o.masqueradeAll, o.nodeIP]);
}

function joinLines(l: readonly string[]): string {
  return l.length === 0 ? "" : l.join("\n") + "\n";
}

function writeServiceToEndpointRules(
  out: string[],
  svc: ServicePortInfo,
  chain: string,
  endpoints: readonly EndpointInfo[],
  epComment: (ep: EndpointInfo) => string,
): void {
  if (svc.stickyMaxAgeSeconds > 0) {
    for (const ep of endpoints) {
      out.push(`-A ${chain}${epComment(ep)} -m recent --name ${ep.chain} --rcheck --seconds ${svc.stickyMaxAgeSeconds} --reap -j ${ep.chain}`);
    }
  }
  const n = endpoints.length;
  endpoints.forEach((ep, i) => {
    const stat = i < n - 1 ? ` -m statistic --mode random --probability ${probability(n - i)}` : "";
    out.push(`-A ${chain}${epComment(ep)}${stat} -j ${ep.chain}`);
  });
}
