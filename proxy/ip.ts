/** Small IPv4/IPv6 address and CIDR helpers (the proxier itself is IPv4 single-stack). */
import { isIP } from "node:net";

export interface Cidr {
  family: 4 | 6;
  /** The CIDR as written after normalisation (`10.0.0.0/8`). */
  text: string;
  /** IPv4 only: network address and mask as unsigned 32-bit numbers. */
  network: number;
  mask: number;
  prefix: number;
}

/** "10.1.2.3" → 0x0a010203; undefined for anything that is not a dotted-quad IPv4 address. */
export function ipv4ToNumber(ip: string): number | undefined {
  const parts = ip.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function numberToIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/**
 * Parses "a.b.c.d/n" (surrounding whitespace tolerated, as upstream tolerates it in loadBalancerSourceRanges)
 * or an IPv6 CIDR. The host bits are masked off, as Go's net.ParseCIDR does.
 */
export function parseCidr(text: string): Cidr | undefined {
  const t = text.trim();
  const slash = t.indexOf("/");
  if (slash < 0) return undefined;
  const addr = t.slice(0, slash);
  const prefixText = t.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  const family = isIP(addr);
  if (family === 4) {
    if (prefix > 32) return undefined;
    const n = ipv4ToNumber(addr);
    if (n === undefined) return undefined;
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    const network = (n & mask) >>> 0;
    return { family: 4, text: `${numberToIpv4(network)}/${prefix}`, network, mask, prefix };
  }
  if (family === 6) {
    if (prefix > 128) return undefined;
    return { family: 6, text: `${addr.toLowerCase()}/${prefix}`, network: 0, mask: 0, prefix };
  }
  return undefined;
}

/** Whether an IPv4 address lies inside an IPv4 CIDR (false for anything IPv6). */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  if (cidr.family !== 4) return false;
  const n = ipv4ToNumber(ip);
  return n !== undefined && ((n & cidr.mask) >>> 0) === cidr.network;
}

/** IPv4 in canonical dotted-quad form (leading zeros dropped), or undefined. */
export function canonicalIPv4(ip: string): string | undefined {
  const n = ipv4ToNumber(ip.trim());
  return n === undefined ? undefined : numberToIpv4(n);
}

export function isIPv4(ip: string): boolean {
  return ipv4ToNumber(ip) !== undefined;
}
