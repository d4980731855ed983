import { describe, expect, it } from "vitest";
import { defaultConfig, modeSettings, parseConfigText, parseGoDuration, resolveConfig } from "../../../proxy/config.ts";
import { isDeckhandError, type DeckhandError } from "../../../src-shared/errors.ts";

const HEAD_YAML = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n";
const head = { apiVersion: "kubeproxy.config.k8s.io/v1alpha1", kind: "KubeProxyConfiguration" };

function errorsOf(raw: unknown): string[] {
  try {
    resolveConfig(raw);
  } catch (err) {
    if (isDeckhandError(err, "InvalidConfig")) return err.details["errors"] as string[];
    throw err;
  }
  return [];
}

describe("KubeProxyConfiguration", () => {
  it("applies upstream's defaults to an empty file", () => {
    const cfg = resolveConfig({ ...head });
    expect(cfg).toEqual(defaultConfig());
    expect(cfg.healthzBindAddress).toBe("0.0.0.0:10256");
    expect(cfg.metricsBindAddress).toBe("127.0.0.1:10249");
    expect(cfg.iptables).toEqual({ masqueradeAll: false, masqueradeBit: 14, localhostNodePorts: true, syncPeriodMs: 30_000, minSyncPeriodMs: 1_000 });
    expect(cfg.conntrack.maxPerCore).toBe(32768);
    expect(cfg.conntrack.min).toBe(131072);
    expect(cfg.conntrack.tcpEstablishedTimeoutMs).toBe(24 * 3600_000);
    expect(cfg.conntrack.tcpCloseWaitTimeoutMs).toBe(3600_000);
  });

  it("reads the supported fields", () => {
    const cfg = resolveConfig({
      ...head,
      clusterCIDR: "10.244.0.0/16",
      mode: "iptables",
      healthzBindAddress: "127.0.0.1",
      metricsBindAddress: "0.0.0.0:9999",
      nodePortAddresses: ["192.168.0.0/24"],
      iptables: { masqueradeAll: true, masqueradeBit: 15, localhostNodePorts: false, syncPeriod: "1m30s", minSyncPeriod: "250ms" },
      conntrack: { maxPerCore: 0, tcpBeLiberal: true, udpTimeout: "30s" },
      hostnameOverride: "Node-1 ",
      clientConnection: { kubeconfig: "/etc/kubeconfig" },
      ipvs: { scheduler: "rr" },
    });
    expect(cfg.clusterCIDRs).toEqual(["10.244.0.0/16"]);
    expect(cfg.healthzBindAddress).toBe("127.0.0.1:10256");
    expect(cfg.metricsBindAddress).toBe("0.0.0.0:9999");
    expect(cfg.iptables).toEqual({ masqueradeAll: true, masqueradeBit: 15, localhostNodePorts: false, syncPeriodMs: 90_000, minSyncPeriodMs: 250 });
    expect(cfg.conntrack).toMatchObject({ maxPerCore: 0, tcpBeLiberal: true, udpTimeoutMs: 30_000 });
    expect(cfg.hostnameOverride).toBe("node-1");
    expect(cfg.kubeconfig).toBe("/etc/kubeconfig");
  });

  it("names every invalid field", () => {
    const errors = errorsOf({
      apiVersion: "kubeproxy.config.k8s.io/v1beta9",
      kind: "KubeProxyConfiguration",
      mode: "ipvs",
      clusterCIDR: "10.0.0.0/33",
      bogus: 1,
      iptables: { masqueradeBit: 40, syncPeriod: "soon", minSyncPeriod: "1h", extra: true },
      nodePortAddresses: ["nope"],
      metricsBindAddress: "localhost:1",
      conntrack: { min: -1 },
    });
    const fields = errors.map((e) => e.split(":")[0]);
    expect(fields).toEqual(
      expect.arrayContaining([
        "apiVersion",
        "mode",
        "clusterCIDR",
        'unknown field "bogus"',
        'unknown field "iptables.extra"',
        "iptables.masqueradeBit",
        "iptables.syncPeriod",
        "iptables.minSyncPeriod",
        "nodePortAddresses[0]",
        "metricsBindAddress",
        "conntrack.min",
      ]),
    );
  });

  it("rejects minSyncPeriod above syncPeriod", () => {
    expect(errorsOf({ ...head, iptables: { syncPeriod: "1s", minSyncPeriod: "2s" } })[0]).toMatch(/^iptables\.minSyncPeriod: must be less than or equal/);
  });

  it("parses YAML and JSON files and reports broken ones", async () => {
    const yaml = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clusterCIDR: 10.244.0.0/16
iptables:
  minSyncPeriod: 2s
`;
    expect((await parseConfigText(yaml, "f.yaml")).iptables.minSyncPeriodMs).toBe(2000);
    expect((await parseConfigText(JSON.stringify({ ...head, mode: "" }), "f.json")).mode).toBe("iptables");
    await expect(parseConfigText("a: [", "bad.yaml")).rejects.toThrow(/bad\.yaml: not valid YAML/);
    await expect(parseConfigText(JSON.stringify({ ...head, mode: "ipvs" }), "m.json")).rejects.toThrow(/m\.json: invalid KubeProxyConfiguration:\n {2}mode:/);
  });

  it("reads mode nftables and its section, iptables staying the default", () => {
    expect(modeSettings(resolveConfig({ ...head })).syncPeriodMs).toBe(30_000);
    expect(resolveConfig({ ...head }).mode).toBe("iptables");
    const cfg = resolveConfig({ ...head, mode: "nftables", nftables: { masqueradeAll: true, masqueradeBit: 13, syncPeriod: "10s", minSyncPeriod: "0s" } });
    expect(cfg.mode).toBe("nftables");
    expect(cfg.nftables).toEqual({ masqueradeAll: true, masqueradeBit: 13, syncPeriodMs: 10_000, minSyncPeriodMs: 1_000 });
    expect(modeSettings(cfg)).toBe(cfg.nftables);
    // the iptables section is read but does not apply
    expect(modeSettings(resolveConfig({ ...head, mode: "nftables", iptables: { syncPeriod: "5s" } })).syncPeriodMs).toBe(30_000);
    expect(errorsOf({ ...head, mode: "nftables", nftables: { localhostNodePorts: true } })).toEqual(['unknown field "nftables.localhostNodePorts"']);
    const errors = errorsOf({ ...head, nftables: { masqueradeBit: 32, syncPeriod: "1s", minSyncPeriod: "2s" } });
    expect(errors.map((e) => e.split(":")[0])).toEqual(["nftables.masqueradeBit", "nftables.minSyncPeriod"]);
  });

  it("reads YAML 1.1 booleans as the kubelet's decoder does, and refuses unknown and duplicate fields", async () => {
    const cfg = await parseConfigText(`${HEAD_YAML}iptables:\n  masqueradeAll: yes\n  localhostNodePorts: off\nconntrack:\n  tcpBeLiberal: on\n`, "b.yaml");
    expect(cfg.iptables.masqueradeAll).toBe(true);
    expect(cfg.iptables.localhostNodePorts).toBe(false);
    expect(cfg.conntrack.tcpBeLiberal).toBe(true);
    // A string field given a YAML 1.1 boolean is a type error, as upstream's JSON decoding reports.
    await expect(parseConfigText(`${HEAD_YAML}mode: on\n`, "m.yaml")).rejects.toThrow(/mode: Invalid value: true: must be a string/);
    await expect(parseConfigText(`${HEAD_YAML}oomScoreAdj: 1\noomScoreAdj: 2\n`, "d.yaml")).rejects.toThrow(/d\.yaml: duplicate field "oomScoreAdj"/);
    const err = await parseConfigText(`${HEAD_YAML}iptables:\n  masqueradeALL: true\n`, "u.yaml").catch((e: unknown) => e);
    expect(isDeckhandError(err, "InvalidConfig")).toBe(true);
    expect((err as DeckhandError).details["problems"]).toEqual([{ path: "", detail: 'unknown field "iptables.masqueradeALL"', reason: "UnknownField", value: true }]);
  });

  it("parses Go durations", () => {
    expect(parseGoDuration("1h0m0s")).toBe(3_600_000);
    expect(parseGoDuration("1.5s")).toBe(1500);
    expect(parseGoDuration("100us")).toBeCloseTo(0.1);
    expect(parseGoDuration("0")).toBe(0);
    expect(parseGoDuration("10")).toBeUndefined();
    expect(parseGoDuration("1d")).toBeUndefined();
  });
});
