import { describe, expect, it } from "vitest";
import { allocateIP, allocatePort, bigToIp, cidrContains, firstServiceIP, ipToBig, parseCidr, subnet } from "../../control-plane/allocators.ts";

describe("allocators", () => {
  it("parses and prints IPv4 and IPv6", () => {
    expect(bigToIp(ipToBig("10.96.0.1"), 4)).toBe("10.96.0.1");
    expect(bigToIp(ipToBig("fd00::1"), 6)).toBe("fd00::1");
    expect(bigToIp(ipToBig("2001:db8:0:0:1:0:0:1"), 6)).toBe("2001:db8::1:0:0:1");
    expect(bigToIp(ipToBig("::ffff:1.2.3.4"), 6)).toBe("::ffff:102:304");
  });
  it("finds the first service IP and allocates free ones inside the range", () => {
    const c = parseCidr("10.96.0.0/30");
    expect(firstServiceIP(c)).toBe("10.96.0.1");
    const used = new Set(["10.96.0.1"]);
    expect(allocateIP(c, used)).toBe("10.96.0.2");
    used.add("10.96.0.2");
    expect(allocateIP(c, used)).toBeUndefined();
    expect(cidrContains(parseCidr("10.96.0.0/12"), "10.111.255.254")).toBe(true);
    expect(cidrContains(parseCidr("10.96.0.0/12"), "10.112.0.1")).toBe(false);
  });
  it("allocates node ports and pod subnets", () => {
    expect(allocatePort([30000, 30001], new Set([30000]))).toBe(30001);
    expect(allocatePort([30000, 30000], new Set([30000]))).toBeUndefined();
    const cluster = parseCidr("10.244.0.0/16");
    expect(subnet(cluster, 24, 0)).toBe("10.244.0.0/24");
    expect(subnet(cluster, 24, 255)).toBe("10.244.255.0/24");
    expect(subnet(cluster, 24, 256)).toBeUndefined();
    expect(subnet(parseCidr("fd00:10::/56"), 64, 1)).toBe("fd00:10:0:1::/64");
  });
});
