import { describe, expect, it } from "vitest";
import { DEFAULT_EVICTION_HARD, defaultKubeletConfiguration, loadKubeletConfig } from "../../../../kubelet/config/kubelet-config.ts";
import { files, env, load } from "./helpers.ts";

describe("defaults", () => {
  it("match upstream's v1beta1 defaults (reference §1.17 and the sections it points to)", () => {
    const c = defaultKubeletConfiguration();
    expect(c).toMatchObject({
      enableServer: true,
      syncFrequency: 60_000,
      fileCheckFrequency: 20_000,
      address: "0.0.0.0",
      port: 10250,
      readOnlyPort: 0,
      healthzBindAddress: "127.0.0.1",
      healthzPort: 10248,
      registryPullQPS: 5,
      registryBurst: 10,
      eventRecordQPS: 50,
      eventBurst: 100,
      kubeAPIQPS: 50,
      kubeAPIBurst: 100,
      contentType: "application/vnd.kubernetes.protobuf",
      serializeImagePulls: true,
      maxParallelImagePulls: null,
      nodeStatusUpdateFrequency: 10_000,
      nodeStatusReportFrequency: 300_000,
      nodeLeaseDurationSeconds: 40,
      imageMinimumGCAge: 120_000,
      imageMaximumGCAge: 0,
      imageGCHighThresholdPercent: 85,
      imageGCLowThresholdPercent: 80,
      volumeStatsAggPeriod: 60_000,
      cgroupsPerQOS: true,
      cgroupDriver: "cgroupfs",
      cgroupRoot: "/",
      runtimeRequestTimeout: 120_000,
      hairpinMode: "promiscuous-bridge",
      maxPods: 110,
      podPidsLimit: -1,
      resolvConf: "/etc/resolv.conf",
      cpuCFSQuota: true,
      cpuCFSQuotaPeriod: 100,
      nodeStatusMaxImages: 50,
      maxOpenFiles: 1_000_000,
      evictionPressureTransitionPeriod: 300_000,
      evictionMaxPodGracePeriod: 0,
      mergeDefaultEvictionSettings: false,
      failSwapOn: true,
      containerLogMaxSize: "10Mi",
      containerLogMaxFiles: 5,
      containerLogMaxWorkers: 1,
      containerLogMonitorInterval: 10_000,
      configMapAndSecretChangeDetectionStrategy: "Watch",
      enforceNodeAllocatable: ["pods"],
      seccompDefault: false,
      failCgroupV1: false,
      memoryThrottlingFactor: 0.9,
      localStorageCapacityIsolation: true,
      containerRuntimeEndpoint: "unix:///run/containerd/containerd.sock",
      imageServiceEndpoint: "unix:///run/containerd/containerd.sock",
      podLogsDir: "/var/log/pods",
      podHousekeepingPeriod: 2_000,
      shutdownGracePeriod: 0,
      shutdownGracePeriodCriticalPods: 0,
      registerNode: true,
      clusterDomain: "",
      clusterDNS: [],
      oomScoreAdj: -999,
      crashLoopBackOff: { maxContainerRestartPeriod: 300_000 },
      logging: { format: "text", flushFrequency: 5_000, verbosity: 0 },
    });
    // §1.15: the config-file authn/authz defaults, not the legacy flag defaults.
    expect(c.authentication).toEqual({ x509: { clientCAFile: "" }, webhook: { enabled: true, cacheTTL: 120_000 }, anonymous: { enabled: false } });
    expect(c.authorization).toEqual({ mode: "Webhook", webhook: { cacheAuthorizedTTL: 300_000, cacheUnauthorizedTTL: 30_000 } });
    // §1.11: the Linux hard eviction thresholds.
    expect(c.evictionHard).toEqual({
      "memory.available": "100Mi",
      "nodefs.available": "10%",
      "nodefs.inodesFree": "5%",
      "imagefs.available": "15%",
      "imagefs.inodesFree": "5%",
    });
  });

  it("without --config are the config-file defaults plus deckhand's flag defaults", () => {
    const c = loadKubeletConfig([], files({}), { hostname: () => "  Worker-1.Example.COM \n", cwd: "/" });
    expect(c).not.toBe("help");
    if (c === "help") return;
    expect(c).toMatchObject({
      configFile: undefined,
      hostname: "worker-1.example.com",
      hostnameOverride: "",
      nodeIP: [],
      kubeconfig: "",
      rootDir: "/var/lib/kubelet",
      cniConfDir: "/etc/cni/net.d",
      cniBinDir: "/opt/cni/bin",
      nodeLabels: {},
      verbosity: 0,
      logLevel: "info",
      ignoredFields: [],
      maxPods: 110,
      authentication: { anonymous: { enabled: false } },
      authorization: { mode: "Webhook" },
    });
  });

  it("treat upstream's zero values as unset: a kubeadm-generated file resolves to the defaults", () => {
    const kubeadm = `apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 0s
    cacheUnauthorizedTTL: 0s
cgroupDriver: cgroupfs
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
containerRuntimeEndpoint: ""
cpuManagerReconcilePeriod: 0s
crashLoopBackOff: {}
evictionPressureTransitionPeriod: 0s
fileCheckFrequency: 0s
healthzBindAddress: 127.0.0.1
healthzPort: 10248
httpCheckFrequency: 0s
imageMaximumGCAge: 0s
imageMinimumGCAge: 0s
kind: KubeletConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
memorySwap: {}
nodeStatusReportFrequency: 0s
nodeStatusUpdateFrequency: 0s
rotateCertificates: true
runtimeRequestTimeout: 0s
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
staticPodPath: /etc/kubernetes/manifests
streamingConnectionIdleTimeout: 0s
syncFrequency: 0s
volumeStatsAggPeriod: 0s
`;
    const path = "/var/lib/kubelet/config.yaml";
    const c = loadKubeletConfig(["--config", path], files({ [path]: kubeadm }), env);
    if (c === "help") throw new Error("help");
    const d = defaultKubeletConfiguration();
    expect(c.ignoredFields).toEqual([]);
    expect(c.configFile).toBe(path);
    // kubeadm writes systemd; deckhand refuses it (validate.test.ts), so the file here says cgroupfs.
    expect(c.cgroupDriver).toBe("cgroupfs");
    expect(c.clusterDomain).toBe("cluster.local");
    expect(c.clusterDNS).toEqual(["10.96.0.10"]);
    expect(c.rotateCertificates).toBe(true);
    expect(c.authentication.x509.clientCAFile).toBe("/etc/kubernetes/pki/ca.crt");
    for (const k of [
      "syncFrequency",
      "fileCheckFrequency",
      "nodeStatusUpdateFrequency",
      "nodeStatusReportFrequency",
      "imageMinimumGCAge",
      "evictionPressureTransitionPeriod",
      "runtimeRequestTimeout",
      "volumeStatsAggPeriod",
      "containerRuntimeEndpoint",
      "crashLoopBackOff",
      "logging",
      "authorization",
    ] as const) {
      expect(c[k], k).toEqual(d[k]);
    }
    expect(c.authentication.webhook.cacheTTL).toBe(120_000);
  });
});

describe("defaulting rules", () => {
  it("nodeStatusReportFrequency follows an explicitly set nodeStatusUpdateFrequency (upstream back-compat)", () => {
    expect(load("")).toMatchObject({ nodeStatusUpdateFrequency: 10_000, nodeStatusReportFrequency: 300_000 });
    expect(load("nodeStatusUpdateFrequency: 20s\n")).toMatchObject({ nodeStatusUpdateFrequency: 20_000, nodeStatusReportFrequency: 20_000 });
    expect(load("nodeStatusUpdateFrequency: 20s\nnodeStatusReportFrequency: 1m\n")).toMatchObject({ nodeStatusUpdateFrequency: 20_000, nodeStatusReportFrequency: 60_000 });
    expect(load("nodeStatusReportFrequency: 1m\n")).toMatchObject({ nodeStatusUpdateFrequency: 10_000, nodeStatusReportFrequency: 60_000 });
    expect(load("nodeStatusUpdateFrequency: 0s\n")).toMatchObject({ nodeStatusUpdateFrequency: 10_000, nodeStatusReportFrequency: 300_000 });
  });

  it("evictionHard: defaults only when unset; a partial map stays partial unless mergeDefaultEvictionSettings", () => {
    expect(load("").evictionHard).toEqual(DEFAULT_EVICTION_HARD);
    expect(load("evictionHard: {memory.available: 500Mi}\n").evictionHard).toEqual({ "memory.available": "500Mi" });
    expect(load("evictionHard: {}\n").evictionHard).toEqual({});
    expect(load("mergeDefaultEvictionSettings: true\nevictionHard: {memory.available: 500Mi}\n").evictionHard).toEqual({
      ...DEFAULT_EVICTION_HARD,
      "memory.available": "500Mi",
    });
  });

  it("serializeImagePulls defaults to false when maxParallelImagePulls >= 2", () => {
    expect(load("maxParallelImagePulls: 4\n")).toMatchObject({ serializeImagePulls: false, maxParallelImagePulls: 4 });
    expect(load("maxParallelImagePulls: 1\n")).toMatchObject({ serializeImagePulls: true, maxParallelImagePulls: 1 });
  });

  it("keeps meaningful zeros of pointer fields and defaults the others", () => {
    expect(load("registryPullQPS: 0\neventRecordQPS: 0\nhealthzPort: 0\nimageGCLowThresholdPercent: 0\nresolvConf: \"\"\nmaxPods: 0\nport: 0\npodPidsLimit: -7\n")).toMatchObject({
      registryPullQPS: 0,
      eventRecordQPS: 0,
      healthzPort: 0,
      imageGCLowThresholdPercent: 0,
      resolvConf: "",
      maxPods: 110,
      port: 10250,
      podPidsLimit: -1,
    });
  });
});
