/**
 * The pod-route controller: routable pod IPs without an overlay (flannel host-gw, kubenet's model). For every
 * other Node it keeps `<its podCIDR> via <its InternalIP>` in this node's main routing table, so pods on
 * different nodes talk directly with their own addresses. Run by the kubelet.
 *
 * Our routes carry their own protocol number (DECKHAND_ROUTE_PROTO, `proto 209` in `ip route`), so the
 * controller only ever lists, changes and removes routes it made. Level-triggered: each Node list (and a
 * periodic resync, which also repairs routes someone removed) is compared with the routes present.
 */
import { run } from "../src-shared/exec.ts";
import type { Logger } from "../src-shared/log.ts";
import type { Clock } from "../src-shared/clock.ts";
import { PeriodicLoop } from "../src-shared/loop.ts";
import { contains, formatCidr, formatIp, networkOf, overlaps, parseCidr, parseIp } from "./ip.ts";
import { internalIpsOf, nodeName, podCidrsOf, watchForever, type NodeLike, type WatchNodes } from "./nodes.ts";
import { tools } from "./podside.ts";

/** Routing protocol number marking deckhand's routes (unassigned in iproute2's rt_protos). */
export const DECKHAND_ROUTE_PROTO = 209;

export interface PodRoute {
  /** A pod CIDR, canonical (network address). */
  dst: string;
  /** The owning node's InternalIP of the same family. */
  via: string;
}

export interface DesiredRoute extends PodRoute {
  node: string;
}

/**
 * The routes this node should have: each other node's pod CIDRs via its InternalIP of the same family.
 * Nodes without a pod CIDR or an address yet are skipped; so is a CIDR that overlaps this node's own.
 */
export function desiredRoutes(nodes: readonly NodeLike[], self: string): DesiredRoute[] {
  const me = nodes.find((n) => nodeName(n) === self);
  const mine = (me ? podCidrsOf(me) : []).map(parseCidr).filter((c) => c !== undefined);
  const out: DesiredRoute[] = [];
  const seen = new Set<string>();
  for (const node of nodes) {
    const name = nodeName(node);
    if (!name || name === self) continue;
    const ips = internalIpsOf(node).map(parseIp).filter((ip) => ip !== undefined);
    for (const text of podCidrsOf(node)) {
      const cidr = parseCidr(text);
      if (!cidr) continue;
      const dst = formatCidr({ ip: networkOf(cidr), prefix: cidr.prefix });
      if (mine.some((m) => overlaps(m, cidr)) || seen.has(dst)) continue;
      const via = ips.find((ip) => ip.family === cidr.ip.family && !contains(cidr, ip));
      if (!via) continue;
      seen.add(dst);
      out.push({ dst, via: formatIp(via), node: name });
    }
  }
  return out;
}

/** What to change so that `present` becomes `desired` (a route to the same dst via another node is replaced). */
export function diffRoutes(desired: readonly PodRoute[], present: readonly PodRoute[]): { add: PodRoute[]; remove: PodRoute[] } {
  const want = new Map(desired.map((r) => [r.dst, r.via]));
  const have = new Map(present.map((r) => [r.dst, r.via]));
  return {
    add: desired.filter((r) => have.get(r.dst) !== r.via),
    remove: present.filter((r) => !want.has(r.dst)),
  };
}

/** The routes of one routing table that carry our protocol number. */
export interface RouteTable {
  list(): Promise<PodRoute[]>;
  /** Adds the route, or changes an existing route to the same destination. */
  replace(route: PodRoute): Promise<void>;
  remove(route: PodRoute): Promise<void>;
}

interface IpJsonRoute {
  dst?: string;
  gateway?: string;
}

/**
 * The main table through `ip` (route changes are rare: a spawn each is fine). `netns`, when given, is a
 * network namespace file to work in through nsenter (tests run a controller per sandbox node this way).
 */
export class IpRouteTable implements RouteTable {
  private readonly netns: string | undefined;

  constructor(options: { netns?: string } = {}) {
    this.netns = options.netns;
  }

  private async ip(args: readonly string[]): Promise<string> {
    const { ip, nsenter } = tools();
    const res = this.netns ? await run(nsenter, [`--net=${this.netns}`, ip, ...args], { timeoutMs: 10_000 }) : await run(ip, args, { timeoutMs: 10_000 });
    return res.stdout;
  }

  async list(): Promise<PodRoute[]> {
    const out: PodRoute[] = [];
    for (const family of ["-4", "-6"]) {
      const text = await this.ip(["-json", family, "route", "show", "table", "main", "proto", String(DECKHAND_ROUTE_PROTO)]);
      for (const r of JSON.parse(text || "[]") as IpJsonRoute[]) {
        if (!r.dst || !r.gateway) continue;
        const cidr = parseCidr(r.dst.includes("/") ? r.dst : `${r.dst}/${r.dst.includes(":") ? 128 : 32}`);
        if (cidr) out.push({ dst: formatCidr(cidr), via: r.gateway });
      }
    }
    return out;
  }

  async replace(route: PodRoute): Promise<void> {
    await this.ip(["route", "replace", route.dst, "via", route.via, "proto", String(DECKHAND_ROUTE_PROTO)]);
  }

  async remove(route: PodRoute): Promise<void> {
    await this.ip(["route", "del", route.dst, "via", route.via, "proto", String(DECKHAND_ROUTE_PROTO)]);
  }
}

export interface PodRouteControllerOptions {
  nodeName: string;
  watchNodes: WatchNodes;
  table: RouteTable;
  log: Logger;
  /** Full reconciliation this often even without Node changes (repairs drift); default 30 s. */
  resyncMs?: number;
  clock?: Clock;
}

/** A failed reconciliation is tried again after this long. */
const RETRY_MS = 1_000;

export class PodRouteController {
  private readonly options: PodRouteControllerOptions;
  private readonly log: Logger;
  private nodes: readonly NodeLike[] | undefined;
  private readonly loop: PeriodicLoop;
  /** Resolves after each completed reconciliation (tests and the kubelet's readiness wait on it). */
  private synced: { count: number; waiters: (() => void)[] } = { count: 0, waiters: [] };

  constructor(options: PodRouteControllerOptions) {
    this.options = options;
    this.log = options.log.child({ component: "pod-routes" });
    // Level-triggered: every pass (a Node list, the resync, a retry) compares all Nodes with the table.
    this.loop = new PeriodicLoop({
      name: "reconciling pod routes",
      intervalMs: options.resyncMs ?? 30_000,
      run: async () => {
        if (this.nodes) await this.reconcile(this.nodes);
      },
      errorDelayMs: () => RETRY_MS,
      logger: this.log,
      ...(options.clock ? { clock: options.clock } : {}),
    });
  }

  start(signal: AbortSignal): Promise<void> {
    this.loop.start(signal);
    const inner = this.loop.signal;
    void watchForever(
      this.options.watchNodes,
      inner,
      (nodes) => {
        this.nodes = nodes;
        this.loop.wake();
      },
      (err, retryInMs) => this.log.warn({ err: String(err), retryInMs }, "watching Nodes failed"),
    );
    return Promise.resolve();
  }

  private async reconcile(nodes: readonly NodeLike[]): Promise<void> {
    const desired = desiredRoutes(nodes, this.options.nodeName);
    const present = await this.options.table.list();
    const { add, remove } = diffRoutes(desired, present);
    const problems: string[] = [];
    for (const r of remove) {
      await this.options.table.remove(r).then(
        () => this.log.info({ dst: r.dst, via: r.via }, "removed pod route"),
        (err: unknown) => problems.push(`remove ${r.dst}: ${String(err)}`),
      );
    }
    for (const r of add) {
      await this.options.table.replace(r).then(
        () => this.log.info({ dst: r.dst, via: r.via }, "pod route in place"),
        (err: unknown) => problems.push(`add ${r.dst} via ${r.via}: ${String(err)}`),
      );
    }
    if (problems.length > 0) throw new Error(problems.join("; "));
    this.synced.count++;
    for (const w of this.synced.waiters.splice(0)) w();
  }

  /** Resolves after the next completed reconciliation. */
  nextSync(): Promise<void> {
    return new Promise((resolve) => this.synced.waiters.push(resolve));
  }

  async close(): Promise<void> {
    await this.loop.close();
  }
}
