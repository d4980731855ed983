/**
 * KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1): parsing, upstream's defaults for what deckhand
 * supports, and validation with errors that name the field. Upstream: pkg/proxy/apis/config/v1alpha1/defaults.go
 * and pkg/proxy/apis/config/validation/validation.go.
 */
import { nsToMs, parseGoDuration as parseGoDurationNs } from "../src-shared/go-duration.ts";
import { isIP } from "node:net";
import { DeckhandError } from "../src-shared/errors.ts";
import {
  configError,
  decodeObject,
  IGN,
  isObject,
  obj,
  parseConfigDocument,
  S,
  typeMetaProblems,
  type DecodeState,
  type ObjectSpec,
  type Problem,
} from "../src-shared/config-decode.ts";
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
  /** "iptables" (the default, as upstream) or "nftables". */
  mode: ProxyMode;
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
  /** The nftables mode's settings (upstream's KubeProxyNFTablesConfiguration). */
  nftables: ModeSettings;
  conntrack: ConntrackConfig;
  oomScoreAdj: number;
}

export type ProxyMode = "iptables" | "nftables";

/** What both modes configure alike. */
export interface ModeSettings {
  masqueradeAll: boolean;
  masqueradeBit: number;
  syncPeriodMs: number;
  minSyncPeriodMs: number;
}

/** The settings of the configured mode (`iptables` or `nftables` section). */
export function modeSettings(cfg: ProxyConfig): ModeSettings {
  return cfg.mode === "nftables" ? cfg.nftables : cfg.iptables;
}

/**
 * The v1alpha1 fields: the ones deckhand implements, and the ones it accepts and ignores (other proxy modes,
 * logging, client tuning...: opaque, not checked below them). Decoded by the shared strict decoder, so the file
 * means what it means to the kubelet's (YAML 1.1 booleans, unknown and duplicate fields refused).
 */
const SCHEMA: ObjectSpec = obj({
  apiVersion: S("string"),
  kind: S("string"),
  bindAddress: S("string"),
  bindAddressHardFail: IGN("bool"),
  clientConnection: S(obj({ kubeconfig: S("string"), acceptContentTypes: IGN("string"), contentType: IGN("string"), qps: IGN("float"), burst: IGN("int32") })),
  clusterCIDR: S("string"),
  configSyncPeriod: S("duration"),
  conntrack: S(
    obj({
      maxPerCore: S("int32"),
      min: S("int32"),
      tcpEstablishedTimeout: S("duration"),
      tcpCloseWaitTimeout: S("duration"),
      tcpBeLiberal: S("bool"),
      udpTimeout: S("duration"),
      udpStreamTimeout: S("duration"),
    }),
  ),
  detectLocal: IGN("any"),
  detectLocalMode: S("string"),
  enableProfiling: IGN("bool"),
  featureGates: IGN("boolMap"),
  healthzBindAddress: S("string"),
  hostnameOverride: S("string"),
  iptables: S(obj({ masqueradeAll: S("bool"), masqueradeBit: S("int32"), localhostNodePorts: S("bool"), syncPeriod: S("duration"), minSyncPeriod: S("duration") })),
  ipvs: IGN("any"),
  logging: IGN("any"),
  metricsBindAddress: S("string"),
  mode: S("string"),
  nftables: S(obj({ masqueradeAll: S("bool"), masqueradeBit: S("int32"), syncPeriod: S("duration"), minSyncPeriod: S("duration") })),
  nodePortAddresses: S("strings"),
  oomScoreAdj: S("int32"),
  portRange: IGN("string"),
  showHiddenMetricsForVersion: IGN("string"),
  udpIdleTimeout: IGN("duration"),
  winkernel: IGN("any"),
  windowsRunAsService: IGN("bool"),
});

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
    nftables: { masqueradeAll: false, masqueradeBit: 14, syncPeriodMs: 30_000, minSyncPeriodMs: 1_000 },
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

/** The decoded fields of a file (durations in ms), as the schema guarantees their types. */
interface ProxyFields {
  bindAddress?: string;
  clientConnection?: { kubeconfig?: string };
  clusterCIDR?: string;
  configSyncPeriod?: number;
  conntrack?: Partial<Record<"maxPerCore" | "min" | "tcpEstablishedTimeout" | "tcpCloseWaitTimeout" | "udpTimeout" | "udpStreamTimeout", number>> & { tcpBeLiberal?: boolean };
  detectLocalMode?: string;
  healthzBindAddress?: string;
  hostnameOverride?: string;
  iptables?: { masqueradeAll?: boolean; masqueradeBit?: number; localhostNodePorts?: boolean; syncPeriod?: number; minSyncPeriod?: number };
  metricsBindAddress?: string;
  mode?: string;
  nftables?: { masqueradeAll?: boolean; masqueradeBit?: number; syncPeriod?: number; minSyncPeriod?: number };
  nodePortAddresses?: string[];
  oomScoreAdj?: number;
}

/**
 * Decodes a KubeProxyConfiguration object strictly (unknown fields and wrong types refused), applies
 * upstream's defaults and validates it. Every problem is reported at once, each naming its field:
 * `DeckhandError("InvalidConfig")` with `details.errors` (lines) and `details.problems`.
 */
export function resolveConfig(raw: unknown): ProxyConfig {
  if (!isObject(raw)) {
    throw configError("KubeProxyConfiguration: the file must hold an object", ["<root>: not an object"], [{ path: "", detail: "not an object", reason: "NotAnObject", value: raw }]);
  }
  const st: DecodeState = { problems: [], ignored: [], set: new Set() };
  const problems: Problem[] = [...typeMetaProblems(raw, CONFIG_API_VERSION, CONFIG_KIND)];
  const f = decodeObject(raw, SCHEMA, "", st, true) as ProxyFields;
  problems.push(...st.problems);
  const bad = (path: string, detail: string): void => {
    problems.push({ path, detail, reason: "Invalid" });
  };
  const cfg = defaultConfig();

  const bindAddress = f.bindAddress;
  if (bindAddress) {
    if (isIP(bindAddress) === 0) bad("bindAddress", `must be an IP address, got ${JSON.stringify(bindAddress)}`);
    cfg.bindAddress = bindAddress;
    if (isIP(bindAddress) === 6) {
      cfg.healthzBindAddress = "[::]:10256";
      cfg.metricsBindAddress = "[::1]:10249";
    }
  }
  if (f.clusterCIDR) {
    cfg.clusterCIDRs = f.clusterCIDR.split(",").map((s) => s.trim()).filter((s) => s !== "");
    for (const c of cfg.clusterCIDRs) if (!parseCidr(c)) bad("clusterCIDR", `must be a comma-separated list of CIDRs, got ${JSON.stringify(c)}`);
    if (cfg.clusterCIDRs.length > 2) bad("clusterCIDR", "at most one CIDR per IP family");
  }
  const mode = f.mode;
  if (mode === "nftables") cfg.mode = "nftables";
  else if (mode !== undefined && mode !== "" && mode !== "iptables") bad("mode", `deckhand supports "iptables" (or "") and "nftables", got ${JSON.stringify(mode)}`);
  const dlm = f.detectLocalMode;
  if (dlm !== undefined && dlm !== "") {
    if (dlm === "ClusterCIDR" || dlm === "NodeCIDR") cfg.detectLocalMode = dlm;
    else bad("detectLocalMode", `must be "ClusterCIDR" or "NodeCIDR" (the modes deckhand supports), got ${JSON.stringify(dlm)}`);
  }
  cfg.hostnameOverride = (f.hostnameOverride ?? "").trim().toLowerCase();
  cfg.kubeconfig = f.clientConnection?.kubeconfig ?? "";
  const csp = f.configSyncPeriod;
  if (csp !== undefined && csp !== 0) {
    if (csp < 0) bad("configSyncPeriod", "must be greater than 0");
    cfg.configSyncPeriodMs = csp;
  }
  for (const [key, port] of [["healthzBindAddress", 10256], ["metricsBindAddress", 10249]] as const) {
    const v = f[key];
    if (v === undefined || v === "") continue;
    const withPort = appendPortIfNeeded(v, port);
    if (!parseHostPort(withPort)) bad(key, `must be IP:port (or an IP), got ${JSON.stringify(v)}`);
    cfg[key] = withPort;
  }
  (f.nodePortAddresses ?? []).forEach((v, i) => {
    if (v !== "primary" && !parseCidr(v)) bad(`nodePortAddresses[${i}]`, `must be a CIDR or "primary", got ${JSON.stringify(v)}`);
    else cfg.nodePortAddresses.push(v);
  });
  if (cfg.nodePortAddresses.includes("primary") && cfg.nodePortAddresses.length > 1) bad("nodePortAddresses", `"primary" cannot be combined with CIDRs`);
  const ipt = f.iptables;
  if (ipt) {
    cfg.iptables.localhostNodePorts = ipt.localhostNodePorts ?? cfg.iptables.localhostNodePorts;
    resolveModeSettings("iptables", ipt, cfg.iptables, bad);
  }
  if (f.nftables) resolveModeSettings("nftables", f.nftables, cfg.nftables, bad);
  const ct = f.conntrack;
  if (ct) {
    for (const key of ["maxPerCore", "min"] as const) {
      const v = ct[key];
      if (v === undefined) continue;
      if (v < 0) bad(`conntrack.${key}`, `must be greater than or equal to 0, got ${v}`);
      cfg.conntrack[key] = v;
    }
    cfg.conntrack.tcpBeLiberal = ct.tcpBeLiberal ?? false;
    const durations = [
      ["tcpEstablishedTimeout", "tcpEstablishedTimeoutMs"],
      ["tcpCloseWaitTimeout", "tcpCloseWaitTimeoutMs"],
      ["udpTimeout", "udpTimeoutMs"],
      ["udpStreamTimeout", "udpStreamTimeoutMs"],
    ] as const;
    for (const [key, field] of durations) {
      const v = ct[key];
      if (v === undefined) continue;
      if (v < 0) bad(`conntrack.${key}`, "must be greater than or equal to 0");
      cfg.conntrack[field] = v;
    }
  }
  const oom = f.oomScoreAdj;
  if (oom !== undefined) {
    if (oom < -1000 || oom > 1000) bad("oomScoreAdj", `must be within [-1000, 1000], got ${oom}`);
    cfg.oomScoreAdj = oom;
  }
  if (problems.length > 0) {
    const errors = problems.map((p) => (p.path === "" ? p.detail : `${p.path}: ${p.detail}`));
    throw configError(`invalid KubeProxyConfiguration:\n  ${errors.join("\n  ")}`, errors, problems);
  }
  return cfg;
}

/** The `iptables` or `nftables` section's common fields, validated as upstream's validateKubeProxyIPTablesConfiguration. */
function resolveModeSettings(
  section: "iptables" | "nftables",
  f: { masqueradeAll?: boolean; masqueradeBit?: number; syncPeriod?: number; minSyncPeriod?: number },
  out: ModeSettings,
  bad: (path: string, detail: string) => void,
): void {
  out.masqueradeAll = f.masqueradeAll ?? out.masqueradeAll;
  const bit = f.masqueradeBit;
  if (bit !== undefined) {
    if (bit < 0 || bit > 31) bad(`${section}.masqueradeBit`, `must be within [0, 31], got ${bit}`);
    out.masqueradeBit = bit;
  }
  const sp = f.syncPeriod;
  if (sp !== undefined && sp !== 0) {
    if (sp < 0) bad(`${section}.syncPeriod`, "must be greater than 0");
    out.syncPeriodMs = sp;
  }
  const msp = f.minSyncPeriod;
  if (msp !== undefined && msp !== 0) {
    if (msp < 0) bad(`${section}.minSyncPeriod`, "must be greater than or equal to 0");
    out.minSyncPeriodMs = msp;
  }
  if (out.minSyncPeriodMs > out.syncPeriodMs) {
    bad(`${section}.minSyncPeriod`, `must be less than or equal to ${section}.syncPeriod (${out.syncPeriodMs} ms), got ${out.minSyncPeriodMs} ms`);
  }
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
  const parsed = parseConfigDocument(text);
  if ("problem" in parsed) {
    const { problem } = parsed;
    const what = problem.reason === "Syntax" ? `not valid YAML or JSON: ${problem.detail}` : problem.detail;
    throw configError(`${source}: ${what}`, [problem.detail], [problem]);
  }
  try {
    return resolveConfig(parsed.doc);
  } catch (err) {
    if (err instanceof DeckhandError) throw new DeckhandError("InvalidConfig", `${source}: ${err.message}`, { details: { ...err.details } });
    throw err;
  }
}
