/**
 * The kubelet's configuration: a KubeletConfiguration file (kubelet.config.k8s.io/v1beta1, YAML or JSON) with
 * upstream's defaults, the familiar flags over it, and deckhand's own flag-only settings. Pure parsing and
 * validation; reading the --config file (one `readFile` call in `loadKubeletConfig`) is the only I/O.
 *
 * Upstream, followed here:
 * - strict decoding: an unknown field (case-sensitive, with its full path, e.g. `authentication.webhook.cacheTtl`)
 *   is an error, and so is a value of the wrong JSON type (`maxPods: "110"`, `kubeReserved: {cpu: 1}`);
 *   YAML is read with YAML 1.1 booleans (`yes`/`no`/`on`/`off`), as sigs.k8s.io/yaml does;
 * - defaults from pkg/kubelet/apis/config/v1beta1/defaults.go, with its zero-value semantics (`syncFrequency: 0s`,
 *   `maxPods: 0`, `port: 0`... mean "default"), the nodeStatusReportFrequency back-compat rule, and
 *   serializeImagePulls following maxParallelImagePulls;
 * - evictionHard: the Linux defaults (memory.available 100Mi, nodefs.available 10%, nodefs.inodesFree 5%,
 *   imagefs.available 15%, imagefs.inodesFree 5%) only when the file does not set evictionHard at all
 *   (cmd/kubelet/app/server.go loadConfigFile); a file that sets some signals gets only those, unless
 *   `mergeDefaultEvictionSettings: true` (default false) asks for the missing ones to be merged in;
 * - validation from pkg/kubelet/apis/config/validation/validation.go (ranges, enums, cross-field rules, the
 *   feature gates some fields need), plus the eviction, reserved-resource and taint parsing the kubelet does
 *   before it starts (pkg/kubelet/eviction/helpers.go, pkg/kubelet/cm, pkg/util/taints);
 * - relative paths in the file (staticPodPath, tlsCertFile, tlsPrivateKeyFile, authentication.x509.clientCAFile,
 *   resolvConf, podLogsDir) resolve against the file's directory (KubeletConfigurationPathRefs);
 * - flags override the file, after its defaults were applied (kubeletConfigFlagPrecedence);
 * - cgroupRoot "" becomes "/" when cgroupsPerQOS (cmd/kubelet/app/server.go).
 *
 * Deliberate differences:
 * - upstream fields deckhand does not implement are accepted only at their inert value (e.g. `cpuManagerPolicy:
 *   none`, `staticPodURL: ""`) and refused otherwise, naming the field; fields without effect here (iptables
 *   bits, tracing, tlsCipherSuites...) are accepted, type-checked and listed in `ignoredFields`;
 * - no `--config` means the config-file defaults (anonymous auth off, Webhook authz, no read-only port), not
 *   upstream's insecure legacy flag defaults;
 * - clusterDNS entries and clusterDomain are validated (upstream logs and skips a bad DNS IP);
 * - `null` for any field means "not set" (upstream errors for a null duration);
 * - a file with a wrong apiVersion or kind reports only that, not every field of the unrelated object.
 */
import { readFileSync } from "node:fs";
import { hostname as osHostname } from "node:os";
import { dirname, isAbsolute, join, posix, resolve as resolvePath } from "node:path";
import yaml from "js-yaml";
import type { LevelWithSilent } from "pino";
import { DeckhandError, errorMessage } from "../../src-shared/errors.ts";
import { levelForVerbosity } from "../../src-shared/log.ts";
import { featureGateProblems, gateEnabled } from "./feature-gates.ts";
import { formatMs, nsToMs, parseGoDuration } from "../../src-shared/go-duration.ts";
import {
  cidrProblem,
  dns1123SubdomainProblem,
  EVICTION_SIGNALS,
  evictionSignalProblem,
  evictionThresholdProblem,
  ipProblem,
  minimumReclaimProblem,
  nodeIPProblem,
  nodeLabelsProblems,
  parseTaintSpec,
  quantityProblem,
  quantitySign,
  RESERVABLE_RESOURCES,
  taintProblem,
  type Taint,
} from "./validators.ts";

export { parseGoDuration, formatGoDuration } from "../../src-shared/go-duration.ts";
export { KNOWN_FEATURE_GATES, gateEnabled } from "./feature-gates.ts";

export const KUBELET_CONFIG_API_VERSION = "kubelet.config.k8s.io/v1beta1";
export const KUBELET_CONFIG_KIND = "KubeletConfiguration";

/** Durations of the resolved configuration are in milliseconds (fractions below 1 ms kept). */
export type Milliseconds = number;

export type TaintEffect = "NoSchedule" | "PreferNoSchedule" | "NoExecute";

export interface KubeletTaint {
  key: string;
  value?: string;
  effect: TaintEffect;
}

/** Upstream's Linux DefaultEvictionHard (pkg/kubelet/eviction/defaults_linux.go). */
export const DEFAULT_EVICTION_HARD: Readonly<Record<string, string>> = {
  "memory.available": "100Mi",
  "nodefs.available": "10%",
  "nodefs.inodesFree": "5%",
  "imagefs.available": "15%",
  "imagefs.inodesFree": "5%",
};

/** The KubeletConfiguration fields deckhand implements, resolved: every default applied, durations in ms. */
export interface KubeletConfiguration {
  enableServer: boolean;
  /** Directory (or single file) of static pod manifests; "" for none. */
  staticPodPath: string;
  podLogsDir: string;
  syncFrequency: Milliseconds;
  fileCheckFrequency: Milliseconds;
  address: string;
  port: number;
  /** 0 disables the read-only port. */
  readOnlyPort: number;
  tlsCertFile: string;
  tlsPrivateKeyFile: string;
  /** "" (Go's default) or VersionTLS10..VersionTLS13. */
  tlsMinVersion: string;
  rotateCertificates: boolean;
  serverTLSBootstrap: boolean;
  authentication: {
    x509: { clientCAFile: string };
    webhook: { enabled: boolean; cacheTTL: Milliseconds };
    anonymous: { enabled: boolean };
  };
  authorization: {
    mode: "AlwaysAllow" | "Webhook";
    webhook: { cacheAuthorizedTTL: Milliseconds; cacheUnauthorizedTTL: Milliseconds };
  };
  /** 0 means no limit. */
  registryPullQPS: number;
  registryBurst: number;
  /** 0 means no limit. */
  eventRecordQPS: number;
  eventBurst: number;
  enableDebuggingHandlers: boolean;
  enableSystemLogHandler: boolean;
  enableProfilingHandler: boolean;
  enableDebugFlagsHandler: boolean;
  /** 0 disables the healthz server. */
  healthzPort: number;
  healthzBindAddress: string;
  oomScoreAdj: number;
  /** Upstream's default is "" (kubeadm writes "cluster.local"). */
  clusterDomain: string;
  clusterDNS: string[];
  nodeStatusUpdateFrequency: Milliseconds;
  nodeStatusReportFrequency: Milliseconds;
  nodeLeaseDurationSeconds: number;
  imageMinimumGCAge: Milliseconds;
  /** 0 disables age-based image GC. */
  imageMaximumGCAge: Milliseconds;
  imageGCHighThresholdPercent: number;
  imageGCLowThresholdPercent: number;
  volumeStatsAggPeriod: Milliseconds;
  cgroupRoot: string;
  cgroupsPerQOS: boolean;
  cgroupDriver: "cgroupfs" | "systemd";
  runtimeRequestTimeout: Milliseconds;
  hairpinMode: "promiscuous-bridge" | "hairpin-veth" | "none";
  maxPods: number;
  /** Standalone mode only; comma-separated for dual stack. */
  podCIDR: string;
  /** -1: no per-pod limit beyond node allocatable. */
  podPidsLimit: number;
  /** "" disables DNS configuration from the host. */
  resolvConf: string;
  cpuCFSQuota: boolean;
  cpuCFSQuotaPeriod: Milliseconds;
  /** -1: no cap. */
  nodeStatusMaxImages: number;
  maxOpenFiles: number;
  contentType: string;
  kubeAPIQPS: number;
  kubeAPIBurst: number;
  serializeImagePulls: boolean;
  /** null: no limit (pulls are still one at a time while serializeImagePulls). */
  maxParallelImagePulls: number | null;
  evictionHard: Record<string, string>;
  evictionSoft: Record<string, string>;
  evictionSoftGracePeriod: Record<string, Milliseconds>;
  evictionPressureTransitionPeriod: Milliseconds;
  evictionMaxPodGracePeriod: number;
  evictionMinimumReclaim: Record<string, string>;
  mergeDefaultEvictionSettings: boolean;
  podsPerCore: number;
  /** As configured (file, then --feature-gates); `gateEnabled` applies the defaults. */
  featureGates: Record<string, boolean>;
  failSwapOn: boolean;
  containerLogMaxSize: string;
  containerLogMaxFiles: number;
  containerLogMaxWorkers: number;
  containerLogMonitorInterval: Milliseconds;
  configMapAndSecretChangeDetectionStrategy: "Get" | "Cache" | "Watch";
  systemReserved: Record<string, string>;
  kubeReserved: Record<string, string>;
  systemReservedCgroup: string;
  kubeReservedCgroup: string;
  enforceNodeAllocatable: string[];
  allowedUnsafeSysctls: string[];
  providerID: string;
  logging: { format: "text" | "json"; flushFrequency: Milliseconds; verbosity: number };
  shutdownGracePeriod: Milliseconds;
  shutdownGracePeriodCriticalPods: Milliseconds;
  crashLoopBackOff: { maxContainerRestartPeriod: Milliseconds };
  seccompDefault: boolean;
  memoryThrottlingFactor: number;
  registerWithTaints: KubeletTaint[];
  registerNode: boolean;
  localStorageCapacityIsolation: boolean;
  /** Always `unix:///…` (a bare absolute path is taken as a unix socket, as upstream does with a warning). */
  containerRuntimeEndpoint: string;
  /** The image service endpoint; the runtime endpoint when not set. */
  imageServiceEndpoint: string;
  failCgroupV1: boolean;
  podHousekeepingPeriod: Milliseconds;
}

/** What a file (or the flags) set: any subset of the fields, nested objects partial too. */
export type PartialKubeletConfiguration = Partial<
  Omit<KubeletConfiguration, "authentication" | "authorization" | "logging" | "crashLoopBackOff">
> & {
  authentication?: {
    x509?: Partial<KubeletConfiguration["authentication"]["x509"]>;
    webhook?: Partial<KubeletConfiguration["authentication"]["webhook"]>;
    anonymous?: Partial<KubeletConfiguration["authentication"]["anonymous"]>;
  };
  authorization?: {
    mode?: KubeletConfiguration["authorization"]["mode"];
    webhook?: Partial<KubeletConfiguration["authorization"]["webhook"]>;
  };
  logging?: Partial<KubeletConfiguration["logging"]>;
  crashLoopBackOff?: Partial<KubeletConfiguration["crashLoopBackOff"]>;
};

/** The kubelet's whole configuration: the KubeletConfiguration fields plus deckhand's flag-only settings. */
export interface KubeletConfig extends KubeletConfiguration {
  /** Absolute path of the --config file; undefined when none was given. */
  configFile: string | undefined;
  /** The node name: --hostname-override, else os.hostname(), trimmed and lowercased (a DNS-1123 subdomain). */
  hostname: string;
  /** --hostname-override as given ("" when not set). */
  hostnameOverride: string;
  /** --node-ip: one IP or a dual-stack pair; empty to let the kubelet pick the node's address. */
  nodeIP: string[];
  /** --kubeconfig; "" runs standalone (no API server). */
  kubeconfig: string;
  /** --root-dir (default /var/lib/kubelet). */
  rootDir: string;
  /** --cni-conf-dir: where the kubelet writes the CNI conflist (default /etc/cni/net.d). */
  cniConfDir: string;
  /** --cni-bin-dir (default /opt/cni/bin). */
  cniBinDir: string;
  /** --cni-daemon-socket: where the kubelet serves the deckhand-bridge daemon ("" runs none). */
  cniDaemonSocket: string;
  /** --node-labels. */
  nodeLabels: Record<string, string>;
  /** --v, else logging.verbosity. */
  verbosity: number;
  /** The pino level for `verbosity`. */
  logLevel: LevelWithSilent;
  /** Upstream fields the file set that deckhand accepts but does not act on (for a warning at start). */
  ignoredFields: string[];
}

// ---------------------------------------------------------------------------------------------------------
// Problems and how they are reported

/** One problem: the field path it concerns ("" for the file as a whole) and what is wrong, value included. */
interface Problem {
  path: string;
  detail: string;
  /** Other fields the problem comes from (to say which file or flag set them when `path` was defaulted). */
  related?: string[];
}

type Origin = { kind: "file"; file: string } | { kind: "flag"; flag: string };

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (v === null || v === undefined) return "null";
  return JSON.stringify(v);
}

function invalid(value: unknown, detail: string): string {
  return `Invalid value: ${show(value)}: ${detail}`;
}

function unsupported(value: unknown, allowed: readonly string[]): string {
  return `Unsupported value: ${show(value)}: supported values: ${allowed.map((a) => JSON.stringify(a)).join(", ")}`;
}

/** The origin of a field path: the longest recorded prefix of it (`evictionSoft[x]` → `evictionSoft`). */
function originOf(path: string, origins: ReadonlyMap<string, Origin>): Origin | undefined {
  let p = path;
  for (;;) {
    const o = origins.get(p);
    if (o) return o;
    const cut = Math.max(p.lastIndexOf("."), p.lastIndexOf("["));
    if (cut <= 0) return undefined;
    p = p.slice(0, cut);
  }
}

function render(p: Problem, origins: ReadonlyMap<string, Origin>, fallback?: Origin): string {
  let origin = p.path === "" ? undefined : originOf(p.path, origins);
  for (const r of p.related ?? []) origin ??= originOf(r, origins);
  origin ??= fallback;
  const field = p.path === "" ? "" : `${p.path}: `;
  if (origin?.kind === "file") return `kubelet config ${origin.file}: ${field}${p.detail}`;
  if (origin?.kind === "flag") return `${p.path} (${origin.flag}): ${p.detail}`;
  return `${field}${p.detail}`;
}

function configError(message: string, lines: readonly string[]): DeckhandError {
  return new DeckhandError("InvalidConfig", message, { details: { errors: [...lines] } });
}

/** "<head>: <one problem>" or "<head>: N errors:" and one problem a line. */
function listMessage(head: string, lines: readonly string[]): string {
  if (lines.length === 1) return `${head}: ${lines[0] ?? ""}`;
  return `${head}: ${lines.length} errors:\n${lines.map((l) => `  - ${l}`).join("\n")}`;
}

// ---------------------------------------------------------------------------------------------------------
// The v1beta1 schema: every upstream field, how it decodes, and whether deckhand implements it

type LeafKind =
  | "bool"
  | "int32"
  | "int64"
  | "uint32"
  | "float"
  | "string"
  | "duration"
  | "durationOrNanos"
  | "quantity"
  | "strings"
  | "int32s"
  | "stringMap"
  | "boolMap"
  | "durationMap"
  | "quantityMap"
  | "stringsMap";

interface ObjectSpec {
  kind: "object";
  fields: Readonly<Record<string, Field>>;
}

interface ListSpec {
  kind: "list";
  item: ObjectSpec;
}

type Spec = LeafKind | ObjectSpec | ListSpec;

/**
 * supported: decoded into the configuration. ignored: accepted and type-checked, no effect in deckhand.
 * inert: upstream feature deckhand lacks; only its "off" value is accepted.
 */
type Use = "supported" | "ignored" | { inert: (v: unknown) => boolean; only: string };

interface Field {
  spec: Spec;
  use: Use;
  /** A problem with the decoded value (a full "Invalid value: …" / "Unsupported value: …" text). */
  check?: (v: unknown) => string | undefined;
  /** Whether an ignored field's value is upstream's default (then it is not listed in ignoredFields). */
  isDefault?: (v: unknown) => boolean;
}

const S = (spec: Spec, check?: (v: unknown) => string | undefined): Field => (check ? { spec, use: "supported", check } : { spec, use: "supported" });
const IGN = (spec: Spec, dflt?: unknown, check?: (v: unknown) => string | undefined): Field => {
  const f: Field = { spec, use: "ignored" };
  if (typeof dflt === "function") f.isDefault = dflt as (v: unknown) => boolean;
  else if (dflt !== undefined) f.isDefault = (v) => deepEqual(v, dflt);
  if (check) f.check = check;
  return f;
};
const INERT = (spec: Spec, allowed: readonly unknown[], only: string): Field => ({
  spec,
  use: { inert: (v) => allowed.some((a) => deepEqual(a, v)) || isEmpty(v), only },
});
const obj = (fields: Record<string, Field>): ObjectSpec => ({ kind: "object", fields });

const enumCheck =
  (allowed: readonly string[]) =>
  (v: unknown): string | undefined =>
    typeof v === "string" && v !== "" && !allowed.includes(v) ? unsupported(v, allowed) : undefined;

const iptablesBit = (v: unknown): string | undefined =>
  typeof v === "number" && (v < 0 || v > 31) ? invalid(v, "must be between 0 and 31, inclusive") : undefined;

const LOGGING_FORMAT_OPTIONS = obj({ splitStream: IGN("bool"), infoBufferSize: IGN("quantity") });

const SCHEMA: ObjectSpec = obj({
  apiVersion: S("string"),
  kind: S("string"),
  enableServer: S("bool"),
  staticPodPath: S("string"),
  podLogsDir: S("string"),
  syncFrequency: S("duration"),
  fileCheckFrequency: S("duration"),
  httpCheckFrequency: IGN("duration"),
  staticPodURL: INERT("string", [""], "static pods from files (staticPodPath)"),
  staticPodURLHeader: INERT("stringsMap", [], "no staticPodURL"),
  address: S("string"),
  port: S("int32"),
  readOnlyPort: S("int32"),
  tlsCertFile: S("string"),
  tlsPrivateKeyFile: S("string"),
  tlsCipherSuites: IGN("strings"),
  tlsCurvePreferences: IGN("int32s"),
  tlsMinVersion: S("string"),
  rotateCertificates: S("bool"),
  serverTLSBootstrap: S("bool"),
  authentication: S(
    obj({
      x509: S(obj({ clientCAFile: S("string") })),
      webhook: S(obj({ enabled: S("bool"), cacheTTL: S("duration") })),
      anonymous: S(obj({ enabled: S("bool") })),
    }),
  ),
  authorization: S(obj({ mode: S("string"), webhook: S(obj({ cacheAuthorizedTTL: S("duration"), cacheUnauthorizedTTL: S("duration") })) })),
  registryPullQPS: S("int32"),
  registryBurst: S("int32"),
  imagePullCredentialsVerificationPolicy: IGN(
    "string",
    undefined,
    enumCheck(["NeverVerify", "NeverVerifyPreloadedImages", "NeverVerifyAllowlistedImages", "AlwaysVerify"]),
  ),
  preloadedImagesVerificationAllowlist: IGN("strings"),
  eventRecordQPS: S("int32"),
  eventBurst: S("int32"),
  enableDebuggingHandlers: S("bool"),
  enableContentionProfiling: IGN("bool"),
  healthzPort: S("int32"),
  healthzBindAddress: S("string"),
  oomScoreAdj: S("int32"),
  clusterDomain: S("string"),
  clusterDNS: S("strings"),
  streamingConnectionIdleTimeout: IGN("duration"),
  nodeStatusUpdateFrequency: S("duration"),
  nodeStatusReportFrequency: S("duration"),
  nodeLeaseDurationSeconds: S("int32"),
  imageMinimumGCAge: S("duration"),
  imageMaximumGCAge: S("duration"),
  imageGCHighThresholdPercent: S("int32"),
  imageGCLowThresholdPercent: S("int32"),
  volumeStatsAggPeriod: S("duration"),
  kubeletCgroups: IGN("string"),
  systemCgroups: IGN("string"),
  cgroupRoot: S("string"),
  cgroupsPerQOS: S("bool"),
  cgroupDriver: S("string"),
  cpuManagerPolicy: INERT("string", ["none"], '"none"'),
  singleProcessOOMKill: IGN("bool"),
  cpuManagerPolicyOptions: INERT("stringMap", [], "no options (cpuManagerPolicy none)"),
  cpuManagerReconcilePeriod: IGN("duration"),
  draManagerReconcilePeriod: IGN("duration"),
  memoryManagerPolicy: INERT("string", ["None"], '"None"'),
  topologyManagerPolicy: INERT("string", ["none"], '"none"'),
  topologyManagerScope: IGN("string", "container", enumCheck(["container", "pod"])),
  topologyManagerPolicyOptions: INERT("stringMap", [], "no options (topologyManagerPolicy none)"),
  qosReserved: INERT("stringMap", [], "no qosReserved"),
  runtimeRequestTimeout: S("duration"),
  hairpinMode: S("string"),
  maxPods: S("int32"),
  podCIDR: S("string"),
  podPidsLimit: S("int64"),
  resolvConf: S("string"),
  runOnce: INERT("bool", [false], "false"),
  cpuCFSQuota: S("bool"),
  cpuCFSQuotaPeriod: S("duration"),
  nodeStatusMaxImages: S("int32"),
  maxOpenFiles: S("int64"),
  contentType: S("string"),
  kubeAPIQPS: S("int32"),
  kubeAPIBurst: S("int32"),
  serializeImagePulls: S("bool"),
  maxParallelImagePulls: S("int32"),
  evictionHard: S("stringMap"),
  evictionSoft: S("stringMap"),
  evictionSoftGracePeriod: S("durationMap"),
  evictionPressureTransitionPeriod: S("duration"),
  evictionMaxPodGracePeriod: S("int32"),
  evictionMinimumReclaim: S("stringMap"),
  mergeDefaultEvictionSettings: S("bool"),
  podsPerCore: S("int32"),
  enableControllerAttachDetach: IGN("bool", true),
  protectKernelDefaults: INERT("bool", [false], "false"),
  makeIPTablesUtilChains: IGN("bool", true),
  iptablesMasqueradeBit: IGN("int32", 14, iptablesBit),
  iptablesDropBit: IGN("int32", 15, iptablesBit),
  featureGates: S("boolMap"),
  failSwapOn: S("bool"),
  memorySwap: IGN(obj({ swapBehavior: INERT("string", ["NoSwap"], '"NoSwap" (workloads do not use swap)') })),
  containerLogMaxSize: S("string"),
  containerLogMaxFiles: S("int32"),
  containerLogMaxWorkers: S("int32"),
  containerLogMonitorInterval: S("duration"),
  configMapAndSecretChangeDetectionStrategy: S("string"),
  systemReserved: S("stringMap"),
  kubeReserved: S("stringMap"),
  reservedSystemCPUs: INERT("string", [""], "no reserved CPU list"),
  showHiddenMetricsForVersion: IGN("string"),
  systemReservedCgroup: S("string"),
  kubeReservedCgroup: S("string"),
  enforceNodeAllocatable: S("strings"),
  allowedUnsafeSysctls: S("strings"),
  volumePluginDir: IGN("string", "/usr/libexec/kubernetes/kubelet-plugins/volume/exec/"),
  providerID: S("string"),
  kernelMemcgNotification: IGN("bool"),
  logging: S(
    obj({
      format: S("string"),
      flushFrequency: S("durationOrNanos"),
      verbosity: S("uint32"),
      vmodule: IGN({ kind: "list", item: obj({ filePattern: S("string"), verbosity: S("uint32") }) }),
      // kubeadm writes `options: {json: {infoBufferSize: "0"}, text: {infoBufferSize: "0"}}`.
      options: IGN(obj({ text: S(LOGGING_FORMAT_OPTIONS), json: S(LOGGING_FORMAT_OPTIONS) }), (v: unknown) =>
        Object.values(isObject(v) ? v : {}).every(
          (o) => isObject(o) && o["splitStream"] !== true && (o["infoBufferSize"] === undefined || (typeof o["infoBufferSize"] === "string" && quantitySign(o["infoBufferSize"]) === 0)),
        ),
      ),
    }),
  ),
  enableSystemLogHandler: S("bool"),
  enableSystemLogQuery: INERT("bool", [false], "false"),
  shutdownGracePeriod: S("duration"),
  shutdownGracePeriodCriticalPods: S("duration"),
  shutdownGracePeriodByPodPriority: INERT(
    { kind: "list", item: obj({ priority: S("int32"), shutdownGracePeriodSeconds: S("int64") }) },
    [],
    "shutdownGracePeriod and shutdownGracePeriodCriticalPods",
  ),
  crashLoopBackOff: S(obj({ maxContainerRestartPeriod: S("duration") })),
  reservedMemory: INERT({ kind: "list", item: obj({ numaNode: S("int32"), limits: S("quantityMap") }) }, [], "no reservedMemory"),
  enableProfilingHandler: S("bool"),
  enableDebugFlagsHandler: S("bool"),
  seccompDefault: S("bool"),
  memoryThrottlingFactor: S("float"),
  memoryReservationPolicy: INERT("string", ["None"], '"None"'),
  registerWithTaints: S({
    kind: "list",
    item: obj({
      key: S("string"),
      value: S("string"),
      effect: S("string"),
      timeAdded: IGN("string", undefined, (v) => invalid(v, "must not be set")),
    }),
  }),
  registerNode: S("bool"),
  tracing: IGN(obj({ endpoint: S("string"), samplingRatePerMillion: S("int32") })),
  localStorageCapacityIsolation: S("bool"),
  containerRuntimeEndpoint: S("string"),
  imageServiceEndpoint: S("string"),
  failCgroupV1: S("bool"),
  userNamespaces: IGN(obj({ idsPerPod: S("int64") })),
  podHousekeepingPeriod: S("duration"),
});

/** Fields whose relative paths resolve against the config file's directory (KubeletConfigurationPathRefs). */
const FILE_PATH_FIELDS: readonly string[][] = [
  ["staticPodPath"],
  ["authentication", "x509", "clientCAFile"],
  ["tlsCertFile"],
  ["tlsPrivateKeyFile"],
  ["resolvConf"],
  ["podLogsDir"],
];

// ---------------------------------------------------------------------------------------------------------
// Decoding

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === "" || v === false || v === 0) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (isObject(v)) return Object.values(v).every(isEmpty);
  return false;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

interface DecodeState {
  problems: Problem[];
  ignored: string[];
  /** Paths of the supported values the document set. */
  set: Set<string>;
}

const BAD = Symbol("bad");

/** How an entry of a map appears in a path: `evictionHard[memory.available]`. */
function entryPath(path: string, key: string): string {
  return `${path}[${key}]`;
}

function decodeDuration(v: unknown, path: string, st: DecodeState): Milliseconds | typeof BAD {
  if (typeof v !== "string") {
    st.problems.push({ path, detail: invalid(v, 'must be a duration string with a unit, e.g. "10s", "1m30s", "100ms"') });
    return BAD;
  }
  const d = parseGoDuration(v);
  if (!d.ok) {
    st.problems.push({ path, detail: invalid(v, d.error) });
    return BAD;
  }
  return nsToMs(d.ns);
}

function decodeMap(v: unknown, path: string, st: DecodeState, entry: (value: unknown, path: string) => unknown): Json | typeof BAD {
  if (!isObject(v)) {
    st.problems.push({ path, detail: invalid(v, "must be a map") });
    return BAD;
  }
  const out: Json = {};
  let ok = true;
  for (const [k, value] of Object.entries(v)) {
    const r = entry(value, entryPath(path, k));
    if (r === BAD) ok = false;
    else out[k] = r;
  }
  return ok ? out : BAD;
}

function decodeValue(v: unknown, spec: Spec, path: string, st: DecodeState, store: boolean): unknown {
  const bad = (detail: string): typeof BAD => {
    st.problems.push({ path, detail: invalid(v, detail) });
    return BAD;
  };
  if (typeof spec !== "string") {
    if (spec.kind === "object") {
      if (!isObject(v)) return bad("must be an object");
      return decodeObject(v, spec, path, st, store);
    }
    if (!Array.isArray(v)) return bad("must be a list");
    const items: unknown[] = [];
    v.forEach((item: unknown, i) => {
      const p = `${path}[${i}]`;
      if (!isObject(item)) st.problems.push({ path: p, detail: invalid(item, "must be an object") });
      else items.push(decodeObject(item, spec.item, p, st, store));
    });
    return items;
  }
  switch (spec) {
    case "bool":
      return typeof v === "boolean" ? v : bad("must be a boolean (true or false)");
    case "int32":
      if (typeof v !== "number" || !Number.isInteger(v)) return bad("must be an integer");
      return v < -2147483648 || v > 2147483647 ? bad("must fit in a 32-bit integer") : v;
    case "uint32":
      if (typeof v !== "number" || !Number.isInteger(v)) return bad("must be an integer");
      return v < 0 || v > 4294967295 ? bad("must be a non-negative 32-bit integer") : v;
    case "int64":
      return typeof v === "number" && Number.isSafeInteger(v) ? v : bad("must be an integer");
    case "float":
      return typeof v === "number" && Number.isFinite(v) ? v : bad("must be a number");
    case "string":
      return typeof v === "string" ? v : bad("must be a string (quote it in YAML)");
    case "duration":
      return decodeDuration(v, path, st);
    case "durationOrNanos":
      if (typeof v === "number") return Number.isSafeInteger(v) ? v / 1e6 : bad("must be a duration string or an integer number of nanoseconds");
      return decodeDuration(v, path, st);
    case "quantity":
      return typeof v === "string" ? v : typeof v === "number" ? String(v) : bad("must be a quantity");
    case "strings":
      if (!Array.isArray(v)) return bad("must be a list of strings");
      {
        const list: unknown[] = v;
        const strings = list.filter((x): x is string => typeof x === "string");
        return strings.length === list.length ? strings : bad("must be a list of strings");
      }
    case "int32s":
      if (!Array.isArray(v) || !v.every((x) => typeof x === "number" && Number.isInteger(x))) return bad("must be a list of integers");
      return [...(v as number[])];
    case "stringMap":
      return decodeMap(v, path, st, (x, p) => {
        if (typeof x === "string") return x;
        st.problems.push({ path: p, detail: invalid(x, "must be a string (quote it in YAML)") });
        return BAD;
      });
    case "quantityMap":
      return decodeMap(v, path, st, (x, p) => {
        if (typeof x === "string") return x;
        if (typeof x === "number") return String(x);
        st.problems.push({ path: p, detail: invalid(x, "must be a quantity") });
        return BAD;
      });
    case "boolMap":
      return decodeMap(v, path, st, (x, p) => {
        if (typeof x === "boolean") return x;
        st.problems.push({ path: p, detail: invalid(x, "must be a boolean (true or false)") });
        return BAD;
      });
    case "durationMap":
      return decodeMap(v, path, st, (x, p) => decodeDuration(x, p, st));
    case "stringsMap":
      return decodeMap(v, path, st, (x, p) => {
        const list: unknown[] = Array.isArray(x) ? x : [];
        const strings = list.filter((s): s is string => typeof s === "string");
        if (Array.isArray(x) && strings.length === list.length) return strings;
        st.problems.push({ path: p, detail: invalid(x, "must be a list of strings") });
        return BAD;
      });
  }
}

function decodeObject(raw: Json, spec: ObjectSpec, path: string, st: DecodeState, store: boolean): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(raw)) {
    const p = path === "" ? key : `${path}.${key}`;
    const field = Object.hasOwn(spec.fields, key) ? spec.fields[key] : undefined;
    if (!field) {
      st.problems.push({ path: "", detail: `unknown field ${JSON.stringify(p)}` });
      continue;
    }
    if (value === null || value === undefined) continue; // null: not set
    const use = field.use;
    const keep = store && use === "supported";
    const decoded = decodeValue(value, field.spec, p, st, keep);
    if (decoded === BAD) continue;
    const problem = field.check?.(decoded);
    if (problem) {
      st.problems.push({ path: p, detail: problem });
      continue;
    }
    if (use === "supported") {
      if (keep) {
        out[key] = decoded;
        st.set.add(p);
      }
    } else if (use === "ignored") {
      if (store && !isEmpty(decoded) && !field.isDefault?.(decoded)) st.ignored.push(p);
    } else if (!use.inert(decoded)) {
      st.problems.push({ path: p, detail: `Unsupported value: ${show(decoded)}: deckhand supports only ${use.only}` });
    }
  }
  return out;
}

/** YAML 1.1 booleans (y/yes/on/true and n/no/off/false, as go-yaml v2 resolves them), and merge keys. */
const YAML11_TRUE = new Set(["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"]);
const YAML11_FALSE = new Set(["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"]);
const YAML_SCHEMA = yaml.CORE_SCHEMA.extend({
  implicit: [
    new yaml.Type("tag:yaml.org,2002:bool", {
      kind: "scalar",
      resolve: (data: unknown) => typeof data === "string" && (YAML11_TRUE.has(data) || YAML11_FALSE.has(data)),
      construct: (data: unknown) => typeof data === "string" && YAML11_TRUE.has(data),
      predicate: (o: object) => typeof o === "boolean",
    }),
    new yaml.Type("tag:yaml.org,2002:merge", { kind: "scalar", resolve: (data: unknown) => data === "<<" || data === null }),
  ],
});

/** A YAML parser error as one line: a duplicate key named (strict decoding refuses those), else the reason and where. */
function yamlProblem(err: unknown, text: string): string {
  if (!(err instanceof yaml.YAMLException)) return `invalid YAML: ${errorMessage(err)}`;
  const e = err as yaml.YAMLException & { reason?: string; mark?: { line: number; column: number; position: number } };
  const where = e.mark ? ` (line ${e.mark.line + 1}, column ${e.mark.column + 1})` : "";
  if (e.reason === "duplicated mapping key" && e.mark) {
    const key = /^\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([^:\s]+))/.exec(text.slice(e.mark.position));
    const name = key?.[1] ?? key?.[2] ?? key?.[3];
    return `duplicate field ${JSON.stringify(name ?? "?")}${where}`;
  }
  return `invalid YAML: ${e.reason ?? e.message}${where}`;
}

/** The document's object, or the reason it has none. YAML or JSON (a document starting with "{" is JSON). */
function parseDocument(raw: string): { doc: unknown } | { error: string } {
  const text = raw.replace(/^\uFEFF/, "");
  const trimmed = text.trim();
  if (trimmed === "") return { error: "the file is empty" };
  if (trimmed.startsWith("{")) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      return { error: `invalid JSON: ${errorMessage(err)}` };
    }
    // Strict decoding refuses duplicate fields; JSON.parse keeps the last silently, the YAML parser notices.
    try {
      yaml.load(text, { schema: yaml.JSON_SCHEMA });
    } catch (err) {
      const problem = yamlProblem(err, text);
      if (problem.startsWith("duplicate field")) return { error: problem };
    }
    return { doc };
  }
  try {
    return { doc: yaml.load(text, { schema: YAML_SCHEMA }) };
  } catch (err) {
    return { error: yamlProblem(err, text) };
  }
}

interface DecodedFile {
  fields: PartialKubeletConfiguration;
  ignoredFields: string[];
  /** Problems of the document itself (syntax, apiVersion/kind): nothing else is reported then. */
  fatal: Problem[];
  problems: Problem[];
  set: Set<string>;
}

function decodeFile(text: string, file: string): DecodedFile {
  const st: DecodeState = { problems: [], ignored: [], set: new Set() };
  const result = (fields: Json, fatal: Problem[]): DecodedFile => ({
    fields,
    ignoredFields: st.ignored,
    fatal,
    problems: st.problems,
    set: st.set,
  });
  const parsed = parseDocument(text);
  if ("error" in parsed) return result({}, [{ path: "", detail: parsed.error }]);
  if (!isObject(parsed.doc)) return result({}, [{ path: "", detail: `must hold a ${KUBELET_CONFIG_KIND} object, got ${show(parsed.doc)}` }]);
  const doc = parsed.doc;
  const fatal: Problem[] = [];
  if (doc["apiVersion"] !== KUBELET_CONFIG_API_VERSION) {
    fatal.push(
      doc["apiVersion"] === undefined || doc["apiVersion"] === null
        ? { path: "apiVersion", detail: `Required value: must be ${JSON.stringify(KUBELET_CONFIG_API_VERSION)}` }
        : { path: "apiVersion", detail: unsupported(doc["apiVersion"], [KUBELET_CONFIG_API_VERSION]) },
    );
  }
  if (doc["kind"] !== KUBELET_CONFIG_KIND) {
    fatal.push(
      doc["kind"] === undefined || doc["kind"] === null
        ? { path: "kind", detail: `Required value: must be ${JSON.stringify(KUBELET_CONFIG_KIND)}` }
        : { path: "kind", detail: unsupported(doc["kind"], [KUBELET_CONFIG_KIND]) },
    );
  }
  if (fatal.length > 0) return result({}, fatal);

  const fields = decodeObject(doc, SCHEMA, "", st, true);
  delete fields["apiVersion"];
  delete fields["kind"];
  st.set.delete("apiVersion");
  st.set.delete("kind");

  // Relative paths are relative to the file's directory.
  const dir = dirname(file);
  for (const refPath of FILE_PATH_FIELDS) {
    let holder: Json | undefined = fields;
    for (const k of refPath.slice(0, -1)) holder = isObject(holder?.[k]) ? holder[k] : undefined;
    const last = refPath[refPath.length - 1] ?? "";
    const value = holder?.[last];
    if (holder && typeof value === "string" && value !== "" && !isAbsolute(value)) holder[last] = join(dir, value);
  }
  return result(fields, []);
}

// ---------------------------------------------------------------------------------------------------------
// Defaults

/** Upstream's v1beta1 defaults applied to what a file set (zero values mean "default" where upstream says so). */
export function applyKubeletDefaults(p: PartialKubeletConfiguration = {}): KubeletConfiguration {
  const gates = { ...(p.featureGates ?? {}) };
  const nonZero = <T>(v: T | undefined, d: T): T => (v === undefined || v === 0 || v === "" ? d : v);
  const maxParallel = p.maxParallelImagePulls ?? null;
  const mergeEviction = p.mergeDefaultEvictionSettings ?? false;
  const evictionHard = p.evictionHard === undefined ? { ...DEFAULT_EVICTION_HARD } : mergeEviction ? { ...DEFAULT_EVICTION_HARD, ...p.evictionHard } : { ...p.evictionHard };
  const updateFrequency = p.nodeStatusUpdateFrequency ?? 0;
  return {
    enableServer: p.enableServer ?? true,
    staticPodPath: p.staticPodPath ?? "",
    podLogsDir: nonZero(p.podLogsDir, "/var/log/pods"),
    syncFrequency: nonZero(p.syncFrequency, 60_000),
    fileCheckFrequency: nonZero(p.fileCheckFrequency, 20_000),
    address: nonZero(p.address, "0.0.0.0"),
    port: nonZero(p.port, 10250),
    readOnlyPort: p.readOnlyPort ?? 0,
    tlsCertFile: p.tlsCertFile ?? "",
    tlsPrivateKeyFile: p.tlsPrivateKeyFile ?? "",
    tlsMinVersion: p.tlsMinVersion ?? "",
    rotateCertificates: p.rotateCertificates ?? false,
    serverTLSBootstrap: p.serverTLSBootstrap ?? false,
    authentication: {
      x509: { clientCAFile: p.authentication?.x509?.clientCAFile ?? "" },
      webhook: { enabled: p.authentication?.webhook?.enabled ?? true, cacheTTL: nonZero(p.authentication?.webhook?.cacheTTL, 120_000) },
      anonymous: { enabled: p.authentication?.anonymous?.enabled ?? false },
    },
    authorization: {
      mode: nonZero(p.authorization?.mode, "Webhook"),
      webhook: {
        cacheAuthorizedTTL: nonZero(p.authorization?.webhook?.cacheAuthorizedTTL, 300_000),
        cacheUnauthorizedTTL: nonZero(p.authorization?.webhook?.cacheUnauthorizedTTL, 30_000),
      },
    },
    registryPullQPS: p.registryPullQPS ?? 5,
    registryBurst: nonZero(p.registryBurst, 10),
    eventRecordQPS: p.eventRecordQPS ?? 50,
    eventBurst: nonZero(p.eventBurst, 100),
    enableDebuggingHandlers: p.enableDebuggingHandlers ?? true,
    enableSystemLogHandler: p.enableSystemLogHandler ?? true,
    enableProfilingHandler: p.enableProfilingHandler ?? true,
    enableDebugFlagsHandler: p.enableDebugFlagsHandler ?? true,
    healthzPort: p.healthzPort ?? 10248,
    healthzBindAddress: nonZero(p.healthzBindAddress, "127.0.0.1"),
    oomScoreAdj: p.oomScoreAdj ?? -999,
    clusterDomain: p.clusterDomain ?? "",
    clusterDNS: [...(p.clusterDNS ?? [])],
    nodeStatusUpdateFrequency: nonZero(p.nodeStatusUpdateFrequency, 10_000),
    // Back-compat: an explicitly set nodeStatusUpdateFrequency is also the report frequency, unless that is set.
    nodeStatusReportFrequency: nonZero(p.nodeStatusReportFrequency, updateFrequency !== 0 ? updateFrequency : 300_000),
    nodeLeaseDurationSeconds: nonZero(p.nodeLeaseDurationSeconds, 40),
    imageMinimumGCAge: nonZero(p.imageMinimumGCAge, 120_000),
    imageMaximumGCAge: p.imageMaximumGCAge ?? 0,
    imageGCHighThresholdPercent: p.imageGCHighThresholdPercent ?? 85,
    imageGCLowThresholdPercent: p.imageGCLowThresholdPercent ?? 80,
    volumeStatsAggPeriod: nonZero(p.volumeStatsAggPeriod, 60_000),
    cgroupRoot: p.cgroupRoot ?? "",
    cgroupsPerQOS: p.cgroupsPerQOS ?? true,
    cgroupDriver: nonZero(p.cgroupDriver, "cgroupfs"),
    runtimeRequestTimeout: nonZero(p.runtimeRequestTimeout, 120_000),
    hairpinMode: nonZero(p.hairpinMode, "promiscuous-bridge"),
    maxPods: nonZero(p.maxPods, 110),
    podCIDR: p.podCIDR ?? "",
    podPidsLimit: p.podPidsLimit === undefined || p.podPidsLimit < 0 ? -1 : p.podPidsLimit,
    resolvConf: p.resolvConf ?? "/etc/resolv.conf",
    cpuCFSQuota: p.cpuCFSQuota ?? true,
    cpuCFSQuotaPeriod: p.cpuCFSQuotaPeriod ?? 100,
    nodeStatusMaxImages: p.nodeStatusMaxImages ?? 50,
    maxOpenFiles: nonZero(p.maxOpenFiles, 1_000_000),
    contentType: nonZero(p.contentType, "application/vnd.kubernetes.protobuf"),
    kubeAPIQPS: p.kubeAPIQPS ?? 50,
    kubeAPIBurst: nonZero(p.kubeAPIBurst, 100),
    serializeImagePulls: p.serializeImagePulls ?? (maxParallel === null || maxParallel < 2),
    maxParallelImagePulls: maxParallel,
    evictionHard,
    evictionSoft: { ...(p.evictionSoft ?? {}) },
    evictionSoftGracePeriod: { ...(p.evictionSoftGracePeriod ?? {}) },
    evictionPressureTransitionPeriod: nonZero(p.evictionPressureTransitionPeriod, 300_000),
    evictionMaxPodGracePeriod: p.evictionMaxPodGracePeriod ?? 0,
    evictionMinimumReclaim: { ...(p.evictionMinimumReclaim ?? {}) },
    mergeDefaultEvictionSettings: mergeEviction,
    podsPerCore: p.podsPerCore ?? 0,
    featureGates: gates,
    failSwapOn: p.failSwapOn ?? true,
    containerLogMaxSize: nonZero(p.containerLogMaxSize, "10Mi"),
    containerLogMaxFiles: p.containerLogMaxFiles ?? 5,
    containerLogMaxWorkers: p.containerLogMaxWorkers ?? 1,
    containerLogMonitorInterval: p.containerLogMonitorInterval ?? 10_000,
    configMapAndSecretChangeDetectionStrategy: nonZero(p.configMapAndSecretChangeDetectionStrategy, "Watch"),
    systemReserved: { ...(p.systemReserved ?? {}) },
    kubeReserved: { ...(p.kubeReserved ?? {}) },
    systemReservedCgroup: p.systemReservedCgroup ?? "",
    kubeReservedCgroup: p.kubeReservedCgroup ?? "",
    enforceNodeAllocatable: [...(p.enforceNodeAllocatable ?? ["pods"])],
    allowedUnsafeSysctls: [...(p.allowedUnsafeSysctls ?? [])],
    providerID: p.providerID ?? "",
    logging: {
      format: nonZero(p.logging?.format, "text"),
      flushFrequency: nonZero(p.logging?.flushFrequency, 5_000),
      verbosity: p.logging?.verbosity ?? 0,
    },
    shutdownGracePeriod: p.shutdownGracePeriod ?? 0,
    shutdownGracePeriodCriticalPods: p.shutdownGracePeriodCriticalPods ?? 0,
    // Defaulted when KubeletCrashLoopBackOffMax is on; 300s is also the kubelet's built-in maximum otherwise.
    crashLoopBackOff: { maxContainerRestartPeriod: p.crashLoopBackOff?.maxContainerRestartPeriod ?? 300_000 },
    seccompDefault: p.seccompDefault ?? false,
    memoryThrottlingFactor: p.memoryThrottlingFactor ?? 0.9,
    registerWithTaints: (p.registerWithTaints ?? []).map((t) => ({ ...t })),
    registerNode: p.registerNode ?? true,
    localStorageCapacityIsolation: p.localStorageCapacityIsolation ?? true,
    containerRuntimeEndpoint: nonZero(p.containerRuntimeEndpoint, "unix:///run/containerd/containerd.sock"),
    imageServiceEndpoint: p.imageServiceEndpoint ?? "",
    failCgroupV1: p.failCgroupV1 ?? false,
    podHousekeepingPeriod: p.podHousekeepingPeriod ?? 2_000,
  };
}

/** Upstream's start-up fixes after flags: cgroupRoot "/" with QoS cgroups, endpoints as unix:// URLs. */
function finish(c: KubeletConfiguration): KubeletConfiguration {
  const unixEndpoint = (e: string): string => (e.startsWith("/") ? `unix://${e}` : e);
  const runtime = unixEndpoint(c.containerRuntimeEndpoint);
  return {
    ...c,
    cgroupRoot: c.cgroupRoot === "" && c.cgroupsPerQOS ? "/" : c.cgroupRoot,
    containerRuntimeEndpoint: runtime,
    imageServiceEndpoint: c.imageServiceEndpoint === "" ? runtime : unixEndpoint(c.imageServiceEndpoint),
  };
}

/** The configuration of a kubelet started with no file and no flags. */
export function defaultKubeletConfiguration(): KubeletConfiguration {
  return finish(applyKubeletDefaults({}));
}

// ---------------------------------------------------------------------------------------------------------
// Validation of the resolved configuration

const NAMESPACED_SYSCTL_PREFIXES = ["net.", "kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue.", "kernel.hostname", "kernel.domainname"];
const ENFORCEMENTS = ["pods", "system-reserved", "system-reserved-compressible", "kube-reserved", "kube-reserved-compressible", "none"];
const TLS_VERSIONS = ["VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13"];

/**
 * Every problem of a resolved configuration (upstream's ValidateKubeletConfiguration plus the checks the kubelet
 * makes before it starts). `explicit` holds the paths a file or flag set (some rules apply only to set fields).
 */
function validate(c: KubeletConfiguration, explicit: ReadonlySet<string>): Problem[] {
  const out: Problem[] = [];
  const bad = (path: string, detail: string, ...related: string[]): void => {
    out.push(related.length > 0 ? { path, detail, related } : { path, detail });
  };
  const gate = (name: string): boolean => gateEnabled(c.featureGates, name);
  const notNegative = (path: string, v: number): void => {
    if (v < 0) bad(path, invalid(v, "must not be a negative number"));
  };
  const portRange = (path: string, v: number, zeroDisables: boolean): void => {
    if ((zeroDisables && v === 0) || (Number.isInteger(v) && v >= 1 && v <= 65535)) return;
    bad(path, invalid(v, `must be between ${zeroDisables ? 0 : 1} and 65535, inclusive${zeroDisables ? " (0 disables it)" : ""}`));
  };
  const percent = (path: string, v: number): void => {
    if (v < 0 || v > 100) bad(path, invalid(v, "must be between 0 and 100, inclusive"));
  };
  const oneOf = (path: string, v: string, allowed: readonly string[]): void => {
    if (!allowed.includes(v)) bad(path, unsupported(v, allowed));
  };
  const ip = (path: string, v: string): void => {
    const pr = ipProblem(v);
    if (pr) bad(path, invalid(v, pr));
  };

  for (const pr of featureGateProblems(c.featureGates)) {
    const name = /feature gate:? (\S+)/.exec(pr)?.[1] ?? "";
    bad(`featureGates[${name}]`, pr);
  }

  // Durations: upstream's zero means "default"; a negative one is never meaningful.
  const durations: [string, number][] = [
    ["syncFrequency", c.syncFrequency],
    ["fileCheckFrequency", c.fileCheckFrequency],
    ["authentication.webhook.cacheTTL", c.authentication.webhook.cacheTTL],
    ["authorization.webhook.cacheAuthorizedTTL", c.authorization.webhook.cacheAuthorizedTTL],
    ["authorization.webhook.cacheUnauthorizedTTL", c.authorization.webhook.cacheUnauthorizedTTL],
    ["nodeStatusUpdateFrequency", c.nodeStatusUpdateFrequency],
    ["nodeStatusReportFrequency", c.nodeStatusReportFrequency],
    ["imageMinimumGCAge", c.imageMinimumGCAge],
    ["volumeStatsAggPeriod", c.volumeStatsAggPeriod],
    ["runtimeRequestTimeout", c.runtimeRequestTimeout],
    ["evictionPressureTransitionPeriod", c.evictionPressureTransitionPeriod],
    ["logging.flushFrequency", c.logging.flushFrequency],
    ["podHousekeepingPeriod", c.podHousekeepingPeriod],
  ];
  for (const [path, ms] of durations) if (ms < 0) bad(path, invalid(formatMs(ms), "must not be negative"));
  if (c.podHousekeepingPeriod === 0) bad("podHousekeepingPeriod", invalid(formatMs(0), "must be greater than 0"));

  if (c.nodeLeaseDurationSeconds <= 0) bad("nodeLeaseDurationSeconds", invalid(c.nodeLeaseDurationSeconds, "must be greater than 0"));
  if (!c.cgroupsPerQOS && c.enforceNodeAllocatable.length > 0) {
    bad("enforceNodeAllocatable", invalid(c.enforceNodeAllocatable, "is not supported unless cgroupsPerQOS is true (set it to [] to disable enforcement)"), "cgroupsPerQOS");
  }
  notNegative("eventBurst", c.eventBurst);
  notNegative("eventRecordQPS", c.eventRecordQPS);
  notNegative("kubeAPIBurst", c.kubeAPIBurst);
  notNegative("kubeAPIQPS", c.kubeAPIQPS);
  notNegative("registryBurst", c.registryBurst);
  notNegative("registryPullQPS", c.registryPullQPS);
  notNegative("maxOpenFiles", c.maxOpenFiles);
  notNegative("maxPods", c.maxPods);
  notNegative("podsPerCore", c.podsPerCore);
  portRange("port", c.port, false);
  portRange("readOnlyPort", c.readOnlyPort, true);
  portRange("healthzPort", c.healthzPort, true);
  ip("address", c.address);
  ip("healthzBindAddress", c.healthzBindAddress);

  if (!gate("CustomCPUCFSQuotaPeriod")) {
    if (c.cpuCFSQuotaPeriod !== 100) bad("cpuCFSQuotaPeriod", invalid(formatMs(c.cpuCFSQuotaPeriod), "requires feature gate CustomCPUCFSQuotaPeriod"));
  } else if (c.cpuCFSQuotaPeriod < 1 || c.cpuCFSQuotaPeriod > 1000) {
    bad("cpuCFSQuotaPeriod", invalid(formatMs(c.cpuCFSQuotaPeriod), "must be between 1ms and 1s, inclusive"), "featureGates[CustomCPUCFSQuotaPeriod]");
  }

  percent("imageGCHighThresholdPercent", c.imageGCHighThresholdPercent);
  percent("imageGCLowThresholdPercent", c.imageGCLowThresholdPercent);
  if (c.imageGCLowThresholdPercent >= c.imageGCHighThresholdPercent) {
    bad(
      "imageGCLowThresholdPercent",
      invalid(c.imageGCLowThresholdPercent, `must be less than imageGCHighThresholdPercent (${c.imageGCHighThresholdPercent})`),
      "imageGCHighThresholdPercent",
    );
  }
  if (c.imageMaximumGCAge < 0) bad("imageMaximumGCAge", invalid(formatMs(c.imageMaximumGCAge), "must not be negative"));
  else if (c.imageMaximumGCAge > 0 && !gate("ImageMaximumGCAge")) bad("imageMaximumGCAge", invalid(formatMs(c.imageMaximumGCAge), "requires feature gate ImageMaximumGCAge"));
  else if (c.imageMaximumGCAge > 0 && c.imageMaximumGCAge <= c.imageMinimumGCAge) {
    bad("imageMaximumGCAge", invalid(formatMs(c.imageMaximumGCAge), `must be greater than imageMinimumGCAge (${formatMs(c.imageMinimumGCAge)})`), "imageMinimumGCAge");
  }
  if (c.nodeStatusMaxImages < -1) bad("nodeStatusMaxImages", invalid(c.nodeStatusMaxImages, "must be -1 or greater"));
  if (c.oomScoreAdj < -1000 || c.oomScoreAdj > 1000) bad("oomScoreAdj", invalid(c.oomScoreAdj, "must be between -1000 and 1000, inclusive"));
  if (c.maxParallelImagePulls !== null && c.maxParallelImagePulls < 1) bad("maxParallelImagePulls", invalid(c.maxParallelImagePulls, "must be a positive number"));
  if (c.serializeImagePulls && c.maxParallelImagePulls !== null && c.maxParallelImagePulls > 1) {
    bad("maxParallelImagePulls", invalid(c.maxParallelImagePulls, "cannot be larger than 1 unless serializeImagePulls is false"), "serializeImagePulls");
  }
  if (c.serverTLSBootstrap && !gate("RotateKubeletServerCertificate")) {
    bad("serverTLSBootstrap", invalid(true, "requires feature gate RotateKubeletServerCertificate"), "featureGates[RotateKubeletServerCertificate]");
  }
  if (c.tlsMinVersion !== "") oneOf("tlsMinVersion", c.tlsMinVersion, TLS_VERSIONS);

  c.registerWithTaints.forEach((t, i) => {
    const pr = taintProblem(t);
    if (pr) bad(`registerWithTaints[${i}]`, invalid(t, pr));
  });

  // Graceful node shutdown.
  if (gate("GracefulNodeShutdown")) {
    if (c.shutdownGracePeriodCriticalPods > c.shutdownGracePeriod) {
      bad(
        "shutdownGracePeriodCriticalPods",
        invalid(formatMs(c.shutdownGracePeriodCriticalPods), `must be <= shutdownGracePeriod (${formatMs(c.shutdownGracePeriod)})`),
        "shutdownGracePeriod",
      );
    }
    for (const [path, ms] of [
      ["shutdownGracePeriod", c.shutdownGracePeriod],
      ["shutdownGracePeriodCriticalPods", c.shutdownGracePeriodCriticalPods],
    ] as const) {
      if (ms < 0 || (ms > 0 && ms < 1000)) bad(path, invalid(formatMs(ms), "must be either zero or otherwise >= 1 sec"));
    }
  } else if (c.shutdownGracePeriod > 0 || c.shutdownGracePeriodCriticalPods > 0) {
    bad(
      "shutdownGracePeriod",
      invalid(formatMs(c.shutdownGracePeriod), "specifying shutdownGracePeriod or shutdownGracePeriodCriticalPods requires feature gate GracefulNodeShutdown"),
      "shutdownGracePeriodCriticalPods",
    );
  }

  // Node allocatable.
  for (const v of c.enforceNodeAllocatable) {
    if (!ENFORCEMENTS.includes(v)) {
      bad("enforceNodeAllocatable", unsupported(v, ENFORCEMENTS));
      continue;
    }
    if (v.startsWith("system-reserved") && c.systemReservedCgroup === "") {
      bad("systemReservedCgroup", `Required value: must be specified when ${JSON.stringify(v)} is in enforceNodeAllocatable`, "enforceNodeAllocatable");
    }
    if (v.startsWith("kube-reserved") && c.kubeReservedCgroup === "") {
      bad("kubeReservedCgroup", `Required value: must be specified when ${JSON.stringify(v)} is in enforceNodeAllocatable`, "enforceNodeAllocatable");
    }
    if (v === "none" && c.enforceNodeAllocatable.length > 1) bad("enforceNodeAllocatable", invalid(c.enforceNodeAllocatable, 'may not contain additional enforcements when "none" is specified'));
  }
  for (const base of ["system-reserved", "kube-reserved"]) {
    if (c.enforceNodeAllocatable.includes(base) && c.enforceNodeAllocatable.includes(`${base}-compressible`)) {
      bad("enforceNodeAllocatable", invalid(c.enforceNodeAllocatable, `may not contain both ${JSON.stringify(base)} and ${JSON.stringify(`${base}-compressible`)}`));
    }
  }
  for (const [name, reserved] of [
    ["systemReserved", c.systemReserved],
    ["kubeReserved", c.kubeReserved],
  ] as const) {
    for (const [res, q] of Object.entries(reserved)) {
      if (!RESERVABLE_RESOURCES.includes(res)) bad(`${name}[${res}]`, unsupported(res, RESERVABLE_RESOURCES));
      else {
        const pr = quantityProblem(q, { nonNegative: true });
        if (pr) bad(`${name}[${res}]`, invalid(q, pr));
      }
    }
  }

  oneOf("hairpinMode", c.hairpinMode, ["promiscuous-bridge", "hairpin-veth", "none"]);
  oneOf("cgroupDriver", c.cgroupDriver, ["cgroupfs", "systemd"]);
  oneOf("configMapAndSecretChangeDetectionStrategy", c.configMapAndSecretChangeDetectionStrategy, ["Get", "Cache", "Watch"]);
  oneOf("authorization.mode", c.authorization.mode, ["AlwaysAllow", "Webhook"]);
  oneOf("logging.format", c.logging.format, ["text", "json"]);

  if (c.memoryThrottlingFactor <= 0 || c.memoryThrottlingFactor > 1) {
    bad("memoryThrottlingFactor", invalid(c.memoryThrottlingFactor, "must be greater than 0 and less than or equal to 1.0"));
  }

  // The image service endpoint is the runtime's unless set: report it only when it differs.
  const endpoints: [string, string][] = [["containerRuntimeEndpoint", c.containerRuntimeEndpoint]];
  if (c.imageServiceEndpoint !== c.containerRuntimeEndpoint) endpoints.push(["imageServiceEndpoint", c.imageServiceEndpoint]);
  for (const [path, endpoint] of endpoints) {
    if (endpoint === "") bad(path, "Required value: the container runtime endpoint must be set");
    else if (!/^unix:\/\/\/./.test(endpoint)) bad(path, invalid(endpoint, 'only unix socket endpoints are supported (e.g. "unix:///run/containerd/containerd.sock")'));
  }

  // Container logs.
  if (c.containerLogMaxWorkers < 1) bad("containerLogMaxWorkers", invalid(c.containerLogMaxWorkers, "must be greater than or equal to 1"));
  if (c.containerLogMonitorInterval < 3000) {
    bad("containerLogMonitorInterval", invalid(formatMs(c.containerLogMonitorInterval), "must be a positive time duration greater than or equal to 3s"));
  }
  if (c.containerLogMaxFiles < 2) bad("containerLogMaxFiles", invalid(c.containerLogMaxFiles, "must be greater than 1"));
  const sizeProblem = quantityProblem(c.containerLogMaxSize, { positive: true });
  if (sizeProblem) bad("containerLogMaxSize", invalid(c.containerLogMaxSize, sizeProblem));
  if (c.podLogsDir === "") bad("podLogsDir", "Required value: must be specified");
  else if (!isAbsolute(c.podLogsDir)) bad("podLogsDir", invalid(c.podLogsDir, "must be an absolute path"));
  else if (posix.normalize(c.podLogsDir) !== c.podLogsDir || (c.podLogsDir.length > 1 && c.podLogsDir.endsWith("/"))) {
    bad("podLogsDir", invalid(c.podLogsDir, "must be normalized"));
  }
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(c.podLogsDir)) bad("podLogsDir", invalid(c.podLogsDir, "must contain ASCII characters only"));

  // Restart backoff cap (KubeletCrashLoopBackOffMax, beta and on in v1.35).
  if (gate("KubeletCrashLoopBackOffMax")) {
    const ms = c.crashLoopBackOff.maxContainerRestartPeriod;
    if (ms < 1000 || ms > 300_000) bad("crashLoopBackOff.maxContainerRestartPeriod", invalid(formatMs(ms), "must be set between 1s and 300s"));
  } else if (explicit.has("crashLoopBackOff.maxContainerRestartPeriod")) {
    bad("crashLoopBackOff.maxContainerRestartPeriod", "Forbidden: must not be set when feature gate KubeletCrashLoopBackOffMax is disabled", "featureGates[KubeletCrashLoopBackOffMax]");
  }

  // Eviction thresholds (parsed by the kubelet before it starts).
  const signals = (path: string, m: Readonly<Record<string, unknown>>, value: (sig: string, v: unknown) => string | undefined): void => {
    for (const [sig, v] of Object.entries(m)) {
      const sp = evictionSignalProblem(sig);
      if (sp) bad(`${path}[${sig}]`, unsupported(sig, EVICTION_SIGNALS));
      else {
        const vp = value(sig, v);
        if (vp) bad(`${path}[${sig}]`, vp);
      }
    }
  };
  const threshold = (_: string, v: unknown): string | undefined => {
    const pr = evictionThresholdProblem(String(v));
    return pr ? invalid(v, pr) : undefined;
  };
  signals("evictionHard", c.evictionHard, threshold);
  signals("evictionSoft", c.evictionSoft, (sig, v) => threshold(sig, v) ?? (c.evictionSoftGracePeriod[sig] === undefined ? `Required value: grace period must be specified for the soft eviction threshold ${sig} (evictionSoftGracePeriod)` : undefined));
  signals("evictionSoftGracePeriod", c.evictionSoftGracePeriod, (_, v) => (typeof v === "number" && v < 0 ? invalid(formatMs(v), "must be a positive value") : undefined));
  signals("evictionMinimumReclaim", c.evictionMinimumReclaim, (_, v) => {
    const pr = minimumReclaimProblem(String(v));
    return pr ? invalid(v, pr) : undefined;
  });

  // Networking.
  c.clusterDNS.forEach((dns, i) => ip(`clusterDNS[${i}]`, dns));
  if (c.clusterDomain !== "") {
    const pr = dns1123SubdomainProblem(c.clusterDomain);
    if (pr) bad("clusterDomain", invalid(c.clusterDomain, pr));
  }
  if (c.podCIDR !== "") {
    for (const cidr of c.podCIDR.split(",")) {
      const pr = cidrProblem(cidr.trim());
      if (pr) bad("podCIDR", invalid(c.podCIDR, pr));
    }
  }
  c.allowedUnsafeSysctls.forEach((s, i) => {
    const name = s.endsWith("*") ? s.slice(0, -1) : s;
    if (!/^[a-z0-9]([-_a-z0-9]*[a-z0-9])?([./][a-z0-9]([-_a-z0-9]*[a-z0-9])?)*[./]?$/.test(name) || !NAMESPACED_SYSCTL_PREFIXES.some((p) => name.startsWith(p))) {
      bad(`allowedUnsafeSysctls[${i}]`, invalid(s, "is not a sysctl (or sysctl pattern ending in *) known to be namespaced"));
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// The file

export interface KubeletConfigFile {
  /** Absolute path of the file. */
  path: string;
  /** What the file set, relative paths resolved against its directory. */
  fields: PartialKubeletConfiguration;
  /** Upstream fields the file set that deckhand accepts without acting on them. */
  ignoredFields: string[];
}

/**
 * Parses and validates a KubeletConfiguration file (YAML or JSON) on its own: strict decoding, types, values, and
 * the cross-field rules with upstream's defaults filling the rest. Every problem is reported in one
 * `DeckhandError("InvalidConfig")`, each naming the field and value.
 */
export function parseKubeletConfigFile(text: string, path: string): KubeletConfigFile {
  const file = resolvePath(path);
  const d = decodeFile(text, file);
  const problems = d.fatal.length > 0 ? d.fatal : [...d.problems, ...validate(finish(applyKubeletDefaults(d.fields)), d.set)];
  if (problems.length > 0) {
    const lines = problems.map((p) => (p.path === "" ? p.detail : `${p.path}: ${p.detail}`));
    throw configError(listMessage(`kubelet config ${file}`, lines), lines);
  }
  return { path: file, fields: d.fields, ignoredFields: d.ignoredFields };
}

// ---------------------------------------------------------------------------------------------------------
// Flags

/** The command line, parsed: deckhand's flag-only settings and the KubeletConfiguration fields flags override. */
export interface KubeletFlags {
  help: boolean;
  config?: string;
  kubeconfig?: string;
  hostnameOverride?: string;
  nodeIP?: string[];
  rootDir?: string;
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

const str = <T extends string>(v: string): { value: T } => ({ value: v as T });
const bool = (v: string): { value: boolean } | { error: string } => {
  const b = parseGoBool(v);
  return b === undefined ? { error: `strconv.ParseBool: parsing ${JSON.stringify(v)}: invalid syntax` } : { value: b };
};

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  config: {
    type: "string",
    help: "The KubeletConfiguration file (kubelet.config.k8s.io/v1beta1, YAML or JSON). Flags override its values.",
    set: (f, v) => {
      f.config = v;
      return undefined;
    },
  },
  kubeconfig: {
    type: "string",
    help: "Path to a kubeconfig file for the API server. Without it the kubelet runs standalone.",
    set: (f, v) => {
      f.kubeconfig = v;
      return undefined;
    },
  },
  "hostname-override": {
    type: "string",
    help: "The node name to use instead of the machine's hostname (a DNS-1123 subdomain; lowercased).",
    set: (f, v) => {
      f.hostnameOverride = v;
      return undefined;
    },
  },
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
  "root-dir": {
    type: "string",
    help: "Directory for the kubelet's files (pods, volumes, plugins).",
    def: "/var/lib/kubelet",
    set: (f, v) => {
      f.rootDir = v;
      return undefined;
    },
  },
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
  "cni-conf-dir": {
    type: "string",
    help: "Where the kubelet writes the CNI network configuration (deckhand).",
    def: "/etc/cni/net.d",
    set: (f, v) => {
      f.cniConfDir = v;
      return undefined;
    },
  },
  "cni-bin-dir": {
    type: "string",
    help: "Where the CNI plugin binaries are (deckhand).",
    def: "/opt/cni/bin",
    set: (f, v) => {
      f.cniBinDir = v;
      return undefined;
    },
  },
  "cni-daemon-socket": {
    type: "string",
    help: "Unix socket on which the kubelet serves the deckhand-bridge daemon, the fast path of every CNI call; empty runs none (deckhand).",
    def: "/run/deckhand/cni.sock",
    set: (f, v) => {
      f.cniDaemonSocket = v;
      return undefined;
    },
  },
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

// ---------------------------------------------------------------------------------------------------------
// Loading: flags, file, defaults, flag overrides, validation

export type ReadFile = (path: string, encoding: "utf8") => string;

export interface LoadEnvironment {
  /** The machine's hostname (default os.hostname). */
  hostname?: () => string;
  /** The directory relative flag paths resolve against (default process.cwd()). */
  cwd?: string;
}

/**
 * The kubelet's configuration from its command line: flags → the --config file (if any) → upstream defaults →
 * flag overrides → validation. Returns "help" for --help (print `usage()`). Every problem found is reported in
 * one `DeckhandError("InvalidConfig")` before anything is started; each names the field (and the file or flag
 * it came from) and the value.
 */
export function loadKubeletConfig(argv: readonly string[], readFile: ReadFile = readFileSync, env: LoadEnvironment = {}): KubeletConfig | "help" {
  const flags = parseKubeletFlags(argv);
  if (flags.help) return "help";
  const cwd = env.cwd ?? process.cwd();
  const abs = (p: string): string => (p === "" ? p : resolvePath(cwd, p));

  const origins = new Map<string, Origin>();
  const explicit = new Set<string>();
  const problems: string[] = [];
  let fileFields: PartialKubeletConfiguration = {};
  let ignoredFields: string[] = [];

  const configFile = flags.config ? abs(flags.config) : undefined;
  if (configFile !== undefined) {
    let text: string;
    try {
      text = readFile(configFile, "utf8");
    } catch (err) {
      const line = `cannot read it: ${errorMessage(err)}`;
      throw new DeckhandError("InvalidConfig", `kubelet config ${configFile}: ${line}`, { cause: err, details: { errors: [line] } });
    }
    const d = decodeFile(text, configFile);
    if (d.fatal.length > 0) {
      const lines = d.fatal.map((p) => (p.path === "" ? p.detail : `${p.path}: ${p.detail}`));
      throw configError(listMessage(`kubelet config ${configFile}`, lines), lines);
    }
    const fileOrigin: Origin = { kind: "file", file: configFile };
    for (const path of d.set) {
      origins.set(path, fileOrigin);
      explicit.add(path);
    }
    problems.push(...d.problems.map((p) => render(p, origins, fileOrigin)));
    fileFields = d.fields;
    ignoredFields = d.ignoredFields;
  }

  // Flags override the file once its defaults are applied, as upstream re-parses them over the loaded file.
  for (const [path, flag] of flags.setBy) {
    origins.set(path, { kind: "flag", flag });
    explicit.add(path);
  }
  const base = applyKubeletDefaults(fileFields);
  const { logging, featureGates, authentication: _authn, authorization: _authz, crashLoopBackOff: _clb, ...flat } = flags.overrides;
  if (flat.staticPodPath !== undefined) flat.staticPodPath = abs(flat.staticPodPath);
  const resolved = finish({
    ...base,
    ...flat,
    logging: { ...base.logging, ...logging },
    featureGates: { ...base.featureGates, ...featureGates },
  });
  problems.push(...validate(resolved, explicit).map((p) => render(p, origins)));

  // The node name: upstream's GetHostname (override or the machine's, trimmed and lowercased).
  const hostnameOverride = flags.hostnameOverride ?? "";
  const fromFlag = hostnameOverride !== "";
  const hostname = (fromFlag ? hostnameOverride : (env.hostname ?? osHostname)()).trim().toLowerCase();
  const where = fromFlag ? "hostname (--hostname-override)" : "hostname (the machine's; set --hostname-override)";
  if (hostname === "") problems.push(`${where}: Required value: empty hostname is invalid`);
  else {
    const pr = dns1123SubdomainProblem(hostname);
    if (pr) problems.push(`${where}: ${invalid(hostname, pr)}`);
  }

  if (problems.length > 0) {
    const message = problems.length === 1 ? (problems[0] ?? "") : `invalid kubelet configuration (${problems.length} errors):\n${problems.map((l) => `  - ${l}`).join("\n")}`;
    throw configError(message, problems);
  }

  return {
    ...resolved,
    configFile,
    hostname,
    hostnameOverride,
    nodeIP: flags.nodeIP ?? [],
    kubeconfig: abs(flags.kubeconfig ?? ""),
    rootDir: abs(flags.rootDir ?? "/var/lib/kubelet"),
    cniConfDir: abs(flags.cniConfDir ?? "/etc/cni/net.d"),
    cniBinDir: abs(flags.cniBinDir ?? "/opt/cni/bin"),
    cniDaemonSocket: flags.cniDaemonSocket === "" ? "" : abs(flags.cniDaemonSocket ?? "/run/deckhand/cni.sock"),
    nodeLabels: { ...flags.nodeLabels },
    verbosity: resolved.logging.verbosity,
    logLevel: levelForVerbosity(resolved.logging.verbosity),
    ignoredFields,
  };
}
