/**
 * Upstream's v1beta1 defaults (pkg/kubelet/apis/config/v1beta1/defaults.go) with their zero-value semantics
 * (`syncFrequency: 0s`, `maxPods: 0`... mean "default"), and the start-up fixes cmd/kubelet makes after flags.
 */
import { DEFAULT_EVICTION_HARD, type KubeletConfiguration, type PartialKubeletConfiguration } from "./types.ts";

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
    tlsCipherSuites: [...(p.tlsCipherSuites ?? [])],
    tlsCurvePreferences: [...(p.tlsCurvePreferences ?? [])],
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
    // Upstream's default is true (Go's pprof); deckhand has no profiler to serve: off, and asking for it is refused.
    enableProfilingHandler: p.enableProfilingHandler ?? false,
    // Upstream's default is true (klog's /debug/flags/v); pino child loggers keep the level they were made with,
    // so deckhand cannot change verbosity at run time: off, and asking for it is refused.
    enableDebugFlagsHandler: p.enableDebugFlagsHandler ?? false,
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
export function finish(c: KubeletConfiguration): KubeletConfiguration {
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
