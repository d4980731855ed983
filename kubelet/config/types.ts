/**
 * The KubeletConfiguration (kubelet.config.k8s.io/v1beta1) as deckhand resolves it: the fields it implements,
 * durations in milliseconds, and deckhand's flag-only settings (KubeletConfig).
 */
import type { LevelWithSilent } from "pino";
import type { Milliseconds } from "../../src-shared/config-decode.ts";

export type { Milliseconds } from "../../src-shared/config-decode.ts";
export const KUBELET_CONFIG_API_VERSION = "kubelet.config.k8s.io/v1beta1";
export const KUBELET_CONFIG_KIND = "KubeletConfiguration";


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
  /** Go (IANA) cipher suite names; empty: the defaults. */
  tlsCipherSuites: string[];
  /** Go tls.CurveID numbers; empty: the defaults. */
  tlsCurvePreferences: number[];
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
  /** --cert-dir: where the self-signed serving certificate goes when tlsCertFile is not set (default /var/lib/kubelet/pki). */
  certDir: string;
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
