import { describe, expect, it } from "vitest";
import { DEFAULT_EVICTION_HARD, loadKubeletConfig, parseKubeletConfigFile } from "../../../../kubelet/config/kubelet-config.ts";
import { CONFIG, HEADER, files, env, load, configError, errorsOf } from "./helpers.ts";

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
    expect(c.ignoredFields).toEqual(["iptablesMasqueradeBit"]);
    expect(configError(() => load("iptablesDropBit: 40\n")).message).toBe(
      `kubelet config ${CONFIG}: iptablesDropBit: Invalid value: 40: must be between 0 and 31, inclusive`,
    );
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
