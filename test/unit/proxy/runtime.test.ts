/** The non-iptables parts of the runtime: sync runner, conntrack filters, cleanup text, metrics, health. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanupRestoreText } from "../../../proxy/cleanup.ts";
import { parseConntrackUdp, staleFilters } from "../../../proxy/conntrack.ts";
import { chainsFromSave, linesAround, missingJumps, splitArgs } from "../../../proxy/iptables.ts";
import { ProxyMetrics } from "../../../proxy/metrics.ts";
import { countRequest } from "../../../src-shared/kube/client-metrics.ts";
import { JUMP_RULES } from "../../../proxy/rules.ts";
import { ProxyHealth, ProxyServer } from "../../../proxy/server.ts";
import { servicePorts } from "../../../proxy/service-change-tracker.ts";
import { BoundedFrequencyRunner } from "../../../proxy/sync-runner.ts";
import type { EndpointInfo, ServiceMap } from "../../../proxy/types.ts";
import { silentLogger } from "../../../src-shared/log.ts";
import { makeService } from "./helpers.ts";

describe("BoundedFrequencyRunner", () => {
  afterEach(() => vi.useRealTimers());

  it("runs at most burst times at once, then once per minInterval, and never concurrently", async () => {
    vi.useFakeTimers();
    let now = 0;
    const starts: number[] = [];
    let active = 0;
    let maxActive = 0;
    const runner = new BoundedFrequencyRunner({
      name: "t",
      minIntervalMs: 1000,
      maxIntervalMs: 60_000,
      burst: 2,
      now: () => now,
      fn: async () => {
        starts.push(now);
        active++;
        maxActive = Math.max(maxActive, active);
        await Promise.resolve();
        active--;
      },
    });
    const advance = async (ms: number): Promise<void> => {
      for (let i = 0; i < ms; i += 10) {
        now += 10;
        await vi.advanceTimersByTimeAsync(10);
      }
    };
    runner.start(); // first run, token 1
    await advance(10);
    runner.run(); // token 2
    await advance(10);
    runner.run(); // out of tokens: waits for refill
    runner.run();
    await advance(2000);
    expect(starts.length).toBe(3);
    expect((starts[2] ?? 0) - (starts[0] ?? 0)).toBeGreaterThanOrEqual(900);
    expect(maxActive).toBe(1);
    // nothing asked: the next run comes after maxInterval
    await advance(60_000);
    expect(starts.length).toBe(4);
    await runner.close();
  });

  it("retryAfter brings the next run forward and close waits for a run in progress", async () => {
    // Fake timers: "not yet" is judged after time has moved on as far as we like, not after a real pause.
    vi.useFakeTimers();
    let now = 0;
    let release: () => void = () => undefined;
    let runs = 0;
    const runner = new BoundedFrequencyRunner({
      name: "t",
      minIntervalMs: 0,
      maxIntervalMs: 3_600_000,
      burst: 1,
      now: () => now,
      fn: () => {
        runs++;
        return new Promise<void>((r) => (release = r));
      },
    });
    const advance = async (ms: number): Promise<void> => {
      now += ms;
      await vi.advanceTimersByTimeAsync(ms);
    };
    runner.start();
    await advance(0);
    expect(runs).toBe(1);
    release();
    await advance(0);
    runner.retryAfter(30);
    await advance(29);
    expect(runs).toBe(1);
    await advance(1);
    expect(runs).toBe(2);
    let closed = false;
    const c = runner.close().then(() => (closed = true));
    await advance(60_000);
    expect(closed).toBe(false);
    release();
    await c;
    expect(closed).toBe(true);
  });
});

describe("conntrack", () => {
  const listing = `udp      17 28 src=10.244.0.50 dst=10.96.0.10 sport=40000 dport=53 src=10.244.0.11 dst=10.244.0.50 sport=53 dport=40000 [ASSURED] mark=0 use=1
udp      17 20 src=10.244.0.50 dst=10.96.0.10 sport=40001 dport=53 [UNREPLIED] src=10.244.0.12 dst=10.244.0.50 sport=53 dport=40001 mark=0 use=1
udp      17 20 src=192.168.50.2 dst=192.168.50.1 sport=5000 dport=30053 [UNREPLIED] src=10.244.0.11 dst=192.168.50.2 sport=53 dport=5000 mark=0 use=1
udp      17 20 src=10.244.0.50 dst=10.96.0.99 sport=5000 dport=53 src=10.96.0.99 dst=10.244.0.50 sport=53 dport=5000 mark=0 use=1
tcp      6 431999 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 [ASSURED] mark=0 use=1
`;
  it("parses UDP flows", () => {
    expect(parseConntrackUdp(listing)).toEqual([
      { origDst: "10.96.0.10", origDport: 53, replySrc: "10.244.0.11" },
      { origDst: "10.96.0.10", origDport: 53, replySrc: "10.244.0.12" },
      { origDst: "192.168.50.1", origDport: 30053, replySrc: "10.244.0.11" },
      { origDst: "10.96.0.99", origDport: 53, replySrc: "10.96.0.99" },
    ]);
  });

  it("deletes flows to endpoints that no longer serve, by Service address and NodePort", () => {
    const svc = makeService("kube-system", "dns", (s) => {
      s.spec = { type: "NodePort", clusterIP: "10.96.0.10", ports: [{ name: "dns", port: 53, protocol: "UDP", nodePort: 30053 }] };
    });
    const services: ServiceMap = new Map([["kube-system/dns", servicePorts(svc)]]);
    const ep = (ip: string): EndpointInfo => ({ ip, port: 53, endpoint: `${ip}:53`, isLocal: false, ready: true, serving: true, terminating: false, zoneHints: undefined, chain: "" });
    const endpoints = new Map([["kube-system/dns:dns/UDP", [ep("10.244.0.12")]]]);
    expect(staleFilters(parseConntrackUdp(listing), services, endpoints, [])).toEqual([
      { origDst: "10.96.0.10", origDport: 53, replySrc: "10.244.0.11" },
      { origDport: 30053, replySrc: "10.244.0.11" },
    ]);
    // a Service without endpoints: every flow to it is stale
    expect(staleFilters(parseConntrackUdp(listing), services, new Map(), []).length).toBe(3);
  });
});

describe("iptables helpers", () => {
  const natSave = `# Generated by iptables-save v1.8.9 (nf_tables)
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
:KUBE-PROXY-CANARY - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A POSTROUTING -s 10.9.0.0/16 -j MASQUERADE
-A KUBE-SERVICES -j KUBE-SVC-XPGD46QRK7WJZT7O
COMMIT
`;
  it("finds chains and missing jumps in iptables-save output", () => {
    expect([...chainsFromSave(natSave)]).toContain("KUBE-SVC-XPGD46QRK7WJZT7O");
    const missing = missingJumps({ nat: natSave, filter: "" }, JUMP_RULES);
    expect(missing.filter((j) => j.table === "nat").map((j) => j.chain)).toEqual(["OUTPUT"]);
    expect(missing.filter((j) => j.table === "filter")).toHaveLength(9);
  });

  it("builds the cleanup restore: jumps deleted, our chains flushed and deleted, foreign rules kept", () => {
    const text = cleanupRestoreText({ nat: natSave, filter: "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", mangle: "*mangle\n:KUBE-PROXY-CANARY - [0:0]\nCOMMIT\n" });
    expect(text).toBe(`*mangle
:KUBE-PROXY-CANARY - [0:0]
-X KUBE-PROXY-CANARY
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-PROXY-CANARY - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-D POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-X KUBE-SERVICES
-X KUBE-POSTROUTING
-X KUBE-PROXY-CANARY
-X KUBE-SVC-XPGD46QRK7WJZT7O
COMMIT
`);
  });

  it("splits quoted arguments and shows the lines around a failure", () => {
    expect(splitArgs(`-m comment --comment "a b" -j X`)).toEqual(["-m", "comment", "--comment", "a b", "-j", "X"]);
    expect(linesAround("a\nb\nc\nd\ne", 3, 1)).toBe("2  b\n3* c\n4  d");
  });
});

describe("metrics and health", () => {
  it("renders upstream's metric names in the text format", () => {
    const m = new ProxyMetrics();
    m.syncProxyRulesLatency.observe(0.003);
    m.iptablesRulesTotal.set(12, { table: "nat" });
    const text = m.render();
    expect(text).toContain(`kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.004"} 1`);
    expect(text).toContain(`kubeproxy_sync_proxy_rules_duration_seconds_count 1`);
    expect(text).toContain(`kubeproxy_sync_proxy_rules_iptables_total{table="nat"} 12`);
    expect(text).toContain(`kubeproxy_sync_proxy_rules_iptables_restore_failures_total 0`);
    expect(text).toContain(`# TYPE kubeproxy_network_programming_duration_seconds histogram`);
  });

  it("shows the process's API requests as client-go's rest_client_requests_total, as upstream's kube-proxy", () => {
    countRequest(200, "GET", "api.example:6443");
    expect(new ProxyMetrics().render()).toMatch(/^rest_client_requests_total\{code="200",method="GET",host="api.example:6443"\} [1-9]\d*$/m);
  });

  it("is unhealthy once an update has waited longer than the timeout, and /healthz needs an eligible node", async () => {
    let now = 1_000_000;
    const health = new ProxyHealth({ healthTimeoutMs: 60_000, now: () => now });
    health.updated();
    health.queuedUpdate();
    now += 59_000;
    expect(health.health().healthy).toBe(true);
    now += 2_000;
    expect(health.health().healthy).toBe(false);
    health.updated();
    expect(health.health().healthy).toBe(true);

    const metrics = new ProxyMetrics();
    const server = new ProxyServer({ healthzBindAddress: "127.0.0.1:0", metricsBindAddress: "127.0.0.1:0", health, metrics, log: silentLogger() });
    await server.start();
    try {
      const base = `http://127.0.0.1:${server.healthzAddress?.port ?? 0}`;
      let r = await fetch(`${base}/healthz`);
      expect(r.status).toBe(503); // no Node yet
      expect(((await r.json()) as { nodeEligible: boolean }).nodeEligible).toBe(false);
      expect((await fetch(`${base}/livez`)).status).toBe(200);
      health.setNode({ metadata: { name: "n" } });
      r = await fetch(`${base}/healthz`);
      expect(r.status).toBe(200);
      health.setNode({ metadata: { name: "n" }, spec: { taints: [{ key: "ToBeDeletedByClusterAutoscaler", effect: "NoSchedule" }] } });
      expect((await fetch(`${base}/healthz`)).status).toBe(503);
      const text = await (await fetch(`http://127.0.0.1:${server.metricsAddress?.port ?? 0}/metrics`)).text();
      expect(text).toContain(`kubeproxy_proxy_healthz_total{code="503"} 2`);
      expect(text).toContain(`kubeproxy_proxy_livez_total{code="200"} 1`);
    } finally {
      await server.close();
    }
  });
});
