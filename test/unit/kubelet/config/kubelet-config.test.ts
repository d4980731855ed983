import { describe, expect, it } from "vitest";
import { DeckhandError } from "../../../../src-shared/errors.ts";
import {
  DEFAULT_EVICTION_HARD,
  defaultKubeletConfiguration,
  formatGoDuration,
  loadKubeletConfig,
  parseGoDuration,
  parseKubeletConfigFile,
  parseKubeletFlags,
  usage,
  type KubeletConfig,
} from "../../../../kubelet/config/kubelet-config.ts";

const CONFIG = "/etc/kubernetes/kubelet.yaml";
const HEADER = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

/** A readFile over an in-memory set of files. */
function files(map: Record<string, string>): (path: string) => string {
  return (path) => {
    const text = map[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: "ENOENT" });
    return text;
  };
}

const env = { hostname: () => "node-a", cwd: "/work" };

/** Loads a config whose file (at CONFIG) is HEADER + body, with extra flags. */
function load(body: string, flags: string[] = []): KubeletConfig {
  const c = loadKubeletConfig(["--config", CONFIG, ...flags], files({ [CONFIG]: HEADER + body }), env);
  if (c === "help") throw new Error("unexpected help");
  return c;
}

/** The InvalidConfig error thrown by fn. */
function configError(fn: () => unknown): DeckhandError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DeckhandError);
    expect((err as DeckhandError).code).toBe("InvalidConfig");
    return err as DeckhandError;
  }
  throw new Error("expected an InvalidConfig error");
}

function errorsOf(err: DeckhandError): string[] {
  return err.details["errors"] as string[];
}

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
cgroupDriver: systemd
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
    expect(c.cgroupDriver).toBe("systemd");
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

describe("file formats", () => {
  it("reads YAML and JSON alike", () => {
    const yamlText = `${HEADER}maxPods: 42\nclusterDNS: ["10.96.0.10"]\nsyncFrequency: 30s\nevictionHard:\n  memory.available: 300Mi\n`;
    const jsonText = JSON.stringify({
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      maxPods: 42,
      clusterDNS: ["10.96.0.10"],
      syncFrequency: "30s",
      evictionHard: { "memory.available": "300Mi" },
    });
    const y = parseKubeletConfigFile(yamlText, CONFIG);
    const j = parseKubeletConfigFile(jsonText, "/etc/kubernetes/kubelet.json");
    expect(y.fields).toEqual({ maxPods: 42, clusterDNS: ["10.96.0.10"], syncFrequency: 30_000, evictionHard: { "memory.available": "300Mi" } });
    expect(j.fields).toEqual(y.fields);
    expect(y.path).toBe(CONFIG);
  });

  it("reads YAML 1.1 booleans as sigs.k8s.io/yaml does", () => {
    expect(load("failSwapOn: no\nserializeImagePulls: off\nrotateCertificates: yes\n")).toMatchObject({
      failSwapOn: false,
      serializeImagePulls: false,
      rotateCertificates: true,
    });
  });

  it("refuses duplicate fields, in YAML and in JSON", () => {
    expect(configError(() => parseKubeletConfigFile(`${HEADER}maxPods: 1\nmaxPods: 2\n`, CONFIG)).message).toBe(
      `kubelet config ${CONFIG}: duplicate field "maxPods" (line 4, column 1)`,
    );
    const json = '{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration",\n  "maxPods":1, "maxPods":2}';
    expect(configError(() => parseKubeletConfigFile(json, CONFIG)).message).toBe(`kubelet config ${CONFIG}: duplicate field "maxPods" (line 2, column 16)`);
  });

  it("reports syntax errors, empty files and non-objects", () => {
    expect(configError(() => parseKubeletConfigFile("", CONFIG)).message).toBe(`kubelet config ${CONFIG}: the file is empty`);
    expect(configError(() => parseKubeletConfigFile("\n\nmaxPods: [1\n", CONFIG)).message).toBe(
      `kubelet config ${CONFIG}: invalid YAML: unexpected end of the stream within a flow collection (line 4, column 1)`,
    );
    expect(configError(() => parseKubeletConfigFile('{"kind": ', CONFIG)).message).toMatch(/invalid JSON/);
    expect(configError(() => parseKubeletConfigFile("- a\n- b\n", CONFIG)).message).toMatch(/must hold a KubeletConfiguration object/);
  });

  it("requires apiVersion kubelet.config.k8s.io/v1beta1 and kind KubeletConfiguration, naming what it got", () => {
    const wrong = configError(() => parseKubeletConfigFile("apiVersion: kubelet.config.k8s.io/v1alpha1\nkind: KubeletConfig\nfoo: 1\n", CONFIG));
    expect(errorsOf(wrong)).toEqual([
      'apiVersion: Unsupported value: "kubelet.config.k8s.io/v1alpha1": supported values: "kubelet.config.k8s.io/v1beta1"',
      'kind: Unsupported value: "KubeletConfig": supported values: "KubeletConfiguration"',
    ]);
    const missing = configError(() => parseKubeletConfigFile("maxPods: 10\n", CONFIG));
    expect(errorsOf(missing)).toEqual([
      'apiVersion: Required value: must be "kubelet.config.k8s.io/v1beta1"',
      'kind: Required value: must be "KubeletConfiguration"',
    ]);
    const proxy = configError(() => parseKubeletConfigFile("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n", CONFIG));
    expect(proxy.message).toContain('kind: Unsupported value: "KubeProxyConfiguration"');
  });
});

describe("strict decoding", () => {
  it("names an unknown top-level field", () => {
    const err = configError(() => load("podCIDRs: [10.0.0.0/8]\n"));
    expect(err.message).toBe(`kubelet config ${CONFIG}: unknown field "podCIDRs"`);
  });

  it("names an unknown nested field by its full path, case-sensitively", () => {
    const err = configError(() => load("authentication:\n  webhook:\n    cacheTtl: 2m\nMaxPods: 3\n"));
    expect(errorsOf(err)).toEqual([
      `kubelet config ${CONFIG}: unknown field "authentication.webhook.cacheTtl"`,
      `kubelet config ${CONFIG}: unknown field "MaxPods"`,
    ]);
    expect(configError(() => load("registerWithTaints:\n- key: a\n  effect: NoSchedule\n  colour: red\n")).message).toContain(
      'unknown field "registerWithTaints[0].colour"',
    );
  });

  it("refuses deckhand's flag-only settings in the file, as upstream would", () => {
    const err = configError(() => load("nodeIP: 10.0.0.1\nhostnameOverride: x\nkubeconfig: /k\nrootDir: /r\ncniConfDir: /c\nnodeLabels: {a: b}\n"));
    expect(errorsOf(err).map((e) => /unknown field "(\w+)"/.exec(e)?.[1])).toEqual(["nodeIP", "hostnameOverride", "kubeconfig", "rootDir", "cniConfDir", "nodeLabels"]);
  });

  it("checks JSON types, naming field and value", () => {
    const err = configError(() => load('maxPods: "110"\nkubeReserved:\n  cpu: 1\nfailSwapOn: "false"\nclusterDNS: 10.96.0.10\nmaxPods2: 1\n'));
    expect(errorsOf(err)).toEqual([
      `kubelet config ${CONFIG}: maxPods: Invalid value: "110": must be an integer`,
      `kubelet config ${CONFIG}: kubeReserved[cpu]: Invalid value: 1: must be a string (quote it in YAML)`,
      `kubelet config ${CONFIG}: failSwapOn: Invalid value: "false": must be a boolean (true or false)`,
      `kubelet config ${CONFIG}: clusterDNS: Invalid value: "10.96.0.10": must be a list of strings`,
      `kubelet config ${CONFIG}: unknown field "maxPods2"`,
    ]);
  });

  it("treats null as not set", () => {
    expect(load("maxPods: null\nevictionHard: ~\n")).toMatchObject({ maxPods: 110, evictionHard: DEFAULT_EVICTION_HARD });
  });

  it("accepts upstream fields deckhand does not implement only at their inert value", () => {
    expect(load("cpuManagerPolicy: none\nstaticPodURL: \"\"\nrunOnce: false\nmemorySwap: {swapBehavior: NoSwap}\n").maxPods).toBe(110);
    const err = configError(() => load("cpuManagerPolicy: static\nstaticPodURL: http://x/pods\nmemorySwap:\n  swapBehavior: LimitedSwap\n"));
    expect(errorsOf(err)).toEqual([
      `kubelet config ${CONFIG}: cpuManagerPolicy: Unsupported value: "static": deckhand supports only "none"`,
      `kubelet config ${CONFIG}: staticPodURL: Unsupported value: "http://x/pods": deckhand supports only static pods from files (staticPodPath)`,
      `kubelet config ${CONFIG}: memorySwap.swapBehavior: Unsupported value: "LimitedSwap": deckhand supports only "NoSwap" (workloads do not use swap)`,
    ]);
  });

  it("lists accepted fields without effect in deckhand, still type- and range-checked", () => {
    const c = load("iptablesMasqueradeBit: 13\nmakeIPTablesUtilChains: true\ntlsCipherSuites: [TLS_AES_128_GCM_SHA256]\nenableContentionProfiling: false\n");
    expect(c.ignoredFields).toEqual(["iptablesMasqueradeBit", "tlsCipherSuites"]);
    expect(configError(() => load("iptablesDropBit: 40\n")).message).toBe(
      `kubelet config ${CONFIG}: iptablesDropBit: Invalid value: 40: must be between 0 and 31, inclusive`,
    );
  });
});

describe("durations", () => {
  const ms = (s: string): number => {
    const r = parseGoDuration(s);
    if (!r.ok) throw new Error(r.error);
    return Number(r.ns) / 1e6;
  };

  it("parse as Go's time.ParseDuration", () => {
    expect(ms("10s")).toBe(10_000);
    expect(ms("1m30s")).toBe(90_000);
    expect(ms("100ms")).toBe(100);
    expect(ms("2h")).toBe(7_200_000);
    expect(ms("1h2m3.5s")).toBe(3_723_500);
    expect(ms("1.5h")).toBe(5_400_000);
    expect(ms(".5s")).toBe(500);
    expect(ms("5.s")).toBe(5_000);
    expect(ms("1s1h")).toBe(3_601_000);
    expect(ms("0")).toBe(0);
    expect(ms("+0")).toBe(0);
    expect(ms("-1.5s")).toBe(-1_500);
    expect(ms("+2m")).toBe(120_000);
    expect(ms("1500us")).toBe(1.5);
    expect(ms("1500µs")).toBe(1.5);
    expect(ms("1500μs")).toBe(1.5);
    expect(ms("250ns")).toBe(0.00025);
    const max = parseGoDuration("9223372036854775807ns");
    expect(max.ok && max.ns).toBe(9223372036854775807n);
    const min = parseGoDuration("-9223372036854775808ns");
    expect(min.ok && min.ns).toBe(-9223372036854775808n);
  });

  it("reject what Go rejects, with Go's messages", () => {
    const err = (s: string): string => {
      const r = parseGoDuration(s);
      return r.ok ? "ok" : r.error;
    };
    expect(err("10")).toBe('time: missing unit in duration "10"');
    expect(err("")).toBe('time: invalid duration ""');
    expect(err(".")).toBe('time: invalid duration "."');
    expect(err(".s")).toBe('time: invalid duration ".s"');
    expect(err("-")).toBe('time: invalid duration "-"');
    expect(err("1d")).toBe('time: unknown unit "d" in duration "1d"');
    expect(err("1 s")).toBe('time: unknown unit " s" in duration "1 s"');
    expect(err("s")).toBe('time: invalid duration "s"');
    expect(err("--1s")).toBe('time: invalid duration "--1s"');
    expect(err("1S")).toBe('time: unknown unit "S" in duration "1S"');
    expect(err("9223372036854775808ns")).toBe('time: invalid duration "9223372036854775808ns"');
    expect(err("3000000h")).toBe('time: invalid duration "3000000h"');
  });

  it("format as Go's Duration.String", () => {
    expect(formatGoDuration(0n)).toBe("0s");
    expect(formatGoDuration(1_500n)).toBe("1.5µs");
    expect(formatGoDuration(100_000_000n)).toBe("100ms");
    expect(formatGoDuration(90_000_000_000n)).toBe("1m30s");
    expect(formatGoDuration(3_600_000_000_000n)).toBe("1h0m0s");
    expect(formatGoDuration(3_723_500_000_000n)).toBe("1h2m3.5s");
    expect(formatGoDuration(-1_000_000_000n)).toBe("-1s");
  });

  it("in the file are checked, naming the field and the value", () => {
    const err = configError(() => load('syncFrequency: "10"\nfileCheckFrequency: -1s\nruntimeRequestTimeout: 2\nimageMinimumGCAge: 2 m\n'));
    expect(errorsOf(err)).toEqual([
      `kubelet config ${CONFIG}: syncFrequency: Invalid value: "10": time: missing unit in duration "10"`,
      `kubelet config ${CONFIG}: runtimeRequestTimeout: Invalid value: 2: must be a duration string with a unit, e.g. "10s", "1m30s", "100ms"`,
      `kubelet config ${CONFIG}: imageMinimumGCAge: Invalid value: "2 m": time: unknown unit " m" in duration "2 m"`,
      `kubelet config ${CONFIG}: fileCheckFrequency: Invalid value: "-1s": must not be negative`,
    ]);
    expect(load("syncFrequency: 1m30s\nlogging: {flushFrequency: 2000000000}\n")).toMatchObject({ syncFrequency: 90_000, logging: { flushFrequency: 2_000 } });
  });
});

describe("validation", () => {
  const cases: [string, string][] = [
    ["maxPods: -1\n", "maxPods: Invalid value: -1: must not be a negative number"],
    ["cgroupDriver: foo\n", 'cgroupDriver: Unsupported value: "foo": supported values: "cgroupfs", "systemd"'],
    ["hairpinMode: bridge\n", 'hairpinMode: Unsupported value: "bridge": supported values: "promiscuous-bridge", "hairpin-veth", "none"'],
    ["port: 70000\n", "port: Invalid value: 70000: must be between 1 and 65535, inclusive"],
    ["readOnlyPort: -5\n", "readOnlyPort: Invalid value: -5: must be between 0 and 65535, inclusive (0 disables it)"],
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
    ["cgroupsPerQOS: false\n", 'enforceNodeAllocatable: Invalid value: ["pods"]: is not supported unless cgroupsPerQOS is true'],
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

  it("accepts the valid forms of the same fields", () => {
    const c = load(`readOnlyPort: 0
healthzPort: 0
imageGCHighThresholdPercent: 90
imageGCLowThresholdPercent: 70
enforceNodeAllocatable: []
cgroupsPerQOS: false
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
      cgroupRoot: "",
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

describe("paths", () => {
  it("resolves relative paths in the file against the file's directory", () => {
    const c = load("staticPodPath: manifests\ntlsCertFile: pki/kubelet.crt\ntlsPrivateKeyFile: ./pki/kubelet.key\nauthentication: {x509: {clientCAFile: ../ca.crt}}\nresolvConf: resolv.conf\npodLogsDir: logs/pods\n");
    expect(c).toMatchObject({
      staticPodPath: "/etc/kubernetes/manifests",
      tlsCertFile: "/etc/kubernetes/pki/kubelet.crt",
      tlsPrivateKeyFile: "/etc/kubernetes/pki/kubelet.key",
      authentication: { x509: { clientCAFile: "/etc/ca.crt" } },
      resolvConf: "/etc/kubernetes/resolv.conf",
      podLogsDir: "/etc/kubernetes/logs/pods",
    });
  });

  it("leaves absolute and empty paths alone", () => {
    expect(load("staticPodPath: /srv/manifests\ntlsCertFile: \"\"\n")).toMatchObject({ staticPodPath: "/srv/manifests", tlsCertFile: "" });
  });

  it("resolves a relative --config against the working directory, and the file's paths against its directory", () => {
    const c = loadKubeletConfig(["--config", "conf/kubelet.yaml"], files({ "/work/conf/kubelet.yaml": `${HEADER}staticPodPath: manifests\n` }), env);
    if (c === "help") throw new Error("help");
    expect(c.configFile).toBe("/work/conf/kubelet.yaml");
    expect(c.staticPodPath).toBe("/work/conf/manifests");
  });

  it("fails naming the file when it cannot be read", () => {
    const err = configError(() => loadKubeletConfig(["--config", "/nope.yaml"], files({}), env));
    expect(err.message).toMatch(/^kubelet config \/nope\.yaml: cannot read it: ENOENT/);
  });
});

describe("flags", () => {
  it("parse --flag=value, --flag value, booleans and -v", () => {
    const f = parseKubeletFlags([
      "--config=/c.yaml",
      "--kubeconfig",
      "/k",
      "--fail-swap-on=false",
      "--register-node",
      "-v4",
      "--max_pods=7",
      "--node-labels",
      "a=1, b = 2",
      "--node-labels=c=3",
      "--cluster-dns=10.0.0.10",
      "--cluster-dns",
      "10.0.0.11,fd00::a",
      "--register-with-taints=dedicated=gpu:NoSchedule,spot:PreferNoSchedule",
      "--feature-gates=EventedPLEG=true,NodeLogQuery=false",
    ]);
    expect(f).toMatchObject({ help: false, config: "/c.yaml", kubeconfig: "/k", verbosity: 4, nodeLabels: { a: "1", b: "2", c: "3" } });
    expect(f.overrides).toEqual({
      failSwapOn: false,
      registerNode: true,
      logging: { verbosity: 4 },
      maxPods: 7,
      clusterDNS: ["10.0.0.10", "10.0.0.11", "fd00::a"],
      registerWithTaints: [
        { key: "dedicated", value: "gpu", effect: "NoSchedule" },
        { key: "spot", effect: "PreferNoSchedule" },
      ],
      featureGates: { EventedPLEG: true, NodeLogQuery: false },
    });
    expect(f.setBy.get("maxPods")).toBe("--max-pods");
    expect(parseKubeletFlags(["-v", "3"]).verbosity).toBe(3);
    expect(parseKubeletFlags(["-v=2"]).verbosity).toBe(2);
    expect(parseKubeletFlags(["--help"]).help).toBe(true);
    expect(parseKubeletFlags(["-h"]).help).toBe(true);
  });

  it("name unknown flags and bad values, all at once", () => {
    const err = configError(() =>
      parseKubeletFlags([
        "--pod-logs-dir=/x",
        "--frobnicate",
        "-x",
        "--max-pods",
        "many",
        "--fail-swap-on=maybe",
        "--node-ip=10.0.0.1,10.0.0.2",
        "--register-with-taints=a=b:Sometimes",
        "--node-labels=node-role.kubernetes.io/worker=",
        "--feature-gates=A=yes",
        "stray",
        "--v",
        "-1",
        "--config",
      ]),
    );
    expect(errorsOf(err)).toEqual([
      "unknown flag: --pod-logs-dir (set podLogsDir in the --config file)",
      "unknown flag: --frobnicate",
      "unknown shorthand flag: 'x' in -x",
      'invalid argument "many" for "--max-pods" flag: strconv.ParseInt: parsing "many": invalid syntax',
      'invalid argument "maybe" for "--fail-swap-on" flag: strconv.ParseBool: parsing "maybe": invalid syntax',
      'invalid argument "10.0.0.1,10.0.0.2" for "--node-ip" flag: must contain either a single IP or a dual-stack pair of IPs (one IPv4 and one IPv6)',
      expect.stringContaining('invalid argument "a=b:Sometimes" for "--register-with-taints" flag: invalid taint spec: a=b:Sometimes, invalid taint effect "Sometimes"') as string,
      'invalid argument "A=yes" for "--feature-gates" flag: invalid value of A=yes, err: strconv.ParseBool: parsing "yes": invalid syntax',
      'unknown command "stray"',
      'invalid argument "-1" for "--v" flag: must be a non-negative integer',
      "flag needs an argument: --config",
      expect.stringContaining("--node-labels: unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [node-role.kubernetes.io/worker]") as string,
    ]);
    expect(err.message.split("\n")[0]).toBe("kubelet flags: 12 errors:");
  });

  it("accept a dual-stack --node-ip and the labels the kubelet may set", () => {
    expect(parseKubeletFlags(["--node-ip", "fd00::10, 172.31.1.10"]).nodeIP).toEqual(["fd00::10", "172.31.1.10"]);
    expect(parseKubeletFlags(["--node-labels=node.kubernetes.io/pool=a,kubernetes.io/os=linux,example.com/team=x"]).nodeLabels).toEqual({
      "node.kubernetes.io/pool": "a",
      "kubernetes.io/os": "linux",
      "example.com/team": "x",
    });
  });

  it("override the file, which overrides the defaults", () => {
    const c = load("maxPods: 50\ncgroupDriver: systemd\nclusterDNS: [10.96.0.10]\nfeatureGates: {EventedPLEG: true, NodeLogQuery: true}\nlogging: {verbosity: 1}\nstaticPodPath: manifests\n", [
      "--max-pods=20",
      "--cgroup-driver",
      "cgroupfs",
      "--cluster-dns=10.0.0.53",
      "--feature-gates=NodeLogQuery=false",
      "--v=5",
      "--pod-manifest-path=static",
      "--cgroup-root=/deckhand",
      "--container-runtime-endpoint=unix:///run/k3s/containerd.sock",
      "--cluster-domain=cluster.local",
    ]);
    expect(c).toMatchObject({
      maxPods: 20,
      cgroupDriver: "cgroupfs",
      clusterDNS: ["10.0.0.53"],
      featureGates: { EventedPLEG: true, NodeLogQuery: false },
      logging: { verbosity: 5 },
      verbosity: 5,
      logLevel: "trace",
      staticPodPath: "/work/static",
      cgroupRoot: "/deckhand",
      containerRuntimeEndpoint: "unix:///run/k3s/containerd.sock",
      imageServiceEndpoint: "unix:///run/k3s/containerd.sock",
      clusterDomain: "cluster.local",
    });
    expect(load("logging: {verbosity: 2}\n")).toMatchObject({ verbosity: 2, logLevel: "debug" });
  });

  it("attribute a bad flag value to its flag", () => {
    const err = configError(() => load("", ["--max-pods=-3", "--cgroup-driver=systemdd"]));
    expect(errorsOf(err)).toEqual([
      "maxPods (--max-pods): Invalid value: -3: must not be a negative number",
      'cgroupDriver (--cgroup-driver): Unsupported value: "systemdd": supported values: "cgroupfs", "systemd"',
    ]);
    expect(errorsOf(configError(() => load("", ["--feature-gates=Bogus=true"])))).toEqual(["featureGates[Bogus] (--feature-gates): unrecognized feature gate: Bogus"]);
  });

  it("set deckhand's own settings, with paths made absolute", () => {
    const c = loadKubeletConfig(
      ["--kubeconfig=kubelet.kubeconfig", "--root-dir", "/var/lib/deckhand", "--cni-conf-dir=cni", "--cni-bin-dir=/usr/lib/cni", "--node-ip=172.31.1.10", "--hostname-override=Node-1"],
      files({}),
      env,
    );
    expect(c).toMatchObject({
      kubeconfig: "/work/kubelet.kubeconfig",
      rootDir: "/var/lib/deckhand",
      cniConfDir: "/work/cni",
      cniBinDir: "/usr/lib/cni",
      nodeIP: ["172.31.1.10"],
      hostname: "node-1",
      hostnameOverride: "Node-1",
    });
  });

  it("--help returns \"help\" without reading anything; usage() lists every flag", () => {
    expect(loadKubeletConfig(["--config=/missing.yaml", "--help"], files({}), env)).toBe("help");
    const text = usage();
    for (const flag of ["--config", "--kubeconfig", "--hostname-override", "--node-ip", "--container-runtime-endpoint", "--root-dir", "--pod-manifest-path", "-v, --v", "--cgroup-root", "--cgroup-driver", "--max-pods", "--node-labels", "--register-with-taints", "--cluster-dns", "--cluster-domain", "--cni-conf-dir", "--cni-bin-dir", "-h, --help"]) {
      expect(text).toContain(flag);
    }
    expect(text).toContain("(default /var/lib/kubelet)");
  });
});

describe("hostname", () => {
  it("defaults to the machine's hostname, lowercased", () => {
    const c = loadKubeletConfig([], files({}), { hostname: () => "Ubuntu-Worker", cwd: "/" });
    expect(c !== "help" && c.hostname).toBe("ubuntu-worker");
  });

  it("takes --hostname-override, lowercased and trimmed; an empty override falls back to the machine's", () => {
    const c = loadKubeletConfig(["--hostname-override", " Worker-7.Example.com "], files({}), env);
    expect(c !== "help" && c.hostname).toBe("worker-7.example.com");
    const e = loadKubeletConfig(["--hostname-override="], files({}), env);
    expect(e !== "help" && e.hostname).toBe("node-a");
  });

  it("must be a DNS-1123 subdomain", () => {
    expect(configError(() => loadKubeletConfig(["--hostname-override=node_1"], files({}), env)).message).toMatch(
      /^hostname \(--hostname-override\): Invalid value: "node_1": a lowercase RFC 1123 subdomain/,
    );
    expect(configError(() => loadKubeletConfig(["--hostname-override=-node"], files({}), env)).message).toContain('"-node"');
    expect(configError(() => loadKubeletConfig(["--hostname-override=  "], files({}), env)).message).toBe(
      "hostname (--hostname-override): Required value: empty hostname is invalid",
    );
    expect(configError(() => loadKubeletConfig([`--hostname-override=${"a".repeat(254)}`], files({}), env)).message).toContain("must be no more than 253 characters");
    expect(configError(() => loadKubeletConfig([], files({}), { hostname: () => "my_laptop", cwd: "/" })).message).toMatch(
      /^hostname \(the machine's; set --hostname-override\): Invalid value: "my_laptop"/,
    );
  });
});
