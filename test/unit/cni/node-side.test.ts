import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../../src-shared/log.ts";
import { eventually } from "../../harness/wait.ts";
import { buildConflist, CniConfigWriter, CONFLIST_FILE } from "../../../cni/conflist.ts";
import { desiredRoutes, diffRoutes, PodRouteController, type PodRoute, type RouteTable } from "../../../cni/routes.ts";
import type { NodeLike, WatchNodes } from "../../../cni/nodes.ts";
import { decodeJson, parseBridgeConfig } from "../../../cni/config.ts";
import { FakeClock, flush } from "../../harness/fake-clock.ts";

const node = (name: string, podCIDR?: string, ip?: string): NodeLike => ({
  metadata: { name },
  spec: podCIDR ? { podCIDR } : {},
  status: { addresses: ip ? [{ type: "InternalIP", address: ip }, { type: "Hostname", address: name }] : [] },
});

/** A watch whose Node list the test changes. */
/** `delivered()` counts the lists a subscriber has been handed (and has returned from). */
function fakeWatch(initial: NodeLike[]): { watch: WatchNodes; set: (nodes: NodeLike[]) => void; delivered: () => number } {
  let nodes = initial;
  let delivered = 0;
  const subs = new Set<(n: readonly NodeLike[]) => void>();
  return {
    set: (n) => {
      nodes = n;
      for (const s of subs) s(nodes);
    },
    delivered: () => delivered,
    watch: (signal, onNodes) =>
      new Promise((resolve) => {
        onNodes(nodes);
        delivered++;
        subs.add(onNodes);
        signal.addEventListener("abort", () => {
          subs.delete(onNodes);
          resolve();
        });
      }),
  };
}

describe("pod routes", () => {
  it("wants each other node's pod CIDR via its InternalIP, skipping itself and incomplete nodes", () => {
    const nodes = [node("a", "10.244.1.0/24", "192.0.2.1"), node("b", "10.244.2.0/24", "192.0.2.2"), node("c", "10.244.3.0/24"), node("d", undefined, "192.0.2.4"), node("e", "10.244.5.7/24", "192.0.2.5")];
    expect(desiredRoutes(nodes, "a")).toEqual([
      { dst: "10.244.2.0/24", via: "192.0.2.2", node: "b" },
      { dst: "10.244.5.0/24", via: "192.0.2.5", node: "e" },
    ]);
    // Dual stack: each CIDR via the address of its family; a CIDR overlapping our own is refused.
    const dual: NodeLike = { metadata: { name: "f" }, spec: { podCIDRs: ["10.244.6.0/24", "fd00:6::/64"] }, status: { addresses: [{ type: "InternalIP", address: "192.0.2.6" }, { type: "InternalIP", address: "2001:db8::6" }] } };
    expect(desiredRoutes([node("a", "10.244.1.0/24"), dual, node("g", "10.244.1.128/25", "192.0.2.7")], "a")).toEqual([
      { dst: "10.244.6.0/24", via: "192.0.2.6", node: "f" },
      { dst: "fd00:6::/64", via: "2001:db8::6", node: "f" },
    ]);
  });

  it("diffs desired against present routes", () => {
    const present: PodRoute[] = [{ dst: "10.244.2.0/24", via: "192.0.2.2" }, { dst: "10.244.3.0/24", via: "192.0.2.3" }, { dst: "10.244.4.0/24", via: "192.0.2.9" }];
    const desired: PodRoute[] = [{ dst: "10.244.2.0/24", via: "192.0.2.2" }, { dst: "10.244.4.0/24", via: "192.0.2.4" }, { dst: "10.244.5.0/24", via: "192.0.2.5" }];
    expect(diffRoutes(desired, present)).toEqual({
      add: [{ dst: "10.244.4.0/24", via: "192.0.2.4" }, { dst: "10.244.5.0/24", via: "192.0.2.5" }],
      remove: [{ dst: "10.244.3.0/24", via: "192.0.2.3" }],
    });
    expect(diffRoutes(desired, desired)).toEqual({ add: [], remove: [] });
  });

  it("the controller follows nodes coming and going, and repairs drift at resync", async () => {
    const routes = new Map<string, string>();
    const table: RouteTable = {
      list: () => Promise.resolve([...routes].map(([dst, via]) => ({ dst, via }))),
      replace: (r) => Promise.resolve(void routes.set(r.dst, r.via)),
      remove: (r) => Promise.resolve(void routes.delete(r.dst)),
    };
    const w = fakeWatch([node("a", "10.244.1.0/24", "192.0.2.1"), node("b", "10.244.2.0/24", "192.0.2.2")]);
    const c = new PodRouteController({ nodeName: "a", watchNodes: w.watch, table, log: silentLogger(), resyncMs: 50 });
    const ac = new AbortController();
    let synced = c.nextSync();
    await c.start(ac.signal);
    await synced;
    expect([...routes]).toEqual([["10.244.2.0/24", "192.0.2.2"]]);
    synced = c.nextSync();
    w.set([node("a", "10.244.1.0/24", "192.0.2.1"), node("c", "10.244.3.0/24", "192.0.2.3")]);
    await synced;
    expect([...routes]).toEqual([["10.244.3.0/24", "192.0.2.3"]]);
    routes.clear(); // someone removed it
    await c.nextSync();
    expect([...routes]).toEqual([["10.244.3.0/24", "192.0.2.3"]]);
    ac.abort();
    await c.close();
  });
});

describe("pod route controller timing (fake clock)", () => {
  it("retries a failed reconciliation after 1 s, resyncs on its period, and leaves no timer on close", async () => {
    const clock = new FakeClock();
    let failures = 1;
    const at: number[] = [];
    const table: RouteTable = {
      list: () => {
        at.push(clock.now() - Date.parse("2026-01-01T00:00:00Z"));
        return failures-- > 0 ? Promise.reject(new Error("netlink busy")) : Promise.resolve([]);
      },
      replace: () => Promise.resolve(),
      remove: () => Promise.resolve(),
    };
    const w = fakeWatch([node("a", "10.244.1.0/24", "192.0.2.1")]);
    const c = new PodRouteController({ nodeName: "a", watchNodes: w.watch, table, log: silentLogger(), resyncMs: 30_000, clock });
    await c.start(new AbortController().signal);
    await flush();
    expect(at).toEqual([0]);
    await clock.advance(999);
    expect(at).toEqual([0]);
    await clock.advance(1);
    expect(at).toEqual([0, 1_000]);
    await clock.advance(30_000);
    expect(at).toEqual([0, 1_000, 31_000]);
    await c.close();
    expect(clock.waiting).toBe(0);
  });
});

describe("CNI configuration from the Node's pod CIDR", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("builds a conflist deckhand-bridge accepts, one range set per CIDR", () => {
    const list = buildConflist(["10.244.1.0/24", "fd00:1::/64"], { mtu: 1450 });
    expect(list["name"]).toBe("deckhand");
    const plugin = (list["plugins"] as Record<string, unknown>[])[0] ?? {};
    const config = parseBridgeConfig(decodeJson(JSON.stringify({ cniVersion: list["cniVersion"], name: list["name"], ...plugin })));
    expect(config.ipam?.ranges.map((s) => s.length)).toEqual([1, 1]);
    expect(config.isDefaultGateway).toBe(true);
    expect(config.hairpinMode).toBe(true);
    expect(config.mtu).toBe(1450);
    // hostPorts: the reference portmap plugin chained after the bridge, fed CRI's port mappings.
    expect((list["plugins"] as Record<string, unknown>[])[1]).toEqual({ type: "portmap", capabilities: { portMappings: true }, snat: true });
    expect(() => buildConflist(["nonsense"])).toThrow(/not a CIDR/);
  });

  it("writes nothing until the control plane assigns a pod CIDR, then writes it atomically", async () => {
    dir = await mkdtemp(join(tmpdir(), "dh-conflist-"));
    const w = fakeWatch([node("me"), node("other", "10.244.9.0/24", "192.0.2.9")]);
    const writer = new CniConfigWriter({ nodeName: "me", confDir: dir, watchNodes: w.watch, log: silentLogger() });
    const changes: string[] = [];
    writer.onStatus((s) => changes.push(`${String(s.ready)} ${s.reason}`));
    const ac = new AbortController();
    await writer.start(ac.signal);
    // Once the writer has been handed the Node without a pod CIDR (the status history below proves nothing
    // was written in between).
    await eventually(() => w.delivered() > 0, { timeoutMs: 2000, intervalMs: 5 });
    expect(writer.status()).toMatchObject({ ready: false, reason: "NoPodCIDR", message: expect.stringContaining("spec.podCIDR") as unknown });
    await expect(readFile(join(dir, CONFLIST_FILE))).rejects.toThrow();
    w.set([node("me", "10.244.3.0/24", "192.0.2.3")]);
    await eventually(() => writer.status().ready, { timeoutMs: 2000, intervalMs: 5, message: "the conflist to be written" });
    const written = JSON.parse(await readFile(join(dir, CONFLIST_FILE), "utf8")) as { plugins: { ipam: { ranges: unknown } }[] };
    expect(written.plugins[0]?.ipam.ranges).toEqual([[{ subnet: "10.244.3.0/24" }]]);
    expect(changes).toEqual(["true CNIConfigWritten"]);
    ac.abort();
    await writer.close();
  });
});
