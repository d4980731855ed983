/**
 * Validation of a resolved configuration: pkg/kubelet/apis/config/validation/validation.go (ranges, enums,
 * cross-field rules, the feature gates some fields need), plus the eviction, reserved-resource and taint checks
 * the kubelet makes before it starts (pkg/kubelet/eviction/helpers.go, pkg/kubelet/cm, pkg/util/taints).
 */
import { isAbsolute, posix } from "node:path";
import { invalid, unsupported, type Problem } from "../../src-shared/config-decode.ts";
import { formatMs } from "../../src-shared/go-duration.ts";
import { featureGateProblems, gateEnabled } from "./feature-gates.ts";
import type { KubeletConfiguration } from "./types.ts";
import { cipherSuiteProblem, curveProblem } from "../server/tls-options.ts";
import {
  cidrProblem,
  dns1123SubdomainProblem,
  EVICTION_SIGNALS,
  evictionSignalProblem,
  evictionThresholdProblem,
  ipProblem,
  minimumReclaimProblem,
  quantityProblem,
  RESERVABLE_RESOURCES,
  taintProblem,
} from "./validators.ts";
const NAMESPACED_SYSCTL_PREFIXES = ["net.", "kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue.", "kernel.hostname", "kernel.domainname"];
const ENFORCEMENTS = ["pods", "system-reserved", "system-reserved-compressible", "kube-reserved", "kube-reserved-compressible", "none"];
const TLS_VERSIONS = ["VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13"];

/**
 * Every problem of a resolved configuration (upstream's ValidateKubeletConfiguration plus the checks the kubelet
 * makes before it starts). `explicit` holds the paths a file or flag set (some rules apply only to set fields).
 */
export function validateKubeletConfiguration(c: KubeletConfiguration, explicit: ReadonlySet<string>): Problem[] {
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
  c.tlsCipherSuites.forEach((s, i) => {
    const pr = cipherSuiteProblem(s);
    if (pr) bad(`tlsCipherSuites[${i}]`, invalid(s, pr));
  });
  c.tlsCurvePreferences.forEach((id, i) => {
    const pr = curveProblem(id);
    if (pr) bad(`tlsCurvePreferences[${i}]`, invalid(id, pr));
  });
  // The kubelet server's parts deckhand does not implement: refused, never ignored.
  if (c.readOnlyPort > 0) bad("readOnlyPort", invalid(c.readOnlyPort, "the unauthenticated read-only port is not implemented by deckhand (set 0)"));
  if (c.serverTLSBootstrap) bad("serverTLSBootstrap", invalid(true, "serving certificates from the certificates API are not implemented by deckhand (use tlsCertFile/tlsPrivateKeyFile or the self-signed certificate)"));
  if (c.enableDebugFlagsHandler && explicit.has("enableDebugFlagsHandler")) bad("enableDebugFlagsHandler", invalid(true, "deckhand cannot change its log verbosity at run time (/debug/flags/v)"));
  if (c.enableProfilingHandler && explicit.has("enableProfilingHandler")) bad("enableProfilingHandler", invalid(true, "deckhand has no profiling handler (/debug/pprof)"));

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
  // Pods always go in the QoS hierarchy (kubelet/cm); upstream's flat layout under cgroupRoot is not made.
  if (!c.cgroupsPerQOS) bad("cgroupsPerQOS", invalid(false, "pods outside the QoS cgroup hierarchy are not implemented by deckhand (set true)"));
  // The pod and QoS cgroups are made with the cgroupfs driver's names only (kubelet/cm): no .slice units.
  if (c.cgroupDriver === "systemd") {
    bad("cgroupDriver", invalid(c.cgroupDriver, 'the systemd cgroup driver is not implemented by deckhand (use "cgroupfs", with containerd\'s SystemdCgroup = false)'));
  }
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
