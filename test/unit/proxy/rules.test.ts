/**
 * Rule generation against upstream's expected restore outputs (kubernetes/kubernetes
 * pkg/proxy/iptables/proxier_test.go: TestOverallIPTablesRules, TestSyncProxyRulesRepeated, ...), with
 * upstream's fake-proxier conventions: pod CIDR 10.0.0.0/8, ClusterIPs 172.30.0.0/16, node 192.168.0.2.
 */
import { describe, expect, it } from "vitest";
import {
  JUMP_RULES,
  LARGE_CLUSTER_ENDPOINTS_THRESHOLD,
  categorizeEndpoints,
  computeProbability,
  generateRules,
  RulesCache,
  jumpRuleArgs,
} from "../../../proxy/rules.ts";
import { endpointChainName, hash16, servicePortChains } from "../../../proxy/types.ts";
import { servicePorts } from "../../../proxy/service-change-tracker.ts";
import { FakeProxier, dedent, fakeOptions, makeService, makeSlice, normalizeRestore, TEST_NODE_NAME } from "./helpers.ts";

const tcpPort = (name: string, port: number) => ({ name, port, protocol: "TCP" });

describe("chain names", () => {
  it("match upstream's golden hashes", () => {
    const cases: [string, string, string, string][] = [
      ["ns1/svc1:p80", "KUBE-SVC-XPGD46QRK7WJZT7O", "10.180.0.1:80", "KUBE-SEP-SXIVWICOYRO3J4NJ"],
      ["ns2/svc2:p80", "KUBE-SVC-GNZBNJ2PO5MGZ6GT", "10.180.0.2:80", "KUBE-SEP-RS4RBKLTHTF2IUXJ"],
      ["ns3/svc3:p80", "KUBE-SVC-X27LE4BHSL4DOUIK", "10.180.0.3:80", "KUBE-SEP-OYPFS5VJICHGATKP"],
      ["ns4/svc4:p80", "KUBE-SVC-4SW47YFZTEDKD3PK", "10.180.0.4:80", "KUBE-SEP-UKSFD7AGPMPPLUHC"],
      ["ns4/svc4:p80", "KUBE-SVC-4SW47YFZTEDKD3PK", "10.180.0.5:80", "KUBE-SEP-C6EBXVWJJZMIWKLZ"],
      ["ns5/svc5:p80", "KUBE-SVC-NUKIZ6OKUXPJNT4C", "10.180.0.3:80", "KUBE-SEP-I77PXRDZVX7PMWMN"],
      ["ns2/svc2:p8080", "KUBE-SVC-2VJB64SDSIJUP5T6", "10.0.2.1:8080", "KUBE-SEP-UHEGFW77JX3KXTOV"],
      ["ns1/svc1:p80", "KUBE-SVC-XPGD46QRK7WJZT7O", "10.0.1.1:80", "KUBE-SEP-SNQ3ZNILQDEJNDQO"],
      ["ns3/svc3:p80", "KUBE-SVC-X27LE4BHSL4DOUIK", "10.0.3.1:80", "KUBE-SEP-BSWRHOQ77KEXZLNL"],
      ["ns3/svc3:p80", "KUBE-SVC-X27LE4BHSL4DOUIK", "10.0.3.2:80", "KUBE-SEP-DKCFIS26GWF2WLWC"],
      ["ns4/svc4:p80", "KUBE-SVC-4SW47YFZTEDKD3PK", "10.0.4.1:80", "KUBE-SEP-AYCN5HPXMIRJNJXU"],
    ];
    for (const [name, svcChain, ep, sepChain] of cases) {
      expect(servicePortChains(name, "TCP").svcChain).toBe(svcChain);
      expect(endpointChainName(name, "TCP", ep)).toBe(sepChain);
    }
    const c = servicePortChains("ns5/svc5:p80", "TCP");
    expect([c.extChain, c.fwChain, c.svlChain]).toEqual(["KUBE-EXT-NUKIZ6OKUXPJNT4C", "KUBE-FW-NUKIZ6OKUXPJNT4C", "KUBE-SVL-NUKIZ6OKUXPJNT4C"]);
    expect(servicePortChains("ns2/svc2:p80", "TCP").extChain).toBe("KUBE-EXT-GNZBNJ2PO5MGZ6GT");
    // names stay within iptables' 28-character limit
    expect(c.svcChain.length).toBeLessThanOrEqual(28);
    expect(hash16("")).toBe("4OYMIQUY7QOBJGX3");
  });

  it("depend on the protocol", () => {
    expect(servicePortChains("ns1/svc1:p80", "UDP").svcChain).not.toBe(servicePortChains("ns1/svc1:p80", "TCP").svcChain);
  });
});

describe("computeProbability", () => {
  it("prints 1/n with ten decimals as upstream's %0.10f", () => {
    const cases: [number, string][] = [
      [1, "1.0000000000"],
      [2, "0.5000000000"],
      [10, "0.1000000000"],
      [100, "0.0100000000"],
      [1000, "0.0010000000"],
      [10000, "0.0001000000"],
      [100000, "0.0000100000"],
      [100001, "0.0000099999"],
    ];
    for (const [n, s] of cases) expect(computeProbability(n)).toBe(s);
  });

  it("strictly increases as n decreases", () => {
    let prev = Number(computeProbability(100000));
    for (let n = 99999; n >= 2; n--) {
      const p = Number(computeProbability(n));
      expect(p).toBeGreaterThan(prev);
      prev = p;
    }
  });
});

/** The six Services of upstream's TestOverallIPTablesRules. */
function overallFixture(fp: FakeProxier): void {
  fp.addServices(
    makeService("ns1", "svc1", (s) => {
      s.spec = { clusterIP: "172.30.0.41", ports: [tcpPort("p80", 80)] };
    }),
    makeService("ns2", "svc2", (s) => {
      s.spec = {
        type: "LoadBalancer",
        externalTrafficPolicy: "Local",
        clusterIP: "172.30.0.42",
        ports: [{ ...tcpPort("p80", 80), nodePort: 3001 }],
        externalIPs: ["192.168.99.22"],
        healthCheckNodePort: 30000,
      };
      s.status = { loadBalancer: { ingress: [{ ip: "1.2.3.4" }] } };
    }),
    makeService("ns3", "svc3", (s) => {
      s.spec = { type: "NodePort", clusterIP: "172.30.0.43", ports: [{ ...tcpPort("p80", 80), nodePort: 3003 }] };
    }),
    makeService("ns4", "svc4", (s) => {
      s.spec = { type: "NodePort", clusterIP: "172.30.0.44", externalIPs: ["192.168.99.33"], ports: [{ ...tcpPort("p80", 80), targetPort: 80 }] };
    }),
    makeService("ns5", "svc5", (s) => {
      s.spec = {
        type: "LoadBalancer",
        externalTrafficPolicy: "Cluster",
        clusterIP: "172.30.0.45",
        ports: [{ ...tcpPort("p80", 80), nodePort: 3002 }],
        healthCheckNodePort: 30000,
        loadBalancerSourceRanges: [" 203.0.113.0/25"],
        sessionAffinity: "ClientIP",
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
      };
      s.status = { loadBalancer: { ingress: [{ ip: "5.6.7.8" }] } };
    }),
    makeService("ns6", "svc6", (s) => {
      s.spec = { type: "ClusterIP", clusterIP: "172.30.0.46", ports: [{ ...tcpPort("p80", 80), targetPort: 80 }] };
    }),
  );
  const slice = (ns: string, name: string, endpoints: { addresses: string[]; nodeName?: string }[]) =>
    makeSlice(ns, name, 1, (eps) => {
      eps.endpoints = endpoints;
      eps.ports = [{ name: "p80", port: 80, protocol: "TCP" }];
    });
  fp.addSlices(
    slice("ns1", "svc1", [{ addresses: ["10.180.0.1"] }]),
    slice("ns2", "svc2", [{ addresses: ["10.180.0.2"] }]),
    slice("ns3", "svc3", [{ addresses: ["10.180.0.3"] }]),
    slice("ns4", "svc4", [{ addresses: ["10.180.0.4"] }, { addresses: ["10.180.0.5"], nodeName: TEST_NODE_NAME }]),
    slice("ns5", "svc5", [{ addresses: ["10.180.0.3"] }]),
  );
}

describe("generateRules", () => {
  it("produces upstream's TestOverallIPTablesRules dump", () => {
    const fp = new FakeProxier();
    overallFixture(fp);
    const got = fp.sync();
    const expected = dedent(`
      *filter
      :KUBE-NODEPORTS - [0:0]
      :KUBE-SERVICES - [0:0]
      :KUBE-EXTERNAL-SERVICES - [0:0]
      :KUBE-FIREWALL - [0:0]
      :KUBE-FORWARD - [0:0]
      :KUBE-PROXY-FIREWALL - [0:0]
      -A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
      -A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
      -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP
      -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP
      -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP
      -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
      -A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP
      -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
      -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
      -A KUBE-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP
      COMMIT
      *nat
      :KUBE-NODEPORTS - [0:0]
      :KUBE-SERVICES - [0:0]
      :KUBE-EXT-4SW47YFZTEDKD3PK - [0:0]
      :KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
      :KUBE-EXT-NUKIZ6OKUXPJNT4C - [0:0]
      :KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]
      :KUBE-FW-NUKIZ6OKUXPJNT4C - [0:0]
      :KUBE-MARK-MASQ - [0:0]
      :KUBE-POSTROUTING - [0:0]
      :KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]
      :KUBE-SEP-I77PXRDZVX7PMWMN - [0:0]
      :KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
      :KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
      :KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
      :KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]
      :KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
      :KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
      :KUBE-SVC-NUKIZ6OKUXPJNT4C - [0:0]
      :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
      :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
      -A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp -d 127.0.0.0/8 --dport 3001 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
      -A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
      -A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp -d 127.0.0.0/8 --dport 3003 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-X27LE4BHSL4DOUIK
      -A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
      -A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp -d 127.0.0.0/8 --dport 3002 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-NUKIZ6OKUXPJNT4C
      -A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
      -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
      -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
      -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
      -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
      -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
      -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
      -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.33 --dport 80 -j KUBE-EXT-4SW47YFZTEDKD3PK
      -A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C
      -A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-FW-NUKIZ6OKUXPJNT4C
      -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
      -A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment "masquerade traffic for ns4/svc4:p80 external destinations" -j KUBE-MARK-MASQ
      -A KUBE-EXT-4SW47YFZTEDKD3PK -j KUBE-SVC-4SW47YFZTEDKD3PK
      -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
      -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
      -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
      -A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j KUBE-MARK-MASQ
      -A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C
      -A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
      -A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
      -A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
      -A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"
      -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
      -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
      -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
      -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
      -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
      -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
      -A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
      -A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
      -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
      -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
      -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
      -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
      -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
      -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
      -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
      -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
      -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC
      -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" -j KUBE-SEP-C6EBXVWJJZMIWKLZ
      -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
      -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --rcheck --seconds 10800 --reap -j KUBE-SEP-I77PXRDZVX7PMWMN
      -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -j KUBE-SEP-I77PXRDZVX7PMWMN
      -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
      -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
      COMMIT
    `);
    expect(normalizeRestore(got)).toBe(normalizeRestore(expected));
    // sync_proxy_rules_iptables_total{table=nat} equals the nat rules written on a full sync
    const natRules = got.split("*nat")[1]?.split("\n").filter((l) => l.startsWith("-A ")).length;
    expect(fp.last?.natRulesTotal).toBe(natRules);
  });

  it("follows upstream's TestSyncProxyRulesRepeated through partial syncs", () => {
    const fp = new FakeProxier(fakeOptions({ nfacct: { ctStateInvalid: false, localhostNodePorts: false } }));
    const svc2 = makeService("ns2", "svc2", (s) => {
      s.spec = { type: "ClusterIP", clusterIP: "172.30.0.42", ports: [tcpPort("p8080", 8080)] };
    });
    fp.addServices(
      makeService("ns1", "svc1", (s) => {
        s.spec = { type: "ClusterIP", clusterIP: "172.30.0.41", ports: [tcpPort("p80", 80)] };
      }),
      svc2,
    );
    const slice = (ns: string, name: string, ip: string, port: string, num: number) =>
      makeSlice(ns, name, 1, (eps) => {
        eps.endpoints = [{ addresses: [ip] }];
        eps.ports = [{ name: port, port: num, protocol: "TCP" }];
      });
    fp.addSlices(slice("ns1", "svc1", "10.0.1.1", "p80", 80), slice("ns2", "svc2", "10.0.2.1", "p8080", 8080));
    const filter = `
      *filter
      :KUBE-NODEPORTS - [0:0]
      :KUBE-SERVICES - [0:0]
      :KUBE-EXTERNAL-SERVICES - [0:0]
      :KUBE-FIREWALL - [0:0]
      :KUBE-FORWARD - [0:0]
      :KUBE-PROXY-FIREWALL - [0:0]
      -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
      -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
      -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
      -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
      COMMIT`;
    const natHead = `
      *nat
      :KUBE-NODEPORTS - [0:0]
      :KUBE-SERVICES - [0:0]
      :KUBE-MARK-MASQ - [0:0]
      :KUBE-POSTROUTING - [0:0]`;
    const natFixed = `
      -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
      -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
      -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
      -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
      -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE`;
    const check = (expected: string): void => {
      expect(normalizeRestore(fp.sync())).toBe(normalizeRestore(dedent(expected)));
    };

    check(`${filter}${natHead}
      :KUBE-SEP-SNQ3ZNILQDEJNDQO - [0:0]
      :KUBE-SEP-UHEGFW77JX3KXTOV - [0:0]
      :KUBE-SVC-2VJB64SDSIJUP5T6 - [0:0]
      :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
      -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
      -A KUBE-SERVICES -m comment --comment "ns2/svc2:p8080 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 8080 -j KUBE-SVC-2VJB64SDSIJUP5T6
      ${natFixed}
      -A KUBE-SEP-SNQ3ZNILQDEJNDQO -m comment --comment ns1/svc1:p80 -s 10.0.1.1 -j KUBE-MARK-MASQ
      -A KUBE-SEP-SNQ3ZNILQDEJNDQO -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.1.1:80
      -A KUBE-SEP-UHEGFW77JX3KXTOV -m comment --comment ns2/svc2:p8080 -s 10.0.2.1 -j KUBE-MARK-MASQ
      -A KUBE-SEP-UHEGFW77JX3KXTOV -m comment --comment ns2/svc2:p8080 -m tcp -p tcp -j DNAT --to-destination 10.0.2.1:8080
      -A KUBE-SVC-2VJB64SDSIJUP5T6 -m comment --comment "ns2/svc2:p8080 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 8080 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-2VJB64SDSIJUP5T6 -m comment --comment "ns2/svc2:p8080 -> 10.0.2.1:8080" -j KUBE-SEP-UHEGFW77JX3KXTOV
      -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.0.1.1:80" -j KUBE-SEP-SNQ3ZNILQDEJNDQO
      COMMIT`);

    // A new Service and its endpoints: only its SVC and SEP chains are written.
    fp.addServices(
      makeService("ns3", "svc3", (s) => {
        s.spec = { type: "ClusterIP", clusterIP: "172.30.0.43", ports: [tcpPort("p80", 80)] };
      }),
    );
    const eps3 = slice("ns3", "svc3", "10.0.3.1", "p80", 80);
    fp.addSlices(eps3);
    check(`${filter}${natHead}
      :KUBE-SEP-BSWRHOQ77KEXZLNL - [0:0]
      :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
      -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
      -A KUBE-SERVICES -m comment --comment "ns2/svc2:p8080 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 8080 -j KUBE-SVC-2VJB64SDSIJUP5T6
      -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
      ${natFixed}
      -A KUBE-SEP-BSWRHOQ77KEXZLNL -m comment --comment ns3/svc3:p80 -s 10.0.3.1 -j KUBE-MARK-MASQ
      -A KUBE-SEP-BSWRHOQ77KEXZLNL -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.1:80
      -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.1:80" -j KUBE-SEP-BSWRHOQ77KEXZLNL
      COMMIT`);

    // Delete a Service: its chains are flushed and deleted, the others untouched.
    fp.services.update(svc2, undefined);
    check(`${filter}${natHead}
      :KUBE-SEP-UHEGFW77JX3KXTOV - [0:0]
      :KUBE-SVC-2VJB64SDSIJUP5T6 - [0:0]
      -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
      -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
      ${natFixed}
      -X KUBE-SEP-UHEGFW77JX3KXTOV
      -X KUBE-SVC-2VJB64SDSIJUP5T6
      COMMIT`);

    // A Service without endpoints: only a REJECT rule; then its endpoints arrive.
    fp.addServices(
      makeService("ns4", "svc4", (s) => {
        s.spec = { type: "ClusterIP", clusterIP: "172.30.0.44", ports: [tcpPort("p80", 80)] };
      }),
    );
    const out = normalizeRestore(fp.sync());
    expect(out).toContain(`-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j REJECT`);
    expect(out).not.toContain(":KUBE-SVC-4SW47YFZTEDKD3PK");
    fp.addSlices(slice("ns4", "svc4", "10.0.4.1", "p80", 80));
    const out2 = normalizeRestore(fp.sync());
    expect(out2).toContain(":KUBE-SEP-AYCN5HPXMIRJNJXU - [0:0]");
    expect(out2).toContain(`-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.0.4.1:80" -j KUBE-SEP-AYCN5HPXMIRJNJXU`);
    expect(out2).not.toContain("REJECT");

    // Change an endpoint: the SVC chain is rewritten, the old SEP deleted, the new one written.
    fp.endpoints.update(slice("ns3", "svc3", "10.0.3.2", "p80", 80), false);
    const out3 = fp.sync();
    const n3 = normalizeRestore(out3);
    expect(n3).toContain(":KUBE-SEP-BSWRHOQ77KEXZLNL - [0:0]");
    expect(n3).toContain("-X KUBE-SEP-BSWRHOQ77KEXZLNL");
    expect(n3).toContain(":KUBE-SEP-DKCFIS26GWF2WLWC - [0:0]");
    expect(n3).toContain(`-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.2:80" -j KUBE-SEP-DKCFIS26GWF2WLWC`);
    expect(n3).not.toContain(":KUBE-SVC-XPGD46QRK7WJZT7O");
    expect(n3).not.toContain(":KUBE-SVC-4SW47YFZTEDKD3PK");
    // nothing changed: no per-service chain at all, and the rule count still covers the skipped chains
    const idle = fp.sync();
    expect(idle).not.toMatch(/:KUBE-(SVC|SEP)-\w+ - /);
    expect(fp.last?.natRulesTotal).toBe(fp.last && fp.last.natRulesWritten + 2 * 3 + 2 * 3);
  });

  it("leaves unchanged top-level chains out of a partial sync when told what the last sync wrote", () => {
    const fp = new FakeProxier();
    overallFixture(fp);
    fp.sync();
    const previous = fp.last?.topChains;
    const base = {
      services: fp.serviceMap,
      endpoints: fp.endpointsMap,
      nodeLabels: {},
      options: fp.options,
      full: false,
      existingNatChains: fp.existing,
      cache: fp.cache,
      ...(previous ? { previousTopChains: previous } : {}),
    };
    // nothing changed: nothing to restore at all
    const idle = generateRules({ ...base, changedServices: new Set() });
    expect(idle.text).toBe("");
    expect(idle.natRulesTotal).toBe(fp.last?.natRulesTotal);
    expect(idle.filterRules).toBe(fp.last?.filterRules);
    // one endpoint of svc4 moved: only its chains (KUBE-SERVICES is unchanged)
    fp.endpoints.update(
      makeSlice("ns4", "svc4", 1, (eps) => {
        eps.endpoints = [{ addresses: ["10.180.0.4"] }, { addresses: ["10.180.0.6"], nodeName: TEST_NODE_NAME }];
        eps.ports = [{ name: "p80", port: 80, protocol: "TCP" }];
      }),
      false,
    );
    const eu = fp.endpoints.apply(fp.endpointsMap);
    const moved = generateRules({ ...base, changedServices: eu.updatedServices });
    expect(moved.text.startsWith("*nat\n")).toBe(true); // no filter section: nothing changed there
    const chains = moved.text.split("\n").filter((l) => l.startsWith(":"));
    expect(chains.some((c) => c.startsWith(":KUBE-SERVICES"))).toBe(false);
    expect(chains).toContain(":KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]");
    expect(moved.text).toContain("-X KUBE-SEP-C6EBXVWJJZMIWKLZ");
    // a full sync writes everything regardless
    expect(generateRules({ ...base, full: true, changedServices: new Set() }).text).toContain(":KUBE-SERVICES - [0:0]");
  });

  it("rejects every destination of a Service without endpoints (TestNoEndpointsReject)", () => {
    const fp = new FakeProxier();
    fp.addServices(
      makeService("ns1", "svc1", (s) => {
        s.spec = { type: "LoadBalancer", clusterIP: "172.30.0.41", externalIPs: ["192.168.99.11"], ports: [{ ...tcpPort("p80", 80), nodePort: 3001 }] };
        s.status = { loadBalancer: { ingress: [{ ip: "1.2.3.4" }] } };
      }),
    );
    const out = fp.sync();
    const rejects = out.split("\n").filter((l) => l.endsWith("-j REJECT"));
    expect(rejects).toEqual([
      `-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j REJECT`,
      `-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp -d 192.168.99.11 --dport 80 -j REJECT`,
      `-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j REJECT`,
      `-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j REJECT`,
    ]);
    expect(out).not.toContain("KUBE-SVC-");
  });

  it("handles TCP, UDP and SCTP on the same port with distinct chains", () => {
    const fp = new FakeProxier();
    fp.addServices(
      makeService("ns1", "svc1", (s) => {
        s.spec = {
          clusterIP: "172.30.0.41",
          ports: [
            { name: "p80", port: 80, protocol: "TCP" },
            { name: "u80", port: 80, protocol: "UDP" },
            { name: "s80", port: 80, protocol: "SCTP" },
          ],
        };
      }),
    );
    fp.addSlices(
      makeSlice("ns1", "svc1", 1, (eps) => {
        eps.endpoints = [{ addresses: ["10.180.0.1"] }];
        eps.ports = [
          { name: "p80", port: 8080, protocol: "TCP" },
          { name: "u80", port: 8053, protocol: "UDP" },
          { name: "s80", port: 8099, protocol: "SCTP" },
        ];
      }),
    );
    const out = fp.sync();
    expect(out).toContain("-m udp -p udp -d 172.30.0.41 --dport 80 -j KUBE-SVC-");
    expect(out).toContain("-m sctp -p sctp -d 172.30.0.41 --dport 80 -j KUBE-SVC-");
    expect(out).toContain("-m udp -p udp -j DNAT --to-destination 10.180.0.1:8053");
    expect(out).toContain("-m sctp -p sctp -j DNAT --to-destination 10.180.0.1:8099");
    expect(out).toContain("-m tcp -p tcp -j DNAT --to-destination 10.180.0.1:8080");
    expect(new Set(out.match(/:KUBE-SVC-\w+/g)).size).toBe(3);
  });

  it("spreads over n endpoints with probabilities 1/n, 1/(n-1), ... and no match on the last", () => {
    const fp = new FakeProxier();
    fp.addServices(makeService("ns1", "svc1", (s) => (s.spec = { clusterIP: "172.30.0.41", ports: [tcpPort("p80", 80)] })));
    fp.addSlices(
      makeSlice("ns1", "svc1", 1, (eps) => {
        eps.endpoints = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"].map((a) => ({ addresses: [a] }));
        eps.ports = [{ name: "p80", port: 80, protocol: "TCP" }];
      }),
    );
    const lines = fp.sync().split("\n").filter((l) => l.startsWith("-A KUBE-SVC-") && l.includes("->"));
    expect(lines.map((l) => /--probability (\S+)/.exec(l)?.[1] ?? "-")).toEqual(["0.2500000000", "0.3333333333", "0.5000000000", "-"]);
  });

  it("uses terminating endpoints only when no ready endpoint exists", () => {
    const svc = servicePorts(makeService("ns1", "svc1", (s) => (s.spec = { clusterIP: "172.30.0.41", ports: [tcpPort("p80", 80)] })))[0];
    if (!svc) throw new Error("no port");
    const ep = (ip: string, ready: boolean, serving: boolean, terminating: boolean) => ({
      ip,
      port: 80,
      endpoint: `${ip}:80`,
      isLocal: false,
      ready,
      serving,
      terminating,
      zoneHints: undefined,
      chain: `KUBE-SEP-${ip}`,
    });
    const ready = ep("10.0.0.1", true, true, false);
    const term = ep("10.0.0.2", false, true, true);
    const dead = ep("10.0.0.3", false, false, true);
    expect(categorizeEndpoints([ready, term, dead], svc, {}).cluster).toEqual([ready]);
    expect(categorizeEndpoints([term, dead], svc, {}).cluster).toEqual([term]);
    const none = categorizeEndpoints([dead], svc, {});
    expect(none.cluster).toEqual([]);
    expect(none.hasAny).toBe(false);
  });

  it("drops comments in large cluster mode", () => {
    const fp = new FakeProxier();
    const n = LARGE_CLUSTER_ENDPOINTS_THRESHOLD / 2 + 1;
    for (const i of [1, 2]) {
      fp.addServices(makeService("ns1", `svc${i}`, (s) => (s.spec = { clusterIP: `172.30.0.${40 + i}`, ports: [tcpPort("p80", 80)] })));
      fp.addSlices(
        makeSlice("ns1", `svc${i}`, 1, (eps) => {
          eps.endpoints = Array.from({ length: n }, (_, k) => ({ addresses: [`10.${i}.${k >> 8}.${k & 255}`] }));
          eps.ports = [{ name: "p80", port: 80, protocol: "TCP" }];
        }),
      );
    }
    const out = fp.sync();
    expect(fp.last?.largeClusterMode).toBe(true);
    const sep = out.split("\n").find((l) => l.startsWith("-A KUBE-SEP-"));
    expect(sep).toMatch(/^-A KUBE-SEP-\w+ -s 10\.\d+\.\d+\.\d+ -j KUBE-MARK-MASQ$/);
    expect(out.split("\n").filter((l) => l.startsWith("-A KUBE-SVC-") && l.includes("--comment")).every((l) => l.includes("cluster IP"))).toBe(true);
  });

  it("gives partial syncs the same top-level chains, chains and counts as a fresh full generation", () => {
    const fp = new FakeProxier();
    overallFixture(fp);
    fp.sync();
    let previous = fp.last?.topChains;
    // a deterministic pseudo-random walk of endpoint and Service changes
    let seed = 7;
    const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    for (let step = 0; step < 40; step++) {
      const i = 1 + rand(6);
      const what = rand(4);
      if (what === 0) fp.services.update(undefined, makeService(`ns${i}`, `svc${i}`, (s) => (s.spec = { type: "NodePort", clusterIP: `172.30.0.${40 + i}`, ports: [{ ...tcpPort("p80", 80), nodePort: 3000 + step }] })));
      else if (what === 1) fp.services.update(makeService(`ns${i}`, `svc${i}`, () => undefined), undefined);
      else {
        const count = rand(4);
        fp.endpoints.update(
          makeSlice(`ns${i}`, `svc${i}`, 1, (eps) => {
            eps.endpoints = Array.from({ length: count }, (_, k) => ({ addresses: [`10.180.${i}.${k + rand(3)}`], ...(rand(2) ? { nodeName: TEST_NODE_NAME } : {}) }));
            eps.ports = [{ name: "p80", port: 80, protocol: "TCP" }];
          }),
          count === 0 && rand(2) === 0,
        );
      }
      const su = fp.services.apply(fp.serviceMap);
      const eu = fp.endpoints.apply(fp.endpointsMap);
      const partial = generateRules({
        services: fp.serviceMap,
        endpoints: fp.endpointsMap,
        nodeLabels: {},
        options: fp.options,
        full: false,
        changedServices: new Set([...su.updatedServices, ...eu.updatedServices]),
        existingNatChains: fp.existing,
        cache: fp.cache,
        ...(previous ? { previousTopChains: previous } : {}),
      });
      const fresh = generateRules({
        services: fp.serviceMap,
        endpoints: fp.endpointsMap,
        nodeLabels: {},
        options: fp.options,
        full: true,
        changedServices: new Set(),
        existingNatChains: new Set(),
        cache: new RulesCache(),
      });
      fp.apply(partial);
      expect([...partial.topChains]).toEqual([...fresh.topChains]);
      expect([...fp.existing].sort()).toEqual([...(fresh.activeNatChains ?? [])].sort());
      expect([partial.natRulesTotal, partial.filterRules, partial.noLocalEndpointsExternal]).toEqual([fresh.natRulesTotal, fresh.filterRules, fresh.noLocalEndpointsExternal]);
      expect(partial.regeneratedPorts).toBeLessThanOrEqual(2);
      previous = partial.topChains;
    }
  });

  it("defers stale chain deletion in large cluster mode when asked (at most once per syncPeriod upstream)", () => {
    const fp = new FakeProxier();
    fp.addServices(makeService("ns1", "svc1", (s) => (s.spec = { clusterIP: "172.30.0.41", ports: [tcpPort("p80", 80)] })));
    fp.addSlices(
      makeSlice("ns1", "svc1", 1, (eps) => {
        eps.endpoints = Array.from({ length: LARGE_CLUSTER_ENDPOINTS_THRESHOLD + 1 }, (_, k) => ({ addresses: [`10.1.${k >> 8}.${k & 255}`] }));
        eps.ports = [{ name: "p80", port: 80, protocol: "TCP" }];
      }),
    );
    fp.sync();
    const input = {
      services: fp.serviceMap,
      endpoints: fp.endpointsMap,
      nodeLabels: {},
      options: fp.options,
      full: false,
      changedServices: new Set<string>(),
      existingNatChains: new Set<string>(),
      staleNatChains: ["KUBE-SEP-STALESTALESTALE1"],
      cache: fp.cache,
    };
    const deferred = generateRules({ ...input, deferStaleCleanup: true });
    expect(deferred.text).not.toContain("-X KUBE-SEP-STALESTALESTALE1");
    expect(deferred.staleNatChains).toEqual(["KUBE-SEP-STALESTALESTALE1"]);
    const now = generateRules({ ...input, staleNatChains: deferred.staleNatChains });
    expect(now.text).toContain("-X KUBE-SEP-STALESTALESTALE1");
    expect(now.staleNatChains).toEqual([]);
  });

  it("keeps the client's address for externalTrafficPolicy Local and routes only to local endpoints", () => {
    const fp = new FakeProxier();
    fp.addServices(
      makeService("ns1", "svc1", (s) => {
        s.spec = { type: "NodePort", externalTrafficPolicy: "Local", clusterIP: "172.30.0.41", ports: [{ ...tcpPort("p80", 80), nodePort: 30080 }] };
      }),
    );
    fp.addSlices(
      makeSlice("ns1", "svc1", 1, (eps) => {
        eps.endpoints = [{ addresses: ["10.180.0.1"], nodeName: TEST_NODE_NAME }, { addresses: ["10.180.1.1"], nodeName: "other" }];
        eps.ports = [{ name: "p80", port: 80, protocol: "TCP" }];
      }),
    );
    const out = fp.sync();
    const { svlChain, extChain, svcChain } = servicePortChains("ns1/svc1:p80", "TCP");
    expect(out).toContain(`-A ${extChain} -j ${svlChain}`);
    const svl = out.split("\n").filter((l) => l.startsWith(`-A ${svlChain} `));
    expect(svl).toEqual([`-A ${svlChain} -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j ${endpointChainName("ns1/svc1:p80", "TCP", "10.180.0.1:80")}`]);
    expect(out).not.toMatch(new RegExp(`-A ${extChain} -m comment --comment "masquerade traffic`));
    expect(out.split("\n").filter((l) => l.startsWith(`-A ${svcChain} `) && l.includes("->"))).toHaveLength(2);
  });

  it("drops internal traffic for internalTrafficPolicy Local without local endpoints", () => {
    const fp = new FakeProxier();
    fp.addServices(
      makeService("ns1", "svc1", (s) => {
        s.spec = { clusterIP: "172.30.0.41", internalTrafficPolicy: "Local", ports: [tcpPort("p80", 80)] };
      }),
    );
    fp.addSlices(
      makeSlice("ns1", "svc1", 1, (eps) => {
        eps.endpoints = [{ addresses: ["10.180.1.1"], nodeName: "other" }];
        eps.ports = [{ name: "p80", port: 80, protocol: "TCP" }];
      }),
    );
    const out = fp.sync();
    expect(out).toContain(`-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no local endpoints" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j DROP`);
    expect(out).not.toContain(":KUBE-SVC-");
    expect(fp.last?.noLocalEndpointsInternal).toBe(1);
  });

  it("masquerades everything with masqueradeAll, and uses --random-fully when supported", () => {
    const fp = new FakeProxier(fakeOptions({ masqueradeAll: true, randomFully: true }));
    fp.addServices(makeService("ns1", "svc1", (s) => (s.spec = { clusterIP: "172.30.0.41", ports: [tcpPort("p80", 80)] })));
    fp.addSlices(
      makeSlice("ns1", "svc1", 1, (eps) => {
        eps.endpoints = [{ addresses: ["10.180.0.1"] }];
        eps.ports = [{ name: "p80", port: 80, protocol: "TCP" }];
      }),
    );
    const out = fp.sync();
    expect(out).toContain(`-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-MARK-MASQ`);
    expect(out).toContain(`-j MASQUERADE --random-fully`);
  });

  it("answers NodePorts only on the selected addresses with nodePortAddresses, and guards localhost", () => {
    const fp = new FakeProxier(fakeOptions({ nodePortIPs: ["192.168.0.2", "127.0.0.1"], localhostNodePorts: false }));
    const out = fp.sync();
    const np = out.split("\n").filter((l) => l.includes("-j KUBE-NODEPORTS"));
    expect(np).toEqual([`-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS`]);
    expect(out).not.toContain("KUBE-FIREWALL");
    const fp2 = new FakeProxier(fakeOptions({ localhostNodePorts: false }));
    expect(fp2.sync()).toContain(`-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS`);
  });

  it("lets the node through loadBalancerSourceRanges that contain its address", () => {
    const fp = new FakeProxier();
    fp.addServices(
      makeService("ns1", "svc1", (s) => {
        s.spec = { type: "LoadBalancer", clusterIP: "172.30.0.41", loadBalancerSourceRanges: ["192.168.0.0/24"], ports: [{ ...tcpPort("p80", 80), nodePort: 3001 }] };
        s.status = { loadBalancer: { ingress: [{ ip: "1.2.3.4" }, { ip: "5.6.7.8", ipMode: "Proxy" }] } };
      }),
    );
    fp.addSlices(
      makeSlice("ns1", "svc1", 1, (eps) => {
        eps.endpoints = [{ addresses: ["10.180.0.1"] }];
        eps.ports = [{ name: "p80", port: 80, protocol: "TCP" }];
      }),
    );
    const out = fp.sync();
    const { fwChain, extChain } = servicePortChains("ns1/svc1:p80", "TCP");
    expect(out.split("\n").filter((l) => l.startsWith(`-A ${fwChain}`))).toEqual([
      `-A ${fwChain} -m comment --comment "ns1/svc1:p80 loadbalancer IP" -s 192.168.0.0/24 -j ${extChain}`,
      `-A ${fwChain} -m comment --comment "ns1/svc1:p80 loadbalancer IP" -s 1.2.3.4 -j ${extChain}`,
      `-A ${fwChain} -m comment --comment "other traffic to ns1/svc1:p80 will be dropped by KUBE-PROXY-FIREWALL"`,
    ]);
    expect(out).not.toContain("5.6.7.8");
  });

  it("adds canary chains and missing jump rules on a full sync", () => {
    const out = generateRules({
      services: new Map(),
      endpoints: new Map(),
      nodeLabels: {},
      options: fakeOptions(),
      full: true,
      changedServices: new Set(),
      existingNatChains: new Set(["KUBE-SVC-GONE000000000000", "OTHER-CHAIN"]),
      missingJumps: JUMP_RULES.filter((j) => j.table === "nat"),
      canary: true,
      cache: new RulesCache(),
    });
    expect(out.text.startsWith("*mangle\n:KUBE-PROXY-CANARY - [0:0]\nCOMMIT\n*filter\n")).toBe(true);
    expect(out.text).toContain("-I PREROUTING 1 -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES");
    expect(out.text).toContain("-X KUBE-SVC-GONE000000000000");
    expect(out.text).not.toContain("OTHER-CHAIN");
    expect(jumpRuleArgs(JUMP_RULES[0] ?? JUMP_RULES[1]!)).toBe(`-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES`);
  });
});
