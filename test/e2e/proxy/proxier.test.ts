/**
 * kube-proxy end to end with real packets, in both modes (one suite, run once per mode): the proxier runs in this
 * process, fed directly through its event interface, and programs iptables or nftables inside a private node
 * namespace (`netnsExec`); backends and clients are processes in pod and client namespaces on that node's
 * bridge, or "outside" beyond its veth (TestNet). Upstream's nftables differences: no NodePorts on localhost.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig, type ProxyMode } from "../../../proxy/config.ts";
import { netnsExec } from "../../../proxy/iptables.ts";
import { hashAndTruncate } from "../../../proxy/nftables/rules.ts";
import { Proxier } from "../../../proxy/proxier.ts";
import { servicePortChains } from "../../../proxy/types.ts";
import { createLogger, silentLogger } from "../../../src-shared/log.ts";
import { NODE_BRIDGE_IP, NODE_IP, OUTSIDE_IP, POD_CIDR, TestNet } from "./helpers/net.ts";
import { node, service, slice, type Ep } from "./helpers/objects.ts";
import { settled } from "./helpers/settled.ts";
import { eventually } from "../../harness/wait.ts";

const NODE = "node-a";
const OTHER = "node-b";
const http = (port = 8080) => [{ name: "http", port }];
const MODES: readonly ProxyMode[] = ["iptables", "nftables"];

/** Runs a command in the test's node namespace and returns its stdout. */
async function nodeOut(net: TestNet, file: string, args: string[]): Promise<string> {
  return (await net.exec(net.node, file, args, { allowFailure: true })).stdout;
}

function newProxier(net: TestNet, mode: ProxyMode, extra: Record<string, unknown> = {}): Proxier {
  const config = resolveConfig({
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    clusterCIDR: POD_CIDR,
    mode,
    iptables: { syncPeriod: "3s" },
    nftables: { syncPeriod: "3s" },
    ...extra,
  });
  const log = process.env["DECKHAND_LOG_LEVEL"] ? createLogger({ name: "kube-proxy" }) : silentLogger();
  return new Proxier({ config, nodeName: NODE, log, exec: netnsExec(net.node) });
}

/** Starts a proxier, feeds it `objects` and the node, marks everything synced and waits for the first sync. */
async function startProxier(net: TestNet, mode: ProxyMode, objects: (p: Proxier) => void = () => undefined, extra: Record<string, unknown> = {}): Promise<Proxier> {
  const proxier = newProxier(net, mode, extra);
  await proxier.start();
  objects(proxier);
  proxier.onNodeAdd(node(NODE, NODE_IP));
  proxier.onServicesSynced();
  proxier.onEndpointSlicesSynced();
  await settled(proxier);
  return proxier;
}

describe.each(MODES)("kube-proxy in %s mode (in process, real packets)", (mode) => {
  const net = new TestNet();
  let proxier: Proxier;
  let client = "";
  const pods: { ns: string; ip: string; name: string }[] = [];
  const ep = (i: number, nodeName = NODE): Ep => ({ ip: pods[i]?.ip ?? "", node: nodeName });
  const iptablesOnly = mode !== "iptables";
  const nftablesOnly = mode !== "nftables";

  beforeAll(async () => {
    try {
      await net.create();
      for (const [i, ip] of ["10.244.0.11", "10.244.0.12", "10.244.0.13"].entries()) {
        const ns = await net.addPod(ip);
        pods.push({ ns, ip, name: `p${i + 1}` });
        await net.startBackend(ns, `p${i + 1}`);
      }
      client = await net.addPod("10.244.0.50");
      proxier = await startProxier(net, mode);
    } catch (err) {
      await proxier?.close();
      await net.teardown();
      throw err;
    }
  });

  afterAll(async () => {
    try {
      await proxier?.close();
    } finally {
      await net.teardown();
    }
  });

  it.skipIf(iptablesOnly)("starts with the jump rules and the canaries in place", async () => {
    const save = await net.iptablesSave();
    expect(save).toContain(`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`);
    expect(save).toContain(`-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD`);
    expect(save.match(/:KUBE-PROXY-CANARY/g)).toHaveLength(3);
    expect(save).toContain("-j MASQUERADE --random-fully");
    expect((await net.exec(net.node, "sysctl", ["-n", "net.ipv4.conf.all.route_localnet"])).stdout.trim()).toBe("1");
  });

  it("spreads ClusterIP traffic evenly over every endpoint (named target port)", async () => {
    proxier.onServiceAdd(service("web", { clusterIP: "10.96.0.10", ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }] }));
    proxier.onEndpointSliceAdd(slice("web", [ep(0), ep(1), ep(2)], http()));
    await settled(proxier);
    const r = await net.probe(client, ["http", "http://10.96.0.10/", "300"]);
    expect(r.errors).toEqual({});
    for (const p of ["p1", "p2", "p3"]) {
      expect(r.counts[p]).toBeGreaterThan(55);
      expect(r.counts[p]).toBeLessThan(145);
    }
    // in-cluster clients keep their address
    expect(r.sources).toEqual({ "10.244.0.50": 300 });
  });

  it("sticks to one endpoint with sessionAffinity ClientIP", async () => {
    proxier.onServiceAdd(
      service("sticky", {
        clusterIP: "10.96.0.11",
        ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }],
        sessionAffinity: "ClientIP",
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 300 } },
      }),
    );
    proxier.onEndpointSliceAdd(slice("sticky", [ep(0), ep(1), ep(2)], http()));
    await settled(proxier);
    const r = await net.probe(client, ["http", "http://10.96.0.11/", "40"]);
    expect(r.errors).toEqual({});
    expect(Object.values(r.counts)).toEqual([40]);
  });

  it("serves a NodePort to an off-cluster client, masqueraded", async () => {
    proxier.onServiceAdd(service("np", { type: "NodePort", clusterIP: "10.96.0.12", ports: [{ name: "http", port: 80, targetPort: 8080, nodePort: 30080, protocol: "TCP" }] }));
    proxier.onEndpointSliceAdd(slice("np", [ep(0), ep(1), ep(2)], http()));
    await settled(proxier);
    const r = await net.probe(net.outside, ["http", `http://${NODE_IP}:30080/`, "30"]);
    expect(r.errors).toEqual({});
    expect(Object.keys(r.counts).length).toBeGreaterThan(1);
    expect(r.sources).toEqual({ [NODE_BRIDGE_IP]: 30 });
  });

  it("serves NodePorts on localhost only in iptables mode (upstream's nftables mode has none)", async () => {
    const local = await net.connect(net.node, "127.0.0.1", 30080, 1000);
    expect(local.result).toBe(mode === "iptables" ? "ok" : "refused");
    // the node's own address serves in both modes
    expect((await net.connect(net.node, NODE_IP, 30080, 1000)).result).toBe("ok");
  });

  it("masquerades off-cluster clients of a ClusterIP and hairpin traffic", async () => {
    const outside = await net.probe(net.outside, ["http", "http://10.96.0.10/", "10"]);
    expect(outside.errors).toEqual({});
    expect(outside.sources).toEqual({ [NODE_BRIDGE_IP]: 10 });
    // a pod reaching itself through its own Service
    const hairpin = await net.probe(pods[0]?.ns ?? "", ["http", "http://10.96.0.10/", "30"]);
    expect(hairpin.errors).toEqual({});
    expect(hairpin.counts["p1"]).toBeGreaterThan(0);
  });

  it("keeps the client's address with externalTrafficPolicy Local and drops without a local endpoint", async () => {
    const svc = service("local", {
      type: "NodePort",
      externalTrafficPolicy: "Local",
      clusterIP: "10.96.0.16",
      ports: [{ name: "http", port: 80, targetPort: 8080, nodePort: 30081, protocol: "TCP" }],
    });
    proxier.onServiceAdd(svc);
    const s1 = slice("local", [ep(0), ep(1, OTHER)], http());
    proxier.onEndpointSliceAdd(s1);
    await settled(proxier);
    const r = await net.probe(net.outside, ["http", `http://${NODE_IP}:30081/`, "20"]);
    expect(r.errors).toEqual({});
    expect(r.counts).toEqual({ p1: 20 });
    expect(r.sources).toEqual({ [OUTSIDE_IP]: 20 });
    proxier.onEndpointSliceUpdate(s1, slice("local", [ep(1, OTHER)], http()));
    await settled(proxier);
    const c = await net.connect(net.outside, NODE_IP, 30081, 1000);
    expect(c.result).toBe("timeout");
    // in-cluster traffic to the ClusterIP still reaches the remote endpoint
    const inCluster = await net.probe(client, ["http", "http://10.96.0.16/", "5"]);
    expect(inCluster.counts).toEqual({ p2: 5 });
  });

  it("refuses connections to a Service without endpoints at once", async () => {
    proxier.onServiceAdd(service("empty", { type: "NodePort", clusterIP: "10.96.0.13", ports: [{ name: "http", port: 80, nodePort: 30082, protocol: "TCP" }] }));
    await settled(proxier);
    const c = await net.connect(client, "10.96.0.13", 80);
    expect(c.result).toBe("refused");
    expect(c.ms).toBeLessThan(1000);
    const np = await net.connect(net.outside, NODE_IP, 30082);
    expect(np.result).toBe("refused");
  });

  it("serves externalIPs and LoadBalancer IPs, filtered by loadBalancerSourceRanges", async () => {
    proxier.onServiceAdd(
      service(
        "ext",
        {
          type: "LoadBalancer",
          clusterIP: "10.96.0.15",
          externalIPs: ["172.16.0.100"],
          loadBalancerSourceRanges: ["192.168.50.0/24"],
          ports: [{ name: "http", port: 80, targetPort: 8080, nodePort: 30085, protocol: "TCP" }],
        },
        { loadBalancer: { ingress: [{ ip: "172.16.0.200" }] } },
      ),
    );
    proxier.onEndpointSliceAdd(slice("ext", [ep(0)], http()));
    await settled(proxier);
    expect((await net.probe(net.outside, ["http", "http://172.16.0.100/", "5"])).counts).toEqual({ p1: 5 });
    expect((await net.probe(net.outside, ["http", "http://172.16.0.200/", "5"])).counts).toEqual({ p1: 5 });
    // the pod network is not in the source ranges: KUBE-PROXY-FIREWALL drops it
    expect((await net.connect(client, "172.16.0.200", 80, 1000)).result).toBe("timeout");
  });

  it("stops sending traffic to a removed endpoint within 2 s", async () => {
    const t0 = performance.now();
    proxier.onEndpointSliceUpdate(slice("web", [ep(0), ep(1), ep(2)], http()), slice("web", [ep(0), ep(1)], http()));
    let clean = Infinity;
    while (performance.now() - t0 < 5000) {
      const r = await net.probe(client, ["http", "http://10.96.0.10/", "10"]);
      if (!r.counts["p3"]) {
        clean = performance.now() - t0;
        break;
      }
    }
    expect(clean).toBeLessThan(2000);
    const after = await net.probe(client, ["http", "http://10.96.0.10/", "60"]);
    expect(after.counts["p3"]).toBeUndefined();
    expect(after.errors).toEqual({});
  });

  it("deletes stale UDP conntrack entries so a UDP client moves to the new endpoint", async () => {
    proxier.onServiceAdd(service("dns", { clusterIP: "10.96.0.14", ports: [{ name: "dns", port: 53, targetPort: 9000, protocol: "UDP" }] }));
    const s1 = slice("dns", [ep(0)], [{ name: "dns", port: 9000, protocol: "UDP" }]);
    proxier.onEndpointSliceAdd(s1);
    await settled(proxier);
    const before = await net.probe(client, ["udp", "10.96.0.14", "53", "3", "40000"]);
    expect(before.counts).toEqual({ p1: 3 });
    // p1 keeps running: without the cleanup, the client's flow would stay DNATed to it.
    proxier.onEndpointSliceUpdate(s1, slice("dns", [ep(1)], [{ name: "dns", port: 9000, protocol: "UDP" }]));
    await settled(proxier);
    const after = await net.probe(client, ["udp", "10.96.0.14", "53", "3", "40000"]);
    expect(after.counts).toEqual({ p2: 3 });
    const ct = (await net.exec(net.node, "conntrack", ["-L", "-p", "udp", "--orig-dst", "10.96.0.14"], { allowFailure: true })).stdout;
    expect(ct).toContain("src=10.244.0.12");
    expect(ct).not.toContain("src=10.244.0.11");
  });

  it.skipIf(iptablesOnly)("falls back to a full sync when a partial restore fails", async () => {
    const failuresBefore = proxier.metrics.iptablesPartialRestoreFailuresTotal.get();
    // Someone deletes one of our Service chains behind our back: the next partial sync still jumps to it.
    const sticky = servicePortChains("e2e/sticky:http", "TCP").svcChain;
    await net.exec(net.node, "iptables", ["-t", "nat", "-F", "KUBE-SERVICES"]);
    await net.exec(net.node, "iptables", ["-t", "nat", "-F", sticky]);
    await net.exec(net.node, "iptables", ["-t", "nat", "-X", sticky]);
    // A new Service with an endpoint: the partial sync rewrites KUBE-SERVICES, which jumps to the missing chain.
    proxier.onServiceAdd(service("trigger", { clusterIP: "10.96.0.30", ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] }));
    proxier.onEndpointSliceAdd(slice("trigger", [ep(0)], http()));
    await eventually(() => proxier.metrics.iptablesPartialRestoreFailuresTotal.get() !== failuresBefore, { timeoutMs: 15_000, intervalMs: 50, message: "a failed partial restore" });
    expect(proxier.metrics.iptablesPartialRestoreFailuresTotal.get()).toBe(failuresBefore + 1);
    // the retry (after syncPeriod) is a full sync that restores everything
    await eventually(() => proxier.lastSync?.ok === true && proxier.lastSync.full, { timeoutMs: 15_000, intervalMs: 50, message: "a successful full sync" });
    const r = await net.probe(client, ["http", "http://10.96.0.11/", "5"]);
    expect(r.errors).toEqual({});
  });

  it.skipIf(iptablesOnly)("repairs a flush of the nat table (canary)", async () => {
    await net.exec(net.node, "iptables", ["-t", "nat", "-F"]);
    await net.exec(net.node, "iptables", ["-t", "nat", "-X"]);
    expect((await net.connect(client, "10.96.0.10", 80, 500)).result).not.toBe("ok");
    const t0 = performance.now();
    await eventually(async () => (await net.connect(client, "10.96.0.10", 80, 500)).result === "ok", { timeoutMs: 15_000, intervalMs: 200, message: "the VIP to answer again" });
    expect(performance.now() - t0).toBeLessThan(3000 * 2 + 2000);
    const save = await net.iptablesSave("nat");
    expect(save.match(/-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES/g)).toHaveLength(1);
    const r = await net.probe(client, ["http", "http://10.96.0.10/", "20"]);
    expect(r.errors).toEqual({});
  });

  it.skipIf(iptablesOnly)("repairs a flush of the filter rules that keeps the chains (jump check)", async () => {
    expect((await net.connect(client, "10.96.0.13", 80)).result).toBe("refused");
    await net.exec(net.node, "iptables", ["-F"]); // filter: every rule gone, KUBE-PROXY-CANARY still there
    expect((await net.connect(client, "10.96.0.13", 80, 500)).result).not.toBe("refused");
    await eventually(async () => (await net.connect(client, "10.96.0.13", 80, 300)).result === "refused", { timeoutMs: 15_000, intervalMs: 200, message: "the REJECT rule to be back" });
  });

  it.skipIf(iptablesOnly)("does not duplicate jump rules across full syncs and keeps the rule count metric exact", async () => {
    proxier.forceFullSync();
    await settled(proxier);
    const save = await net.iptablesSave();
    for (const jump of ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS"]) {
      const lines = save.split("\n").filter((l) => /^-A (PREROUTING|OUTPUT|POSTROUTING|INPUT|FORWARD) /.test(l) && l.endsWith(`-j ${jump}`));
      expect(new Set(lines).size, jump).toBe(lines.length);
    }
    const nat = await net.iptablesSave("nat");
    const ours = nat.split("\n").filter((l) => /^-A KUBE-/.test(l)).length;
    expect(proxier.metrics.iptablesRulesTotal.get({ table: "nat" })).toBe(ours);
  });
  it.skipIf(nftablesOnly)("holds upstream's kube-proxy table and nothing in iptables", async () => {
    const table = await nodeOut(net, "nft", ["list", "table", "ip", "kube-proxy"]);
    expect(table).toMatch(/chain nat-prerouting \{\n\s+type nat hook prerouting priority dstnat; policy accept;\n\s+jump services/);
    expect(table).toMatch(/chain filter-output-post-dnat \{\n\s+type filter hook output priority -90; policy accept;/);
    expect(table).toContain("map service-ips {");
    expect(table).toMatch(/numgen random mod 2 vmap \{ 0 : goto endpoint-\w{8}-e2e\/web\/tcp\/http__10\.244\.0\.11\/8080, 1 : goto endpoint-/);
    expect(table).toMatch(/set affinity-\w{8}-e2e\/sticky\/tcp\/http__10\.244\.0\.1[123]\/8080 \{\n\s+type ipv4_addr\n\s+size 65535\n\s+flags dynamic,timeout\n\s+timeout 5m/);
    expect(await net.iptablesSave()).not.toContain("KUBE-");
    expect((await net.exec(net.node, "sysctl", ["-n", "net.ipv4.conf.all.route_localnet"])).stdout.trim()).toBe("0");
    expect(proxier.metrics.render()).toContain("kubeproxy_sync_proxy_rules_nftables_sync_failures_total 0");
    expect(proxier.metrics.render()).not.toContain("iptables_restore_failures");
  });

  it.skipIf(nftablesOnly)("flushes a stale endpoint chain at once and deletes it in a later sync", async () => {
    const p2 = `endpoint-${hashAndTruncate("e2e/web/tcp/http__10.244.0.12/8080")}`;
    expect(await nodeOut(net, "nft", ["list", "chain", "ip", "kube-proxy", p2])).toContain("dnat to 10.244.0.12:8080");
    proxier.onEndpointSliceUpdate(slice("web", [ep(0), ep(1)], http()), slice("web", [ep(0)], http()));
    await settled(proxier);
    // flushed, not deleted: before kernel 6.2 a map element just deleted may still hold it
    const flushed = await nodeOut(net, "nft", ["list", "chain", "ip", "kube-proxy", p2]);
    expect(flushed).toContain(`chain ${p2} {`);
    expect(flushed).not.toContain("dnat");
    expect(proxier.nftStaleChains.has(p2)).toBe(true);
    let n = 0;
    await eventually(
      async () => {
        proxier.onServiceAdd(service(`later${n}`, { clusterIP: `10.96.0.${40 + n++}`, ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] }));
        await settled(proxier);
        return !(await nodeOut(net, "nft", ["list", "chains", "ip"])).includes(p2);
      },
      { timeoutMs: 10_000, intervalMs: 300, message: "the stale chain to be deleted" },
    );
    expect(proxier.nftStaleChains.has(p2)).toBe(false);
    expect((await net.probe(client, ["http", "http://10.96.0.10/", "5"])).counts).toEqual({ p1: 5 });
  });

  it.skipIf(nftablesOnly)("falls back to a full sync when a partial transaction fails", async () => {
    const failuresBefore = proxier.metrics.nftablesSyncFailuresTotal.get();
    // Someone deletes the service-ips map: the next partial sync's new element has nowhere to go.
    await net.exec(net.node, "nft", ["flush", "chain", "ip", "kube-proxy", "services"]);
    await net.exec(net.node, "nft", ["delete", "map", "ip", "kube-proxy", "service-ips"]);
    proxier.onServiceAdd(service("trigger", { clusterIP: "10.96.0.30", ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] }));
    proxier.onEndpointSliceAdd(slice("trigger", [ep(0)], http()));
    await eventually(() => proxier.metrics.nftablesSyncFailuresTotal.get() !== failuresBefore, { timeoutMs: 15_000, intervalMs: 50, message: "a failed partial sync" });
    expect(proxier.metrics.nftablesSyncFailuresTotal.get()).toBe(failuresBefore + 1);
    await eventually(() => proxier.lastSync?.ok === true && proxier.lastSync.full, { timeoutMs: 15_000, intervalMs: 50, message: "a successful full sync" });
    expect((await net.probe(client, ["http", "http://10.96.0.30/", "3"])).counts).toEqual({ p1: 3 });
    expect((await net.probe(client, ["http", "http://10.96.0.11/", "5"])).errors).toEqual({});
  });

  it.skipIf(nftablesOnly)("repairs the table deleted by hand", async () => {
    await net.exec(net.node, "nft", ["delete", "table", "ip", "kube-proxy"]);
    expect((await net.connect(client, "10.96.0.10", 80, 500)).result).not.toBe("ok");
    const t0 = performance.now();
    await eventually(async () => (await net.connect(client, "10.96.0.10", 80, 500)).result === "ok", { timeoutMs: 15_000, intervalMs: 200, message: "the VIP to answer again" });
    expect(performance.now() - t0).toBeLessThan(3000 * 2 + 2000);
    expect((await net.connect(client, "10.96.0.13", 80)).result).toBe("refused");
    const r = await net.probe(client, ["http", "http://10.96.0.10/", "20"]);
    expect(r.errors).toEqual({});
  });

  it.skipIf(nftablesOnly)("does not duplicate base-chain rules across full syncs", async () => {
    proxier.forceFullSync();
    await settled(proxier);
    const table = await nodeOut(net, "nft", ["list", "table", "ip", "kube-proxy"]);
    expect(table.match(/jump services/g)).toHaveLength(2); // nat-prerouting and nat-output
    expect(table.match(/jump cluster-ips-check/g)).toHaveLength(2);
    // unchanged Services survive the full sync with the same chains
    expect(table).toContain(`chain service-${hashAndTruncate("e2e/web/tcp/http")} {`);
  });

  it.skipIf(nftablesOnly)("switching modes cleans the other mode's rules at start", async () => {
    await proxier.close();
    const objects = (p: Proxier): void => {
      p.onServiceAdd(service("web", { clusterIP: "10.96.0.10", ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }] }));
      p.onEndpointSliceAdd(slice("web", [ep(0), ep(1)], http()));
    };
    // nftables → iptables
    proxier = await startProxier(net, "iptables", objects);
    expect(await nodeOut(net, "nft", ["list", "tables"])).not.toContain("kube-proxy");
    expect(await net.iptablesSave("nat")).toContain(":KUBE-SERVICES");
    expect((await net.probe(client, ["http", "http://10.96.0.10/", "5"])).errors).toEqual({});
    await proxier.close();
    // iptables → nftables
    proxier = await startProxier(net, "nftables", objects);
    // (KUBE-FIREWALL stays: it is the kubelet's, as upstream's cleanup leaves it)
    expect(await net.iptablesSave()).not.toMatch(/KUBE-(SERVICES|SVC-|SEP-|POSTROUTING|MARK-MASQ|PROXY-CANARY)/);
    expect(await nodeOut(net, "nft", ["list", "tables"])).toContain("table ip kube-proxy");
    expect((await net.probe(client, ["http", "http://10.96.0.10/", "5"])).errors).toEqual({});
  });

  it.skipIf(nftablesOnly)("serves NodePorts only on the addresses nodePortAddresses selects (nodeport-ips)", async () => {
    await proxier.close();
    const objects = (p: Proxier): void => {
      p.onServiceAdd(service("np", { type: "NodePort", clusterIP: "10.96.0.12", ports: [{ name: "http", port: 80, targetPort: 8080, nodePort: 30080, protocol: "TCP" }] }));
      p.onEndpointSliceAdd(slice("np", [ep(0)], http()));
      p.onServiceAdd(service("empty", { type: "NodePort", clusterIP: "10.96.0.13", ports: [{ name: "http", port: 80, nodePort: 30082, protocol: "TCP" }] }));
    };
    proxier = await startProxier(net, "nftables", objects, { nodePortAddresses: ["192.168.50.0/24"] });
    expect(await nodeOut(net, "nft", ["list", "set", "ip", "kube-proxy", "nodeport-ips"])).toContain(`elements = { ${NODE_IP} }`);
    expect((await net.probe(net.outside, ["http", `http://${NODE_IP}:30080/`, "3"])).counts).toEqual({ p1: 3 });
    expect((await net.connect(net.outside, NODE_IP, 30082)).result).toBe("refused");
    // the bridge address is the node's too, but not selected: nothing answers there
    expect((await net.connect(client, NODE_BRIDGE_IP, 30080, 1000)).result).toBe("refused");
    expect((await net.connect(client, NODE_IP, 30080, 1000)).result).toBe("ok");
  });
});
