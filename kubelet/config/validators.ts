/**
 * The value checks the kubelet's configuration needs, with apimachinery's rules and wording: DNS-1123
 * subdomains, qualified names and label values, resource quantities, eviction thresholds, taints, IPs.
 * Each check returns the problem as text (undefined when the value is fine).
 */
import { isIP } from "node:net";
import { parseGoDuration } from "../../src-shared/go-duration.ts";
import { parseQuantity, QUANTITY_REGEXP } from "../../src-shared/quantity.ts";

const DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_RE = new RegExp(`^${DNS1123_LABEL}(\\.${DNS1123_LABEL})*$`);
const QUALIFIED_NAME_RE = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** apimachinery IsDNS1123Subdomain. */
export function dns1123SubdomainProblem(value: string): string | undefined {
  if (value.length > 253) return "must be no more than 253 characters";
  if (!DNS1123_SUBDOMAIN_RE.test(value)) {
    return (
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start " +
      "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is " +
      `'${DNS1123_LABEL}(\\.${DNS1123_LABEL})*')`
    );
  }
  return undefined;
}

/** apimachinery IsQualifiedName: `[prefix/]name`, as label keys and taint keys are. */
export function qualifiedNameProblem(value: string): string | undefined {
  const parts = value.split("/");
  let name: string;
  if (parts.length === 1) {
    name = parts[0] ?? "";
  } else if (parts.length === 2) {
    const prefix = parts[0] ?? "";
    name = parts[1] ?? "";
    if (prefix.length === 0) return "prefix part must be non-empty";
    const p = dns1123SubdomainProblem(prefix);
    if (p) return `prefix part ${p}`;
  } else {
    return (
      "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an " +
      "alphanumeric character with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    );
  }
  if (name.length === 0) return "name part must be non-empty";
  if (name.length > 63) return "name part must be no more than 63 characters";
  if (!QUALIFIED_NAME_RE.test(name)) {
    return (
      "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an " +
      "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc')"
    );
  }
  return undefined;
}

/** apimachinery IsValidLabelValue. */
export function labelValueProblem(value: string): string | undefined {
  if (value === "") return undefined;
  if (value.length > 63) return "must be no more than 63 characters";
  if (!QUALIFIED_NAME_RE.test(value)) {
    return (
      "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must " +
      "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345')"
    );
  }
  return undefined;
}

/** The sign of a quantity's value (-1, 0, 1), or undefined when the text is not a quantity (ParseQuantity fails). */
export function quantitySign(value: string): -1 | 0 | 1 | undefined {
  try {
    return parseQuantity(value).sign();
  } catch {
    return undefined;
  }
}

export function quantityProblem(value: string, opts: { positive?: boolean; nonNegative?: boolean } = {}): string | undefined {
  const sign = quantitySign(value);
  if (sign === undefined) return `quantities must match the regular expression '${QUANTITY_REGEXP}'`;
  if (opts.positive && sign <= 0) return "must be greater than zero";
  if (opts.nonNegative && sign < 0) return "must not be negative";
  return undefined;
}

/** Eviction signals the kubelet knows (pkg/kubelet/eviction/api/types.go, Linux). */
export const EVICTION_SIGNALS: readonly string[] = [
  "memory.available",
  "allocatableMemory.available",
  "nodefs.available",
  "nodefs.inodesFree",
  "imagefs.available",
  "imagefs.inodesFree",
  "containerfs.available",
  "containerfs.inodesFree",
  "pid.available",
];

export function evictionSignalProblem(signal: string): string | undefined {
  return EVICTION_SIGNALS.includes(signal) ? undefined : `unsupported eviction signal ${signal}`;
}

/** A hard or soft eviction threshold value: a positive quantity or a percentage in [0%, 100%] (0% and 100% disable it). */
export function evictionThresholdProblem(value: string): string | undefined {
  if (value.endsWith("%")) {
    const pct = value.slice(0, -1);
    if (!/^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/.test(pct)) return "must be a percentage such as \"10%\"";
    const n = Number(pct);
    if (n < 0) return "percentage must be >= 0%";
    if (n > 100) return "percentage must be <= 100%";
    return undefined;
  }
  const sign = quantitySign(value);
  if (sign === undefined) return "must be a quantity (e.g. \"100Mi\") or a percentage (e.g. \"10%\")";
  if (sign <= 0) return "eviction threshold must be positive";
  return undefined;
}

/** An eviction minimum-reclaim value: a non-negative quantity or a percentage in (0%, 100%]. */
export function minimumReclaimProblem(value: string): string | undefined {
  if (value.endsWith("%")) {
    const pct = value.slice(0, -1);
    if (!/^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/.test(pct)) return "must be a percentage such as \"5%\"";
    const n = Number(pct);
    if (n <= 0) return "percentage minimum reclaim must be positive";
    if (n > 100) return "percentage must be <= 100%";
    return undefined;
  }
  const sign = quantitySign(value);
  if (sign === undefined) return "must be a quantity (e.g. \"500Mi\") or a percentage (e.g. \"5%\")";
  if (sign < 0) return "minimum reclaim must not be negative";
  return undefined;
}

/** An eviction grace period: a non-negative Go duration. */
export function gracePeriodProblem(value: string): string | undefined {
  const d = parseGoDuration(value);
  if (!d.ok) return d.error;
  if (d.ns < 0n) return "must be a positive value";
  return undefined;
}

/** Resources systemReserved and kubeReserved may name (pkg/kubelet/cm parseResourceList). */
export const RESERVABLE_RESOURCES: readonly string[] = ["cpu", "memory", "ephemeral-storage", "pid"];

export function ipProblem(value: string): string | undefined {
  return isIP(value) === 0 ? "must be a valid IP address" : undefined;
}

/** A CIDR such as "10.244.0.0/24" or "fd00::/64". */
export function cidrProblem(value: string): string | undefined {
  const slash = value.indexOf("/");
  if (slash < 0) return "must be a CIDR (e.g. \"10.244.0.0/24\")";
  const ip = value.slice(0, slash);
  const bits = value.slice(slash + 1);
  const family = isIP(ip);
  if (family === 0 || !/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) return "must be a CIDR (e.g. \"10.244.0.0/24\")";
  return undefined;
}

export const TAINT_EFFECTS: readonly string[] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

export interface Taint {
  key: string;
  value?: string;
  effect: string;
}

/** Upstream's CheckTaintValidation: qualified-name key, label-value value, a known effect. */
export function taintProblem(t: { key: string; value?: string | undefined; effect: string }): string | undefined {
  const k = qualifiedNameProblem(t.key);
  if (k) return `invalid taint key ${JSON.stringify(t.key)}: ${k}`;
  if (t.value !== undefined) {
    const v = labelValueProblem(t.value);
    if (v) return `invalid taint value ${JSON.stringify(t.value)}: ${v}`;
  }
  if (!TAINT_EFFECTS.includes(t.effect)) {
    return `invalid taint effect ${JSON.stringify(t.effect)}: supported values: ${TAINT_EFFECTS.map((e) => JSON.stringify(e)).join(", ")}`;
  }
  return undefined;
}

/** Parses `--register-with-taints` entries ("key=value:Effect" or "key:Effect"), as upstream's parseTaint. */
export function parseTaintSpec(spec: string): { taint: Taint } | { error: string } {
  const parts = spec.split(":");
  if (parts.length > 2) return { error: `invalid taint spec: ${spec}` };
  // Without ":Effect" upstream parses a taint with no effect, which its validation then refuses.
  const effect = parts[1] ?? "";
  const kv = (parts[0] ?? "").split("=");
  if (kv.length > 2) return { error: `invalid taint spec: ${spec}` };
  const taint: Taint = { key: kv[0] ?? "", effect };
  if (kv.length === 2) taint.value = kv[1] ?? "";
  const problem = taintProblem(taint);
  if (problem) return { error: `invalid taint spec: ${spec}, ${problem}` };
  return { taint };
}

/** The node labels the kubelet may set on itself in the kubernetes.io / k8s.io namespaces (k8s.io/kubelet/pkg/apis). */
const KUBELET_LABELS = new Set([
  "kubernetes.io/hostname",
  "topology.kubernetes.io/zone",
  "topology.kubernetes.io/region",
  "failure-domain.beta.kubernetes.io/zone",
  "failure-domain.beta.kubernetes.io/region",
  "node.kubernetes.io/instance-type",
  "beta.kubernetes.io/instance-type",
  "kubernetes.io/os",
  "beta.kubernetes.io/os",
  "kubernetes.io/arch",
  "beta.kubernetes.io/arch",
]);
const KUBELET_LABEL_NAMESPACES = ["kubelet.kubernetes.io", "node.kubernetes.io"];

function labelNamespace(key: string): string {
  const i = key.indexOf("/");
  return i < 0 ? "" : key.slice(0, i);
}

function isKubernetesLabel(key: string): boolean {
  const ns = labelNamespace(key);
  return ns === "kubernetes.io" || ns.endsWith(".kubernetes.io") || ns === "k8s.io" || ns.endsWith(".k8s.io");
}

function isKubeletLabel(key: string): boolean {
  if (KUBELET_LABELS.has(key)) return true;
  const ns = labelNamespace(key);
  return KUBELET_LABEL_NAMESPACES.some((allowed) => ns === allowed || ns.endsWith(`.${allowed}`));
}

/** Upstream's ValidateKubeletFlags check of --node-labels: valid keys and values, and no foreign kubernetes.io labels. */
export function nodeLabelsProblems(labels: Readonly<Record<string, string>>): string[] {
  const problems: string[] = [];
  const restricted: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (isKubernetesLabel(k) && !isKubeletLabel(k)) restricted.push(k);
    const kp = qualifiedNameProblem(k);
    if (kp) problems.push(`invalid label key ${JSON.stringify(k)}: ${kp}`);
    const vp = labelValueProblem(v);
    if (vp) problems.push(`invalid label value ${JSON.stringify(v)} for ${JSON.stringify(k)}: ${vp}`);
  }
  if (restricted.length > 0) {
    problems.unshift(
      `unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [${restricted.sort().join(" ")}]; ` +
        `--node-labels in the 'kubernetes.io' namespace must begin with an allowed prefix (${KUBELET_LABEL_NAMESPACES.join(", ")}) ` +
        `or be in the specifically allowed set (${[...KUBELET_LABELS].sort().join(", ")})`,
    );
  }
  return problems;
}

/**
 * Upstream's ParseNodeIPArgument: one IP, or a dual-stack pair (one IPv4, one IPv6); the unspecified
 * address ("0.0.0.0" or "::") only on its own.
 */
export function nodeIPProblem(ips: readonly string[]): string | undefined {
  if (ips.length === 0) return undefined;
  for (const ip of ips) if (isIP(ip) === 0) return `could not parse ${JSON.stringify(ip)}`;
  if (ips.length > 2) return "must contain either a single IP or a dual-stack pair of IPs";
  if (ips.length === 2) {
    const [a = "", b = ""] = ips;
    if (isIP(a) === isIP(b)) return "must contain either a single IP or a dual-stack pair of IPs (one IPv4 and one IPv6)";
    if ([a, b].some((ip) => ip === "0.0.0.0" || ip === "::")) return "dual-stack --node-ip cannot include '0.0.0.0' or '::'";
  }
  return undefined;
}
