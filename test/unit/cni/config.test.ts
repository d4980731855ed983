import { describe, expect, it } from "vitest";
import { decodeJson, parseBridgeConfig } from "../../../cni/config.ts";
import { formatIp, formatCidr, parseIp, parseCidr } from "../../../cni/ip.ts";
import { encodeResult, parseEnv, type CniError } from "../../../cni/spec.ts";

const base = { cniVersion: "1.0.0", name: "pods", type: "deckhand-bridge", ipam: { type: "host-local", ranges: [[{ subnet: "10.244.1.0/24" }]] } };
const codeOf = (fn: () => unknown): number | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as CniError).code;
  }
};
const messageOf = (fn: () => unknown): string => {
  try {
    fn();
    return "";
  } catch (err) {
    return (err as Error).message;
  }
};

describe("addresses", () => {
  it("parses and prints IPv4 and IPv6 as Go does", () => {
    for (const s of ["10.0.0.1", "0.0.0.0", "255.255.255.255", "fd00::1", "2001:db8::", "::", "1:0:0:1::1", "2001:db8:0:1:1:1:1:1"]) {
      expect(formatIp(parseIp(s) ?? { family: 4, value: 0n })).toBe(s);
    }
    expect(formatIp(parseIp("2001:0db8:0000:0000:0000:0000:0000:0001") ?? { family: 4, value: 0n })).toBe("2001:db8::1");
    expect(parseIp("10.0.0.256")).toBeUndefined();
    expect(parseIp("010.0.0.1")).toBeUndefined();
    expect(parseIp("1::2::3")).toBeUndefined();
    expect(formatCidr(parseCidr("10.1.0.0/16") ?? { ip: { family: 4, value: 0n }, prefix: 0 })).toBe("10.1.0.0/16");
    expect(parseCidr("10.1.0.0/33")).toBeUndefined();
  });
});

describe("bridge configuration", () => {
  it("fills the reference plugin's defaults and host-local's range defaults", () => {
    const c = parseBridgeConfig(base);
    expect(c.bridge).toBe("cni0");
    expect(c.isGateway).toBe(false);
    const r = c.ipam?.ranges[0]?.[0];
    expect(r && [formatIp(r.rangeStart), formatIp(r.rangeEnd), formatIp(r.gateway)]).toEqual(["10.244.1.1", "10.244.1.254", "10.244.1.1"]);
    expect(c.ipam?.dataDir).toBe("/var/lib/cni/networks");
    expect(parseBridgeConfig({ ...base, isDefaultGateway: true }).isGateway).toBe(true);
    expect(parseBridgeConfig({ ...base, ipam: {} }).ipam).toBeUndefined();
    expect(parseBridgeConfig({ ...base, ipam: { type: "host-local", subnet: "10.3.0.0/16" } }).ipam?.ranges).toHaveLength(1);
  });

  it("reads requested IPs, prevResult and the GC attachments", () => {
    const c = parseBridgeConfig({
      ...base,
      runtimeConfig: { ips: ["10.244.1.9"] },
      prevResult: { cniVersion: "1.0.0" },
      "cni.dev/valid-attachments": [{ containerID: "abc", ifname: "eth0" }],
    });
    expect(c.requestedIps).toEqual(["10.244.1.9"]);
    expect(c.prevResult).toEqual({ cniVersion: "1.0.0" });
    expect(c.validAttachments).toEqual([{ containerId: "abc", ifname: "eth0" }]);
  });

  it("rejects bad configurations with the spec's codes and a message naming the field", () => {
    expect(codeOf(() => decodeJson("{not json"))).toBe(6);
    expect(codeOf(() => parseBridgeConfig({ ...base, cniVersion: "9.9.9" }))).toBe(1);
    expect(messageOf(() => parseBridgeConfig({ ...base, cniVersion: "9.9.9" }))).toContain("9.9.9");
    expect(codeOf(() => parseBridgeConfig({ ...base, vlan: 10 }))).toBe(2);
    expect(messageOf(() => parseBridgeConfig({ ...base, vlan: 10 }))).toContain("vlan");
    const cases: [Record<string, unknown>, string][] = [
      [{ name: "" }, "name is required"],
      [{ mtu: 20 }, "mtu"],
      [{ bridge: "a-very-long-bridge-name" }, "bridge"],
      [{ hairpinMode: "yes" }, "hairpinMode"],
      [{ ipam: undefined }, "ipam is required"],
      [{ ipam: { type: "dhcp" } }, "ipam.type \"dhcp\""],
      [{ ipam: { type: "host-local", ranges: [[{ subnet: "10.1.0.5/24" }]] } }, "host bits set"],
      [{ ipam: { type: "host-local", ranges: [[{ subnet: "10.1.0.0/31" }]] } }, "too small"],
      [{ ipam: { type: "host-local", ranges: [[{ subnet: "nonsense" }]] } }, "ipam.ranges[0][0].subnet"],
      [{ ipam: { type: "host-local", ranges: [[{ subnet: "10.1.0.0/24", rangeStart: "10.2.0.1" }]] } }, "rangeStart 10.2.0.1 is not in network 10.1.0.0/24"],
      [{ ipam: { type: "host-local", ranges: [[{ subnet: "10.1.0.0/24" }], [{ subnet: "10.1.0.0/16" }]] } }, "overlaps"],
      [{ ipam: { type: "host-local", ranges: [[{ subnet: "10.1.0.0/24" }]], routes: [{ dst: "x" }] } }, "ipam.routes[0].dst"],
    ];
    for (const [patch, text] of cases) {
      const fn = (): unknown => parseBridgeConfig({ ...base, ...patch });
      expect(codeOf(fn), text).toBe(7);
      expect(messageOf(fn)).toContain(text);
    }
  });
});

describe("CNI environment and results", () => {
  it("checks the variables each command needs (code 4)", () => {
    expect(codeOf(() => parseEnv({ CNI_COMMAND: "FROB" }))).toBe(4);
    expect(messageOf(() => parseEnv({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "c", CNI_IFNAME: "eth0" }))).toContain("CNI_NETNS is required");
    expect(messageOf(() => parseEnv({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "-x", CNI_NETNS: "/n", CNI_IFNAME: "eth0" }))).toContain("CNI_CONTAINERID");
    expect(messageOf(() => parseEnv({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "c", CNI_NETNS: "/n", CNI_IFNAME: "eth 0" }))).toContain("CNI_IFNAME");
    // DEL without a netns is fine; GC, STATUS and VERSION need no container.
    expect(parseEnv({ CNI_COMMAND: "DEL", CNI_CONTAINERID: "c", CNI_IFNAME: "eth0" }).netns).toBe("");
    expect(parseEnv({ CNI_COMMAND: "GC" }).command).toBe("GC");
    expect(parseEnv({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "c", CNI_NETNS: "/n", CNI_IFNAME: "eth0", CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAME=web" }).args.get("K8S_POD_NAME")).toBe("web");
  });

  it("encodes results per version", () => {
    const r = { cniVersion: "1.1.0", interfaces: [{ name: "eth0", mac: "aa:bb:cc:dd:ee:ff", mtu: 1500, sandbox: "/n" }], ips: [{ address: "10.0.0.2/24", gateway: "10.0.0.1", interface: 0 }], routes: [{ dst: "0.0.0.0/0" }], dns: {} };
    expect(JSON.parse(encodeResult(r, "1.1.0"))).toEqual(r);
    const v1 = JSON.parse(encodeResult(r, "1.0.0")) as { interfaces: Record<string, unknown>[]; cniVersion: string };
    expect(v1.cniVersion).toBe("1.0.0");
    expect(v1.interfaces[0]).not.toHaveProperty("mtu");
    const v04 = JSON.parse(encodeResult(r, "0.4.0")) as { ips: Record<string, unknown>[] };
    expect(v04.ips[0]?.["version"]).toBe("4");
  });
});
