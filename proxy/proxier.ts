/**
 * The proxier (upstream pkg/proxy/iptables/proxier.go and pkg/proxy/nftables/proxier.go): receives Service,
 * EndpointSlice and Node events (`ProxyEventHandler`), folds them into its maps through the change trackers,
 * and syncs the rules of its mode through a bounded-frequency runner — no more often than minSyncPeriod
 * (burst 2), at least every hour for a full resync, at once after the canary shows someone flushed the tables
 * (iptables) or deleted the table (nftables).
 *
 * iptables mode: a sync is one `iptables-restore --noflush`: full syncs rewrite everything (and re-insert any
 * missing jump rules and the canary chains); partial syncs rewrite the top-level chains and only the chains of
 * Services that changed. nftables mode: a sync is one `nft -f` transaction (nftables/syncer.ts). Either way a
 * failure counts, marks the next sync full and retries after syncPeriod; after a sync that changed UDP
 * endpoints, stale conntrack entries are deleted.
 */
import { cpus } from "node:os";
import type { V1EndpointSlice, V1Node, V1Service } from "@kubernetes/client-node";
import type { Logger } from "../src-shared/log.ts";
import { errorMessage, isDeckhandError } from "../src-shared/errors.ts";
import { cleanupLeftovers } from "./cleanup.ts";
import { modeSettings, type ModeSettings, type ProxyConfig, type ProxyMode } from "./config.ts";
import { ConntrackCleaner } from "./conntrack.ts";
import { EndpointsTracker } from "./endpoints-tracker.ts";
import { IptablesRunner, chainsFromSave, hostExec, missingJumps, readSysctl, writeSysctl, type Exec } from "./iptables.ts";
import { canonicalIPv4, cidrContains, parseCidr } from "./ip.ts";
import { ProxyMetrics } from "./metrics.ts";
import { JUMP_RULES, KUBELET_JUMP_RULES, RulesCache, generateRules, type JumpRule, type RulesOptions, type RulesResult } from "./rules.ts";
import { NftRunner } from "./nftables/nft.ts";
import type { NftOptions, NftResult } from "./nftables/rules.ts";
import { NftablesSyncer } from "./nftables/syncer.ts";
import { ProxyHealth } from "./server.ts";
import { ServiceChangeTracker } from "./service-change-tracker.ts";
import type { ServiceHealthServer } from "./service-health.ts";
import type { ProxyEventHandler } from "./source.ts";
import { BoundedFrequencyRunner } from "./sync-runner.ts";
import type { EndpointsMap, ServiceMap } from "./types.ts";

/** Upstream's proxyutil.FullSyncPeriod: a full resync at least this often ("time.Hour is arbitrary"). */
export const FULL_SYNC_PERIOD_MS = 3_600_000;
const BURST_SYNCS = 2;

const ROUTE_LOCALNET = "net.ipv4.conf.all.route_localnet";
/** Jump rules checked with the canaries: a flush of nat or filter (`iptables -t nat -F`, `iptables -F`) removes them. */
const CANARY_JUMPS = JUMP_RULES.filter((j) => (j.table === "nat" && j.chain === "PREROUTING") || (j.table === "filter" && j.target === "KUBE-FORWARD"));
const TCP_BE_LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal";

export interface ProxierOptions {
  config: ProxyConfig;
  nodeName: string;
  log: Logger;
  /** How commands run; the default runs them directly. Tests pass `netnsExec(ns)`. */
  exec?: Exec;
  metrics?: ProxyMetrics;
  health?: ProxyHealth;
  /** Delete stale UDP conntrack entries after syncs (default true). */
  conntrackCleanup?: boolean;
  /** Health checks on healthCheckNodePorts (main passes one; in-process tests leave it out). */
  serviceHealth?: ServiceHealthServer;
}

/** What one sync did, for logs, tests and the benchmark. */
export interface SyncOutcome {
  full: boolean;
  ok: boolean;
  durationMs: number;
  generateMs: number;
  restoreMs: number;
  bytes: number;
  changedServices: number;
  error?: string;
}

/** What a sync wrote, for its outcome. */
interface Written {
  generateMs: number;
  restoreMs: number;
  bytes: number;
}

export class Proxier implements ProxyEventHandler {
  readonly metrics: ProxyMetrics;
  readonly health: ProxyHealth;
  readonly nodeName: string;
  readonly mode: ProxyMode;

  private readonly config: ProxyConfig;
  /** The configured mode's section (iptables or nftables). */
  private readonly settings: ModeSettings;
  /** The nftables mode's syncer; undefined in iptables mode. */
  private readonly nft: NftablesSyncer | undefined;
  private readonly log: Logger;
  private readonly exec: Exec;
  private readonly iptables: IptablesRunner;
  private readonly conntrack: ConntrackCleaner | undefined;
  private readonly serviceChanges = new ServiceChangeTracker();
  private readonly endpointsChanges: EndpointsTracker;
  private readonly runner: BoundedFrequencyRunner;
  private readonly serviceHealth: ServiceHealthServer | undefined;

  private readonly svcPortMap: ServiceMap = new Map();
  private readonly endpointsMap: EndpointsMap = new Map();
  private readonly rulesCache = new RulesCache();
  /** Stale chains a large-cluster partial sync left for later. */
  private deferredStale: string[] = [];
  /** Top-level chains as the last successful sync wrote them: unchanged ones are left out of partial syncs. */
  private lastTopChains: Map<string, string> | undefined;
  private lastStaleCleanup = -Infinity;
  private nodeLabels: Record<string, string> = {};
  private node: V1Node | undefined;
  private servicesSynced = false;
  private endpointSlicesSynced = false;
  private needFullSync = true;
  private lastFullSync = -Infinity;
  private started = false;
  private closed = false;
  private monitorTimer: NodeJS.Timeout | undefined;
  private monitorRunning: Promise<void> | undefined;
  private readonly stop = new AbortController();
  private syncing = false;
  private randomFully = false;
  private conntrackTCPLiberal = false;
  private localhostNodePorts: boolean;
  private syncListeners: ((o: SyncOutcome) => void)[] = [];
  private lastOutcome: SyncOutcome | undefined;
  private lastResult: RulesResult | undefined;
  private lastNftResult: NftResult | undefined;

  constructor(options: ProxierOptions) {
    this.config = options.config;
    this.nodeName = options.nodeName;
    this.mode = options.config.mode;
    this.settings = modeSettings(options.config);
    this.log = options.log;
    this.exec = options.exec ?? hostExec;
    this.metrics = options.metrics ?? new ProxyMetrics(this.mode);
    this.health = options.health ?? new ProxyHealth({ healthTimeoutMs: 2 * this.settings.syncPeriodMs });
    this.iptables = new IptablesRunner({ exec: this.exec });
    this.conntrack = options.conntrackCleanup === false ? undefined : new ConntrackCleaner({ exec: this.exec, log: this.log.child({ component: "conntrack" }) });
    this.endpointsChanges = new EndpointsTracker(options.nodeName);
    this.serviceHealth = options.serviceHealth;
    // nftables mode has no localhost NodePorts (upstream: NodePorts only on the node's addresses).
    this.localhostNodePorts =
      this.mode === "iptables" && options.config.iptables.localhostNodePorts && nodePortAddressesIncludeLoopback(options.config.nodePortAddresses);
    this.nft =
      this.mode === "nftables"
        ? new NftablesSyncer({ exec: this.exec, log: this.log.child({ component: "nftables" }), onCleanupFailure: () => this.metrics.nftablesCleanupFailuresTotal.inc() })
        : undefined;
    this.runner = new BoundedFrequencyRunner({
      name: "sync-runner",
      fn: () => this.syncProxyRules(),
      minIntervalMs: this.settings.minSyncPeriodMs,
      maxIntervalMs: FULL_SYNC_PERIOD_MS,
      burst: BURST_SYNCS,
      onError: (err) => this.log.error({ err }, "sync failed unexpectedly"),
    });
  }

  /**
   * Prepares the node (route_localnet for localhost NodePorts, conntrack sysctls), learns what iptables
   * supports, and starts the sync loop and the canary monitor. Rules are written once Services and
   * EndpointSlices have both been listed (onServicesSynced + onEndpointSlicesSynced).
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.started) return;
    this.started = true;
    signal?.addEventListener("abort", () => void this.close(), { once: true });
    if (this.nft) await this.nft.runner.checkSupported(); // refuses to start: no silent fallback to iptables
    await this.cleanupOtherMode();
    if (this.localhostNodePorts) {
      this.log.info(
        "setting route_localnet=1 to allow node-ports on localhost; to change this either disable iptables.localhostNodePorts or set nodePortAddresses to filter loopback addresses",
      );
      await writeSysctl(this.exec, ROUTE_LOCALNET, 1);
    }
    this.conntrackTCPLiberal = ((await readSysctl(this.exec, TCP_BE_LIBERAL)) ?? "0") !== "0";
    if (this.conntrackTCPLiberal) this.log.info("nf_conntrack_tcp_be_liberal set, not installing DROP rules for INVALID packets");
    if (this.mode === "iptables") this.randomFully = await this.iptables.supportsRandomFully();
    await this.setupConntrack();
    this.health.updated(); // healthy while starting up, as upstream's SyncLoop does
    this.metrics.syncProxyRulesLastQueuedTimestamp.setToCurrentTime();
    this.runner.start(this.stop.signal);
    this.scheduleMonitor();
  }

  /**
   * Switching modes: the other mode's rules go at start (upstream cleans the iptables and ipvs rules when
   * starting in nftables mode, and the nftables tables in the other modes). Failures are logged, not fatal.
   */
  private async cleanupOtherMode(): Promise<void> {
    if (this.mode === "nftables") {
      const failed = await cleanupLeftovers(this.iptables, this.log.child({ component: "iptables-cleanup" })).catch((err: unknown) => !isDeckhandError(err, "NotFound"));
      if (failed) this.log.warn("could not remove the iptables mode's rules");
      return;
    }
    for (const family of ["ip", "ip6"] as const) {
      try {
        if (await new NftRunner({ family, exec: this.exec }).deleteTable(this.stop.signal)) this.log.info({ family }, "removed the nftables mode's table");
      } catch (err) {
        // No nft on this host means no nftables-mode table either.
        if (!isDeckhandError(err, "NotFound")) this.log.warn({ family, err: errorMessage(err) }, "could not remove the nftables mode's table");
      }
    }
  }

  /** Stops syncing and the monitor, waiting for a sync in progress. The rules stay in place. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort();
    if (this.monitorTimer) clearTimeout(this.monitorTimer);
    await this.runner.close();
    await this.monitorRunning?.catch(() => undefined);
  }

  /** Calls `fn` after every sync (tests wait on it). Returns an unsubscribe function. */
  onSync(fn: (o: SyncOutcome) => void): () => void {
    this.syncListeners.push(fn);
    return () => {
      this.syncListeners = this.syncListeners.filter((f) => f !== fn);
    };
  }

  get lastSync(): SyncOutcome | undefined {
    return this.lastOutcome;
  }

  get lastRules(): RulesResult | undefined {
    return this.lastResult;
  }

  /** The nftables mode's last successful transaction (tests, the benchmark). */
  get lastNftRules(): NftResult | undefined {
    return this.lastNftResult;
  }

  /** The nftables mode's stale chains waiting for deletion (tests). */
  get nftStaleChains(): ReadonlyMap<string, number> {
    return this.nft?.staleChains ?? new Map();
  }

  /** Changes received but not yet folded into a sync, and whether a sync is running (tests wait on both). */
  get pendingChanges(): number {
    return this.serviceChanges.pendingCount + this.endpointsChanges.pendingCount;
  }

  get syncInProgress(): boolean {
    return this.syncing;
  }

  get initialized(): boolean {
    return this.servicesSynced && this.endpointSlicesSynced;
  }

  /** Queues a sync (rate-limited). */
  sync(): void {
    this.health.queuedUpdate();
    this.metrics.syncProxyRulesLastQueuedTimestamp.setToCurrentTime();
    this.runner.run();
  }

  /** Marks the next sync full and queues it (canary loss, node changes). */
  forceFullSync(): void {
    this.needFullSync = true;
    if (this.initialized) this.sync();
  }

  // ---- ProxyEventHandler -------------------------------------------------------------------------------

  onServiceAdd(service: V1Service): void {
    this.onServiceChange(undefined, service);
  }
  onServiceUpdate(oldService: V1Service, service: V1Service): void {
    this.onServiceChange(oldService, service);
  }
  onServiceDelete(service: V1Service): void {
    this.onServiceChange(service, undefined);
  }
  onServicesSynced(): void {
    this.servicesSynced = true;
    if (this.initialized) this.sync();
  }
  onEndpointSliceAdd(slice: V1EndpointSlice): void {
    this.onSliceChange(slice, false);
  }
  onEndpointSliceUpdate(_old: V1EndpointSlice, slice: V1EndpointSlice): void {
    this.onSliceChange(slice, false);
  }
  onEndpointSliceDelete(slice: V1EndpointSlice): void {
    this.onSliceChange(slice, true);
  }
  onEndpointSlicesSynced(): void {
    this.endpointSlicesSynced = true;
    if (this.initialized) this.sync();
  }
  onNodeAdd(node: V1Node): void {
    this.onNodeChange(node);
  }
  onNodeUpdate(_old: V1Node, node: V1Node): void {
    this.onNodeChange(node);
  }
  onNodeDelete(node: V1Node): void {
    if (node.metadata?.name !== this.nodeName) return;
    this.node = undefined;
    this.health.setNode(undefined);
    this.nodeLabels = {};
    this.forceFullSync();
  }
  onNodeSynced(): void {
    // nothing: the proxier does not wait for its Node
  }

  private onServiceChange(prev: V1Service | undefined, cur: V1Service | undefined): void {
    this.serviceChanges.update(prev, cur);
    this.metrics.serviceChangesTotal.inc();
    this.metrics.serviceChangesPending.set(this.serviceChanges.pendingCount);
    if (this.initialized) this.sync();
  }

  private onSliceChange(slice: V1EndpointSlice, remove: boolean): void {
    this.endpointsChanges.update(slice, remove);
    this.metrics.endpointChangesTotal.inc();
    this.metrics.endpointChangesPending.set(this.endpointsChanges.pendingCount);
    if (this.initialized) this.sync();
  }

  private onNodeChange(node: V1Node): void {
    if (node.metadata?.name !== this.nodeName) {
      this.log.error({ eventNode: node.metadata?.name, currentNode: this.nodeName }, "received a watch event for a node that doesn't match the current node");
      return;
    }
    const before = JSON.stringify([this.nodeLabels, this.nodeIP(), this.localCidr()]);
    this.node = node;
    this.health.setNode(node);
    this.nodeLabels = { ...(node.metadata?.labels ?? {}) };
    if (JSON.stringify([this.nodeLabels, this.nodeIP(), this.localCidr()]) !== before) this.forceFullSync();
  }

  /** The node's primary IPv4: bindAddress when set, else its InternalIP (or ExternalIP) from the Node. */
  private nodeIP(): string | undefined {
    if (this.config.bindAddress !== "0.0.0.0" && canonicalIPv4(this.config.bindAddress)) return this.config.bindAddress;
    const addrs = this.node?.status?.addresses ?? [];
    for (const type of ["InternalIP", "ExternalIP"]) {
      for (const a of addrs) if (a.type === type && canonicalIPv4(a.address)) return canonicalIPv4(a.address);
    }
    return undefined;
  }

  /** The pod CIDR that tells pod traffic from the rest (detectLocalMode). */
  private localCidr(): string | undefined {
    if (this.config.detectLocalMode === "NodeCIDR") {
      const cidrs = this.node?.spec?.podCIDRs ?? (this.node?.spec?.podCIDR ? [this.node.spec.podCIDR] : []);
      for (const c of cidrs) {
        const p = parseCidr(c);
        if (p?.family === 4) return p.text;
      }
      return undefined;
    }
    for (const c of this.config.clusterCIDRs) {
      const p = parseCidr(c);
      if (p?.family === 4) return p.text;
    }
    return undefined;
  }

  private jumpRules(): readonly JumpRule[] {
    return this.localhostNodePorts ? [...JUMP_RULES, ...KUBELET_JUMP_RULES] : JUMP_RULES;
  }

  /** NodePort addresses: all local ones, or the node IPs nodePortAddresses selects (read from the interfaces). */
  private async nodePortIPs(): Promise<"all" | string[]> {
    const sel = this.config.nodePortAddresses;
    if (sel.length === 0) return "all";
    if (sel.includes("primary")) {
      const ip = this.nodeIP();
      return ip ? [ip] : [];
    }
    const r = await this.exec("ip", ["-o", "-4", "addr", "show"], { allowFailure: true });
    const ips: string[] = [];
    for (const m of r.stdout.matchAll(/\binet (\d+\.\d+\.\d+\.\d+)\//g)) {
      const ip = m[1] ?? "";
      if (sel.some((c) => {
        const p = parseCidr(c);
        return p !== undefined && cidrContains(p, ip);
      })) ips.push(ip);
    }
    return [...new Set(ips)];
  }

  private cachedNodePortIPs: "all" | string[] = "all";

  private rulesOptions(): RulesOptions {
    return {
      nodeName: this.nodeName,
      nodeIP: this.nodeIP(),
      masqueradeMark: `0x${(2 ** this.settings.masqueradeBit).toString(16)}`,
      masqueradeAll: this.settings.masqueradeAll,
      localCidr: this.localCidr(),
      localhostNodePorts: this.localhostNodePorts,
      nodePortIPs: this.cachedNodePortIPs,
      randomFully: this.randomFully,
      conntrackTCPLiberal: this.conntrackTCPLiberal,
      nfacct: { ctStateInvalid: false, localhostNodePorts: false },
    };
  }

  /** One sync: the whole of upstream's syncProxyRules. Never throws; failures schedule a full retry. */
  async syncProxyRules(): Promise<void> {
    if (!this.initialized || this.closed) return;
    this.syncing = true;
    try {
      await this.doSync();
    } finally {
      this.syncing = false;
    }
  }

  private async doSync(): Promise<void> {
    const start = performance.now();
    const full = this.needFullSync || performance.now() - this.lastFullSync > FULL_SYNC_PERIOD_MS;
    const serviceUpdate = this.serviceChanges.apply(this.svcPortMap);
    const endpointUpdate = this.endpointsChanges.apply(this.endpointsMap);
    this.metrics.serviceChangesPending.set(0);
    this.metrics.endpointChangesPending.set(0);
    const changed = new Set([...serviceUpdate.updatedServices, ...endpointUpdate.updatedServices]);
    const written: Written = { generateMs: 0, restoreMs: 0, bytes: 0 };
    try {
      if (this.nft) await this.writeNftables(full, changed, written);
      else await this.writeIptables(full, changed, written);
    } catch (err) {
      if (this.nft) this.metrics.nftablesSyncFailuresTotal.inc();
      else {
        this.metrics.iptablesRestoreFailuresTotal.inc();
        if (!full) this.metrics.iptablesPartialRestoreFailuresTotal.inc();
      }
      // The trackers' changes are folded in already: only a full sync can bring the rules back in line.
      this.needFullSync = true;
      this.lastTopChains = undefined;
      if (!this.closed) {
        this.log.error({ err: errorMessage(err), full, retryAfterMs: this.settings.syncPeriodMs }, "sync failed");
        this.runner.retryAfter(this.settings.syncPeriodMs);
      }
      this.finish({ full, ok: false, durationMs: performance.now() - start, ...written, changedServices: changed.size, error: errorMessage(err) });
      return;
    }
    this.needFullSync = false;
    if (full) this.lastFullSync = performance.now();
    const m = this.metrics;
    const now = Date.now();
    for (const times of endpointUpdate.lastChangeTriggerTimes.values()) for (const t of times) m.networkProgrammingLatency.observe(Math.max(0, now - t) / 1000);
    this.health.updated();
    m.syncProxyRulesLastTimestamp.setToCurrentTime();
    const durationMs = performance.now() - start;
    this.log.debug({ mode: this.mode, full, durationMs: Math.round(durationMs), changed: changed.size, bytes: written.bytes }, "synced proxy rules");
    if (this.serviceHealth && (full || changed.size > 0)) await this.syncServiceHealth();
    if (this.conntrack && (endpointUpdate.conntrackCleanupRequired || serviceUpdate.removedUDPPorts.length > 0)) {
      await this.conntrack.cleanStaleEntries(this.svcPortMap, this.endpointsMap, serviceUpdate.removedUDPPorts, this.stop.signal);
    }
    this.finish({ full, ok: true, durationMs, ...written, changedServices: changed.size });
    // Chains an earlier sync flushed go now, after this sync's rules are in place (still "syncing" meanwhile).
    if (this.nft) await this.nft.deleteStaleChains(this.stop.signal);
  }

  /** The iptables mode's sync: one `iptables-restore --noflush`; throws when it fails. */
  private async writeIptables(full: boolean, changed: ReadonlySet<string>, w: Written): Promise<void> {
    let existing: ReadonlySet<string> = new Set();
    let missing: JumpRule[] = [];
    if (full) {
      const nat = await this.iptables.save("nat", this.stop.signal);
      const filter = await this.iptables.save("filter", this.stop.signal);
      existing = chainsFromSave(nat);
      missing = missingJumps({ nat, filter }, this.jumpRules());
      this.cachedNodePortIPs = await this.nodePortIPs();
    }
    const g0 = performance.now();
    const result = generateRules({
      services: this.svcPortMap,
      endpoints: this.endpointsMap,
      nodeLabels: this.nodeLabels,
      options: this.rulesOptions(),
      full,
      changedServices: changed,
      existingNatChains: existing,
      staleNatChains: this.deferredStale,
      missingJumps: missing,
      canary: full,
      cache: this.rulesCache,
      ...(this.lastTopChains ? { previousTopChains: this.lastTopChains } : {}),
      deferStaleCleanup: !full && performance.now() - this.lastStaleCleanup < this.settings.syncPeriodMs,
    });
    const g1 = performance.now();
    w.generateMs = g1 - g0;
    w.bytes = result.text.length;
    if (result.text !== "") await this.iptables.restore(result.text, this.stop.signal);
    w.restoreMs = performance.now() - g1;
    this.deferredStale = result.staleNatChains;
    if (result.staleNatChains.length === 0) this.lastStaleCleanup = performance.now();
    this.lastTopChains = result.topChains;
    this.lastResult = result;
    const m = this.metrics;
    m.iptablesRulesTotal.set(result.filterRules, { table: "filter" });
    m.iptablesRulesLastSync.set(result.filterRules, { table: "filter" });
    m.iptablesRulesTotal.set(result.natRulesTotal, { table: "nat" });
    m.iptablesRulesLastSync.set(result.natRulesWritten, { table: "nat" });
    m.syncProxyRulesNoLocalEndpointsTotal.set(result.noLocalEndpointsInternal, { traffic_policy: "internal" });
    m.syncProxyRulesNoLocalEndpointsTotal.set(result.noLocalEndpointsExternal, { traffic_policy: "external" });
  }

  /** The nftables mode's sync: one `nft -f` transaction (after deleting chains flushed earlier); throws when it fails. */
  private async writeNftables(full: boolean, changed: ReadonlySet<string>, w: Written): Promise<void> {
    const nft = this.nft;
    if (!nft) return;
    if (full) this.cachedNodePortIPs = await this.nodePortIPs();
    const out = await nft.sync({
      services: this.svcPortMap,
      endpoints: this.endpointsMap,
      nodeLabels: this.nodeLabels,
      options: this.nftOptions(),
      full,
      changedServices: changed,
      signal: this.stop.signal,
    });
    w.generateMs = out.generateMs;
    w.restoreMs = out.applyMs;
    w.bytes = out.result.text.length;
    this.lastNftResult = out.result;
    this.metrics.syncProxyRulesNoLocalEndpointsTotal.set(out.result.noLocalEndpointsInternal, { traffic_policy: "internal" });
    this.metrics.syncProxyRulesNoLocalEndpointsTotal.set(out.result.noLocalEndpointsExternal, { traffic_policy: "external" });
  }

  private nftOptions(): NftOptions {
    const ips = this.cachedNodePortIPs;
    return {
      family: "ip",
      masqueradeMark: `0x${(2 ** this.settings.masqueradeBit).toString(16)}`,
      masqueradeAll: this.settings.masqueradeAll,
      localCidr: this.localCidr(),
      nodeIP: this.nodeIP(),
      nodePortIPs: ips,
    };
  }

  /** upstream: serviceHealthServer.SyncServices(HealthCheckNodePorts()) + SyncEndpoints(LocalReadyEndpoints()). */
  private async syncServiceHealth(): Promise<void> {
    const ports = new Map<string, number>();
    const local = new Map<string, number>();
    for (const [name, svcPorts] of this.svcPortMap) {
      for (const p of svcPorts) {
        if (p.healthCheckNodePort) ports.set(name, p.healthCheckNodePort);
        const n = (this.endpointsMap.get(p.key) ?? []).filter((e) => e.isLocal && e.ready).length;
        if (n > 0) local.set(name, (local.get(name) ?? 0) + n);
      }
    }
    this.serviceHealth?.syncEndpoints(local);
    await this.serviceHealth?.syncServices(ports);
  }

  private finish(o: SyncOutcome): void {
    const seconds = o.durationMs / 1000;
    this.metrics.syncProxyRulesLatency.observe(seconds);
    (o.full ? this.metrics.syncFullProxyRulesLatency : this.metrics.syncPartialProxyRulesLatency).observe(seconds);
    this.lastOutcome = o;
    for (const fn of this.syncListeners) fn(o);
  }

  /** The canary monitor: every syncPeriod, check the canaries; if one is gone, resync everything. */
  private scheduleMonitor(): void {
    if (this.closed) return;
    this.monitorTimer = setTimeout(() => {
      this.monitorRunning = this.checkCanary().then(() => undefined).finally(() => {
        this.monitorRunning = undefined;
        this.scheduleMonitor();
      });
    }, this.settings.syncPeriodMs);
  }

  /**
   * Checks the canaries now; true when intact. A missing one forces a full sync. In nftables mode the canary
   * is our table itself (upstream needs none as nobody else should touch it; deckhand still repairs a table
   * deleted by hand within a syncPeriod).
   */
  async checkCanary(): Promise<boolean> {
    if (this.closed || !this.initialized || this.lastOutcome === undefined) return true;
    try {
      if (this.nft) {
        if (await this.nft.runner.tableExists(this.stop.signal)) return true;
        if (this.closed) return true;
        this.log.info("the nftables kube-proxy table is gone: resyncing everything");
        this.nft.reset();
        this.forceFullSync();
        return false;
      }
      if (await this.iptables.canaryIntact(CANARY_JUMPS, this.stop.signal)) return true;
    } catch (err) {
      if (!this.closed) this.log.warn({ err: errorMessage(err) }, "could not check the iptables canary");
      return true;
    }
    if (this.closed) return true;
    this.log.info("iptables canary gone (the tables were flushed): resyncing everything");
    this.forceFullSync();
    return false;
  }

  /** upstream setupConntrack: nf_conntrack_max and the conntrack timeouts, each only when it differs. */
  private async setupConntrack(): Promise<void> {
    const ct = this.config.conntrack;
    const wanted: [string, number][] = [];
    if (ct.maxPerCore > 0) wanted.push(["net.netfilter.nf_conntrack_max", Math.max(ct.min, ct.maxPerCore * cpus().length)]);
    if (ct.tcpEstablishedTimeoutMs > 0) wanted.push(["net.netfilter.nf_conntrack_tcp_timeout_established", Math.round(ct.tcpEstablishedTimeoutMs / 1000)]);
    if (ct.tcpCloseWaitTimeoutMs > 0) wanted.push(["net.netfilter.nf_conntrack_tcp_timeout_close_wait", Math.round(ct.tcpCloseWaitTimeoutMs / 1000)]);
    if (ct.tcpBeLiberal) wanted.push([TCP_BE_LIBERAL, 1]);
    if (ct.udpTimeoutMs > 0) wanted.push(["net.netfilter.nf_conntrack_udp_timeout", Math.round(ct.udpTimeoutMs / 1000)]);
    if (ct.udpStreamTimeoutMs > 0) wanted.push(["net.netfilter.nf_conntrack_udp_timeout_stream", Math.round(ct.udpStreamTimeoutMs / 1000)]);
    for (const [name, value] of wanted) {
      const current = await readSysctl(this.exec, name);
      if (current === String(value)) continue;
      // nf_conntrack_max only grows (upstream sets it when it is too small); it is read-only outside the host's namespace.
      if (name.endsWith("nf_conntrack_max") && current !== undefined && Number(current) >= value) continue;
      try {
        await writeSysctl(this.exec, name, value);
        this.log.info({ sysctl: name, value }, "set conntrack sysctl");
      } catch (err) {
        this.log.warn({ sysctl: name, value, err: errorMessage(err) }, "could not set conntrack sysctl");
      }
    }
    if (ct.tcpBeLiberal) this.conntrackTCPLiberal = true;
  }
}

function nodePortAddressesIncludeLoopback(sel: readonly string[]): boolean {
  if (sel.length === 0) return true;
  return sel.some((c) => {
    const p = parseCidr(c);
    return p !== undefined && cidrContains(p, "127.0.0.1");
  });
}
