/**
 * nftables rule generation against upstream's expected transactions (kubernetes/kubernetes
 * pkg/proxy/nftables/proxier_test.go: TestOverallNFTablesRules, TestSyncProxyRulesRepeated), with upstream's
 * fake-proxier conventions: pod CIDR 10.0.0.0/8, ClusterIPs 172.30.0.0/16, node 192.168.0.2.
 */
import type { V1EndpointSlice, V1ServiceSpec } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import {
  emptyNftState,
  generateNftRules,
  hashAndTruncate,
  namesFromList,
  staleChainsDeletion,
  type NftOptions,
  type NftResult,
  type NftState,
} from "../../../../proxy/nftables/rules.ts";
import { servicePortChains } from "../../../../proxy/types.ts";
import { FakeProxier, makeService, makeSlice } from "../helpers.ts";

const OPTIONS: NftOptions = {
  family: "ip",
  masqueradeMark: "0x4000",
  masqueradeAll: false,
  localCidr: "10.0.0.0/8",
  nodeIP: "192.168.0.2",
  nodePortIPs: ["192.168.0.2"],
};

const eps = (ns: string, name: string, ips: string[], local: string[] = []): V1EndpointSlice =>
  makeSlice(ns, name, 1, (e) => {
    e.endpoints = ips.map((a) => ({ addresses: [a], ...(local.includes(a) ? { nodeName: "test-node" } : {}) }));
    e.ports = [{ name: "p80", port: 80, protocol: "TCP" }];
  });

/** Trackers + the nftables generator, keeping state between syncs as the proxier does. */
class NftFake {
  readonly fp = new FakeProxier();
  state: NftState = emptyNftState();
  full = true;
  options: NftOptions = OPTIONS;
  sync(): NftResult {
    const su = this.fp.services.apply(this.fp.serviceMap);
    const eu = this.fp.endpoints.apply(this.fp.endpointsMap);
    const changed = new Set([...su.updatedServices, ...eu.updatedServices]);
    const r = generateNftRules({
      services: this.fp.serviceMap,
      endpoints: this.fp.endpointsMap,
      nodeLabels: {},
      options: this.options,
      full: this.full,
      changedServices: changed,
      previous: this.state,
    });
    this.full = false;
    this.state = r.state;
    return r;
  }
}

function overall(): NftFake {
  const f = new NftFake();
  f.fp.addServices(
    makeService("ns1", "svc1", (s) => (s.spec = { clusterIP: "172.30.0.41", ports: [{ name: "p80", port: 80, protocol: "TCP" }] })),
    makeService("ns2", "svc2", (s) => {
      s.spec = {
        type: "LoadBalancer",
        externalTrafficPolicy: "Local",
        clusterIP: "172.30.0.42",
        externalIPs: ["192.168.99.22"],
        healthCheckNodePort: 30000,
        ports: [{ name: "p80", port: 80, protocol: "TCP", nodePort: 3001 }],
      };
      s.status = { loadBalancer: { ingress: [{ ip: "1.2.3.4" }] } };
    }),
    makeService("ns3", "svc3", (s) => (s.spec = { type: "NodePort", clusterIP: "172.30.0.43", ports: [{ name: "p80", port: 80, protocol: "TCP", nodePort: 3003 }] })),
    makeService("ns4", "svc4", (s) => (s.spec = { type: "NodePort", clusterIP: "172.30.0.44", externalIPs: ["192.168.99.33"], ports: [{ name: "p80", port: 80, protocol: "TCP", targetPort: 80 }] })),
    makeService("ns5", "svc5", (s) => {
      s.spec = {
        type: "LoadBalancer",
        externalTrafficPolicy: "Cluster",
        clusterIP: "172.30.0.45",
        healthCheckNodePort: 30000,
        loadBalancerSourceRanges: [" 203.0.113.0/25"],
        sessionAffinity: "ClientIP",
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
        ports: [{ name: "p80", port: 80, protocol: "TCP", nodePort: 3002 }],
      };
      s.status = { loadBalancer: { ingress: [{ ip: "5.6.7.8" }] } };
    }),
    makeService("ns6", "svc6", (s) => (s.spec = { type: "ClusterIP", clusterIP: "172.30.0.46", ports: [{ name: "p80", port: 80, protocol: "TCP", targetPort: 80 }] })),
  );
  f.fp.addSlices(
    eps("ns1", "svc1", ["10.180.0.1"]),
    eps("ns2", "svc2", ["10.180.0.2"]),
    eps("ns3", "svc3", ["10.180.0.3"]),
    eps("ns4", "svc4", ["10.180.0.4", "10.180.0.5"], ["10.180.0.5"]),
    eps("ns5", "svc5", ["10.180.0.3"]),
  );
  return f;
}

const lines = (text: string): string[] => text.split("\n").filter((l) => l !== "");
const T = "ip kube-proxy";

describe("nftables chain names", () => {
  it("match upstream's golden names", () => {
    expect(hashAndTruncate("ns1/svc1/tcp/p80")).toBe("ULMVA6XW-ns1/svc1/tcp/p80");
    expect(hashAndTruncate("ns1/svc1/tcp/p80__10.180.0.1/80")).toBe("5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80");
    expect(hashAndTruncate("ns5/svc5/tcp/p80__10.180.0.3/80")).toBe("GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80");
    expect(hashAndTruncate("x".repeat(300))).toHaveLength(240);
  });
});

describe("nftables full sync", () => {
  it("writes upstream's skeleton and TestOverallNFTablesRules' per-Service rules and elements", () => {
    const r = overall().sync();
    const got = new Set(lines(r.text));
    const expected = [
      `add table ${T} { comment "rules for kube-proxy" ; }`,
      `add chain ${T} filter-prerouting { type filter hook prerouting priority -110 ; }`,
      `add chain ${T} filter-output-post-dnat { type filter hook output priority -90 ; }`,
      `add chain ${T} nat-prerouting { type nat hook prerouting priority -100 ; }`,
      `add chain ${T} nat-postrouting { type nat hook postrouting priority 100 ; }`,
      `add rule ${T} filter-input ct state new jump nodeport-endpoints-check`,
      `add rule ${T} filter-forward ct state new jump cluster-ips-check`,
      `add rule ${T} filter-output-post-dnat ct state new jump cluster-ips-check`,
      `add rule ${T} cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"`,
      `add rule ${T} mark-for-masquerade mark set mark or 0x4000`,
      `add rule ${T} masquerading mark and 0x4000 == 0 return`,
      `add rule ${T} masquerading mark set mark xor 0x4000`,
      `add rule ${T} masquerading masquerade fully-random`,
      `add rule ${T} nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports`,
      `add rule ${T} reject-chain reject`,
      `add rule ${T} services ip daddr . meta l4proto . th dport vmap @service-ips`,
      `add rule ${T} services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports`,
      `add element ${T} nodeport-ips { 192.168.0.2 }`,
      `add rule ${T} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services`,
      // svc1
      `add rule ${T} service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade`,
      `add rule ${T} service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }`,
      `add rule ${T} endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade`,
      `add rule ${T} endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80`,
      `add element ${T} cluster-ips { 172.30.0.41 }`,
      `add element ${T} service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }`,
      // svc2
      `add rule ${T} external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit pod traffic"`,
      `add rule ${T} external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"`,
      `add rule ${T} external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit local traffic"`,
      `add element ${T} service-ips { 192.168.99.22 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }`,
      `add element ${T} service-ips { 1.2.3.4 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }`,
      `add element ${T} service-nodeports { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }`,
      `add element ${T} no-endpoint-nodeports { tcp . 3001 comment "ns2/svc2:p80" : drop }`,
      `add element ${T} no-endpoint-services { 1.2.3.4 . tcp . 80 comment "ns2/svc2:p80" : drop }`,
      `add element ${T} no-endpoint-services { 192.168.99.22 . tcp . 80 comment "ns2/svc2:p80" : drop }`,
      // svc3
      `add rule ${T} external-4AT6LBPK-ns3/svc3/tcp/p80 jump mark-for-masquerade`,
      `add rule ${T} external-4AT6LBPK-ns3/svc3/tcp/p80 goto service-4AT6LBPK-ns3/svc3/tcp/p80`,
      `add element ${T} service-nodeports { tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80 }`,
      // svc4
      `add rule ${T} service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 , 1 : goto endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }`,
      `add element ${T} service-ips { 192.168.99.33 . tcp . 80 : goto external-LAUZTJTB-ns4/svc4/tcp/p80 }`,
      // svc5
      `add set ${T} affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }`,
      `add rule ${T} service-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80`,
      `add rule ${T} endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { ip saddr }`,
      `add rule ${T} firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 203.0.113.0/25 } drop`,
      `add element ${T} firewall-ips { 5.6.7.8 . tcp . 80 : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }`,
      `add element ${T} service-nodeports { tcp . 3002 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }`,
      // svc6
      `add element ${T} cluster-ips { 172.30.0.46 }`,
      `add element ${T} no-endpoint-services { 172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain }`,
    ];
    for (const l of expected) expect(got.has(l), l).toBe(true);
    // svc2 has no local endpoint: no local- chain, no rule from external- to a policy chain
    expect([...got].some((l) => l.includes("local-42NFTM6N"))).toBe(false);
    expect(got.has(`add rule ${T} external-42NFTM6N-ns2/svc2/tcp/p80 goto local-42NFTM6N-ns2/svc2/tcp/p80`)).toBe(false);
    // every element container is flushed before it is filled
    const text = lines(r.text);
    expect(text.indexOf(`flush map ${T} service-ips`)).toBeLessThan(text.findIndex((l) => l.startsWith(`add element ${T} service-ips`)));
    // chains exist before a map element points at them
    const chainAt = text.indexOf(`add chain ${T} service-ULMVA6XW-ns1/svc1/tcp/p80`);
    expect(chainAt).toBeGreaterThan(-1);
    expect(chainAt).toBeLessThan(text.indexOf(`add element ${T} service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }`));
    expect(r.noLocalEndpointsExternal).toBe(1);
  });

  it("dispatches NodePorts on every local address but loopback when nodePortAddresses is empty", () => {
    const f = overall();
    f.options = { ...OPTIONS, nodePortIPs: "all" };
    const got = lines(f.sync().text);
    expect(got).toContain(`add rule ${T} services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports`);
    expect(got).toContain(`add rule ${T} nodeport-endpoints-check ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports`);
    expect(got).toContain(`delete set ${T} nodeport-ips`);
  });

  it("masquerades every ClusterIP packet with masqueradeAll and knows ip6", () => {
    const f = overall();
    f.options = { ...OPTIONS, masqueradeAll: true };
    expect(lines(f.sync().text)).toContain(`add rule ${T} service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 jump mark-for-masquerade`);
    const g = new NftFake();
    g.options = { ...OPTIONS, family: "ip6", localCidr: "fd00:10::/64", nodeIP: undefined, nodePortIPs: "all" };
    g.fp.addServices(makeService("ns1", "svc1", (s) => (s.spec = { clusterIP: "fd00:172:30::41", ports: [{ name: "p80", port: 80, protocol: "TCP" }] })));
    const text = g.sync().text;
    expect(text).toContain(`add map ip6 kube-proxy service-ips { type ipv6_addr . inet_proto . inet_service : verdict ;`);
    expect(text).toContain(`add rule ip6 kube-proxy services fib daddr type local ip6 daddr != ::1 meta l4proto . th dport vmap @service-nodeports`);
  });
});

describe("nftables traffic policies", () => {
  const svc = (mutate: (s: V1ServiceSpec) => void) =>
    makeService("ns1", "svc1", (s) => {
      s.spec = { type: "NodePort", clusterIP: "172.30.0.41", ports: [{ name: "p80", port: 80, protocol: "TCP", nodePort: 3001 }] };
      mutate(s.spec);
    });
  const SVC = "service-ULMVA6XW-ns1/svc1/tcp/p80";
  const LOCAL = "local-ULMVA6XW-ns1/svc1/tcp/p80";
  const EXT = "external-ULMVA6XW-ns1/svc1/tcp/p80";

  it("internalTrafficPolicy Local: ClusterIP to the local endpoints only, dropped without one", () => {
    const f = new NftFake();
    f.fp.addServices(svc((s) => (s.internalTrafficPolicy = "Local")));
    f.fp.addSlices(eps("ns1", "svc1", ["10.180.0.1", "10.180.0.2"], ["10.180.0.1"]));
    let got = lines(f.sync().text);
    expect(got).toContain(`add element ${T} service-ips { 172.30.0.41 . tcp . 80 : goto ${LOCAL} }`);
    expect(got.find((l) => l.startsWith(`add rule ${T} ${LOCAL} numgen`))).toMatch(/mod 1 vmap \{ 0 : goto endpoint-\w+-ns1\/svc1\/tcp\/p80__10\.180\.0\.1\/80 \}/);
    // the NodePort still uses every endpoint (externalTrafficPolicy Cluster)
    expect(got.find((l) => l.startsWith(`add rule ${T} ${SVC} numgen`))).toContain("mod 2");
    f.fp.addSlices(eps("ns1", "svc1", ["10.180.0.2"]));
    const r = f.sync();
    got = lines(r.text);
    expect(got).toContain(`add element ${T} no-endpoint-services { 172.30.0.41 . tcp . 80 comment "ns1/svc1:p80" : drop }`);
    expect(got).toContain(`delete element ${T} service-ips { 172.30.0.41 . tcp . 80 }`);
    expect(r.noLocalEndpointsInternal).toBe(1);
  });

  it("externalTrafficPolicy Local: external traffic to local endpoints, pods and the node short-circuited to all", () => {
    const f = new NftFake();
    f.fp.addServices(svc((s) => (s.externalTrafficPolicy = "Local")));
    f.fp.addSlices(eps("ns1", "svc1", ["10.180.0.1", "10.180.0.2"], ["10.180.0.1"]));
    const got = lines(f.sync().text);
    const ext = got.filter((l) => l.startsWith(`add rule ${T} ${EXT} `)).map((l) => l.slice(`add rule ${T} ${EXT} `.length));
    expect(ext).toEqual([
      `ip saddr 10.0.0.0/8 goto ${SVC} comment "short-circuit pod traffic"`,
      `fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"`,
      `fib saddr type local goto ${SVC} comment "short-circuit local traffic"`,
      `goto ${LOCAL}`,
    ]);
    expect(got).toContain(`add element ${T} service-nodeports { tcp . 3001 : goto ${EXT} }`);
  });

  it("falls back to serving terminating endpoints only when no endpoint is ready", () => {
    const f = new NftFake();
    f.fp.addServices(svc(() => undefined));
    const slice = (readyB: boolean) =>
      makeSlice("ns1", "svc1", 1, (e) => {
        e.endpoints = [
          { addresses: ["10.180.0.1"], conditions: { ready: false, serving: true, terminating: true } },
          { addresses: ["10.180.0.2"], conditions: { ready: readyB, serving: true, terminating: !readyB } },
          { addresses: ["10.180.0.3"], conditions: { ready: false, serving: false, terminating: true } },
        ];
        e.ports = [{ name: "p80", port: 80, protocol: "TCP" }];
      });
    f.fp.addSlices(slice(true));
    expect(lines(f.sync().text).find((l) => l.startsWith(`add rule ${T} ${SVC} numgen`))).toMatch(/mod 1 vmap \{ 0 : goto endpoint-\w+-ns1\/svc1\/tcp\/p80__10\.180\.0\.2\/80 \}/);
    f.fp.addSlices(slice(false));
    const rule = lines(f.sync().text).find((l) => l.startsWith(`add rule ${T} ${SVC} numgen`));
    expect(rule).toMatch(/mod 2 vmap \{ 0 : goto endpoint-\w+-ns1\/svc1\/tcp\/p80__10\.180\.0\.1\/80 , 1 : goto endpoint-\w+-ns1\/svc1\/tcp\/p80__10\.180\.0\.2\/80 \}/);
  });
});

/** upstream's IPv6 golden dump (knftables fake test of this layout), less its test-only element comments. */
const IPV6_DUMP = `
add table ip6 kube-proxy { comment "rules for kube-proxy" ; }
add chain ip6 kube-proxy cluster-ips-check
add chain ip6 kube-proxy endpoint-2CRNCTTE-ns1/svc1/tcp/p80__fd00.10.180..2.1/80
add chain ip6 kube-proxy endpoint-ZVRFLKHO-ns1/svc1/tcp/p80__fd00.10.180..1/80
add chain ip6 kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80
add chain ip6 kube-proxy filter-forward { type filter hook forward priority -110 ; }
add chain ip6 kube-proxy filter-input { type filter hook input priority -110 ; }
add chain ip6 kube-proxy filter-output { type filter hook output priority -110 ; }
add chain ip6 kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }
add chain ip6 kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }
add chain ip6 kube-proxy firewall-check
add chain ip6 kube-proxy mark-for-masquerade
add chain ip6 kube-proxy masquerading
add chain ip6 kube-proxy nat-output { type nat hook output priority -100 ; }
add chain ip6 kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip6 kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip6 kube-proxy nodeport-endpoints-check
add chain ip6 kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
add chain ip6 kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
add chain ip6 kube-proxy service-endpoints-check
add chain ip6 kube-proxy services
add set ip6 kube-proxy cluster-ips { type ipv6_addr ; comment "Active ClusterIPs" ; }
add set ip6 kube-proxy nodeport-ips { type ipv6_addr ; comment "IPs that accept NodePort traffic" ; }
add map ip6 kube-proxy firewall-ips { type ipv6_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
add map ip6 kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
add map ip6 kube-proxy no-endpoint-services { type ipv6_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
add map ip6 kube-proxy service-ips { type ipv6_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip6 kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
add rule ip6 kube-proxy cluster-ips-check ip6 daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip6 kube-proxy cluster-ips-check ip6 daddr { fd00:10:96::/112 } drop comment "Drop traffic to unallocated ClusterIPs"
add rule ip6 kube-proxy endpoint-2CRNCTTE-ns1/svc1/tcp/p80__fd00.10.180..2.1/80 ip6 saddr fd00:10:180::2:1 jump mark-for-masquerade
add rule ip6 kube-proxy endpoint-2CRNCTTE-ns1/svc1/tcp/p80__fd00.10.180..2.1/80 meta l4proto tcp dnat to [fd00:10:180::2:1]:80
add rule ip6 kube-proxy endpoint-ZVRFLKHO-ns1/svc1/tcp/p80__fd00.10.180..1/80 ip6 saddr fd00:10:180::1 jump mark-for-masquerade
add rule ip6 kube-proxy endpoint-ZVRFLKHO-ns1/svc1/tcp/p80__fd00.10.180..1/80 meta l4proto tcp dnat to [fd00:10:180::1]:80
add rule ip6 kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 jump mark-for-masquerade
add rule ip6 kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 goto service-ULMVA6XW-ns1/svc1/tcp/p80
add rule ip6 kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip6 kube-proxy filter-forward ct state new jump cluster-ips-check
add rule ip6 kube-proxy filter-input ct state new jump nodeport-endpoints-check
add rule ip6 kube-proxy filter-input ct state new jump service-endpoints-check
add rule ip6 kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip6 kube-proxy filter-output ct state new jump firewall-check
add rule ip6 kube-proxy filter-output-post-dnat ct state new jump cluster-ips-check
add rule ip6 kube-proxy filter-prerouting ct state new jump firewall-check
add rule ip6 kube-proxy firewall-check ip6 daddr . meta l4proto . th dport vmap @firewall-ips
add rule ip6 kube-proxy mark-for-masquerade mark set mark or 0x4000
add rule ip6 kube-proxy masquerading mark and 0x4000 == 0 return
add rule ip6 kube-proxy masquerading mark set mark xor 0x4000
add rule ip6 kube-proxy masquerading masquerade fully-random
add rule ip6 kube-proxy nat-output jump services
add rule ip6 kube-proxy nat-postrouting jump masquerading
add rule ip6 kube-proxy nat-prerouting jump services
add rule ip6 kube-proxy nodeport-endpoints-check ip6 daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip6 kube-proxy reject-chain reject
add rule ip6 kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip6 daddr fd00:172:30::41 tcp dport 80 ip6 saddr != fd00:10::/64 jump mark-for-masquerade
add rule ip6 kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-ZVRFLKHO-ns1/svc1/tcp/p80__fd00.10.180..1/80 , 1 : goto endpoint-2CRNCTTE-ns1/svc1/tcp/p80__fd00.10.180..2.1/80 }
add rule ip6 kube-proxy service-endpoints-check ip6 daddr . meta l4proto . th dport vmap @no-endpoint-services
add rule ip6 kube-proxy services ip6 daddr . meta l4proto . th dport vmap @service-ips
add rule ip6 kube-proxy services ip6 daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
add element ip6 kube-proxy cluster-ips { fd00:172:30::41 }
add element ip6 kube-proxy nodeport-ips { 2001:db8::1 }
add element ip6 kube-proxy nodeport-ips { 2001:db8:1::2 }
add element ip6 kube-proxy service-ips { fd00:172:30::41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
add element ip6 kube-proxy service-nodeports { tcp . 3001 : goto external-ULMVA6XW-ns1/svc1/tcp/p80 }
`;

describe("nftables IPv6 (the family is a parameter)", () => {
  it("produces exactly upstream's IPv6 golden table", () => {
    const svc = {
      ...servicePortChains("ns1/svc1:p80", "TCP"),
      service: "ns1/svc1",
      name: "ns1/svc1:p80",
      portName: "p80",
      protocol: "TCP" as const,
      key: "ns1/svc1:p80/TCP",
      clusterIP: "fd00:172:30::41",
      port: 80,
      nodePort: 3001,
      externalIPs: [],
      loadBalancerVIPs: [],
      loadBalancerSourceRanges: [],
      stickyMaxAgeSeconds: 0,
      externalPolicyLocal: false,
      internalPolicyLocal: false,
      healthCheckNodePort: 0,
    };
    const endpoint = (ip: string) => ({ ip, port: 80, endpoint: `[${ip}]:80`, isLocal: false, ready: true, serving: true, terminating: false, zoneHints: undefined, chain: "" });
    const r = generateNftRules({
      services: new Map([["ns1/svc1", [svc]]]),
      endpoints: new Map([[svc.key, [endpoint("fd00:10:180::1"), endpoint("fd00:10:180::2:1")]]]),
      nodeLabels: {},
      options: { family: "ip6", masqueradeMark: "0x4000", masqueradeAll: false, localCidr: "fd00:10::/64", nodeIP: undefined, nodePortIPs: ["2001:db8::1", "2001:db8:1::2"], serviceCIDRs: ["fd00:10:96::/112"] },
      full: true,
      changedServices: new Set(),
      previous: emptyNftState(),
    });
    // The transaction's "add" lines, once each, are the table upstream's test expects (flushes aside).
    const added = [...new Set(lines(r.text).filter((l) => l.startsWith("add ")))].sort();
    expect(added).toEqual(lines(IPV6_DUMP).sort());
  });
});

describe("nftables partial syncs", () => {
  it("writes only the changed Service's chains and the elements that differ", () => {
    const f = overall();
    f.sync();
    expect(f.sync().text).toBe(""); // nothing changed: nothing to write
    // svc1 gains an endpoint
    f.fp.addSlices(eps("ns1", "svc1", ["10.180.0.1", "10.180.0.9"]));
    const r = f.sync();
    const got = lines(r.text);
    expect(got.some((l) => l.startsWith(`add table`))).toBe(false);
    expect(got.every((l) => l.includes("ns1/svc1"))).toBe(true);
    expect(got).toContain(`flush chain ${T} service-ULMVA6XW-ns1/svc1/tcp/p80`);
    expect(got.some((l) => l.includes("numgen random mod 2 vmap"))).toBe(true);
    expect(r.regeneratedPorts).toBe(1);
    // svc1 loses its endpoints: map element swapped, its chains flushed (stale), deleted later
    f.fp.addSlices(eps("ns1", "svc1", []));
    const r2 = f.sync();
    const got2 = lines(r2.text);
    expect(got2).toContain(`delete element ${T} service-ips { 172.30.0.41 . tcp . 80 }`);
    expect(got2).toContain(`add element ${T} no-endpoint-services { 172.30.0.41 . tcp . 80 comment "ns1/svc1:p80" : goto reject-chain }`);
    expect(r2.staleChains.sort()).toEqual([
      "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80",
      expect.stringMatching(/^endpoint-\w{8}-ns1\/svc1\/tcp\/p80__10\.180\.0\.9\/80$/),
      "service-ULMVA6XW-ns1/svc1/tcp/p80",
    ]);
    for (const c of r2.staleChains) expect(got2).toContain(`flush chain ${T} ${c}`);
    expect(got2.some((l) => l.startsWith("delete chain"))).toBe(false);
  });

  it("keeps a ClusterIP two ports share until both are gone, and removes a deleted Service's elements", () => {
    const f = new NftFake();
    const twoPorts = makeService("ns1", "svc1", (s) => {
      s.spec = {
        clusterIP: "172.30.0.41",
        ports: [
          { name: "p80", port: 80, protocol: "TCP" },
          { name: "p81", port: 81, protocol: "TCP" },
        ],
      };
    });
    f.fp.addServices(twoPorts);
    f.sync();
    const onePort = makeService("ns1", "svc1", (s) => (s.spec = { clusterIP: "172.30.0.41", ports: [{ name: "p80", port: 80, protocol: "TCP" }] }));
    f.fp.services.update(twoPorts, onePort);
    const got = lines(f.sync().text);
    expect(got).toEqual([`delete element ${T} no-endpoint-services { 172.30.0.41 . tcp . 81 }`]);
    f.fp.services.update(onePort, undefined);
    expect(lines(f.sync().text).sort()).toEqual([`delete element ${T} cluster-ips { 172.30.0.41 }`, `delete element ${T} no-endpoint-services { 172.30.0.41 . tcp . 80 }`]);
    expect(f.state.ports.size).toBe(0);
    expect(f.state.refs.size).toBe(0);
  });

  it("deletes affinity sets at once and stale chains only after the grace period", () => {
    const f = overall();
    f.sync();
    f.fp.addSlices(eps("ns5", "svc5", ["10.180.0.7"]));
    const got = lines(f.sync().text);
    expect(got).toContain(`delete set ${T} affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80`);
    const stale = new Map([
      ["a/b", 1000],
      ["c/d", 1900],
    ]);
    expect(staleChainsDeletion("ip", stale, 2000)).toEqual({ text: `delete chain ${T} a/b\n`, chains: ["a/b"] });
  });

  it("finds leftovers of an earlier process on a full sync", () => {
    const f = new NftFake();
    const r = generateNftRules({
      services: f.fp.serviceMap,
      endpoints: f.fp.endpointsMap,
      nodeLabels: {},
      options: OPTIONS,
      full: true,
      changedServices: new Set(),
      previous: emptyNftState(),
      existingChains: new Set(["services", "service-AAAAAAAA-x/y/tcp/p"]),
      existingSets: new Set(["cluster-ips", "affinity-AAAAAAAA-x/y/tcp/p__1.2.3.4/80"]),
    });
    expect(r.staleChains).toEqual(["service-AAAAAAAA-x/y/tcp/p"]);
    expect(r.text).toContain(`delete set ${T} affinity-AAAAAAAA-x/y/tcp/p__1.2.3.4/80\n`);
  });
});

describe("nft listings", () => {
  it("reads our table's chains and sets only", () => {
    const listing = [
      "table ip other {",
      "\tchain services {",
      "\t}",
      "}",
      "table ip kube-proxy {",
      "\tchain services {",
      "\t\ttype filter hook input priority -110; policy accept;",
      "\t}",
      "\tchain service-ULMVA6XW-ns1/svc1/tcp/p80 {",
      "\t}",
      "\tset cluster-ips {",
      "\t}",
      "\tmap service-ips {",
      "\t}",
      "}",
    ].join("\n");
    expect([...namesFromList(listing, "chain")]).toEqual(["services", "service-ULMVA6XW-ns1/svc1/tcp/p80"]);
    expect([...namesFromList(listing, "set")]).toEqual(["cluster-ips", "service-ips"]);
  });
});
