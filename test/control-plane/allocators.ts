/**
 * IP and port arithmetic for ClusterIP, NodePort and node podCIDR allocation. Pure (IPv4 and IPv6).
 */
import { isIP } from "node:net";

export interface Cidr {
  family: 4 | 6;
  base: bigint;
  bits: number;
}

export function parseCidr(s: string): Cidr {
  const [ip, b] = s.split("/");
  const fam = isIP(ip ?? "");
  if (ip === undefined || b === undefined || fam === 0) throw new Error(`invalid CIDR ${s}`);
  const bits = Number(b);
  const width = fam === 4 ? 32 : 128;
  if (!Number.isInteger(bits) || bits < 0 || bits > width) throw new Error(`invalid CIDR ${s}`);
  const full = ipToBig(ip);
  const mask = ((1n << BigInt(width)) - 1n) ^ ((1n << BigInt(width - bits)) - 1n);
  return { family: fam === 4 ? 4 : 6, base: full & mask, bits };
}

export function ipToBig(ip: string): bigint {
  if (isIP(ip) === 4) return ip.split(".").reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
  let s = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s)?.[1];
  if (v4 !== undefined) {
    const v = ipToBig(v4);
    s = `${s.slice(0, -v4.length)}${((v >> 16n) & 0xffffn).toString(16)}:${(v & 0xffffn).toString(16)}`;
  }
  const [h, t] = s.split("::");
  const head = h === undefined || h === "" ? [] : h.split(":");
  let words = head;
  if (t !== undefined) {
    const tail = t === "" ? [] : t.split(":");
    words = [...head, ...Array<string>(8 - head.length - tail.length).fill("0"), ...tail];
  }
  return words.reduce((acc, w) => (acc << 16n) | BigInt(parseInt(w, 16)), 0n);
}

export function bigToIp(v: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join(".");
  const words: string[] = [];
  for (let i = 7; i >= 0; i--) words.push(((v >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Compress the longest run of zeros.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return words.join(":");
  return `${words.slice(0, best).join(":")}::${words.slice(best + bestLen).join(":")}`;
}

export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt((c.family === 4 ? 32 : 128) - c.bits);
}

export function cidrContains(c: Cidr, ip: string): boolean {
  const fam = isIP(ip);
  if (fam !== c.family) return false;
  const v = ipToBig(ip);
  return v >= c.base && v < c.base + cidrSize(c);
}

/** The nth address of a CIDR. */
export function nthIP(c: Cidr, n: bigint): string {
  return bigToIp(c.base + n, c.family);
}

/** The first usable service IP: the range's first address + 1 (kube-apiserver gives it to `kubernetes`). */
export function firstServiceIP(c: Cidr): string {
  return nthIP(c, 1n);
}

/**
 * A free service IP: the range minus network and broadcast (IPv4), avoiding `used`. Starts at a random
 * offset in the upper part of the range like the bitmap allocator's dynamic block.
 */
export function allocateIP(c: Cidr, used: ReadonlySet<string>, random: () => number = Math.random): string | undefined {
  const size = cidrSize(c);
  const first = 1n;
  const last = c.family === 4 ? size - 2n : size - 1n;
  if (last < first) return undefined;
  const span = last - first + 1n;
  const capped = span > 1_000_000n ? 1_000_000n : span;
  const start = BigInt(Math.floor(random() * Number(capped)));
  for (let i = 0n; i < capped; i++) {
    const ip = nthIP(c, first + ((start + i) % capped));
    if (!used.has(ip)) return ip;
  }
  return undefined;
}

export function allocatePort(range: readonly [number, number], used: ReadonlySet<number>, random: () => number = Math.random): number | undefined {
  const [lo, hi] = range;
  const n = hi - lo + 1;
  const start = Math.floor(random() * n);
  for (let i = 0; i < n; i++) {
    const p = lo + ((start + i) % n);
    if (!used.has(p)) return p;
  }
  return undefined;
}

/** The `index`th subnet of size `/maskSize` inside `cluster`, as node IPAM's range allocator hands them out. */
export function subnet(cluster: Cidr, maskSize: number, index: number): string | undefined {
  const width = cluster.family === 4 ? 32 : 128;
  if (maskSize < cluster.bits || maskSize > width) return undefined;
  const count = 1n << BigInt(maskSize - cluster.bits);
  if (BigInt(index) >= count) return undefined;
  const base = cluster.base + (BigInt(index) << BigInt(width - maskSize));
  return `${bigToIp(base, cluster.family)}/${maskSize}`;
}

export function subnetCount(cluster: Cidr, maskSize: number): number {
  const n = 1n << BigInt(maskSize - cluster.bits);
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}
