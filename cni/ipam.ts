/**
 * host-local's allocation algorithm over a small storage interface (pure logic; cni/ipam-disk.ts is the on-disk
 * store). One address per range set; round-robin from the last reserved address + 1 so that a crash-looping pod
 * does not get the same address back until the range has been run through; the gateway is never handed out and,
 * with the default range end, neither is the IPv4 broadcast address. Callers hold the store's lock.
 */
import { CniCode, CniError } from "./spec.ts";
import { formatIp, ipEqual, parseIp, type IpAddr, type IpNet } from "./ip.ts";
import { describeRangeSet, rangeContains, type Attachment, type IpamConfig, type Range, type RangeSet } from "./config.ts";

export interface Reservation {
  ip: IpAddr;
  /** Undefined when the file could not be read or holds nothing (a writer killed midway). */
  containerId?: string;
  ifname?: string;
}

export interface IpamStore {
  /** Reserves `ip` for the attachment; false when it is already taken. Records it as the last reserved of the set. */
  reserve(owner: Attachment, ip: IpAddr, rangeSetIndex: number): Promise<boolean>;
  lastReserved(rangeSetIndex: number): Promise<IpAddr | undefined>;
  release(ip: IpAddr): Promise<void>;
  list(): Promise<Reservation[]>;
}

export interface Allocation {
  address: IpNet;
  gateway: IpAddr;
  rangeSetIndex: number;
}

/** Owner text as host-local writes it into a reservation file. */
export function ownerText(owner: Attachment): string {
  return `${owner.containerId.trim()}\r\n${owner.ifname}`;
}

/** Parses a reservation file's text ("<id>\r\n<ifname>", or just "<id>" as older host-local wrote). */
export function parseOwner(text: string): { containerId?: string; ifname?: string } {
  const trimmed = text.trim();
  if (!trimmed) return {};
  const [id, ifname] = trimmed.split(/\r?\n/);
  return { ...(id ? { containerId: id.trim() } : {}), ...(ifname ? { ifname: ifname.trim() } : {}) };
}

export function ownedBy(r: Reservation, owner: Attachment): boolean {
  if (r.containerId !== owner.containerId.trim()) return false;
  return r.ifname === undefined || r.ifname === owner.ifname;
}

export function rangeFor(set: RangeSet, ip: IpAddr): Range | undefined {
  return set.find((r) => rangeContains(r, ip));
}

/**
 * The candidate addresses of a range set in host-local's order: from `last + 1` (or the first range's start),
 * across the set's ranges, wrapping, ending with `last` itself; gateways skipped.
 */
export function* candidates(set: RangeSet, last: IpAddr | undefined): Generator<{ ip: IpAddr; range: Range }> {
  if (set.length === 0) return;
  let rangeIdx = 0;
  let cur: IpAddr | undefined;
  if (last) {
    const idx = set.findIndex((r) => rangeContains(r, last));
    if (idx >= 0) {
      rangeIdx = idx;
      cur = last;
    }
  }
  let start: IpAddr | undefined;
  for (;;) {
    let r = set[rangeIdx] as Range;
    if (cur === undefined) {
      cur = r.rangeStart;
    } else if (cur.value >= r.rangeEnd.value) {
      rangeIdx = (rangeIdx + 1) % set.length;
      r = set[rangeIdx] as Range;
      cur = r.rangeStart;
    } else {
      cur = { family: cur.family, value: cur.value + 1n };
    }
    if (start === undefined) start = cur;
    else if (ipEqual(cur, start)) return;
    if (ipEqual(cur, r.gateway)) continue;
    yield { ip: cur, range: r };
  }
}

/**
 * Allocates one address per range set for the attachment (requested addresses first matched to their set).
 * A second allocation for the same attachment in a set is refused, as host-local does. On failure the
 * addresses reserved by this call are released again.
 */
export async function allocate(store: IpamStore, ipam: IpamConfig, owner: Attachment, requested: readonly string[] = []): Promise<Allocation[]> {
  const wanted = new Map<number, IpAddr>();
  for (const text of requested) {
    const ip = parseIp(text.includes("/") ? text.slice(0, text.indexOf("/")) : text);
    if (!ip) throw new CniError(CniCode.InvalidConfig, `requested IP ${JSON.stringify(text)} is not an IP address`);
    const idx = ipam.ranges.findIndex((set) => rangeFor(set, ip) !== undefined);
    if (idx < 0) throw new CniError(CniCode.InvalidConfig, `requested IP ${text} is not in any range set (${ipam.ranges.map(describeRangeSet).join("; ")})`);
    if (wanted.has(idx)) throw new CniError(CniCode.InvalidConfig, `more than one requested IP for range set ${describeRangeSet(ipam.ranges[idx] ?? [])}`);
    wanted.set(idx, ip);
  }
  const existing = await store.list();
  const done: Allocation[] = [];
  try {
    for (const [idx, set] of ipam.ranges.entries()) {
      const mine = existing.find((r) => ownedBy(r, owner) && rangeFor(set, r.ip) !== undefined);
      if (mine) {
        throw new CniError(CniCode.InvalidConfig, `${formatIp(mine.ip)} has been allocated to ${owner.containerId}/${owner.ifname}, duplicate allocation is not allowed`);
      }
      const requestedIp = wanted.get(idx);
      if (requestedIp) {
        const r = rangeFor(set, requestedIp) as Range;
        if (ipEqual(requestedIp, r.gateway)) throw new CniError(CniCode.InvalidConfig, `requested IP ${formatIp(requestedIp)} is the subnet's gateway`);
        if (!(await store.reserve(owner, requestedIp, idx))) {
          throw new CniError(CniCode.InvalidConfig, `requested IP address ${formatIp(requestedIp)} is not available in range set ${describeRangeSet(set)}`);
        }
        done.push({ address: { ip: requestedIp, prefix: r.subnet.prefix }, gateway: r.gateway, rangeSetIndex: idx });
        continue;
      }
      const taken = new Set(existing.map((r) => `${r.ip.family}/${r.ip.value}`));
      let got: Allocation | undefined;
      for (const c of candidates(set, await store.lastReserved(idx))) {
        if (taken.has(`${c.ip.family}/${c.ip.value}`)) continue;
        if (await store.reserve(owner, c.ip, idx)) {
          got = { address: { ip: c.ip, prefix: c.range.subnet.prefix }, gateway: c.range.gateway, rangeSetIndex: idx };
          break;
        }
      }
      if (!got) throw new CniError(CniCode.RangeExhausted, `no IP addresses available in range set: ${describeRangeSet(set)}`);
      done.push(got);
    }
  } catch (err) {
    for (const a of done) await store.release(a.address.ip).catch(() => undefined);
    throw err;
  }
  return done;
}

/** Releases every address of the attachment; returns what it released. Missing reservations are fine. */
export async function releaseOwner(store: IpamStore, owner: Attachment): Promise<IpAddr[]> {
  const released: IpAddr[] = [];
  for (const r of await store.list()) {
    if (!ownedBy(r, owner)) continue;
    await store.release(r.ip);
    released.push(r.ip);
  }
  return released;
}

/**
 * GC: releases every reservation whose attachment is not in `valid`, and those with no readable owner (left
 * by a writer killed between creating and filling the file; callers hold the lock, so no writer is midway).
 */
export async function collectGarbage(store: IpamStore, valid: readonly Attachment[]): Promise<Reservation[]> {
  const keep = new Set(valid.map((a) => `${a.containerId.trim()}\n${a.ifname}`));
  const keepIds = new Set(valid.map((a) => a.containerId.trim()));
  const released: Reservation[] = [];
  for (const r of await store.list()) {
    const live = r.containerId !== undefined && (r.ifname === undefined ? keepIds.has(r.containerId) : keep.has(`${r.containerId}\n${r.ifname}`));
    if (live) continue;
    await store.release(r.ip);
    released.push(r);
  }
  return released;
}

/** Indexes of the range sets that have no free address left (for STATUS). */
export async function exhaustedRangeSets(store: IpamStore, ipam: IpamConfig): Promise<number[]> {
  const taken = new Set((await store.list()).map((r) => `${r.ip.family}/${r.ip.value}`));
  const out: number[] = [];
  ipam.ranges.forEach((set, idx) => {
    for (const c of candidates(set, undefined)) if (!taken.has(`${c.ip.family}/${c.ip.value}`)) return;
    out.push(idx);
  });
  return out;
}
