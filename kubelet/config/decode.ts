/**
 * The KubeletConfiguration file through the shared strict decoder (src-shared/config-decode.ts): the v1beta1
 * schema (every upstream field, its JSON type, whether deckhand implements it), relative paths resolved against
 * the file's directory (KubeletConfigurationPathRefs), and how problems name the file or flag they come from.
 */
import { dirname, isAbsolute, join } from "node:path";
import {
  decodeConfigDocument,
  enumCheck,
  IGN,
  INERT,
  invalid,
  isObject,
  obj,
  S,
  type DecodedDocument,
  type Json,
  type ObjectSpec,
  type Problem,
} from "../../src-shared/config-decode.ts";
import { KUBELET_CONFIG_API_VERSION, KUBELET_CONFIG_KIND, type PartialKubeletConfiguration } from "./types.ts";
import { quantitySign } from "./validators.ts";

export type Origin = { kind: "file"; file: string } | { kind: "flag"; flag: string };

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

export function render(p: Problem, origins: ReadonlyMap<string, Origin>, fallback?: Origin): string {
  let origin = p.path === "" ? undefined : originOf(p.path, origins);
  for (const r of p.related ?? []) origin ??= originOf(r, origins);
  origin ??= fallback;
  const field = p.path === "" ? "" : `${p.path}: `;
  if (origin?.kind === "file") return `kubelet config ${origin.file}: ${field}${p.detail}`;
  if (origin?.kind === "flag") return `${p.path} (${origin.flag}): ${p.detail}`;
  return `${field}${p.detail}`;
}

const iptablesBit = (v: unknown): string | undefined =>
  typeof v === "number" && (v < 0 || v > 31) ? invalid(v, "must be between 0 and 31, inclusive") : undefined;

const LOGGING_FORMAT_OPTIONS = obj({ splitStream: IGN("bool"), infoBufferSize: IGN("quantity") });

export const SCHEMA: ObjectSpec = obj({
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
  tlsCipherSuites: S("strings"),
  tlsCurvePreferences: S("int32s"),
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
  enableContentionProfiling: INERT("bool", [false], "false (no profiling handler)"),
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

export interface DecodedFile extends DecodedDocument {
  fields: PartialKubeletConfiguration;
}

export function decodeFile(text: string, file: string): DecodedFile {
  const d = decodeConfigDocument(text, { apiVersion: KUBELET_CONFIG_API_VERSION, kind: KUBELET_CONFIG_KIND, schema: SCHEMA });
  const fields = d.fields;
  // Relative paths are relative to the file's directory.
  const dir = dirname(file);
  for (const refPath of FILE_PATH_FIELDS) {
    let holder: Json | undefined = fields;
    for (const k of refPath.slice(0, -1)) holder = isObject(holder?.[k]) ? holder[k] : undefined;
    const last = refPath[refPath.length - 1] ?? "";
    const value = holder?.[last];
    if (holder && typeof value === "string" && value !== "" && !isAbsolute(value)) holder[last] = join(dir, value);
  }
  return { ...d, fields };
}
