/**
 * IPv4/IPv6 address arithmetic on bigints: parsing, formatting, CIDR prefixes. Pure, no I/O.
 * Formatting follows Go's net.IP.String() (RFC 5952 for IPv6), because host-local names its reservation files
 * with it and our files must carry the same names.
 */

export type Family = 4 | 6;

export interface IpAddr {
  family: Family;
  value: bigint;
}

export interface IpNet {
  /** The address as written (may have host bits set, as in "10.0.0.5/24" of an interface address). */
  ip: IpAddr;
  prefix: number;
}

export function bits(family: Family): number {
  return family === 4 ? 32 : 128;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function parseIp(text: string): IpAddr | undefined {
  const m = V4.exec(text);
  if (m) {
    let value = 0n;
    for (let i = 1; i <= 4; i++) {
      const part = m[i] ?? "";
      if (part.length > 1 && part.startsWith("0")) return undefined;
      const n = Number(part);
      if (n > 255) return undefined;
      value = (value << 8n) | BigInt(n);
    }
    return { family: 4, value };
  }
  if (!text.includes(":")) return undefined;
  // IPv4-mapped or embedded dotted tail.
  let head = text;
  let tail: bigint[] = [];
  const lastColon = text.lastIndexOf(":");
  const dotted = text.slice(lastColon + 1);
  if (dotted.includes(".")) {
    const v4 = parseIp(dotted);
    if (!v4 || v4.family !== 4) return undefined;
    head = text.slice(0, lastColon + 1) + "0:0";
    tail = [v4.value >> 16n, v4.value & 0xffffn];
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const parseGroups = (s: string): bigint[] | undefined => {
    if (s === "") return [];
    const groups: bigint[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      groups.push(BigInt(`0x${g}`));
    }
    return groups;
  };
  const left = parseGroups(halves[0] ?? "");
  const right = halves.length === 2 ? parseGroups(halves[1] ?? "") : [];
  if (!left || !right) return undefined;
  let groups: bigint[];
  if (halves.length === 2) {
    const missing = 8 - left.length - right.length;
    if (missing < 1) return undefined;
    groups = [...left, ...Array<bigint>(missing).fill(0n), ...right];
  } else {
    groups = left;
  }
  if (groups.length !== 8) return undefined;
  if (tail.length === 2) groups.splice(6, 2, ...tail);
  let value = 0n;
  for (const g of groups) value = (value << 16n) | g;
  return { family: 6, value };
}

export function formatIp(ip: IpAddr): string {
  if (ip.family === 4) {
    const v = ip.value;
    return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join(".");
  }
  // IPv4-mapped addresses print dotted, as Go does.
  if (ip.value >> 32n === 0xffffn) return formatIp({ family: 4, value: ip.value & 0xffffffffn });
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  // Longest run of two or more zero groups becomes "::" (first one on ties).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

export function parseCidr(text: string): IpNet | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > bits(ip.family)) return undefined;
  return { ip, prefix };
}

export function formatCidr(net: IpNet): string {
  return `${formatIp(net.ip)}/${net.prefix}`;
}

export function mask(family: Family, prefix: number): bigint {
  const total = BigInt(bits(family));
  return ((1n << total) - 1n) ^ ((1n << (total - BigInt(prefix))) - 1n);
}

/** The network address of a prefix (host bits cleared). */
export function networkOf(net: IpNet): IpAddr {
  return { family: net.ip.family, value: net.ip.value & mask(net.ip.family, net.prefix) };
}

/** The last address of a prefix (the IPv4 broadcast address). */
export function lastOf(net: IpNet): IpAddr {
  const m = mask(net.ip.family, net.prefix);
  const all = (1n << BigInt(bits(net.ip.family))) - 1n;
  return { family: net.ip.family, value: (net.ip.value & m) | (all ^ m) };
}

export function contains(net: IpNet, ip: IpAddr): boolean {
  if (ip.family !== net.ip.family) return false;
  const m = mask(net.ip.family, net.prefix);
  return (ip.value & m) === (net.ip.value & m);
}

export function overlaps(a: IpNet, b: IpNet): boolean {
  return contains(a, networkOf(b)) || contains(b, networkOf(a));
}

export function ipEqual(a: IpAddr | undefined, b: IpAddr | undefined): boolean {
  return a !== undefined && b !== undefined && a.family === b.family && a.value === b.value;
}

export function addIp(ip: IpAddr, delta: bigint): IpAddr {
  return { family: ip.family, value: ip.value + delta };
}

export function ipBytes(ip: IpAddr): Buffer {
  const n = bits(ip.family) / 8;
  const out = Buffer.alloc(n);
  let v = ip.value;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export function ipFromBytes(buf: Uint8Array): IpAddr | undefined {
  if (buf.length !== 4 && buf.length !== 16) return undefined;
  let value = 0n;
  for (const b of buf) value = (value << 8n) | BigInt(b);
  return { family: buf.length === 4 ? 4 : 6, value };
}
