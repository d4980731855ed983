/**
 * The few rtnetlink requests deckhand-bridge makes in its own network namespace (the node's), encoded here on
 * the raw netlink socket of the `netlink` package: links (bridge, veth with its peer created straight inside the
 * pod's namespace through IFLA_NET_NS_FD), bridge-port hairpin, addresses. No process is spawned for any of it.
 * A netlink socket works in the namespace of the thread that opened it, so work inside a pod's namespace is
 * not done here (see dataplane.ts).
 */
import { createRequire } from "node:module";
import { constants as osConstants } from "node:os";
import type * as NetlinkModule from "netlink";
import type { NetlinkSocket } from "netlink";
import { ipBytes, ipFromBytes, type IpAddr, type IpNet } from "./ip.ts";

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const RTM_SETLINK = 19;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const RTM_GETADDR = 22;
const NLMSG_ERROR = 2;

const NLM_F_ECHO = 0x8;
const NLM_F_DUMP = 0x300;
const NLM_F_REPLACE = 0x100;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_MASTER = 10;
const IFLA_PROTINFO = 12;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFLA_BRPORT_MODE = 4;
const NLA_F_NESTED = 0x8000;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_BROADCAST = 4;

const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_BRIDGE = 7;

export const IFF_UP = 0x1;
export const IFF_PROMISC = 0x100;

export class NetlinkError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(op: string, errno: number) {
    const code = errnoName(errno);
    super(`${op}: ${code}`);
    this.name = "NetlinkError";
    this.errno = errno;
    this.code = code;
  }
}

export function isNetlinkError(err: unknown, code?: string): err is NetlinkError {
  return err instanceof NetlinkError && (code === undefined || err.code === code);
}

export interface Link {
  index: number;
  name: string;
  flags: number;
  mac?: string;
  mtu?: number;
  master?: number;
  kind?: string;
}

export interface Addr {
  family: 4 | 6;
  index: number;
  address: IpNet;
}

// ---- encoding

function attr(type: number, data: Buffer): Buffer {
  const len = 4 + data.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  data.copy(out, 4);
  return out;
}
const u32 = (type: number, v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return attr(type, b);
};
const u8 = (type: number, v: number): Buffer => attr(type, Buffer.from([v]));
const str = (type: number, s: string): Buffer => attr(type, Buffer.from(`${s}\0`));
const nested = (type: number, parts: Buffer[]): Buffer => attr(type | NLA_F_NESTED, Buffer.concat(parts));

function ifinfomsg(family: number, index: number, flags: number, change: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags >>> 0, 8);
  b.writeUInt32LE(change >>> 0, 12);
  return b;
}

function ifaddrmsg(family: number, prefix: number, index: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefix, 1);
  b.writeUInt32LE(index, 4);
  return b;
}

export function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(":").map((h) => parseInt(h, 16)));
}

function macText(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

function parseAttrs(buf: Buffer, offset: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let o = offset;
  while (o + 4 <= buf.length) {
    const len = buf.readUInt16LE(o);
    const type = buf.readUInt16LE(o + 2) & ~NLA_F_NESTED;
    if (len < 4 || o + len > buf.length) break;
    out.set(type, buf.subarray(o + 4, o + len));
    o += (len + 3) & ~3;
  }
  return out;
}

const cstr = (b: Buffer | undefined): string | undefined => (b === undefined ? undefined : b.toString("utf8").replace(/\0.*$/s, ""));

function parseLink(data: Buffer): Link {
  const attrs = parseAttrs(data, 16);
  const link: Link = { index: data.readInt32LE(4), flags: data.readUInt32LE(8), name: cstr(attrs.get(IFLA_IFNAME)) ?? "" };
  const mac = attrs.get(IFLA_ADDRESS);
  if (mac && mac.length === 6) link.mac = macText(mac);
  const mtu = attrs.get(IFLA_MTU);
  if (mtu) link.mtu = mtu.readUInt32LE(0);
  const master = attrs.get(IFLA_MASTER);
  if (master) link.master = master.readUInt32LE(0);
  const info = attrs.get(IFLA_LINKINFO);
  if (info) {
    const kind = cstr(parseAttrs(info, 0).get(IFLA_INFO_KIND));
    if (kind) link.kind = kind;
  }
  return link;
}

function parseAddr(data: Buffer): Addr | undefined {
  const family = data.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const attrs = parseAttrs(data, 8);
  const raw = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
  const ip = raw ? ipFromBytes(raw) : undefined;
  if (!ip) return undefined;
  return { family: family === AF_INET ? 4 : 6, index: data.readUInt32LE(4), address: { ip, prefix: data.readUInt8(1) } };
}

// ---- whole messages, for a process in another namespace to send (see nsexec.ts)

const RTM_NEWROUTE = 24;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const IFA_FLAGS = 8;
const IFA_F_NODAD = 0x2;

function message(type: number, flags: number, parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(16);
  head.writeUInt32LE(16 + body.length, 0);
  head.writeUInt16LE(type, 4);
  head.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK | flags, 6);
  head.writeUInt32LE(1, 8);
  return Buffer.concat([head, body]);
}

/** RTM_DELLINK of the link with this name. */
export function deleteLinkMessage(name: string): Buffer {
  return message(RTM_DELLINK, 0, [ifinfomsg(AF_UNSPEC, 0, 0, 0), str(IFLA_IFNAME, name)]);
}

/** RTM_NEWLINK setting the link up. */
export function linkUpMessage(index: number): Buffer {
  return message(RTM_NEWLINK, 0, [ifinfomsg(AF_UNSPEC, index, IFF_UP, IFF_UP)]);
}

/** The ifaddrmsg and attributes of an address: local = address, and an IPv4 subnet's broadcast address. */
function addrParts(index: number, address: IpNet): Buffer[] {
  const family = address.ip.family === 4 ? AF_INET : AF_INET6;
  const local = ipBytes(address.ip);
  const parts = [ifaddrmsg(family, address.prefix, index), attr(IFA_LOCAL, local), attr(IFA_ADDRESS, local)];
  if (address.ip.family === 4 && address.prefix < 31) {
    const host = (1n << BigInt(32 - address.prefix)) - 1n;
    parts.push(attr(IFA_BROADCAST, ipBytes({ family: 4, value: address.ip.value | host })));
  }
  return parts;
}

/** RTM_NEWADDR (IPv4 with its broadcast address, IPv6 without duplicate address detection). */
export function addAddrMessage(index: number, address: IpNet): Buffer {
  const parts = addrParts(index, address);
  if (address.ip.family === 6) parts.push(u32(IFA_FLAGS, IFA_F_NODAD));
  return message(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, parts);
}

/** RTM_NEWROUTE in the main table through `index`, via `gw` or on-link without one (as `ip route add`). */
export function addRouteMessage(index: number, dst: IpNet, gw?: IpAddr): Buffer {
  const family = dst.ip.family === 4 ? AF_INET : AF_INET6;
  const rt = Buffer.alloc(12);
  rt.writeUInt8(family, 0);
  rt.writeUInt8(dst.prefix, 1);
  rt.writeUInt8(254, 4); // RT_TABLE_MAIN
  rt.writeUInt8(3, 5); // RTPROT_BOOT, what `ip route add` uses
  rt.writeUInt8(gw ? 0 : 253, 6); // RT_SCOPE_UNIVERSE, or RT_SCOPE_LINK for a direct route
  rt.writeUInt8(1, 7); // RTN_UNICAST
  const parts: Buffer[] = [rt];
  if (dst.prefix > 0) parts.push(attr(RTA_DST, ipBytes(dst.ip)));
  if (gw) parts.push(attr(RTA_GATEWAY, ipBytes(gw)));
  parts.push(u32(RTA_OIF, index));
  return message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, parts);
}

export function errnoName(errno: number): string {
  return Object.entries(osConstants.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
}

// ---- the socket

export class Rtnl {
  private readonly netlink: typeof NetlinkModule;
  private readonly socket: NetlinkSocket;
  /**
   * Dumps get a socket of their own, one at a time: the kernel sends a dump in parts as the socket is read,
   * and the netlink package cannot tell them apart from replies to other requests arriving in between.
   */
  private dumpSocket: NetlinkSocket | undefined;
  private dumpQueue: Promise<unknown> = Promise.resolve();

  constructor() {
    // Loaded on first use: the native module costs ~20 ms to load, which commands without netlink work
    // (VERSION, a DEL of IPAM only...) of the one-shot plugin should not pay.
    this.netlink = createRequire(import.meta.url)("netlink") as typeof NetlinkModule;
    this.socket = this.open();
  }

  private open(): NetlinkSocket {
    const socket = this.netlink.createNetlink(0 /* NETLINK_ROUTE */);
    // Errors surface on the requests; an unhandled 'error' event would crash the daemon.
    socket.on("error", () => undefined);
    return socket;
  }

  close(): void {
    this.socket.close();
    this.dumpSocket?.close();
  }

  private async request(op: string, type: number, flags: number, parts: Buffer[], socket = this.socket): Promise<Buffer[]> {
    const [msgs] = await socket.request(type, parts, { flags, timeout: 10_000, checkError: false });
    const out: Buffer[] = [];
    for (const m of msgs) {
      if (m.type === NLMSG_ERROR) {
        const errno = -m.data.readInt32LE(0);
        if (errno !== 0) throw new NetlinkError(op, errno);
        continue;
      }
      out.push(m.data);
    }
    return out;
  }

  private dump(op: string, type: number, parts: Buffer[]): Promise<Buffer[]> {
    const next = this.dumpQueue.then(() => this.request(op, type, NLM_F_DUMP, parts, (this.dumpSocket ??= this.open())));
    this.dumpQueue = next.catch(() => undefined);
    return next;
  }

  async linkByName(name: string): Promise<Link | undefined> {
    try {
      const [data] = await this.request(`get link ${name}`, RTM_GETLINK, 0, [ifinfomsg(AF_UNSPEC, 0, 0, 0), str(IFLA_IFNAME, name)]);
      return data ? parseLink(data) : undefined;
    } catch (err) {
      if (isNetlinkError(err, "ENODEV")) return undefined;
      throw err;
    }
  }

  async links(): Promise<Link[]> {
    return (await this.dump("list links", RTM_GETLINK, [ifinfomsg(AF_UNSPEC, 0, 0, 0)])).map(parseLink);
  }

  async createBridge(name: string, options: { mac: string; mtu?: number; up: boolean; promisc: boolean }): Promise<void> {
    const flags = (options.up ? IFF_UP : 0) | (options.promisc ? IFF_PROMISC : 0);
    await this.request(`create bridge ${name}`, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, [
      ifinfomsg(AF_UNSPEC, 0, flags, flags),
      str(IFLA_IFNAME, name),
      attr(IFLA_ADDRESS, macBytes(options.mac)),
      ...(options.mtu ? [u32(IFLA_MTU, options.mtu)] : []),
      nested(IFLA_LINKINFO, [str(IFLA_INFO_KIND, "bridge")]),
    ]);
  }

  /** Sets flags (only those in `mask`) and optionally the master of a link. */
  async setLink(index: number, flags: number, mask: number, master?: number): Promise<void> {
    await this.request(`set link ${index}`, RTM_NEWLINK, 0, [ifinfomsg(AF_UNSPEC, index, flags, mask), ...(master !== undefined ? [u32(IFLA_MASTER, master)] : [])]);
  }

  /**
   * One request creates both ends: the host end in this namespace (attached to `master`, up) and the peer
   * directly inside the namespace open on `peerNetnsFd`, named as the runtime asked (down: see below).
   */
  async createVeth(options: { name: string; mac: string; peerName: string; peerMac: string; peerNetnsFd: number; peerIndex?: number; mtu?: number; master: number }): Promise<Link | undefined> {
    const mtu = options.mtu ? [u32(IFLA_MTU, options.mtu)] : [];
    // The peer cannot be created up: the kernel configures it before pairing the two (veth_open: ENOTCONN).
    const peer = Buffer.concat([
      ifinfomsg(AF_UNSPEC, options.peerIndex ?? 0, 0, 0),
      str(IFLA_IFNAME, options.peerName),
      attr(IFLA_ADDRESS, macBytes(options.peerMac)),
      u32(IFLA_NET_NS_FD, options.peerNetnsFd),
      ...mtu,
    ]);
    // NLM_F_ECHO: kernels since 6.1 answer with the new link (its index), saving a lookup. The kernel honours
    // the peer's requested ifindex only when the host end requests one too (veth_newlink), so both ends get
    // the same (random) number, each in its own namespace.
    const echoed = await this.request(`create veth ${options.name}`, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO, [
      ifinfomsg(AF_UNSPEC, options.peerIndex ?? 0, IFF_UP, IFF_UP),
      str(IFLA_IFNAME, options.name),
      attr(IFLA_ADDRESS, macBytes(options.mac)),
      u32(IFLA_MASTER, options.master),
      ...mtu,
      nested(IFLA_LINKINFO, [str(IFLA_INFO_KIND, "veth"), nested(IFLA_INFO_DATA, [attr(VETH_INFO_PEER, peer)])]),
    ]);
    const link = echoed[0] ? parseLink(echoed[0]) : undefined;
    return link && link.name === options.name ? link : undefined;
  }

  /** Hairpin mode of a bridge port (a packet may leave by the port it came in on). */
  async setHairpin(index: number, on: boolean): Promise<void> {
    await this.request(`set hairpin on ${index}`, RTM_SETLINK, 0, [ifinfomsg(AF_BRIDGE, index, 0, 0), nested(IFLA_PROTINFO, [u8(IFLA_BRPORT_MODE, on ? 1 : 0)])]);
  }

  async hairpin(index: number): Promise<boolean | undefined> {
    const all = await this.dump("list bridge ports", RTM_GETLINK, [ifinfomsg(AF_BRIDGE, 0, 0, 0)]);
    for (const data of all) {
      if (data.readInt32LE(4) !== index) continue;
      const prot = parseAttrs(data, 16).get(IFLA_PROTINFO);
      const mode = prot ? parseAttrs(prot, 0).get(IFLA_BRPORT_MODE) : undefined;
      return mode ? mode.readUInt8(0) === 1 : undefined;
    }
    return undefined;
  }

  /** Deletes a link by name; false when there was none. */
  async deleteLink(name: string): Promise<boolean> {
    try {
      await this.request(`delete link ${name}`, RTM_DELLINK, 0, [ifinfomsg(AF_UNSPEC, 0, 0, 0), str(IFLA_IFNAME, name)]);
      return true;
    } catch (err) {
      if (isNetlinkError(err, "ENODEV")) return false;
      throw err;
    }
  }

  /** Sets a link down and takes it off its bridge; false when there was none. */
  async detachLink(name: string): Promise<boolean> {
    try {
      await this.request(`detach link ${name}`, RTM_NEWLINK, 0, [ifinfomsg(AF_UNSPEC, 0, 0, IFF_UP), str(IFLA_IFNAME, name), u32(IFLA_MASTER, 0)]);
      return true;
    } catch (err) {
      if (isNetlinkError(err, "ENODEV")) return false;
      throw err;
    }
  }

  async addrs(index?: number): Promise<Addr[]> {
    const all = (await this.dump("list addresses", RTM_GETADDR, [ifaddrmsg(AF_UNSPEC, 0, 0)])).map(parseAddr);
    return all.filter((a): a is Addr => a !== undefined && (index === undefined || a.index === index));
  }

  /** Adds an address; `replace` turns an existing one into this one instead of failing with EEXIST. */
  async addAddr(index: number, address: IpNet, replace = false): Promise<void> {
    await this.request(`add address to ${index}`, RTM_NEWADDR, NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL), addrParts(index, address));
  }

  async delAddr(index: number, address: IpNet): Promise<void> {
    const family = address.ip.family === 4 ? AF_INET : AF_INET6;
    await this.request(`delete address from ${index}`, RTM_DELADDR, 0, [ifaddrmsg(family, address.prefix, index), attr(IFA_LOCAL, ipBytes(address.ip))]);
  }
}

export type { IpAddr };
