import { mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseIpam, type Attachment, type IpamConfig } from "../../../cni/config.ts";
import { allocate, candidates, collectGarbage, exhaustedRangeSets, releaseOwner, type IpamStore, type Reservation } from "../../../cni/ipam.ts";
import { DiskStore, closeLocks, withStore } from "../../../cni/ipam-disk.ts";
import { FileLock } from "../../../cni/flock.ts";
import { eventually } from "../../harness/wait.ts";
import { formatIp, parseIp, type IpAddr } from "../../../cni/ip.ts";
import { CniError } from "../../../cni/spec.ts";

/** The store as a map, for the allocation logic alone. */
class MemoryStore implements IpamStore {
  readonly files = new Map<string, string>();
  readonly last = new Map<number, string>();
  reserve(owner: Attachment, ip: IpAddr, idx: number): Promise<boolean> {
    const k = formatIp(ip);
    if (this.files.has(k)) return Promise.resolve(false);
    this.files.set(k, `${owner.containerId}\r\n${owner.ifname}`);
    this.last.set(idx, k);
    return Promise.resolve(true);
  }
  lastReserved(idx: number): Promise<IpAddr | undefined> {
    const v = this.last.get(idx);
    return Promise.resolve(v === undefined ? undefined : parseIp(v));
  }
  release(ip: IpAddr): Promise<void> {
    this.files.delete(formatIp(ip));
    return Promise.resolve();
  }
  list(): Promise<Reservation[]> {
    return Promise.resolve(
      [...this.files].map(([k, v]) => {
        const [containerId, ifname] = v.split("\r\n");
        return { ip: parseIp(k) as IpAddr, ...(containerId ? { containerId } : {}), ...(ifname ? { ifname } : {}) };
      }),
    );
  }
}

const ipam = (ranges: unknown, extra: Record<string, unknown> = {}): IpamConfig => parseIpam({ type: "host-local", ranges, ...extra });
const owner = (n: number, ifname = "eth0"): Attachment => ({ containerId: `c${n}`, ifname });
const addrs = (allocs: { address: { ip: IpAddr; prefix: number } }[]): string[] => allocs.map((a) => `${formatIp(a.address.ip)}/${a.address.prefix}`);

describe("IPAM allocation (host-local semantics)", () => {
  it("starts at network+1, skips the gateway, and never hands out the broadcast address", async () => {
    const store = new MemoryStore();
    const cfg = ipam([[{ subnet: "10.1.2.0/29" }]]);
    const got: string[] = [];
    for (let i = 0; i < 5; i++) got.push(...addrs(await allocate(store, cfg, owner(i))));
    // .0 network, .1 gateway, .7 broadcast: .2-.6 are the five usable addresses.
    expect(got).toEqual(["10.1.2.2/29", "10.1.2.3/29", "10.1.2.4/29", "10.1.2.5/29", "10.1.2.6/29"]);
    const err = await allocate(store, cfg, owner(99)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).code).toBe(101);
    expect((err as CniError).message).toBe("no IP addresses available in range set: 10.1.2.1-10.1.2.6");
    expect(await exhaustedRangeSets(store, cfg)).toEqual([0]);
  });

  it("honours rangeStart, rangeEnd and an explicit gateway inside the range", async () => {
    const store = new MemoryStore();
    const cfg = ipam([[{ subnet: "10.9.0.0/24", rangeStart: "10.9.0.10", rangeEnd: "10.9.0.12", gateway: "10.9.0.11" }]]);
    const got = [...addrs(await allocate(store, cfg, owner(1))), ...addrs(await allocate(store, cfg, owner(2)))];
    expect(got).toEqual(["10.9.0.10/24", "10.9.0.12/24"]);
    await expect(allocate(store, cfg, owner(3))).rejects.toThrow(/no IP addresses available/);
  });

  it("goes round-robin from the last reserved address, and wraps", async () => {
    const store = new MemoryStore();
    const cfg = ipam([[{ subnet: "10.1.2.0/29" }]]);
    await allocate(store, cfg, owner(1)); // .2
    await allocate(store, cfg, owner(2)); // .3
    await releaseOwner(store, owner(1));
    // .2 is free again, but the next one is .4 (last reserved + 1).
    expect(addrs(await allocate(store, cfg, owner(3)))).toEqual(["10.1.2.4/29"]);
    await allocate(store, cfg, owner(4)); // .5
    await allocate(store, cfg, owner(5)); // .6
    expect(addrs(await allocate(store, cfg, owner(6)))).toEqual(["10.1.2.2/29"]); // wrapped
  });

  it("iterates across the ranges of a set and ends on the last reserved address", () => {
    const cfg = ipam([[{ subnet: "10.0.0.0/30" }, { subnet: "10.0.1.0/30" }]]);
    const set = cfg.ranges[0] ?? [];
    const list = (last?: string): string[] => [...candidates(set, last === undefined ? undefined : parseIp(last))].map((c) => formatIp(c.ip));
    expect(list()).toEqual(["10.0.0.2", "10.0.1.2"]);
    expect(list("10.0.0.2")).toEqual(["10.0.1.2", "10.0.0.2"]);
    // A last-reserved outside the set (the ranges changed) just loses round-robin once.
    expect(list("192.168.0.1")).toEqual(["10.0.0.2", "10.0.1.2"]);
  });

  it("allocates one address per range set (dual stack) and refuses duplicates for the same attachment", async () => {
    const store = new MemoryStore();
    const cfg = ipam([[{ subnet: "10.1.0.0/24" }], [{ subnet: "fd00:10::/120" }]]);
    const got = await allocate(store, cfg, owner(1));
    expect(addrs(got)).toEqual(["10.1.0.2/24", "fd00:10::2/120"]);
    expect(got.map((a) => formatIp(a.gateway))).toEqual(["10.1.0.1", "fd00:10::1"]);
    await expect(allocate(store, cfg, owner(1))).rejects.toThrow("10.1.0.2 has been allocated to c1/eth0, duplicate allocation is not allowed");
    // Another interface of the same container is another attachment.
    expect(addrs(await allocate(store, cfg, owner(1, "net1")))).toEqual(["10.1.0.3/24", "fd00:10::3/120"]);
  });

  it("gives requested addresses, refusing the gateway, taken ones and ones outside every range", async () => {
    const store = new MemoryStore();
    const cfg = ipam([[{ subnet: "10.1.0.0/24" }]]);
    expect(addrs(await allocate(store, cfg, owner(1), ["10.1.0.77"]))).toEqual(["10.1.0.77/24"]);
    await expect(allocate(store, cfg, owner(2), ["10.1.0.77"])).rejects.toThrow("requested IP address 10.1.0.77 is not available");
    await expect(allocate(store, cfg, owner(2), ["10.1.0.1"])).rejects.toThrow("requested IP 10.1.0.1 is the subnet's gateway");
    await expect(allocate(store, cfg, owner(2), ["10.2.0.5"])).rejects.toThrow(/not in any range set/);
    expect(store.files.size).toBe(1);
  });

  it("releases what it reserved when a later range set fails", async () => {
    const store = new MemoryStore();
    const cfg = ipam([[{ subnet: "10.1.0.0/24" }], [{ subnet: "10.2.0.0/30" }]]);
    await allocate(store, cfg, owner(1)); // takes the only address of the second set
    await expect(allocate(store, cfg, owner(2))).rejects.toThrow(/no IP addresses available in range set: 10.2.0.1-10.2.0.2/);
    expect([...store.files.keys()].sort()).toEqual(["10.1.0.2", "10.2.0.2"]);
  });

  it("GC releases reservations of attachments the runtime no longer knows, and unreadable ones", async () => {
    const store = new MemoryStore();
    const cfg = ipam([[{ subnet: "10.1.0.0/24" }]]);
    for (let i = 1; i <= 4; i++) await allocate(store, cfg, owner(i));
    store.files.set("10.1.0.200", ""); // a writer killed midway
    const released = await collectGarbage(store, [owner(2), owner(4)]);
    expect(released.map((r) => formatIp(r.ip)).sort()).toEqual(["10.1.0.2", "10.1.0.200", "10.1.0.4"]);
    expect([...store.files.keys()].sort()).toEqual(["10.1.0.3", "10.1.0.5"]);
  });
});

describe("the host-local disk layout", () => {
  let dir: string | undefined;
  afterEach(async () => {
    closeLocks();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("writes one file per address holding \"<id>\\r\\n<ifname>\", last_reserved_ip.<set> and a lock file", async () => {
    dir = await mkdtemp(join(tmpdir(), "dh-ipam-"));
    const cfg = ipam([[{ subnet: "10.5.0.0/24" }]], { dataDir: dir });
    const got = await withStore(dir, "net1", (s) => allocate(s, cfg, owner(7)));
    expect(addrs(got)).toEqual(["10.5.0.2/24"]);
    const netDir = join(dir, "net1");
    expect((await readdir(netDir)).sort()).toEqual(["10.5.0.2", "last_reserved_ip.0", "lock"]);
    expect(await readFile(join(netDir, "10.5.0.2"), "utf8")).toBe("c7\r\neth0");
    expect(await readFile(join(netDir, "last_reserved_ip.0"), "utf8")).toBe("10.5.0.2");
    // Files written by the reference host-local (and its older id-only format) are understood.
    await writeFile(join(netDir, "10.5.0.9"), "legacy-id");
    await writeFile(join(netDir, "10.5.0.10"), "ref-id\r\neth0");
    await writeFile(join(netDir, ".deckhand-10.5.0.11.123.abcd"), "x"); // a writer that died before linking
    const list = await withStore(dir, "net1", (s) => s.list());
    expect(list.map((r) => [formatIp(r.ip), r.containerId, r.ifname]).sort()).toEqual([
      ["10.5.0.10", "ref-id", "eth0"],
      ["10.5.0.2", "c7", "eth0"],
      ["10.5.0.9", "legacy-id", undefined],
    ]);
    expect(await readdir(netDir)).not.toContain(".deckhand-10.5.0.11.123.abcd");
    expect(await withStore(dir, "net1", (s) => releaseOwner(s, { containerId: "legacy-id", ifname: "eth0" }))).toHaveLength(1);
    expect(await withStore(dir, "net1", (s) => releaseOwner(s, owner(7)))).toHaveLength(1);
    expect((await readdir(netDir)).sort()).toEqual(["10.5.0.10", "last_reserved_ip.0", "lock"]);
  });

  it("never hands out the same address to concurrent allocations in separate lock holders", async () => {
    dir = await mkdtemp(join(tmpdir(), "dh-ipam-"));
    const cfg = ipam([[{ subnet: "10.6.0.0/26" }]], { dataDir: dir });
    // Two lock helpers on the same lock file, as two plugin processes would have: flock is what keeps them apart.
    const store = new DiskStore(dir, "n");
    store.ensureDir();
    const locks = [new FileLock(store.lockPath()), new FileLock(store.lockPath())];
    try {
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (locks[i % 2] as FileLock).with(() => allocate(store, cfg, owner(i)))));
      const all = results.flatMap(addrs);
      expect(new Set(all).size).toBe(40);
    } finally {
      for (const l of locks) l.close();
    }
  });

  it("makes a second holder of the lock wait until the first lets go", async () => {
    dir = await mkdtemp(join(tmpdir(), "dh-ipam-"));
    const path = join(dir, "lock");
    const a = new FileLock(path);
    const b = new FileLock(path);
    const order: string[] = [];
    try {
      let releaseA!: () => void;
      const aHeld = new Promise<void>((r) => (releaseA = r));
      const first = a.with(async () => {
        order.push("a in");
        await aHeld;
        order.push("a out");
      });
      await eventually(() => order.includes("a in"), { timeoutMs: 5000, message: "a to hold the lock" });
      const second = b.with(() => {
        order.push("b in");
        return Promise.resolve();
      });
      // The event that proves b is held back: the kernel lists its flock as blocked on the file (/proc/locks
      // marks waiters "->"), not a pause after which b "would have" got in.
      const { ino } = await stat(path);
      await eventually(async () => (await readFile("/proc/locks", "utf8")).split("\n").some((l) => / -> FLOCK /.test(l) && l.includes(`:${ino} `)), { timeoutMs: 5000, message: "b to wait for the lock" });
      expect(order).toEqual(["a in"]);
      releaseA();
      await Promise.all([first, second]);
      expect(order).toEqual(["a in", "a out", "b in"]);
      // A helper killed while holding the lock releases it (the kernel drops flock locks with the file).
      await b.with(async () => {
        a.close();
        order.push("b again");
        await Promise.resolve();
      });
    } finally {
      a.close();
      b.close();
    }
  });
});
