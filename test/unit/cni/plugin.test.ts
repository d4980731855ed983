import { describe, expect, it } from "vitest";
import { parseBridgeConfig } from "../../../cni/config.ts";
import { hostVethName, parseResolvConf, randomMac, resultRoutes, BridgePlugin } from "../../../cni/plugin.ts";
import { podSetupScript } from "../../../cni/podside.ts";
import { parseRequest } from "../../../cni/daemon.ts";
import { masqRules } from "../../../cni/masq.ts";
import { parseCidr, parseIp, type IpAddr, type IpNet } from "../../../cni/ip.ts";
import type { Rtnl } from "../../../cni/rtnl.ts";

const cidr = (s: string): IpNet => parseCidr(s) as IpNet;
const ip = (s: string): IpAddr => parseIp(s) as IpAddr;
const conf = (extra: Record<string, unknown> = {}) =>
  parseBridgeConfig({ cniVersion: "1.0.0", name: "n", type: "deckhand-bridge", ipam: { type: "host-local", ranges: [[{ subnet: "10.1.0.0/24" }]], routes: [{ dst: "10.96.0.0/12" }] }, ...extra });

describe("plugin pieces", () => {
  it("names host veths per attachment, 15 characters, stable", () => {
    const a = hostVethName("net", { containerId: "abc", ifname: "eth0" });
    expect(a).toMatch(/^dhv[0-9a-f]{12}$/);
    expect(hostVethName("net", { containerId: "abc", ifname: "eth0" })).toBe(a);
    expect(hostVethName("net", { containerId: "abc", ifname: "net1" })).not.toBe(a);
    expect(hostVethName("other", { containerId: "abc", ifname: "eth0" })).not.toBe(a);
    expect(randomMac()).toMatch(/^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/);
  });

  it("adds the default route via the gateway for isDefaultGateway, and refuses a conflicting one", () => {
    const alloc = [{ address: cidr("10.1.0.5/24"), gateway: ip("10.1.0.1"), rangeSetIndex: 0 }];
    expect(resultRoutes(conf(), alloc)).toEqual([{ dst: "10.96.0.0/12" }]);
    expect(resultRoutes(conf({ isDefaultGateway: true }), alloc)).toEqual([{ dst: "10.96.0.0/12" }, { dst: "0.0.0.0/0", gw: "10.1.0.1" }]);
    const clash = conf({ isDefaultGateway: true, ipam: { type: "host-local", ranges: [[{ subnet: "10.1.0.0/24" }]], routes: [{ dst: "0.0.0.0/0", gw: "10.1.0.9" }] } });
    expect(() => resultRoutes(clash, alloc)).toThrow(/isDefaultGateway is ineffective/);
  });

  it("writes the pod side as one ip batch", () => {
    expect(podSetupScript("eth0", [cidr("10.1.0.5/24"), cidr("fd00::5/64")], [{ dst: cidr("0.0.0.0/0"), gw: ip("10.1.0.1") }, { dst: cidr("10.96.0.0/12") }])).toBe(
      "link set dev eth0 up\naddress add 10.1.0.5/24 brd + dev eth0\naddress add fd00::5/64 dev eth0 nodad\nroute add 0.0.0.0/0 via 10.1.0.1 dev eth0\nroute add 10.96.0.0/12 dev eth0\n",
    );
  });

  it("reads resolv.conf for ipam.resolvConf", () => {
    expect(parseResolvConf("# c\nnameserver 10.96.0.10\nsearch a.svc b.svc\noptions ndots:5\ndomain cluster.local\n")).toEqual({ nameservers: ["10.96.0.10"], search: ["a.svc", "b.svc"], options: ["ndots:5"], domain: "cluster.local" });
  });

  it("makes the masquerade rules of ipMasq", () => {
    const rules = masqRules("n", "c1", [cidr("10.1.0.5/24")]);
    expect(rules).toMatch(/^\*nat\n:CNI-[0-9a-f]{24} - \[0:0\]\n/);
    expect(rules).toContain("-d 10.1.0.0/24");
    expect(rules).toContain("! -d 224.0.0.0/4");
    expect(rules).toContain("-A POSTROUTING -s 10.1.0.5/32");
  });

  it("parses the launcher's requests", () => {
    const req = parseRequest(Buffer.from("DHCNI1 net:[1] mnt:[2]\nCNI_COMMAND=ADD\nCNI_ARGS=A=1;B=2\n\n{\"x\":1}"));
    expect(req).toEqual({ namespaces: "net:[1] mnt:[2]", env: { CNI_COMMAND: "ADD", CNI_ARGS: "A=1;B=2" }, stdin: '{"x":1}' });
    expect(parseRequest(Buffer.from("HELLO\n\n"))).toBeUndefined();
    expect(parseRequest(Buffer.from("DHCNI1 x\nPATH=/bin\n\n"))).toBeUndefined();
  });

  it("answers every error as the spec's error JSON with a non-zero exit", async () => {
    const plugin = new BridgePlugin({ rtnl: () => ({}) as Rtnl });
    const version = await plugin.handle({ env: { CNI_COMMAND: "VERSION" }, stdin: "" });
    expect(version.code).toBe(0);
    expect(JSON.parse(version.stdout)).toMatchObject({ cniVersion: "1.1.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] });
    const bad = await plugin.handle({ env: { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c", CNI_IFNAME: "eth0", CNI_NETNS: "/nonexistent/ns" }, stdin: JSON.stringify({ cniVersion: "1.0.0", name: "n", ipam: {} }) });
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toEqual({ cniVersion: "1.0.0", code: 3, msg: "network namespace /nonexistent/ns does not exist" });
    const check = await plugin.handle({ env: { CNI_COMMAND: "CHECK", CNI_CONTAINERID: "c", CNI_IFNAME: "eth0", CNI_NETNS: "/n" }, stdin: JSON.stringify({ cniVersion: "0.3.1", name: "n", ipam: {} }) });
    expect(JSON.parse(check.stdout)).toMatchObject({ code: 1, msg: expect.stringContaining("does not allow CHECK") as unknown });
    const gc = await plugin.handle({ env: { CNI_COMMAND: "GC" }, stdin: JSON.stringify({ cniVersion: "1.1.0", name: "n", ipam: {} }) });
    expect(JSON.parse(gc.stdout)).toMatchObject({ code: 7, msg: expect.stringContaining("cni.dev/valid-attachments") as unknown });
  });
});
