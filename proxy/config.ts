/**
 * KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1): parsing, upstream's defaults for what deckhand
 * supports, and validation with errors that name the field. Upstream: pkg/proxy/apis/config/v1alpha1/defaults.go
 * and pkg/proxy/apis/config/validation/validation.go.
 */
import yaml from "js-yaml";
import { nsToMs, parseGoDuration as parseGoDurationNs } from "../src-shared/go-duration.ts";
import { isIP } from "node:net";
import { DeckhandError } from "../src-shared/errors.ts";
import { parseCidr } from "./ip.ts";

export const CONFIG_API_VERSION = "kubeproxy.config.k8s.io/v1alpha1";
export const CONFIG_KIND = "KubeProxyConfiguration";

export interface ConntrackConfig {
  /** Per CPU core; nf_conntrack_max = max(min, maxPerCore * cores). 0 leaves the sysctl alone. */
  maxPerCore: number;
  min: number;
  /** Milliseconds; 0 leaves the sysctl alone. */
  tcpEstablishedTimeoutMs: number;
  tcpCloseWaitTimeoutMs: number;
  tcpBeLiberal: boolean;
  udpTimeoutMs: number;
  udpStreamTimeoutMs: number;
}

export type DetectLocalMode = "ClusterCIDR" | "NodeCIDR";

/** The resolved configuration: every default applied, every duration in milliseconds. */
export interface ProxyConfig {
  bindAddress: string;
  /** Pod CIDRs of the cluster (comma-separated in the file); empty when unknown. */
  clusterCIDRs: string[];
  mode: "iptables";
  detectLocalMode: DetectLocalMode;
  hostnameOverride: string;
  kubeconfig: string;
  configSyncPeriodMs: number;
  healthzBindAddress: string;
  metricsBindAddress: string;
  /** CIDRs (or "primary") selecting the node addresses NodePorts answer on; empty means every local address. */
  nodePortAddresses: string[];
  iptables: {
    masqueradeAll: boolean;
    masqueradeBit: number;
    localhostNodePorts: boolean;
    syncPeriodMs: number;
    minSyncPeriodMs: number;
  };
  conntrack: ConntrackConfig;
  oomScoreAdj: number;
}

/** Fields of v1alpha1 that deckhand accepts and ignores (other proxy modes, logging, client tuning...). */
const IGNORED_TOP_LEVEL = new Set([
  "apiVersion",
  "kind",
  "bindAddressHardFail",
  "clientConnection",
  "detectLocal",
  "enableProfiling",
  "featureGates",
  "ipvs",
  "logging",
  "nftables",
  "portRange",
  "showHiddenMetricsForVersion",
  "udpIdleTimeout",
  "winkernel",
  "windowsRunAsService",
]);
const KNOWN_TOP_LEVEL = new Set([
  ...IGNORED_TOP_LEVEL,
  "bindAddress",
  "clusterCIDR",
  "configSyncPeriod",
  "conntrack",
  "detectLocalMode",
  "healthzBindAddress",
  "hostnameOverride",
  "iptables",
  "metricsBindAddress",
  "mode",
  "nodePortAddresses",
  "oomScoreAdj",
]);
const KNOWN_IPTABLES = new Set(["masqueradeAll", "masqueradeBit", "localhostNodePorts", "syncPeriod", "minSyncPeriod"]);
const KNOWN_CONNTRACK = new Set(["maxPerCore", "min", "tcpEstablishedTimeout", "tcpCloseWaitTimeout", "tcpBeLiberal", "udpTimeout", "udpStreamTimeout"]);

/** Go's time.ParseDuration ("1m30s", "250ms", "0s"), in milliseconds; undefined when malformed. */
export function parseGoDuration(text: string): number | undefined {
  const d = parseGoDurationNs(text);
  return d.ok ? nsToMs(d.ns) : undefined;
}

/** A bind address "host:port" (IPv6 in brackets); undefined when malformed. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const host = m[1] ?? m[2] ?? "";
  const port = Number(m[3]);
  if (isIP(host) === 0 || port > 65535) return undefined;
  return { host, port };
}

/** Appends the default port when the address has none ("0.0.0.0" → "0.0.0.0:10256"), as upstream does. */
function appendPortIfNeeded(addr: string, port: number): string {
  if (isIP(addr) === 4) return `${addr}:${port}`;
  if (isIP(addr) === 6) return `[${addr}]:${port}`;
  return addr;
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The defaults of an empty v1alpha1 file (upstream's round-trip fixture `after/v1alpha1.yaml`). */
export function defaultConfig(): ProxyConfig {
  return {
    bindAddress: "0.0.0.0",
    clusterCIDRs: [],
    mode: "iptables",
    detectLocalMode: "ClusterCIDR",
    hostnameOverride: "",
    kubeconfig: "",
    configSyncPeriodMs: 15 * 60_000,
    healthzBindAddress: "0.0.0.0:10256",
    metricsBindAddress: "127.0.0.1:10249",
    nodePortAddresses: [],
    iptables: { masqueradeAll: false, masqueradeBit: 14, localhostNodePorts: true, syncPeriodMs: 30_000, minSyncPeriodMs: 1_000 },
    conntrack: {
      maxPerCore: 32 * 1024,
      min: 128 * 1024,
      tcpEstablishedTimeoutMs: 24 * 3_600_000,
      tcpCloseWaitTimeoutMs: 3_600_000,
      tcpBeLiberal: false,
      udpTimeoutMs: 0,
      udpStreamTimeoutMs: 0,
    },
    oomScoreAdj: -999,
  };
}

/**
 * Applies upstream's defaults to a decoded KubeProxyConfiguration object and validates it. Every problem is
 * reported at once, each naming its field: `DeckhandError("InvalidConfig")` with `details.errors`.
 */
export function resolveConfig(raw: unknown): ProxyConfig {
  const errors: string[] = [];
  const bad = (field: string, msg: string): void => {
    errors.push(`${field}: ${msg}`);
  };
  const cfg = defaultConfig();
  if (!isObject(raw)) {
    throw new DeckhandError("InvalidConfig", "KubeProxyConfiguration: the file must hold an object", { details: { errors: ["<root>: not an object"] } });
  }
  if (raw["apiVersion"] !== CONFIG_API_VERSION) bad("apiVersion", `must be "${CONFIG_API_VERSION}", got ${JSON.stringify(raw["apiVersion"])}`);
  if (raw["kind"] !== CONFIG_KIND) bad("kind", `must be "${CONFIG_KIND}", got ${JSON.stringify(raw["kind"])}`);
  for (const k of Object.keys(raw)) if (!KNOWN_TOP_LEVEL.has(k)) bad(k, "unknown field");

  const str = (obj: Obj, key: string, path: string): string | undefined => {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") {
      bad(path, `must be a string, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  };
  const bool = (obj: Obj, key: string, path: string): boolean | undefined => {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean") {
      bad(path, `must be true or false, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  };
  const int = (obj: Obj, key: string, path: string): number | undefined => {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v)) {
      bad(path, `must be an integer, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  };
  const duration = (obj: Obj, key: string, path: string): number | undefined => {
    const s = str(obj, key, path);
    if (s === undefined) return undefined;
    const ms = parseGoDuration(s);
    if (ms === undefined) {
      bad(path, `must be a duration such as "30s" or "1m30s", got ${JSON.stringify(s)}`);
      return undefined;
    }
    return ms;
  };

  const bindAddress = str(raw, "bindAddress", "bindAddress");
  if (bindAddress) {
    if (isIP(bindAddress) === 0) bad("bindAddress", `must be an IP address, got ${JSON.stringify(bindAddress)}`);
    cfg.bindAddress = bindAddress;
    if (isIP(bindAddress) === 6) {
      cfg.healthzBindAddress = "[::]:10256";
      cfg.metricsBindAddress = "[::1]:10249";
    }
  }
  const clusterCIDR = str(raw, "clusterCIDR", "clusterCIDR");
  if (clusterCIDR) {
    cfg.clusterCIDRs = clusterCIDR.split(",").map((s) => s.trim()).filter((s) => s !== "");
    for (const c of cfg.clusterCIDRs) if (!parseCidr(c)) bad("clusterCIDR", `must be a comma-separated list of CIDRs, got ${JSON.stringify(c)}`);
    if (cfg.clusterCIDRs.length > 2) bad("clusterCIDR", "at most one CIDR per IP family");
  }
  const mode = str(raw, "mode", "mode");
  if (mode !== undefined && mode !== "" && mode !== "iptables") bad("mode", `deckhand supports only "iptables" (or ""), got ${JSON.stringify(mode)}`);
  const dlm = str(raw, "detectLocalMode", "detectLocalMode");
  if (dlm !== undefined && dlm !== "") {
    if (dlm === "ClusterCIDR" || dlm === "NodeCIDR") cfg.detectLocalMode = dlm;
    else bad("detectLocalMode", `must be "ClusterCIDR" or "NodeCIDR" (the modes deckhand supports), got ${JSON.stringify(dlm)}`);
  }
  cfg.hostnameOverride = (str(raw, "hostnameOverride", "hostnameOverride") ?? "").trim().toLowerCase();
  const client = raw["clientConnection"];
  if (isObject(client)) cfg.kubeconfig = str(client, "kubeconfig", "clientConnection.kubeconfig") ?? "";
  const csp = duration(raw, "configSyncPeriod", "configSyncPeriod");
  if (csp !== undefined && csp !== 0) {
    if (csp < 0) bad("configSyncPeriod", "must be greater than 0");
    cfg.configSyncPeriodMs = csp;
  }
  for (const [key, port] of [["healthzBindAddress", 10256], ["metricsBindAddress", 10249]] as const) {
    const v = str(raw, key, key);
    if (v === undefined || v === "") continue;
    const withPort = appendPortIfNeeded(v, port);
    if (!parseHostPort(withPort)) bad(key, `must be IP:port (or an IP), got ${JSON.stringify(v)}`);
    cfg[key] = withPort;
  }
  const npa = raw["nodePortAddresses"];
  if (npa !== undefined && npa !== null) {
    if (!Array.isArray(npa)) bad("nodePortAddresses", "must be a list of CIDRs or \"primary\"");
    else {
      npa.forEach((v: unknown, i) => {
        if (typeof v !== "string" || (v !== "primary" && !parseCidr(v))) bad(`nodePortAddresses[${i}]`, `must be a CIDR or "primary", got ${JSON.stringify(v)}`);
        else cfg.nodePortAddresses.push(v);
      });
      if (cfg.nodePortAddresses.includes("primary") && cfg.nodePortAddresses.length > 1) bad("nodePortAddresses", `"primary" cannot be combined with CIDRs`);
    }
  }
  const ipt = raw["iptables"];
  if (ipt !== undefined && ipt !== null) {
    if (!isObject(ipt)) bad("iptables", "must be an object");
    else {
      for (const k of Object.keys(ipt)) if (!KNOWN_IPTABLES.has(k)) bad(`iptables.${k}`, "unknown field");
      cfg.iptables.masqueradeAll = bool(ipt, "masqueradeAll", "iptables.masqueradeAll") ?? cfg.iptables.masqueradeAll;
      cfg.iptables.localhostNodePorts = bool(ipt, "localhostNodePorts", "iptables.localhostNodePorts") ?? cfg.iptables.localhostNodePorts;
      const bit = int(ipt, "masqueradeBit", "iptables.masqueradeBit");
      if (bit !== undefined) {
        if (bit < 0 || bit > 31) bad("iptables.masqueradeBit", `must be within [0, 31], got ${bit}`);
        cfg.iptables.masqueradeBit = bit;
      }
      const sp = duration(ipt, "syncPeriod", "iptables.syncPeriod");
      if (sp !== undefined && sp !== 0) {
        if (sp < 0) bad("iptables.syncPeriod", "must be greater than 0");
        cfg.iptables.syncPeriodMs = sp;
      }
      const msp = duration(ipt, "minSyncPeriod", "iptables.minSyncPeriod");
      if (msp !== undefined && msp !== 0) {
        if (msp < 0) bad("iptables.minSyncPeriod", "must be greater than or equal to 0");
        cfg.iptables.minSyncPeriodMs = msp;
      }
      if (cfg.iptables.minSyncPeriodMs > cfg.iptables.syncPeriodMs) {
        bad("iptables.minSyncPeriod", `must be less than or equal to iptables.syncPeriod (${cfg.iptables.syncPeriodMs} ms), got ${cfg.iptables.minSyncPeriodMs} ms`);
      }
    }
  }
  const ct = raw["conntrack"];
  if (ct !== undefined && ct !== null) {
    if (!isObject(ct)) bad("conntrack", "must be an object");
    else {
      for (const k of Object.keys(ct)) if (!KNOWN_CONNTRACK.has(k)) bad(`conntrack.${k}`, "unknown field");
      for (const key of ["maxPerCore", "min"] as const) {
        const v = int(ct, key, `conntrack.${key}`);
        if (v === undefined) continue;
        if (v < 0) bad(`conntrack.${key}`, `must be greater than or equal to 0, got ${v}`);
        cfg.conntrack[key] = v;
      }
      cfg.conntrack.tcpBeLiberal = bool(ct, "tcpBeLiberal", "conntrack.tcpBeLiberal") ?? false;
      const durations = [
        ["tcpEstablishedTimeout", "tcpEstablishedTimeoutMs"],
        ["tcpCloseWaitTimeout", "tcpCloseWaitTimeoutMs"],
        ["udpTimeout", "udpTimeoutMs"],
        ["udpStreamTimeout", "udpStreamTimeoutMs"],
      ] as const;
      for (const [key, field] of durations) {
        const v = duration(ct, key, `conntrack.${key}`);
        if (v === undefined) continue;
        if (v < 0) bad(`conntrack.${key}`, "must be greater than or equal to 0");
        cfg.conntrack[field] = v;
      }
    }
  }
  const oom = int(raw, "oomScoreAdj", "oomScoreAdj");
  if (oom !== undefined) {
    if (oom < -1000 || oom > 1000) bad("oomScoreAdj", `must be within [-1000, 1000], got ${oom}`);
    cfg.oomScoreAdj = oom;
  }
  if (errors.length > 0) {
    throw new DeckhandError("InvalidConfig", `invalid KubeProxyConfiguration:\n  ${errors.join("\n  ")}`, { details: { errors } });
  }
  return cfg;
}

/** Decodes a config file's text: JSON, or YAML (the usual form). Rejects with the file and field at fault. */
export function parseConfigText(text: string, source: string): Promise<ProxyConfig> {
  try {
    return Promise.resolve(decodeConfigText(text, source));
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function decodeConfigText(text: string, source: string): ProxyConfig {
  let raw: unknown;
  try {
    if (/^\s*\{/.test(text)) raw = JSON.parse(text);
    else raw = yaml.load(text);
  } catch (err) {
    throw new DeckhandError("InvalidConfig", `${source}: not valid YAML or JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  try {
    return resolveConfig(raw);
  } catch (err) {
    if (err instanceof DeckhandError) throw new DeckhandError("InvalidConfig", `${source}: ${err.message}`, { details: { ...err.details } });
    throw err;
  }
}
