/**
 * The `deckhand-bridge` network configuration: the reference `bridge` plugin's options that matter for Kubernetes
 * and an `ipam` section with host-local's semantics (ranges canonicalised as host-local does: gateway defaults to
 * the first address, the range to [network+1, last-1] for IPv4, /31 and /32 refused). Pure: parse and validate.
 */
import { CniCode, CniError, isSupportedVersion, SUPPORTED_VERSIONS, validIfname, type Dns } from "./spec.ts";
import { addIp, bits, contains, formatCidr, formatIp, ipEqual, lastOf, networkOf, overlaps, parseCidr, parseIp, type IpAddr, type IpNet } from "./ip.ts";

export const DEFAULT_BRIDGE = "cni0";
export const DEFAULT_DATA_DIR = "/var/lib/cni/networks";
export const DEFAULT_DAEMON_SOCKET = "/run/deckhand/cni.sock";

/** One host-local range, canonicalised: every field set. */
export interface Range {
  subnet: IpNet;
  rangeStart: IpAddr;
  rangeEnd: IpAddr;
  gateway: IpAddr;
}

/** A range set: one address is allocated per set (e.g. one IPv4 set and one IPv6 set for dual stack). */
export type RangeSet = Range[];

export interface IpamRoute {
  dst: IpNet;
  gw?: IpAddr;
}

export interface IpamConfig {
  type: string;
  ranges: RangeSet[];
  routes: IpamRoute[];
  dataDir: string;
  resolvConf?: string;
}

export interface Attachment {
  containerId: string;
  ifname: string;
}

export interface BridgeConfig {
  cniVersion: string;
  name: string;
  type: string;
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  forceAddress: boolean;
  ipMasq: boolean;
  hairpinMode: boolean;
  promiscMode: boolean;
  mtu?: number;
  /** Unix socket of the deckhand CNI daemon (only the launcher reads it; here for validation). */
  daemonSocket: string;
  /** Absent when the config asks for no IP management (`"ipam": {}`: layer 2 only). */
  ipam?: IpamConfig;
  dns: Dns;
  /** Raw prevResult (CHECK, DEL). */
  prevResult?: unknown;
  /** Addresses requested through runtimeConfig.ips / args.cni.ips. */
  requestedIps: string[];
  /** GC: the attachments the runtime still knows (`cni.dev/valid-attachments`). */
  validAttachments?: Attachment[];
}

const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Reference `bridge` options we do not implement: accepted only when absent or falsy. */
const UNSUPPORTED_OPTIONS = ["vlan", "vlanTrunk", "preserveDefaultVlan", "macspoofchk", "enabledad", "disableContainerInterface", "portIsolation"] as const;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function invalid(msg: string): CniError {
  return new CniError(CniCode.InvalidConfig, msg);
}

function optString(obj: Json, key: string, where: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw invalid(`${where}${key} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function optBool(obj: Json, key: string): boolean {
  const v = obj[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw invalid(`${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function optStringArray(obj: Json, key: string, where: string): string[] | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw invalid(`${where}${key} must be a list of strings`);
  return v as string[];
}

/** Decodes stdin (code 6 on bad JSON) into an object. */
export function decodeJson(stdin: string | Buffer): Json {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin.toString());
  } catch (err) {
    throw new CniError(CniCode.DecodeFailure, `network configuration on stdin is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!isObject(parsed)) throw new CniError(CniCode.DecodeFailure, "network configuration on stdin is not a JSON object");
  return parsed;
}

/** The cniVersion a config asks for, checked against ours (code 1 when we do not speak it). */
export function configVersion(raw: Json): string {
  const v = raw["cniVersion"];
  if (typeof v !== "string" || v === "") throw invalid("cniVersion is required (a string such as \"1.0.0\")");
  if (!isSupportedVersion(v)) {
    throw new CniError(CniCode.IncompatibleVersion, `incompatible CNI version: the config asks for ${v}, deckhand-bridge supports ${SUPPORTED_VERSIONS.join(", ")}`);
  }
  return v;
}

export function parseBridgeConfig(raw: Json): BridgeConfig {
  const cniVersion = configVersion(raw);
  const name = optString(raw, "name", "");
  if (!name) throw invalid("name is required");
  if (!NETWORK_NAME.test(name)) throw invalid(`name ${JSON.stringify(name)} must start with a letter or digit and hold only letters, digits, '_', '.' and '-'`);
  const type = optString(raw, "type", "") ?? "deckhand-bridge";
  for (const key of UNSUPPORTED_OPTIONS) {
    const v = raw[key];
    if (v !== undefined && v !== null && v !== false && v !== 0 && !(Array.isArray(v) && v.length === 0)) {
      throw new CniError(CniCode.UnsupportedField, `unsupported field ${key}: deckhand-bridge does not implement it`);
    }
  }
  const bridge = optString(raw, "bridge", "") ?? DEFAULT_BRIDGE;
  const bad = validIfname(bridge);
  if (bad) throw invalid(`bridge ${JSON.stringify(bridge)} ${bad}`);
  let mtu: number | undefined;
  if (raw["mtu"] !== undefined && raw["mtu"] !== null && raw["mtu"] !== 0) {
    const m = raw["mtu"];
    if (typeof m !== "number" || !Number.isInteger(m) || m < 68 || m > 65535) throw invalid(`mtu must be an integer from 68 to 65535, got ${JSON.stringify(m)}`);
    mtu = m;
  }
  const isDefaultGateway = optBool(raw, "isDefaultGateway");
  const ipamRaw = raw["ipam"];
  if (ipamRaw === undefined || ipamRaw === null) throw invalid("ipam is required (use {} for a layer-2 only network)");
  if (!isObject(ipamRaw)) throw invalid("ipam must be an object");
  const ipam = Object.keys(ipamRaw).length === 0 ? undefined : parseIpam(ipamRaw);
  const dns = parseDns(raw["dns"], "dns.");
  const requestedIps: string[] = [];
  const runtimeConfig = raw["runtimeConfig"];
  if (isObject(runtimeConfig)) requestedIps.push(...(optStringArray(runtimeConfig, "ips", "runtimeConfig.") ?? []));
  const args = raw["args"];
  if (isObject(args) && isObject(args["cni"])) requestedIps.push(...(optStringArray(args["cni"], "ips", "args.cni.") ?? []));
  const config: BridgeConfig = {
    cniVersion,
    name,
    type,
    bridge,
    isGateway: optBool(raw, "isGateway") || isDefaultGateway,
    isDefaultGateway,
    forceAddress: optBool(raw, "forceAddress"),
    ipMasq: optBool(raw, "ipMasq"),
    hairpinMode: optBool(raw, "hairpinMode"),
    promiscMode: optBool(raw, "promiscMode"),
    daemonSocket: optString(raw, "daemonSocket", "") ?? DEFAULT_DAEMON_SOCKET,
    ...(mtu !== undefined ? { mtu } : {}),
    ...(ipam ? { ipam } : {}),
    dns,
    requestedIps,
  };
  if (raw["prevResult"] !== undefined && raw["prevResult"] !== null) config.prevResult = raw["prevResult"];
  const valid = raw["cni.dev/valid-attachments"] ?? raw["cni.dev/attachments"];
  if (valid !== undefined && valid !== null) config.validAttachments = parseAttachments(valid);
  return config;
}

function parseAttachments(v: unknown): Attachment[] {
  if (!Array.isArray(v)) throw invalid("cni.dev/valid-attachments must be a list");
  return v.map((a, i) => {
    if (!isObject(a) || typeof a["containerID"] !== "string" || typeof a["ifname"] !== "string") {
      throw invalid(`cni.dev/valid-attachments[${i}] must be {"containerID": string, "ifname": string}`);
    }
    return { containerId: a["containerID"], ifname: a["ifname"] };
  });
}

export function parseDns(v: unknown, where: string): Dns {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw invalid(`${where.slice(0, -1)} must be an object`);
  const dns: Dns = {};
  const nameservers = optStringArray(v, "nameservers", where);
  if (nameservers) {
    for (const ns of nameservers) if (!parseIp(ns)) throw invalid(`${where}nameservers: ${JSON.stringify(ns)} is not an IP address`);
    dns.nameservers = nameservers;
  }
  const domain = optString(v, "domain", where);
  if (domain) dns.domain = domain;
  const search = optStringArray(v, "search", where);
  if (search) dns.search = search;
  const options = optStringArray(v, "options", where);
  if (options) dns.options = options;
  return dns;
}

export function parseIpam(raw: Json): IpamConfig {
  const type = optString(raw, "type", "ipam.") ?? "";
  if (type !== "host-local") {
    throw invalid(`ipam.type ${JSON.stringify(type)} is not supported: deckhand-bridge allocates addresses itself with host-local's semantics and on-disk layout, so use "host-local"`);
  }
  const rangeSets: RangeSet[] = [];
  const legacySubnet = optString(raw, "subnet", "ipam.");
  if (legacySubnet !== undefined) {
    rangeSets.push([parseRange(raw, "ipam.")]);
  }
  const ranges = raw["ranges"];
  if (ranges !== undefined && ranges !== null) {
    if (!Array.isArray(ranges)) throw invalid("ipam.ranges must be a list of range sets (lists of ranges)");
    ranges.forEach((set: unknown, i) => {
      if (!Array.isArray(set) || set.length === 0) throw invalid(`ipam.ranges[${i}] must be a non-empty list of ranges`);
      rangeSets.push(
        set.map((r: unknown, j) => {
          if (!isObject(r)) throw invalid(`ipam.ranges[${i}][${j}] must be an object`);
          return parseRange(r, `ipam.ranges[${i}][${j}].`);
        }),
      );
    });
  }
  if (rangeSets.length === 0) throw invalid("ipam needs ranges (or the older subnet field)");
  validateRangeSets(rangeSets);
  const routes: IpamRoute[] = [];
  const routesRaw = raw["routes"];
  if (routesRaw !== undefined && routesRaw !== null) {
    if (!Array.isArray(routesRaw)) throw invalid("ipam.routes must be a list");
    routesRaw.forEach((r: unknown, i) => {
      if (!isObject(r)) throw invalid(`ipam.routes[${i}] must be an object`);
      const dstText = optString(r, "dst", `ipam.routes[${i}].`);
      const dst = dstText === undefined ? undefined : parseCidr(dstText);
      if (!dst) throw invalid(`ipam.routes[${i}].dst ${JSON.stringify(dstText ?? null)} is not a CIDR`);
      const gwText = optString(r, "gw", `ipam.routes[${i}].`);
      const route: IpamRoute = { dst };
      if (gwText !== undefined && gwText !== "") {
        const gw = parseIp(gwText);
        if (!gw || gw.family !== dst.ip.family) throw invalid(`ipam.routes[${i}].gw ${JSON.stringify(gwText)} is not an IPv${dst.ip.family} address`);
        route.gw = gw;
      }
      routes.push(route);
    });
  }
  const resolvConf = optString(raw, "resolvConf", "ipam.");
  return {
    type,
    ranges: rangeSets,
    routes,
    dataDir: optString(raw, "dataDir", "ipam.") || DEFAULT_DATA_DIR,
    ...(resolvConf ? { resolvConf } : {}),
  };
}

/** host-local's Range.Canonicalize: defaults filled in, sanity checked. */
function parseRange(r: Json, where: string): Range {
  const subnetText = optString(r, "subnet", where);
  const subnet = subnetText === undefined ? undefined : parseCidr(subnetText);
  if (!subnet) throw invalid(`${where}subnet ${JSON.stringify(subnetText ?? null)} is not a CIDR such as 10.244.1.0/24`);
  const family = subnet.ip.family;
  if (subnet.prefix > bits(family) - 2) throw invalid(`${where}subnet: network ${formatCidr(subnet)} is too small to allocate from`);
  const network = networkOf(subnet);
  if (!ipEqual(network, subnet.ip)) {
    throw invalid(`${where}subnet ${formatCidr(subnet)} has host bits set: for a /${subnet.prefix} the network address is ${formatIp(network)}`);
  }
  const addr = (key: string): IpAddr | undefined => {
    const text = optString(r, key, where);
    if (text === undefined || text === "") return undefined;
    const ip = parseIp(text);
    if (!ip || ip.family !== family) throw invalid(`${where}${key} ${JSON.stringify(text)} is not an IPv${family} address`);
    if (!contains(subnet, ip)) throw invalid(`${where}${key} ${text} is not in network ${formatCidr(subnet)}`);
    return ip;
  };
  const gateway = addr("gateway") ?? addIp(network, 1n);
  const rangeStart = addr("rangeStart") ?? addIp(network, 1n);
  // The last usable address: the one before the IPv4 broadcast address; the last one for IPv6.
  const last = lastOf(subnet);
  const rangeEnd = addr("rangeEnd") ?? (family === 4 ? addIp(last, -1n) : last);
  if (rangeStart.value > rangeEnd.value) throw invalid(`${where}rangeStart ${formatIp(rangeStart)} is after rangeEnd ${formatIp(rangeEnd)}`);
  return { subnet: { ip: network, prefix: subnet.prefix }, rangeStart, rangeEnd, gateway };
}

function validateRangeSets(sets: readonly RangeSet[]): void {
  const all: { net: IpNet; where: string }[] = [];
  sets.forEach((set, i) => {
    const family = set[0]?.subnet.ip.family;
    set.forEach((r, j) => {
      if (r.subnet.ip.family !== family) throw invalid(`ipam.ranges[${i}] mixes IPv4 and IPv6 ranges; use one range set per family`);
      for (const other of all) {
        if (overlaps(other.net, r.subnet)) {
          throw invalid(`ipam.ranges[${i}][${j}] subnet ${formatCidr(r.subnet)} overlaps ${other.where} ${formatCidr(other.net)}`);
        }
      }
      all.push({ net: r.subnet, where: `ipam.ranges[${i}][${j}]` });
    });
  });
}

export function rangeContains(r: Range, ip: IpAddr): boolean {
  return contains(r.subnet, ip) && ip.value >= r.rangeStart.value && ip.value <= r.rangeEnd.value;
}

export function describeRangeSet(set: RangeSet): string {
  return set.map((r) => `${formatIp(r.rangeStart)}-${formatIp(r.rangeEnd)}`).join(",");
}
