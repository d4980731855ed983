/**
 * `npm run bench -- proxy [sizes...]`: kube-proxy at 1,000, 5,000 and 10,000 Services of 5 endpoints each,
 * all inside throw-away network namespaces (never the host's tables):
 *
 *  - generate: building the full restore input (pure rule generation, no I/O);
 *  - full sync: the proxier's first sync into an empty namespace (iptables-save ×2 + generate + restore);
 *  - floor: `iptables-restore --noflush --counters` alone, same input, into another empty namespace;
 *    interleaved with the full syncs (floor, full sync, floor, full sync...: `BENCH_PROXY_ROUNDS`, default 3,
 *    1 at 10,000 Services where one restore takes minutes; after one unrecorded warm-up round below 10,000);
 *  - partial sync: one endpoint of one Service changes → event to rules applied (7 of them), each followed by a
 *    bare restore of the same input (its floor);
 *  - peak RSS of this process (it holds the API objects, as kube-proxy's informers do).
 *
 * Targets (issue 6): a 10,000-Service full sync within 1.5× of the bare restore; a one-endpoint change under 100 ms.
 *
 * `--mode=iptables` (the default), `--mode=nftables` or `--mode=both`: in nftables mode the input is the
 * proxier's `nft -f` transaction and the floor is a bare `nft -f` of it (issue 15's targets: full sync ≤ 1.2× the
 * bare `nft -f`, a one-endpoint change ≤ 20 ms at 10,000 Services).
 */
import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { V1EndpointSlice, V1Service } from "@kubernetes/client-node";
import { resolveConfig, type ProxyMode } from "../proxy/config.ts";
import { netnsExec } from "../proxy/iptables.ts";
import { Proxier, type SyncOutcome } from "../proxy/proxier.ts";
import { EndpointsTracker } from "../proxy/endpoints-tracker.ts";
import { emptyNftState, generateNftRules } from "../proxy/nftables/rules.ts";
import { JUMP_RULES, KUBELET_JUMP_RULES, RulesCache, generateRules } from "../proxy/rules.ts";
import { ServiceChangeTracker } from "../proxy/service-change-tracker.ts";
import type { EndpointsMap, ServiceMap } from "../proxy/types.ts";
import { run } from "../src-shared/exec.ts";
import { silentLogger } from "../src-shared/log.ts";
import { SANDBOX_PREFIX, writeOwnerFile } from "../test/harness/leaks.ts";
import { compare, formatMs, interleave, printComparison, summarize } from "./compare.ts";

const ENDPOINTS = 5;

function ipOf(n: number, base: number): string {
  return `${base}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

function makeService(i: number): V1Service {
  return {
    metadata: { namespace: `ns${i % 50}`, name: `svc-${i}` },
    spec: { clusterIP: `172.${30 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, ports: [{ name: "http", port: 80, protocol: "TCP" }] },
  };
}

function makeSlice(i: number, gen = 0): V1EndpointSlice {
  return {
    metadata: { namespace: `ns${i % 50}`, name: `svc-${i}-abcde`, labels: { "kubernetes.io/service-name": `svc-${i}` } },
    addressType: "IPv4",
    endpoints: Array.from({ length: ENDPOINTS }, (_, k) => ({ addresses: [ipOf(i * ENDPOINTS + k + 1 + gen * 7_000_000, 10)], nodeName: `node-${k}` })),
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
  };
}

class BenchNetns {
  readonly name = `${SANDBOX_PREFIX}${randomBytes(3).toString("hex")}-bench`;
  async create(): Promise<void> {
    await mkdir(join("/tmp", this.name), { recursive: true });
    await writeOwnerFile(join("/tmp", this.name));
    await run("ip", ["netns", "add", this.name]);
  }
  async remove(): Promise<void> {
    await run("ip", ["netns", "del", this.name], { allowFailure: true });
    await rm(join("/tmp", this.name), { recursive: true, force: true });
  }
}

async function withNetns<T>(fn: (ns: BenchNetns) => Promise<T>): Promise<T> {
  const ns = new BenchNetns();
  await ns.create();
  try {
    return await fn(ns);
  } finally {
    await ns.remove();
  }
}

interface SizeResult {
  services: number;
  generateMs: number;
  trackMs: number;
  /** Interleaved: floorMs[i] was measured just before fullSyncMs[i]. */
  fullSyncMs: number[];
  fullRestoreMs: number[];
  floorMs: number[];
  partial: number[];
  partialRestoreMs: number[];
  partialFloorMs: number[];
  bytes: number;
  natRules: number;
  rssMiB: number;
}

/** The bare command applying `text` in a namespace: the floor both modes are compared with. */
function applyBare(mode: ProxyMode, netns: string, text: string): Promise<unknown> {
  const cmd = mode === "nftables" ? ["nft", "-f", "-"] : ["iptables-restore", "-w", "5", "-W", "100000", "--noflush", "--counters"];
  return run("nsenter", [`--net=/run/netns/${netns}`, "--", ...cmd], { input: text, timeoutMs: 3_600_000 });
}

async function measure(n: number, withFloor: boolean, mode: ProxyMode): Promise<SizeResult> {
  const services = Array.from({ length: n }, (_, i) => makeService(i));
  const slices = Array.from({ length: n }, (_, i) => makeSlice(i));
  const config = resolveConfig({
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    clusterCIDR: "10.0.0.0/8",
    mode,
    iptables: { syncPeriod: "1h" },
    nftables: { syncPeriod: "1h" },
  });
  // Pure generation of the full input from the objects (trackers + generator, no I/O), exactly as the
  // proxier's first sync into an empty namespace builds it (canary chains, every jump rule missing).
  const g0 = performance.now();
  const svcMap: ServiceMap = new Map();
  const epMap: EndpointsMap = new Map();
  const st = new ServiceChangeTracker();
  const et = new EndpointsTracker("node-0");
  for (const s of services) st.update(undefined, s);
  for (const s of slices) et.update(s, false);
  st.apply(svcMap);
  et.apply(epMap);
  const g1 = performance.now();
  const generated =
    mode === "nftables"
      ? generateNftRules({
          services: svcMap,
          endpoints: epMap,
          nodeLabels: {},
          options: { family: "ip", masqueradeMark: "0x4000", masqueradeAll: false, localCidr: "10.0.0.0/8", nodeIP: undefined, nodePortIPs: "all" },
          full: true,
          recreateBaseChains: true,
          changedServices: new Set(),
          previous: emptyNftState(),
          existingChains: new Set(),
          existingSets: new Set(),
        }).text
      : generateRules({
    services: svcMap,
    endpoints: epMap,
    nodeLabels: {},
    options: {
      nodeName: "node-0",
      nodeIP: undefined,
      masqueradeMark: "0x4000",
      masqueradeAll: false,
      localCidr: "10.0.0.0/8",
      localhostNodePorts: true,
      nodePortIPs: "all",
      randomFully: true,
      conntrackTCPLiberal: false,
      nfacct: { ctStateInvalid: false, localhostNodePorts: false },
    },
    full: true,
    changedServices: new Set(),
    existingNatChains: new Set(),
    missingJumps: [...JUMP_RULES, ...KUBELET_JUMP_RULES],
    canary: true,
    cache: new RulesCache(),
  }).text;
  const generateMs = performance.now() - g1;
  const trackMs = g1 - g0;
  const rounds = Number(process.env["BENCH_PROXY_ROUNDS"] ?? (n >= 10_000 ? 1 : 3));
  const warmup = n >= 10_000 ? 0 : 1;
  const result: SizeResult = {
    services: n,
    generateMs,
    trackMs,
    fullSyncMs: [],
    fullRestoreMs: [],
    floorMs: [],
    partial: [],
    partialRestoreMs: [],
    partialFloorMs: [],
    bytes: 0,
    natRules: 0,
    rssMiB: 0,
  };
  await interleave({ rounds, warmup }, [
    async (_round, record) => {
      if (!withFloor) return;
      const ms = await floor(mode, generated);
      if (record) result.floorMs.push(ms);
    },
    async (round, record) => {
      const r = await proxierRun(n, services, slices, config, generated, round === 0);
      if (!record) return;
      result.fullSyncMs.push(r.fullSyncMs);
      result.fullRestoreMs.push(r.fullRestoreMs);
      result.partial.push(...r.partial);
      result.partialRestoreMs.push(...r.partialRestoreMs);
      result.partialFloorMs.push(...r.partialFloorMs);
      result.bytes = r.bytes;
      result.natRules = r.natRules;
    },
  ]);
  result.rssMiB = process.resourceUsage().maxRSS / 1024;
  return result;
}

/** The proxier's first (full) sync into a fresh namespace, then, if asked, seven one-endpoint changes. */
async function proxierRun(
  n: number,
  services: readonly V1Service[],
  slices: readonly V1EndpointSlice[],
  config: ReturnType<typeof resolveConfig>,
  generated: string,
  withPartials: boolean,
): Promise<Pick<SizeResult, "partial" | "partialRestoreMs" | "partialFloorMs" | "bytes" | "natRules"> & { fullSyncMs: number; fullRestoreMs: number }> {
  return withNetns(async (ns) => {
    const proxier = new Proxier({ config, nodeName: "node-0", log: silentLogger(), exec: netnsExec(ns.name), conntrackCleanup: false });
    const next = (): Promise<SyncOutcome> => new Promise((resolve) => {
      const off = proxier.onSync((o) => {
        off();
        resolve(o);
      });
    });
    try {
      await proxier.start();
      for (const s of services) proxier.onServiceAdd(s);
      for (const s of slices) proxier.onEndpointSliceAdd(s);
      const first = next();
      proxier.onServicesSynced();
      proxier.onEndpointSlicesSynced();
      const full = await first;
      if (!full.ok) throw new Error(`full sync failed: ${full.error ?? "?"}`);
      const lastText = (): string => (config.mode === "nftables" ? (proxier.lastNftRules?.text ?? "") : (proxier.lastRules?.text ?? ""));
      const text = lastText();
      if (text !== generated) throw new Error("the proxier's first restore input differs from the generated one");

      // One endpoint of one Service changes, several times.
      const partial: number[] = [];
      const partialRestoreMs: number[] = [];
      const partialFloorMs: number[] = [];
      for (let k = 0; withPartials && k < 7; k++) {
        // An isolated change: wait out minSyncPeriod's rate limit (1 s, burst 2) first.
        await new Promise((r) => setTimeout(r, 1100));
        const i = Math.floor((k + 0.5) * (n / 7));
        const t0 = performance.now();
        const done = next();
        proxier.onEndpointSliceUpdate(slices[i] ?? makeSlice(i), makeSlice(i, k + 1));
        const o = await done;
        if (!o.ok || o.full) throw new Error(`partial sync failed or was full: ${JSON.stringify(o)}`);
        partial.push(performance.now() - t0);
        partialRestoreMs.push(o.restoreMs);
        // The floor for this change, right after it: the same (idempotent) input restored again by a bare iptables-restore.
        const again = lastText();
        const f0 = performance.now();
        await applyBare(config.mode, ns.name, again);
        partialFloorMs.push(performance.now() - f0);
      }
      return {
        fullSyncMs: full.durationMs,
        fullRestoreMs: full.restoreMs,
        partial,
        partialRestoreMs,
        partialFloorMs,
        bytes: text.length,
        natRules: config.mode === "nftables" ? text.split("\n").filter((l) => l.startsWith("add rule ")).length : proxier.metrics.iptablesRulesTotal.get({ table: "nat" }),
      };
    } finally {
      await proxier.close();
    }
  });
}

/** `iptables-restore` (or `nft -f`) alone on `text`, into an empty namespace: the floor. */
function floor(mode: ProxyMode, text: string): Promise<number> {
  return withNetns(async (ns) => {
    const t0 = performance.now();
    await applyBare(mode, ns.name, text);
    return performance.now() - t0;
  });
}

if (process.getuid?.() !== 0) {
  console.error("bench proxy: needs root (network namespaces)");
  process.exit(2);
}
const args = process.argv.slice(2);
/** `--no-floor`: skip the bare restores (each takes minutes at 10,000 Services). */
const withFloor = !args.includes("--no-floor");
const sizes = args.map(Number).filter((x) => x > 0);
const modeArg = args.find((a) => a.startsWith("--mode="))?.slice("--mode=".length) ?? "iptables";
if (!["iptables", "nftables", "both"].includes(modeArg)) {
  console.error(`bench proxy: --mode must be iptables, nftables or both, got ${modeArg}`);
  process.exit(2);
}
const modes: ProxyMode[] = modeArg === "both" ? ["iptables", "nftables"] : [modeArg as ProxyMode];
const results: SizeResult[] = [];
for (const mode of modes) {
  const bare = mode === "nftables" ? "nft -f" : "iptables-restore";
  const issue = mode === "nftables" ? "issue 15" : "issue 6";
  for (const n of sizes.length > 0 ? sizes : [1000, 5000, 10000]) {
    const r = await measure(n, withFloor, mode);
    results.push(r);
    console.log(
      `\n[${mode}] ${String(n).padStart(6)} Services × ${ENDPOINTS} endpoints (${(r.bytes / 1e6).toFixed(1)} MB, ${r.natRules} ${mode === "nftables" ? "rules" : "nat rules"})\n` +
        `  objects → maps (trackers)  ${formatMs(r.trackMs)}\n` +
        `  generate rules             ${formatMs(r.generateMs)}\n` +
        `  full sync's own ${mode === "nftables" ? "nft -f  " : "restore "}   p50 ${formatMs(summarize(r.fullRestoreMs).p50)}`,
    );
    if (withFloor) {
      printComparison(
        `  full sync against the bare ${bare} of the same input, interleaved (${r.fullSyncMs.length} rounds):`,
        { reference: `${bare} alone (floor)`, ours: "full sync (proxier)" },
        compare(r.floorMs, r.fullSyncMs),
        mode === "nftables" ? "≤ 1.2× (issue 15)" : "≤ 1.5× (issue 6)",
      );
      printComparison(
        `  one endpoint changes, each followed by a bare ${bare} of the same input:`,
        { reference: `${bare} alone (floor)`, ours: "event → rules applied (proxier)" },
        compare(r.partialFloorMs, r.partial),
        mode === "nftables" ? "proxier ≤ 20 ms at 10,000 Services (issue 15)" : `proxier < 100 ms (${issue})`,
      );
    } else {
      console.log(`  full sync (proxier)        p50 ${formatMs(summarize(r.fullSyncMs).p50)}   (no floor: --no-floor)`);
      console.log(`  one endpoint changes       p50 ${formatMs(summarize(r.partial).p50)}  max ${formatMs(summarize(r.partial).max)}`);
    }
    console.log(`  peak RSS                   ${r.rssMiB.toFixed(0).padStart(7)} MiB`);
  }
}
