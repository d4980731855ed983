/**
 * The real `bin/kube-proxy` process inside the node namespace, fed watch events on stdin
 * (`--watch-events-from=-`): health and metrics on their upstream ports, SIGKILL and restart without losing
 * anything, SIGTERM leaving the rules, `--cleanup`, mode nftables (and its refusal without nft), and a clear
 * exit on an invalid configuration.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../../src-shared/exec.ts";
import { eventually, type WaitOptions } from "../../harness/wait.ts";
import { NODE_IP, POD_CIDR, ROOT, TestNet } from "./helpers/net.ts";
import { feed, node, service, slice, type Ep } from "./helpers/objects.ts";
import type { V1EndpointSlice, V1Service } from "@kubernetes/client-node";

const NODE = "node-a";
const net = new TestNet();
let client = "";
const pods: { ns: string; ip: string }[] = [];
let configPath = "";
let proxy: ChildProcess | undefined;
let stderr = "";

const ep = (i: number): Ep => ({ ip: pods[i]?.ip ?? "", node: NODE });
const web = (): V1Service => service("web", { clusterIP: "10.96.0.10", ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] });
const webSlice = (eps: Ep[]): V1EndpointSlice => slice("web", eps, [{ name: "http", port: 8080 }]);
const lb = (): V1Service =>
  service(
    "lb",
    {
      type: "LoadBalancer",
      externalTrafficPolicy: "Local",
      healthCheckNodePort: 30000,
      clusterIP: "10.96.0.20",
      ports: [{ name: "http", port: 80, targetPort: 8080, nodePort: 30090, protocol: "TCP" }],
    },
    { loadBalancer: { ingress: [{ ip: "172.16.0.50" }] } },
  );
const lbSlice = (): V1EndpointSlice => slice("lb", [ep(0), { ip: pods[1]?.ip ?? "", node: "node-b" }], [{ name: "http", port: 8080 }]);

function startProxy(extra: string[] = []): ChildProcess {
  stderr = "";
  const child = spawn("nsenter", [`--net=/run/netns/${net.node}`, "--", join(ROOT, "bin/kube-proxy"), "--config", configPath, "--watch-events-from=-", "--hostname-override", NODE, ...extra], {
    stdio: ["pipe", "ignore", "pipe"],
  });
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => (stderr += d));
  net.adopt(child);
  return child;
}

function send(child: ChildProcess, state: { services: V1Service[]; slices: V1EndpointSlice[] }): void {
  let text = feed({ type: "ADDED", object: node(NODE, NODE_IP) });
  for (const s of state.services) text += feed({ type: "ADDED", object: s });
  for (const s of state.slices) text += feed({ type: "ADDED", object: s });
  for (const kind of ["Node", "Service", "EndpointSlice"] as const) text += feed({ type: "SYNCED", kind });
  child.stdin?.write(text);
}

/** The shared wait, with kube-proxy's stderr as evidence on time-out. */
function waitFor<T>(fn: () => Promise<T | undefined>, options: WaitOptions): Promise<T> {
  return eventually(fn, { timeoutMs: 15_000, diagnose: () => `kube-proxy stderr:\n${stderr.slice(-3000)}`, ...options });
}

/** Waits until /metrics reports a successful sync newer than `after` (seconds since the epoch). */
async function synced(after: number): Promise<void> {
  await waitFor(async () => {
    const r = await net.get(net.node, "http://127.0.0.1:10249/metrics");
    const m = /^kubeproxy_sync_proxy_rules_last_timestamp_seconds (\S+)$/m.exec(r.body);
    return m && Number(m[1]) > after ? true : undefined;
  }, { message: "a sync" });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once("exit", (code) => r(code)));
}

/** iptables-save without its timestamps and packet counters. */
async function rules(): Promise<string> {
  return (await net.iptablesSave())
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .map((l) => l.replace(/\[\d+:\d+\]$/, "[0:0]"))
    .join("\n");
}

beforeAll(async () => {
  try {
    await net.create();
    for (const [i, ip] of ["10.244.0.11", "10.244.0.12"].entries()) {
      const ns = await net.addPod(ip);
      pods.push({ ns, ip });
      await net.startBackend(ns, `p${i + 1}`);
    }
    client = await net.addPod("10.244.0.50");
    configPath = join("/tmp", net.node, "kube-proxy.yaml");
    await writeFile(
      configPath,
      `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clusterCIDR: ${POD_CIDR}
iptables:
  syncPeriod: 3s
`,
    );
  } catch (err) {
    await net.teardown();
    throw err;
  }
});

afterAll(async () => {
  await net.teardown();
});

describe("bin/kube-proxy (process, real packets)", () => {
  it("syncs, serves traffic, and answers /healthz, /livez and /metrics", async () => {
    proxy = startProxy();
    send(proxy, { services: [web(), lb()], slices: [webSlice([ep(0), ep(1)]), lbSlice()] });
    await synced(0);
    const h = await waitFor(async () => {
      const r = await net.get(net.node, "http://127.0.0.1:10256/healthz");
      return r.status === 200 ? r : undefined;
    }, { message: "/healthz 200" });
    expect(JSON.parse(h.body)).toMatchObject({ healthy: true, nodeEligible: true });
    expect((await net.get(net.node, "http://127.0.0.1:10256/livez")).status).toBe(200);
    const r = await net.probe(client, ["http", "http://10.96.0.10/", "40"]);
    expect(r.errors).toEqual({});
    expect(Object.keys(r.counts).sort()).toEqual(["p1", "p2"]);
    const metrics = (await net.get(net.node, "http://127.0.0.1:10249/metrics")).body;
    for (const name of [
      "kubeproxy_sync_proxy_rules_duration_seconds_bucket",
      "kubeproxy_sync_full_proxy_rules_duration_seconds_count",
      "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
      "kubeproxy_network_programming_duration_seconds_count",
      "kubeproxy_sync_proxy_rules_iptables_restore_failures_total 0",
      'kubeproxy_sync_proxy_rules_iptables_total{table="nat"}',
      "kubeproxy_proxy_healthz_total",
    ]) {
      expect(metrics).toContain(name);
    }
    // the LoadBalancer's health check node port: one ready local endpoint on this node
    const hc = await waitFor(async () => {
      const r = await net.get(net.node, "http://127.0.0.1:30000/");
      return r.status === 0 ? undefined : r;
    }, { message: "the health check node port" });
    expect(hc.status).toBe(200);
    expect(JSON.parse(hc.body)).toEqual({ service: { namespace: "e2e", name: "lb" }, localEndpoints: 1, serviceProxyHealthy: true });
    // the metrics port is the loopback one by default
    expect((await net.get(net.node, `http://${NODE_IP}:10249/metrics`)).status).toBe(0);
  });

  it("keeps serving when killed, and a restart loses nothing and catches up on changes", async () => {
    if (!proxy) throw new Error("no kube-proxy running");
    const before = await rules();
    proxy.kill("SIGKILL");
    await exited(proxy);
    expect((await net.probe(client, ["http", "http://10.96.0.10/", "20"])).errors).toEqual({});

    // Same state: after its first (full) sync the tables are exactly as before — no duplicate jumps.
    const t1 = Date.now() / 1000;
    proxy = startProxy();
    send(proxy, { services: [web(), lb()], slices: [webSlice([ep(0), ep(1)]), lbSlice()] });
    await synced(t1);
    expect(await rules()).toBe(before);

    // A change made while it was down (p1 gone) is applied on restart, and p1's chains are deleted.
    proxy.kill("SIGKILL");
    await exited(proxy);
    const t2 = Date.now() / 1000;
    proxy = startProxy();
    send(proxy, { services: [web(), lb()], slices: [webSlice([ep(1)]), lbSlice()] });
    await synced(t2);
    const r = await net.probe(client, ["http", "http://10.96.0.10/", "30"]);
    expect(r.counts).toEqual({ p2: 30 });
    const nat = await net.iptablesSave("nat");
    // web: one SEP (p2) — p1's was deleted at the restart's full sync; lb: p1 and p2
    expect(nat.match(/^:KUBE-SEP-/gm)).toHaveLength(3);
    expect(nat).not.toMatch(/KUBE-SVC-\w+ -m comment --comment "e2e\/web:http -> 10\.244\.0\.11:8080"/);
  });

  it("exits cleanly on SIGTERM and leaves the rules in place", async () => {
    if (!proxy) throw new Error("no kube-proxy running");
    const t0 = performance.now();
    proxy.kill("SIGTERM");
    expect(await exited(proxy)).toBe(0);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect((await net.probe(client, ["http", "http://10.96.0.10/", "10"])).counts).toEqual({ p2: 10 });
  });

  it("removes everything it owns with --cleanup (the kubelet's KUBE-FIREWALL stays)", async () => {
    const r = await net.exec(net.node, join(ROOT, "bin/kube-proxy"), ["--cleanup"], { allowFailure: true });
    expect(r.code, r.stderr).toBe(0);
    const save = await net.iptablesSave();
    const kube = save.split("\n").filter((l) => l.includes("KUBE-") && !l.includes("KUBE-FIREWALL"));
    expect(kube).toEqual([]);
    expect((await net.connect(client, "10.96.0.10", 80, 500)).result).not.toBe("ok");
  });

  it("runs in mode nftables, and --cleanup removes both modes' state", async () => {
    const nftConfig = join("/tmp", net.node, "kube-proxy-nft.yaml");
    await writeFile(nftConfig, `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclusterCIDR: ${POD_CIDR}\nmode: nftables\n`);
    const t0 = Date.now() / 1000;
    proxy = startProxy(["--config", nftConfig]);
    send(proxy, { services: [web()], slices: [webSlice([ep(0)])] });
    await synced(t0);
    expect((await net.probe(client, ["http", "http://10.96.0.10/", "5"])).counts).toEqual({ p1: 5 });
    const metrics = (await net.get(net.node, "http://127.0.0.1:10249/metrics")).body;
    expect(metrics).toContain("kubeproxy_sync_proxy_rules_nftables_sync_failures_total 0");
    expect(metrics).toContain("kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total 0");
    proxy.kill("SIGTERM");
    expect(await exited(proxy)).toBe(0);
    expect((await net.exec(net.node, "nft", ["list", "tables"])).stdout).toContain("table ip kube-proxy");
    const r = await net.exec(net.node, join(ROOT, "bin/kube-proxy"), ["--cleanup"], { allowFailure: true });
    expect(r.code, r.stderr).toBe(0);
    expect((await net.exec(net.node, "nft", ["list", "tables"])).stdout).not.toContain("kube-proxy");
    expect((await net.connect(client, "10.96.0.10", 80, 500)).result).not.toBe("ok");
  });

  it("refuses mode nftables at start when nft is missing (no fallback to iptables)", async () => {
    const nftConfig = join("/tmp", net.node, "kube-proxy-nft.yaml");
    const r = await run("nsenter", [`--net=/run/netns/${net.node}`, "--", join(ROOT, "bin/kube-proxy"), "--config", nftConfig, "--watch-events-from=-"], {
      allowFailure: true,
      input: "",
      timeoutMs: 20_000,
      env: { ...process.env, PATH: "/usr/bin:/bin" }, // nft lives in /usr/sbin
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("mode nftables cannot run here: the nft command is not installed");
    expect((await net.iptablesSave("nat")).includes("KUBE-SERVICES")).toBe(false);
  });

  it("refuses an invalid configuration with a clear error and exit code 1", async () => {
    const bad = join("/tmp", net.node, "bad.yaml");
    await writeFile(bad, "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\niptables:\n  masqueradeBit: 99\n  syncPeriod: often\n");
    const r = await run("nsenter", [`--net=/run/netns/${net.node}`, "--", join(ROOT, "bin/kube-proxy"), "--config", bad, "--watch-events-from=-"], {
      allowFailure: true,
      input: "",
      timeoutMs: 20_000,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("iptables.masqueradeBit: must be within [0, 31], got 99");
    expect(r.stderr).toContain(`iptables.syncPeriod: Invalid value: "often"`);
    // nothing was programmed
    expect((await net.iptablesSave("nat")).includes("KUBE-SERVICES")).toBe(false);
  });
});
