import { describe, expect, it } from "vitest";
import { parseKubeletConfigFile } from "../../../../kubelet/config/kubelet-config.ts";
import { CONFIG, HEADER, load, configError, errorsOf } from "./helpers.ts";

describe("validation", () => {
  const cases: [string, string][] = [
    ["maxPods: -1\n", "maxPods: Invalid value: -1: must not be a negative number"],
    ["cgroupDriver: foo\n", 'cgroupDriver: Unsupported value: "foo": supported values: "cgroupfs", "systemd"'],
    ["cgroupDriver: systemd\n", 'cgroupDriver: Invalid value: "systemd": the systemd cgroup driver is not implemented by deckhand'],
    ["hairpinMode: bridge\n", 'hairpinMode: Unsupported value: "bridge": supported values: "promiscuous-bridge", "hairpin-veth", "none"'],
    ["port: 70000\n", "port: Invalid value: 70000: must be between 1 and 65535, inclusive"],
    ["readOnlyPort: -5\n", "readOnlyPort: Invalid value: -5: must be between 0 and 65535, inclusive (0 disables it)"],
    ["readOnlyPort: 10255\n", "readOnlyPort: Invalid value: 10255: the unauthenticated read-only port is not implemented by deckhand (set 0)"],
    ["tlsCipherSuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_RSA_WITH_RC4_128_SHA]\n", 'tlsCipherSuites[1]: Invalid value: "TLS_RSA_WITH_RC4_128_SHA": unsupported cipher suite TLS_RSA_WITH_RC4_128_SHA'],
    ["tlsCurvePreferences: [23, 99]\n", "tlsCurvePreferences[1]: Invalid value: 99: unsupported curve ID 99"],
    ["enableProfilingHandler: true\n", "enableProfilingHandler: Invalid value: true: deckhand has no profiling handler (/debug/pprof)"],
    ["enableDebugFlagsHandler: true\n", "enableDebugFlagsHandler: Invalid value: true: deckhand cannot change its log verbosity at run time (/debug/flags/v)"],
    ["enableContentionProfiling: true\n", "enableContentionProfiling: "],
    ["healthzPort: 65536\n", "healthzPort: Invalid value: 65536: must be between 0 and 65535, inclusive (0 disables it)"],
    ["imageGCHighThresholdPercent: 101\n", "imageGCHighThresholdPercent: Invalid value: 101: must be between 0 and 100, inclusive"],
    ["imageGCLowThresholdPercent: 90\n", "imageGCLowThresholdPercent: Invalid value: 90: must be less than imageGCHighThresholdPercent (85)"],
    ["nodeLeaseDurationSeconds: -40\n", "nodeLeaseDurationSeconds: Invalid value: -40: must be greater than 0"],
    ["kubeAPIQPS: -1\n", "kubeAPIQPS: Invalid value: -1: must not be a negative number"],
    ["eventBurst: -1\n", "eventBurst: Invalid value: -1: must not be a negative number"],
    ["oomScoreAdj: -1001\n", "oomScoreAdj: Invalid value: -1001: must be between -1000 and 1000, inclusive"],
    ["memoryThrottlingFactor: 1.5\n", "memoryThrottlingFactor: Invalid value: 1.5: must be greater than 0 and less than or equal to 1.0"],
    ["containerLogMaxFiles: 1\n", "containerLogMaxFiles: Invalid value: 1: must be greater than 1"],
    ["containerLogMaxSize: ten\n", 'containerLogMaxSize: Invalid value: "ten": quantities must match'],
    ["containerLogMonitorInterval: 1s\n", 'containerLogMonitorInterval: Invalid value: "1s": must be a positive time duration greater than or equal to 3s'],
    ["podLogsDir: /var/log//pods\n", 'podLogsDir: Invalid value: "/var/log//pods": must be normalized'],
    ["maxParallelImagePulls: 0\n", "maxParallelImagePulls: Invalid value: 0: must be a positive number"],
    ["serializeImagePulls: true\nmaxParallelImagePulls: 3\n", "maxParallelImagePulls: Invalid value: 3: cannot be larger than 1 unless serializeImagePulls is false"],
    ["address: localhost\n", 'address: Invalid value: "localhost": must be a valid IP address'],
    ["clusterDNS: [10.96.0.10, dns]\n", 'clusterDNS[1]: Invalid value: "dns": must be a valid IP address'],
    ["clusterDomain: Cluster_Local\n", 'clusterDomain: Invalid value: "Cluster_Local": a lowercase RFC 1123 subdomain'],
    ["podCIDR: 10.244.0.0\n", 'podCIDR: Invalid value: "10.244.0.0": must be a CIDR'],
    ["authorization: {mode: RBAC}\n", 'authorization.mode: Unsupported value: "RBAC": supported values: "AlwaysAllow", "Webhook"'],
    ["logging: {format: xml}\n", 'logging.format: Unsupported value: "xml": supported values: "text", "json"'],
    ["tlsMinVersion: TLS1.2\n", 'tlsMinVersion: Unsupported value: "TLS1.2"'],
    ["kubeReserved: {gpu: \"1\"}\n", 'kubeReserved[gpu]: Unsupported value: "gpu": supported values: "cpu", "memory", "ephemeral-storage", "pid"'],
    ["systemReserved: {memory: \"-1Gi\"}\n", 'systemReserved[memory]: Invalid value: "-1Gi": must not be negative'],
    ["evictionHard: {memory.free: 1Gi}\n", 'evictionHard[memory.free]: Unsupported value: "memory.free"'],
    ["evictionHard: {nodefs.available: 110%}\n", 'evictionHard[nodefs.available]: Invalid value: "110%": percentage must be <= 100%'],
    ["evictionHard: {memory.available: \"0\"}\n", 'evictionHard[memory.available]: Invalid value: "0": eviction threshold must be positive'],
    ["evictionSoft: {memory.available: 1Gi}\n", "evictionSoft[memory.available]: Required value: grace period must be specified for the soft eviction threshold memory.available"],
    ["evictionSoftGracePeriod: {memory.available: -1m}\n", 'evictionSoftGracePeriod[memory.available]: Invalid value: "-1m0s": must be a positive value'],
    ["evictionMinimumReclaim: {memory.available: 0%}\n", 'evictionMinimumReclaim[memory.available]: Invalid value: "0%": percentage minimum reclaim must be positive'],
    ["enforceNodeAllocatable: [pods, everything]\n", 'enforceNodeAllocatable: Unsupported value: "everything"'],
    ["enforceNodeAllocatable: [pods, system-reserved]\n", 'systemReservedCgroup: Required value: must be specified when "system-reserved" is in enforceNodeAllocatable'],
    ["cgroupsPerQOS: false\nenforceNodeAllocatable: []\n", "cgroupsPerQOS: Invalid value: false: pods outside the QoS cgroup hierarchy are not implemented by deckhand (set true)"],
    ["registerWithTaints: [{key: dedicated, value: gpu, effect: NoScheduleX}]\n", 'registerWithTaints[0]: Invalid value: {"key":"dedicated","value":"gpu","effect":"NoScheduleX"}: invalid taint effect "NoScheduleX"'],
    ["shutdownGracePeriod: 10s\nshutdownGracePeriodCriticalPods: 20s\n", 'shutdownGracePeriodCriticalPods: Invalid value: "20s": must be <= shutdownGracePeriod (10s)'],
    ["shutdownGracePeriod: 500ms\n", 'shutdownGracePeriod: Invalid value: "500ms": must be either zero or otherwise >= 1 sec'],
    ["imageMaximumGCAge: 1m\n", 'imageMaximumGCAge: Invalid value: "1m0s": must be greater than imageMinimumGCAge (2m0s)'],
    ["cpuCFSQuotaPeriod: 50ms\n", 'cpuCFSQuotaPeriod: Invalid value: "50ms": requires feature gate CustomCPUCFSQuotaPeriod'],
    ["featureGates: {CustomCPUCFSQuotaPeriod: true}\ncpuCFSQuotaPeriod: 2s\n", 'cpuCFSQuotaPeriod: Invalid value: "2s": must be between 1ms and 1s, inclusive'],
    ["crashLoopBackOff: {maxContainerRestartPeriod: 10m}\n", 'crashLoopBackOff.maxContainerRestartPeriod: Invalid value: "10m0s": must be set between 1s and 300s'],
    [
      "featureGates: {KubeletCrashLoopBackOffMax: false}\ncrashLoopBackOff: {maxContainerRestartPeriod: 10s}\n",
      "crashLoopBackOff.maxContainerRestartPeriod: Forbidden: must not be set when feature gate KubeletCrashLoopBackOffMax is disabled",
    ],
    ["featureGates: {NoSuchGate: true}\n", "featureGates[NoSuchGate]: unrecognized feature gate: NoSuchGate"],
    ["featureGates: {SidecarContainers: false}\n", "featureGates[SidecarContainers]: cannot set feature gate SidecarContainers to false, feature is locked to true"],
    ["containerRuntimeEndpoint: tcp://10.0.0.1:1234\n", 'containerRuntimeEndpoint: Invalid value: "tcp://10.0.0.1:1234": only unix socket endpoints are supported'],
    ["allowedUnsafeSysctls: [vm.swappiness]\n", 'allowedUnsafeSysctls[0]: Invalid value: "vm.swappiness": is not a sysctl (or sysctl pattern ending in *) known to be namespaced'],
  ];
  it.each(cases)("%s", (body, expected) => {
    const err = configError(() => load(body));
    expect(errorsOf(err)).toHaveLength(1);
    expect(err.message).toContain(`kubelet config ${CONFIG}: ${expected}`);
  });

  it("refuses enforceNodeAllocatable without cgroupsPerQOS, as upstream", () => {
    const err = configError(() => load("cgroupsPerQOS: false\n"));
    expect(err.message).toContain('enforceNodeAllocatable: Invalid value: ["pods"]: is not supported unless cgroupsPerQOS is true');
  });

  it("accepts the valid forms of the same fields", () => {
    const c = load(`readOnlyPort: 0
healthzPort: 0
imageGCHighThresholdPercent: 90
imageGCLowThresholdPercent: 70
enforceNodeAllocatable: []
evictionHard: {memory.available: 0%, nodefs.available: 100%, pid.available: "5%"}
evictionSoft: {memory.available: 1.5Gi}
evictionSoftGracePeriod: {memory.available: 1m30s}
evictionMinimumReclaim: {memory.available: 500Mi, nodefs.available: 5%}
kubeReserved: {cpu: 100m, memory: 256Mi, ephemeral-storage: 1Gi, pid: "1000"}
registerWithTaints: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]
shutdownGracePeriod: 30s
shutdownGracePeriodCriticalPods: 10s
imageMaximumGCAge: 168h
crashLoopBackOff: {maxContainerRestartPeriod: 1s}
podCIDR: 10.244.1.0/24,fd00:10:244:1::/64
allowedUnsafeSysctls: [net.core.somaxconn, kernel.msg*]
containerRuntimeEndpoint: /run/containerd/containerd.sock
tlsMinVersion: VersionTLS12
`);
    expect(c).toMatchObject({
      cgroupRoot: "/",
      evictionSoftGracePeriod: { "memory.available": 90_000 },
      registerWithTaints: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }],
      containerRuntimeEndpoint: "unix:///run/containerd/containerd.sock",
      crashLoopBackOff: { maxContainerRestartPeriod: 1_000 },
      imageMaximumGCAge: 168 * 3_600_000,
    });
  });

  it("collects every error of the file and the flags into one InvalidConfig", () => {
    const err = configError(() =>
      load("podCIDRs: []\nmaxPods: -1\ncgroupDriver: foo\nimageGCLowThresholdPercent: 95\nsyncFrequency: 5\n", ["--hostname-override=bad_name", "--cluster-dns=not-an-ip"]),
    );
    const errors = errorsOf(err);
    expect(errors).toHaveLength(7);
    expect(err.message.split("\n")[0]).toBe("invalid kubelet configuration (7 errors):");
    for (const e of errors) expect(err.message).toContain(e);
    expect(errors).toEqual([
      `kubelet config ${CONFIG}: unknown field "podCIDRs"`,
      `kubelet config ${CONFIG}: syncFrequency: Invalid value: 5: must be a duration string with a unit, e.g. "10s", "1m30s", "100ms"`,
      `kubelet config ${CONFIG}: maxPods: Invalid value: -1: must not be a negative number`,
      `kubelet config ${CONFIG}: imageGCLowThresholdPercent: Invalid value: 95: must be less than imageGCHighThresholdPercent (85)`,
      `kubelet config ${CONFIG}: cgroupDriver: Unsupported value: "foo": supported values: "cgroupfs", "systemd"`,
      'clusterDNS[0] (--cluster-dns): Invalid value: "not-an-ip": must be a valid IP address',
      expect.stringMatching(/^hostname \(--hostname-override\): Invalid value: "bad_name": a lowercase RFC 1123 subdomain/) as string,
    ]);
  });

  it("parseKubeletConfigFile validates the file alone and lists all its problems", () => {
    const err = configError(() => parseKubeletConfigFile(`${HEADER}maxPods: -1\ncgroupDriver: foo\n`, CONFIG));
    expect(err.message).toBe(
      `kubelet config ${CONFIG}: 2 errors:\n` +
        "  - maxPods: Invalid value: -1: must not be a negative number\n" +
        '  - cgroupDriver: Unsupported value: "foo": supported values: "cgroupfs", "systemd"',
    );
  });
});
