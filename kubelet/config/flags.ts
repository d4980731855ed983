/**
 * The kubelet's command line: upstream's familiar flags (each overriding a KubeletConfiguration field) and
 * deckhand's flag-only settings, parsed as pflag does (`--flag=value`, `--flag value`, Go booleans), and usage().
 */
import { configError, listMessage } from "../../src-shared/config-decode.ts";
import { SCHEMA } from "./decode.ts";
import { KUBELET_CONFIG_API_VERSION, KUBELET_CONFIG_KIND, type KubeletConfiguration, type KubeletTaint, type PartialKubeletConfiguration, type TaintEffect } from "./types.ts";
import { nodeIPProblem, nodeLabelsProblems, parseTaintSpec, type Taint } from "./validators.ts";
/** The command line, parsed: deckhand's flag-only settings and the KubeletConfiguration fields flags override. */
export interface KubeletFlags {
  help: boolean;
  config?: string;
  kubeconfig?: string;
  hostnameOverride?: string;
  nodeIP?: string[];
  rootDir?: string;
  certDir?: string;
  cniConfDir?: string;
  cniBinDir?: string;
  cniDaemonSocket?: string;
  verbosity?: number;
  nodeLabels?: Record<string, string>;
  /** KubeletConfiguration fields set by flags (applied over the file once its defaults are in). */
  overrides: PartialKubeletConfiguration;
  /** The flag that set each overridden field, by field path ("maxPods" → "--max-pods"). */
  setBy: Map<string, string>;
}

type FlagType = "string" | "bool" | "int" | "list" | "map";

interface FlagSpec {
  type: FlagType;
  help: string;
  /** The default shown by --help. */
  def?: string;
  /** Records the value; returns the problem with it, if any. */
  set: (f: KubeletFlags, value: string, name: string) => string | undefined;
}

const GO_TRUE = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const GO_FALSE = new Set(["0", "f", "F", "FALSE", "false", "False"]);

function parseGoBool(v: string): boolean | undefined {
  return GO_TRUE.has(v) ? true : GO_FALSE.has(v) ? false : undefined;
}

function parseInt32(v: string): number | undefined {
  if (!/^[+-]?\d+$/.test(v)) return undefined;
  const n = Number(v);
  return n < -2147483648 || n > 2147483647 ? undefined : n;
}

/** "k=v,k2=v2" (pflag's mapStringString: keys and values trimmed). */
function parseKeyValues(v: string): { pairs: [string, string][] } | { error: string } {
  const pairs: [string, string][] = [];
  for (const item of v.split(",")) {
    if (item.trim() === "") continue;
    const eq = item.indexOf("=");
    if (eq < 0) return { error: `malformed pair ${JSON.stringify(item)}, expect string=string` };
    pairs.push([item.slice(0, eq).trim(), item.slice(eq + 1).trim()]);
  }
  return { pairs };
}

function fieldFlag<K extends keyof KubeletConfiguration>(
  field: K,
  type: FlagType,
  help: string,
  parse: (v: string) => { value: KubeletConfiguration[K] } | { error: string },
  def?: string,
): FlagSpec {
  const spec: FlagSpec = {
    type,
    help,
    set: (f, v, name) => {
      const r = parse(v);
      if ("error" in r) return r.error;
      (f.overrides as Partial<KubeletConfiguration>)[field] = r.value;
      f.setBy.set(field, `--${name}`);
      return undefined;
    },
  };
  if (def !== undefined) spec.def = def;
  return spec;
}

type StringSetting = "config" | "kubeconfig" | "hostnameOverride" | "rootDir" | "certDir" | "cniConfDir" | "cniBinDir" | "cniDaemonSocket";

/** A flag-only string setting of deckhand's (not a KubeletConfiguration field). */
function ownFlag(setting: StringSetting, help: string, def?: string): FlagSpec {
  const spec: FlagSpec = {
    type: "string",
    help,
    set: (f, v) => {
      f[setting] = v;
      return undefined;
    },
  };
  if (def !== undefined) spec.def = def;
  return spec;
}

const str = <T extends string>(v: string): { value: T } => ({ value: v as T });
const bool = (v: string): { value: boolean } | { error: string } => {
  const b = parseGoBool(v);
  return b === undefined ? { error: `strconv.ParseBool: parsing ${JSON.stringify(v)}: invalid syntax` } : { value: b };
};

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  config: ownFlag("config", "The KubeletConfiguration file (kubelet.config.k8s.io/v1beta1, YAML or JSON). Flags override its values."),
  kubeconfig: ownFlag("kubeconfig", "Path to a kubeconfig file for the API server. Without it the kubelet runs standalone."),
  "hostname-override": ownFlag("hostnameOverride", "The node name to use instead of the machine's hostname (a DNS-1123 subdomain; lowercased)."),
  "node-ip": {
    type: "string",
    help: "The node's IP address, or a comma-separated dual-stack pair (one IPv4, one IPv6).",
    set: (f, v) => {
      const ips = v
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "");
      const pr = nodeIPProblem(ips);
      if (pr) return pr;
      f.nodeIP = ips;
      return undefined;
    },
  },
  "container-runtime-endpoint": fieldFlag("containerRuntimeEndpoint", "string", "The CRI runtime endpoint (containerRuntimeEndpoint).", str, "unix:///run/containerd/containerd.sock"),
  "image-service-endpoint": fieldFlag("imageServiceEndpoint", "string", "The CRI image service endpoint, when not the runtime's (imageServiceEndpoint).", str),
  "root-dir": ownFlag("rootDir", "Directory for the kubelet's files (pods, volumes, plugins).", "/var/lib/kubelet"),
  "cert-dir": ownFlag("certDir", "Where the self-signed serving certificate (kubelet.crt, kubelet.key) is kept when tlsCertFile is not set.", "/var/lib/kubelet/pki"),
  "pod-manifest-path": fieldFlag("staticPodPath", "string", "Directory (or file) of static pod manifests (staticPodPath).", str),
  v: {
    type: "int",
    help: "Log verbosity: 0-1 info, 2-3 debug, 4+ trace (logging.verbosity).",
    def: "0",
    set: (f, v, name) => {
      const n = parseInt32(v);
      if (n === undefined || n < 0) return "must be a non-negative integer";
      f.verbosity = n;
      f.overrides.logging = { ...f.overrides.logging, verbosity: n };
      f.setBy.set("logging.verbosity", `--${name}`);
      return undefined;
    },
  },
  "cgroup-root": fieldFlag("cgroupRoot", "string", 'Root cgroup for pods (cgroupRoot; "/" when empty and cgroupsPerQOS).', str),
  "cgroup-driver": fieldFlag("cgroupDriver", "string", 'Cgroup driver, "cgroupfs" or "systemd" (cgroupDriver).', str, "cgroupfs"),
  "cgroups-per-qos": fieldFlag("cgroupsPerQOS", "bool", "Create the QoS cgroup hierarchy (cgroupsPerQOS).", bool, "true"),
  "max-pods": fieldFlag(
    "maxPods",
    "int",
    "Maximum number of pods on this node (maxPods).",
    (v) => {
      const n = parseInt32(v);
      return n === undefined ? { error: `strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax` } : { value: n };
    },
    "110",
  ),
  "node-labels": {
    type: "map",
    help: "Labels to add when registering the node, k1=v1,k2=v2 (repeatable).",
    set: (f, v) => {
      const r = parseKeyValues(v);
      if ("error" in r) return r.error;
      f.nodeLabels = { ...f.nodeLabels, ...Object.fromEntries(r.pairs) };
      return undefined;
    },
  },
  "register-with-taints": fieldFlag("registerWithTaints", "list", "Taints to register the node with, key=value:Effect,key2:Effect (registerWithTaints).", (v) => {
    const taints: KubeletTaint[] = [];
    for (const spec of v.split(",")) {
      if (spec.trim() === "") continue;
      const r = parseTaintSpec(spec.trim());
      if ("error" in r) return { error: r.error };
      taints.push(toKubeletTaint(r.taint));
    }
    return { value: taints };
  }),
  "register-node": fieldFlag("registerNode", "bool", "Register the node with the API server (registerNode).", bool, "true"),
  "cluster-dns": {
    type: "list",
    help: "Comma-separated DNS server IPs for pods (clusterDNS; repeatable).",
    set: (f, v, name) => {
      const ips = v
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "");
      const prev = f.setBy.has("clusterDNS") ? (f.overrides.clusterDNS ?? []) : [];
      f.overrides.clusterDNS = [...prev, ...ips];
      f.setBy.set("clusterDNS", `--${name}`);
      return undefined;
    },
  },
  "cluster-domain": fieldFlag("clusterDomain", "string", 'The cluster\'s DNS domain, e.g. "cluster.local" (clusterDomain).', str),
  "fail-swap-on": fieldFlag("failSwapOn", "bool", "Refuse to start when swap is on (failSwapOn).", bool, "true"),
  "feature-gates": {
    type: "map",
    help: "Feature gates, A=true,B=false (merged over featureGates).",
    set: (f, v, name) => {
      const r = parseKeyValues(v);
      if ("error" in r) return r.error;
      const gates: Record<string, boolean> = {};
      for (const [k, val] of r.pairs) {
        const b = parseGoBool(val);
        if (b === undefined) return `invalid value of ${k}=${val}, err: strconv.ParseBool: parsing ${JSON.stringify(val)}: invalid syntax`;
        gates[k] = b;
        f.setBy.set(`featureGates[${k}]`, `--${name}`);
      }
      f.overrides.featureGates = { ...f.overrides.featureGates, ...gates };
      return undefined;
    },
  },
  "cni-conf-dir": ownFlag("cniConfDir", "Where the kubelet writes the CNI network configuration (deckhand).", "/etc/cni/net.d"),
  "cni-bin-dir": ownFlag("cniBinDir", "Where the CNI plugin binaries are (deckhand).", "/opt/cni/bin"),
  "cni-daemon-socket": ownFlag("cniDaemonSocket", "Unix socket on which the kubelet serves the deckhand-bridge daemon, the fast path of every CNI call; empty runs none (deckhand).", "/run/deckhand/cni.sock"),
  help: {
    type: "bool",
    help: "Print this help and exit.",
    set: (f, v) => {
      const b = parseGoBool(v);
      if (b === undefined) return `strconv.ParseBool: parsing ${JSON.stringify(v)}: invalid syntax`;
      f.help = b;
      return undefined;
    },
  },
};

const SHORTHANDS: Readonly<Record<string, string>> = { v: "v", h: "help" };

function toKubeletTaint(t: Taint): KubeletTaint {
  const out: KubeletTaint = { key: t.key, effect: t.effect as TaintEffect };
  if (t.value !== undefined) out.value = t.value;
  return out;
}

function camelCase(kebab: string): string {
  return kebab.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Parses the kubelet's command line as pflag does: `--flag=value`, `--flag value`, booleans as `--flag` or
 * `--flag=false`, `-v 4` / `-v=4` / `-v4`, `-h`; `_` in names reads as `-`; `--` ends the flags. An unknown
 * flag, a missing or malformed value, or a positional argument is an error; all are reported together.
 */
export function parseKubeletFlags(argv: readonly string[]): KubeletFlags {
  const f: KubeletFlags = { help: false, overrides: {}, setBy: new Map() };
  const errors: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      for (const rest of argv.slice(i + 1)) errors.push(`unknown command ${JSON.stringify(rest)}`);
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      errors.push(`unknown command ${JSON.stringify(arg)}`);
      continue;
    }
    let name: string;
    let value: string | undefined;
    if (arg.startsWith("--")) {
      const body = arg.slice(2);
      if (body === "" || body.startsWith("-") || body.startsWith("=")) {
        errors.push(`bad flag syntax: ${arg}`);
        continue;
      }
      const eq = body.indexOf("=");
      name = (eq < 0 ? body : body.slice(0, eq)).replaceAll("_", "-");
      value = eq < 0 ? undefined : body.slice(eq + 1);
    } else {
      const short = arg[1] ?? "";
      const long = SHORTHANDS[short];
      if (long === undefined) {
        errors.push(`unknown shorthand flag: '${short}' in ${arg}`);
        continue;
      }
      name = long;
      const rest = arg.slice(2);
      value = rest === "" ? undefined : rest.startsWith("=") ? rest.slice(1) : rest;
    }
    const spec = Object.hasOwn(FLAGS, name) ? FLAGS[name] : undefined;
    if (!spec) {
      const field = camelCase(name);
      const hint = Object.hasOwn(SCHEMA.fields, field) ? ` (set ${field} in the --config file)` : "";
      errors.push(`unknown flag: --${name}${hint}`);
      continue;
    }
    if (value === undefined) {
      if (spec.type === "bool") value = "true";
      else if (i + 1 < argv.length) value = argv[++i] ?? "";
      else {
        errors.push(`flag needs an argument: --${name}`);
        continue;
      }
    }
    const problem = spec.set(f, value, name);
    if (problem) errors.push(`invalid argument ${JSON.stringify(value)} for "--${name}" flag: ${problem}`);
  }
  if (f.nodeLabels) for (const pr of nodeLabelsProblems(f.nodeLabels)) errors.push(`--node-labels: ${pr}`);
  if (errors.length > 0) throw configError(listMessage("kubelet flags", errors), errors);
  return f;
}

/** The --help text. */
export function usage(): string {
  const rows = Object.entries(FLAGS).map(([name, spec]) => {
    const short = Object.entries(SHORTHANDS).find(([, long]) => long === name)?.[0];
    const arg = spec.type === "bool" ? "" : spec.type === "int" ? " int" : spec.type === "map" ? " k=v,..." : spec.type === "list" ? " a,b,..." : " string";
    const left = `${short ? `-${short}, ` : "    "}--${name}${arg}`;
    return { left, right: `${spec.help}${spec.def !== undefined ? ` (default ${spec.def})` : ""}` };
  });
  const width = Math.max(...rows.map((r) => r.left.length)) + 2;
  return [
    "Usage: kubelet [flags]",
    "",
    "deckhand's kubelet: runs the pods bound to this node, and its static pods, through the CRI runtime.",
    `Its settings come from a ${KUBELET_CONFIG_KIND} file (${KUBELET_CONFIG_API_VERSION}, YAML or JSON) given with`,
    "--config, with upstream's defaults for what the file leaves out; the flags below override the file.",
    "Unknown fields and flags are errors. Settings with no flag (podLogsDir, evictionHard, ...) go in the file.",
    "",
    "Flags:",
    ...rows.map((r) => `  ${r.left.padEnd(width)}${r.right}`),
    "",
  ].join("\n");
}
