import { describe, expect, it } from "vitest";
import { loadKubeletConfig, parseKubeletFlags, usage } from "../../../../kubelet/config/kubelet-config.ts";
import { files, env, load, configError, errorsOf } from "./helpers.ts";

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
