/**
 * deckhand-bridge: the CNI commands (ADD, DEL, CHECK, VERSION, GC, STATUS) on a Linux bridge with veth pairs
 * and host-local style IPAM. `handle()` takes one invocation (its CNI_* variables and stdin) and gives the exit
 * code and stdout; it serves both the one-shot process (cni/main.ts) and the daemon (cni/daemon.ts), which
 * runs many at once.
 *
 * ADD, from the node's namespace: bridge (created if missing, fixed MAC, up), an address per range set (IPAM,
 * under the flock), the gateway address on the bridge, one netlink request creating the veth pair with the
 * host end on the bridge and the pod end created inside CNI_NETNS as CNI_IFNAME, hairpin on the port, then
 * one `nsenter ip -batch` that sets the pod's interface up with its addresses and routes, and the node sysctls. Every step pushes its
 * undo; a failure runs them in reverse, so a failed ADD leaves nothing.
 *
 * The host end's name is derived from (network, container id, ifname), so DEL needs neither CNI_NETNS nor
 * prevResult: it releases the attachment's addresses and deletes that link (the pod end goes with it), which
 * also cleans whatever an ADD killed midway left. GC does the same for every attachment the runtime no longer
 * lists: addresses, and our links on the bridge.
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, writeFileSync, accessSync, constants as fsConstants } from "node:fs";
import { configVersion, decodeJson, parseBridgeConfig, parseDns, type Attachment, type BridgeConfig } from "./config.ts";
import { allocate, collectGarbage, exhaustedRangeSets, releaseOwner, type Allocation } from "./ipam.ts";
import { withStore } from "./ipam-disk.ts";
import { contains, formatCidr, formatIp, ipEqual, parseCidr, parseIp, type IpNet } from "./ip.ts";
import { IFF_PROMISC, IFF_UP, addAddrMessage, addRouteMessage, errnoName, isNetlinkError, linkUpMessage, type Link, type Rtnl } from "./rtnl.ts";
import { inspectPodInterface, podSetupScript, runInNetns, tools, type PodRoute } from "./podside.ts";
import { setupMasquerade, teardownMasquerade } from "./masq.ts";
import {
  CniCode,
  CniError,
  LATEST_VERSION,
  compareVersions,
  encodeError,
  encodeResult,
  encodeVersion,
  isCniError,
  isSupportedVersion,
  parseEnv,
  type CniEnv,
  type CniResult,
  type Dns,
  type ResultRoute,
} from "./spec.ts";

export interface PluginRequest {
  env: Readonly<Record<string, string | undefined>>;
  stdin: string;
}

export interface PluginResponse {
  /** Process exit code: 0 on success. */
  code: number;
  stdout: string;
}

/** Prefix of the host ends of our veth pairs ("dhv" + 12 hex digits = 15 characters, the kernel's limit). */
export const HOST_VETH_PREFIX = "dhv";

export function hostVethName(network: string, owner: Attachment): string {
  return HOST_VETH_PREFIX + createHash("sha256").update(`${network}\0${owner.containerId}\0${owner.ifname}`).digest("hex").slice(0, 12);
}

/** An interface index for a pod end: large and random, so free in a pod's namespace in practice. */
export function randomIfindex(): number {
  return 0x10000 + (randomBytes(4).readUInt32LE(0) % 0x7ffe0000);
}

/** A random locally administered unicast MAC. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = ((b[0] ?? 0) & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

export interface PluginOptions {
  /** A netlink socket in the node's namespace; the daemon shares one, the one-shot plugin opens its own. */
  rtnl: () => Rtnl;
  log?: (line: string) => void;
  /** Runs an `ip -batch` script inside a pod's namespace (default: nsenter; the daemon has a faster helper). */
  podExec?: (netns: string, script: string, what: string) => Promise<string>;
  /**
   * Sends rtnetlink requests inside a pod's namespace (the daemon's helper; see nsexec.ts). When set, ADD
   * configures the pod side with it instead of `ip`: the pod end is created with a chosen ifindex to address.
   */
  podNetlink?: (netns: string, messages: readonly Buffer[]) => Promise<{ errno: number; failed: number }>;
  /**
   * When set, DEL answers once the pod is cut off (host end down and off the bridge, addresses released) and
   * hands the veth pair's deletion to this function: the kernel takes 10-40 ms to delete a veth (RCU grace
   * periods), most of a DEL. Only for a long-running process; GC and the next ADD/DEL of the same attachment
   * clean a pair left behind.
   */
  deferLinkDeletion?: (name: string) => void;
}

const SYSCTLS = ["/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/bridge/bridge-nf-call-iptables"];

export class BridgePlugin {
  private readonly rtnl: () => Rtnl;
  private readonly log: (line: string) => void;
  private readonly podExec: (netns: string, script: string, what: string) => Promise<string>;
  private readonly deferLinkDeletion: ((name: string) => void) | undefined;
  private readonly podNetlink: PluginOptions["podNetlink"];

  constructor(options: PluginOptions) {
    this.rtnl = options.rtnl;
    this.log = options.log ?? (() => undefined);
    this.podExec = options.podExec ?? runInNetns;
    this.deferLinkDeletion = options.deferLinkDeletion;
    this.podNetlink = options.podNetlink;
  }

  /** One invocation; never throws: errors become the spec's error JSON and a non-zero exit code. */
  async handle(req: PluginRequest): Promise<PluginResponse> {
    let version: string = LATEST_VERSION;
    try {
      const env = parseEnv(req.env);
      if (env.command === "VERSION") {
        let asked: string = LATEST_VERSION;
        try {
          const v = decodeJson(req.stdin || "{}")["cniVersion"];
          if (typeof v === "string" && isSupportedVersion(v)) asked = v;
        } catch {
          // VERSION needs no config
        }
        return { code: 0, stdout: encodeVersion(asked) };
      }
      const raw = decodeJson(req.stdin);
      version = configVersion(raw);
      requireVersion(env.command, version);
      const config = parseBridgeConfig(raw);
      switch (env.command) {
        case "ADD":
          return { code: 0, stdout: encodeResult(await this.add(config, env), version) };
        case "DEL":
          await this.del(config, env);
          return { code: 0, stdout: "" };
        case "CHECK":
          await this.check(config, env);
          return { code: 0, stdout: "" };
        case "GC":
          await this.gc(config);
          return { code: 0, stdout: "" };
        case "STATUS":
          await this.status(config);
          return { code: 0, stdout: "" };
      }
    } catch (err) {
      const e = isCniError(err) ? err : new CniError(CniCode.Internal, err instanceof Error ? err.message : String(err));
      if (!isCniError(err)) this.log(`deckhand-bridge: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return { code: 1, stdout: encodeError(e, version) };
    }
  }

  // ---- ADD

  async add(config: BridgeConfig, env: CniEnv): Promise<CniResult> {
    const owner: Attachment = { containerId: env.containerId, ifname: env.ifname };
    const rtnl = this.rtnl();
    const netnsFd = openNetns(env.netns);
    const undo: (() => Promise<unknown>)[] = [];
    const t = tracer(this.log, `ADD ${env.containerId}`);
    try {
      const requested = [...config.requestedIps, ...(env.args.get("IP") ?? "").split(",").filter(Boolean)];
      const ipam = config.ipam;
      // The bridge and the IPAM reservation do not depend on each other: done at the same time.
      const [bridge, allocations] = await Promise.all([
        this.ensureBridge(rtnl, config),
        ipam ? withStore(ipam.dataDir, config.name, (s) => allocate(s, ipam, owner, requested)) : Promise.resolve([] as Allocation[]),
      ]);
      t("bridge+ipam");
      if (ipam && allocations.length > 0) undo.push(() => withStore(ipam.dataDir, config.name, (s) => releaseOwner(s, owner)));
      if (config.isGateway) for (const a of allocations) await this.ensureBridgeAddress(rtnl, config, bridge, { ip: a.gateway, prefix: a.address.prefix });

      t("gateway");
      const hostName = hostVethName(config.name, owner);
      const hostMac = randomMac();
      const podMac = randomMac();
      // A link of this name can only be left by an ADD of this same attachment that was killed midway.
      await rtnl.deleteLink(hostName);
      let host: Link | undefined;
      // With podNetlink the pod end gets an ifindex of our choosing (any free one is valid), to address it
      // from inside the namespace without looking it up; a taken one (EBUSY) is drawn again.
      let peerIndex = this.podNetlink ? randomIfindex() : undefined;
      for (let attempt = 0; ; attempt++) {
        try {
          host = await rtnl.createVeth({ name: hostName, mac: hostMac, peerName: env.ifname, peerMac: podMac, peerNetnsFd: netnsFd, master: bridge.index, ...(peerIndex ? { peerIndex } : {}), ...(config.mtu ? { mtu: config.mtu } : {}) });
          break;
        } catch (err) {
          if (isNetlinkError(err, "EEXIST")) throw new CniError(CniCode.Internal, `interface ${env.ifname} already exists in network namespace ${env.netns}`);
          if (isNetlinkError(err, "EBUSY") && peerIndex !== undefined && attempt < 5) {
            peerIndex = randomIfindex();
            continue;
          }
          throw err;
        }
      }
      undo.push(() => rtnl.deleteLink(hostName));
      t("veth");
      if (config.hairpinMode) {
        host ??= await rtnl.linkByName(hostName);
        if (!host) throw new CniError(CniCode.Internal, `veth ${hostName} vanished right after its creation`);
        await rtnl.setHairpin(host.index, true);
      }

      t("hairpin");
      const routes = resultRoutes(config, allocations);
      const podRoutes: PodRoute[] = routes.map((r) => {
        const dst = parseCidr(r.dst) as IpNet;
        const gw = r.gw ? parseIp(r.gw) : allocations.find((a) => a.gateway.family === dst.ip.family)?.gateway;
        return { dst, ...(gw ? { gw } : {}) };
      });
      if (this.podNetlink && peerIndex !== undefined) {
        const index = peerIndex;
        const steps = [
          { what: `setting ${env.ifname} up`, msg: linkUpMessage(index) },
          ...allocations.map((a) => ({ what: `adding address ${formatCidr(a.address)}`, msg: addAddrMessage(index, a.address) })),
          ...podRoutes.map((r) => ({ what: `adding the route to ${formatCidr(r.dst)}`, msg: addRouteMessage(index, r.dst, r.gw) })),
        ];
        const res = await this.podNetlink(env.netns, steps.map((s) => s.msg));
        if (res.errno !== 0) {
          throw new CniError(CniCode.Internal, `configuring ${env.ifname} in ${env.netns}: ${steps[res.failed]?.what ?? "netlink"}: ${errnoName(res.errno)}`);
        }
      } else {
        await this.podExec(env.netns, podSetupScript(env.ifname, allocations.map((a) => a.address), podRoutes), `configuring ${env.ifname}`);
      }
      t("pod side");
      this.ensureSysctls();
      t("sysctls");
      if (config.ipMasq && allocations.length > 0) {
        await setupMasquerade(config.name, env.containerId, allocations.map((a) => a.address));
        undo.push(() => teardownMasquerade(config.name, env.containerId));
      }

      const mtu = config.mtu !== undefined ? { mtu: config.mtu } : {};
      return {
        cniVersion: config.cniVersion,
        interfaces: [
          { name: config.bridge, ...(bridge.mac ? { mac: bridge.mac } : {}) },
          { name: hostName, mac: hostMac, ...mtu },
          { name: env.ifname, mac: podMac, ...mtu, sandbox: env.netns },
        ],
        ips: allocations.map((a) => ({ address: formatCidr(a.address), gateway: formatIp(a.gateway), interface: 2 })),
        routes,
        dns: await resultDns(config),
      };
    } catch (err) {
      for (const u of undo.reverse()) {
        await u().catch((e: unknown) => this.log(`deckhand-bridge: undoing a failed ADD of ${env.containerId}: ${String(e)}`));
      }
      throw err;
    } finally {
      closeSync(netnsFd);
    }
  }

  private async ensureBridge(rtnl: Rtnl, config: BridgeConfig): Promise<Link> {
    let link = await rtnl.linkByName(config.bridge);
    if (!link) {
      try {
        await rtnl.createBridge(config.bridge, { mac: randomMac(), up: true, promisc: config.promiscMode, ...(config.mtu ? { mtu: config.mtu } : {}) });
      } catch (err) {
        if (!isNetlinkError(err, "EEXIST")) throw err; // another ADD made it meanwhile
      }
      link = await rtnl.linkByName(config.bridge);
      if (!link) throw new CniError(CniCode.Internal, `bridge ${config.bridge} vanished right after its creation`);
    }
    if (link.kind !== "bridge") throw new CniError(CniCode.InvalidConfig, `${config.bridge} already exists and is not a bridge (it is ${link.kind ?? "a plain device"})`);
    const want = IFF_UP | (config.promiscMode ? IFF_PROMISC : 0);
    if ((link.flags & want) !== want) await rtnl.setLink(link.index, want, want);
    return link;
  }

  private async ensureBridgeAddress(rtnl: Rtnl, config: BridgeConfig, bridge: Link, gw: IpNet): Promise<void> {
    // The common case first, in one round trip: the bridge already has the gateway (EEXIST).
    try {
      await rtnl.addAddr(bridge.index, gw);
    } catch (err) {
      if (isNetlinkError(err, "EEXIST")) return;
      throw err;
    }
    // Just added: take it back if the bridge holds another address of that subnet (unless forceAddress).
    const present = await rtnl.addrs(bridge.index);
    for (const other of present) {
      if (other.family !== gw.ip.family || !contains(gw, other.address.ip) || ipEqual(other.address.ip, gw.ip)) continue;
      if (!config.forceAddress) {
        await rtnl.delAddr(bridge.index, gw).catch(() => undefined);
        throw new CniError(CniCode.InvalidConfig, `bridge ${config.bridge} already has address ${formatCidr(other.address)}, not the gateway ${formatCidr(gw)} (set forceAddress to replace it)`);
      }
      await rtnl.delAddr(bridge.index, other.address);
    }
  }

  private ensureSysctls(): void {
    for (const path of SYSCTLS) {
      try {
        if (readFileSync(path, "utf8").trim() !== "1") writeFileSync(path, "1");
      } catch (err) {
        const name = path.slice("/proc/sys/".length).replaceAll("/", ".");
        const hint = path.includes("/bridge/") ? " (is br_netfilter loaded? modprobe br_netfilter)" : "";
        throw new CniError(CniCode.IoFailure, `cannot set ${name}=1${hint}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  // ---- DEL

  async del(config: BridgeConfig, env: CniEnv): Promise<void> {
    const owner: Attachment = { containerId: env.containerId, ifname: env.ifname };
    const ipam = config.ipam;
    const rtnl = this.rtnl();
    const hostName = hostVethName(config.name, owner);
    const t = tracer(this.log, `DEL ${env.containerId}`);
    const [released] = await Promise.all([
      ipam ? withStore(ipam.dataDir, config.name, (s) => releaseOwner(s, owner)) : Promise.resolve([]),
      this.deferLinkDeletion ? rtnl.detachLink(hostName) : rtnl.deleteLink(hostName),
    ]);
    t("release+detach");
    this.deferLinkDeletion?.(hostName);
    if (config.ipMasq) await teardownMasquerade(config.name, env.containerId);
    if (released.length > 0) this.log(`deckhand-bridge: released ${released.map(formatIp).join(", ")} of ${env.containerId}/${env.ifname}`);
  }

  // ---- CHECK

  async check(config: BridgeConfig, env: CniEnv): Promise<void> {
    const prev = parsePrevResult(config.prevResult);
    closeSync(openNetns(env.netns));
    const owner: Attachment = { containerId: env.containerId, ifname: env.ifname };
    const rtnl = this.rtnl();
    const bridge = await rtnl.linkByName(config.bridge);
    if (!bridge || bridge.kind !== "bridge") throw new CniError(CniCode.Internal, `bridge ${config.bridge} is missing`);
    if (!(bridge.flags & IFF_UP)) throw new CniError(CniCode.Internal, `bridge ${config.bridge} is down`);
    const hostName = hostVethName(config.name, owner);
    const host = await rtnl.linkByName(hostName);
    if (!host) throw new CniError(CniCode.Internal, `host veth ${hostName} of ${env.containerId} is missing`);
    if (host.master !== bridge.index) throw new CniError(CniCode.Internal, `host veth ${hostName} is not attached to bridge ${config.bridge}`);
    if (!(host.flags & IFF_UP)) throw new CniError(CniCode.Internal, `host veth ${hostName} is down`);
    if (config.hairpinMode && (await rtnl.hairpin(host.index)) === false) throw new CniError(CniCode.Internal, `hairpin mode is off on ${hostName}`);

    const expectedIps = prev.ips.filter((ip) => ip.interface === undefined || prev.interfaces[ip.interface]?.name === env.ifname);
    if (config.ipam) {
      const ipam = config.ipam;
      const reservations = await withStore(ipam.dataDir, config.name, (s) => s.list());
      for (const ip of expectedIps) {
        const addr = parseCidr(ip.address);
        const mine = reservations.find((r) => addr && ipEqual(r.ip, addr.ip));
        if (!mine || mine.containerId !== env.containerId) throw new CniError(CniCode.Internal, `the IPAM reservation of ${ip.address} for ${env.containerId} is missing`);
      }
    }
    const pod = await inspectPodInterface(env.netns, env.ifname);
    if (!pod.exists) throw new CniError(CniCode.Internal, `interface ${env.ifname} is missing from ${env.netns}`);
    if (!pod.up) throw new CniError(CniCode.Internal, `interface ${env.ifname} in ${env.netns} is down`);
    const prevPod = prev.interfaces.find((i) => i.name === env.ifname && i.sandbox);
    if (prevPod?.mac && pod.mac && prevPod.mac.toLowerCase() !== pod.mac.toLowerCase()) {
      throw new CniError(CniCode.Internal, `interface ${env.ifname} has MAC ${pod.mac}, not ${prevPod.mac} as ADD made it`);
    }
    for (const ip of expectedIps) {
      if (!pod.addresses.includes(ip.address)) throw new CniError(CniCode.Internal, `address ${ip.address} is missing from ${env.ifname} in ${env.netns}`);
    }
    for (const r of prev.routes) {
      const dst = r.dst === "0.0.0.0/0" || r.dst === "::/0" ? "default" : r.dst;
      if (!pod.routes.some((p) => p.dst === dst)) throw new CniError(CniCode.Internal, `route to ${r.dst} is missing from ${env.netns}`);
    }
  }

  // ---- GC

  async gc(config: BridgeConfig): Promise<void> {
    const valid = config.validAttachments;
    if (!valid) throw new CniError(CniCode.InvalidConfig, "GC needs cni.dev/valid-attachments (the attachments to keep)");
    if (config.ipam) {
      const ipam = config.ipam;
      const released = await withStore(ipam.dataDir, config.name, (s) => collectGarbage(s, valid));
      if (released.length > 0) this.log(`deckhand-bridge: GC released ${released.map((r) => formatIp(r.ip)).join(", ")}`);
    }
    const rtnl = this.rtnl();
    const bridge = await rtnl.linkByName(config.bridge);
    if (!bridge) return;
    const keep = new Set(valid.map((a) => hostVethName(config.name, a)));
    for (const link of await rtnl.links()) {
      if (!link.name.startsWith(HOST_VETH_PREFIX) || keep.has(link.name)) continue;
      // Ours on this bridge, or one a deferred DEL cut off (down, no bridge) and did not get to delete.
      const detached = link.master === undefined && !(link.flags & IFF_UP);
      if (link.master !== bridge.index && !detached) continue;
      await rtnl.deleteLink(link.name);
      this.log(`deckhand-bridge: GC removed ${link.name}`);
    }
  }

  // ---- STATUS

  async status(config: BridgeConfig): Promise<void> {
    const { ip, nsenter } = tools();
    for (const tool of [ip, nsenter]) {
      if (!tool.startsWith("/") || !existsSync(tool)) throw new CniError(CniCode.PluginNotAvailable, `${tool} is not installed: deckhand-bridge needs iproute2 and util-linux`);
    }
    if (!config.ipam) return;
    const ipam = config.ipam;
    const exhausted = await withStore(ipam.dataDir, config.name, async (s) => {
      try {
        accessSync(s.dir, fsConstants.W_OK);
      } catch {
        throw new CniError(CniCode.PluginNotAvailable, `IPAM directory ${s.dir} is not writable`);
      }
      return exhaustedRangeSets(s, ipam);
    });
    if (exhausted.length > 0) {
      const sets = exhausted.map((i) => (ipam.ranges[i] ?? []).map((r) => formatCidr(r.subnet)).join(",")).join("; ");
      throw new CniError(CniCode.PluginNotAvailable, `no IP addresses available in range set: ${sets}`);
    }
  }
}

/** Stage timings on the log when DECKHAND_CNI_TRACE is set (for tuning). */
function tracer(log: (line: string) => void, what: string): (stage: string) => void {
  if (!process.env["DECKHAND_CNI_TRACE"]) return () => undefined;
  let last = performance.now();
  return (stage) => {
    const now = performance.now();
    log(`trace ${what}: ${stage} ${(now - last).toFixed(2)} ms`);
    last = now;
  };
}

function requireVersion(command: CniEnv["command"], version: string): void {
  const min = command === "GC" || command === "STATUS" ? "1.1.0" : command === "CHECK" ? "0.4.0" : undefined;
  if (min && compareVersions(version, min) < 0) {
    throw new CniError(CniCode.IncompatibleVersion, `config version ${version} does not allow ${command} (it needs ${min} or later)`);
  }
}

function openNetns(path: string): number {
  try {
    return openSync(path, "r");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new CniError(CniCode.ContainerUnknown, `network namespace ${path} does not exist`);
    throw new CniError(CniCode.IoFailure, `cannot open network namespace ${path}: ${code ?? String(err)}`);
  }
}

/** IPAM routes as configured, plus the default route via the gateway when isDefaultGateway. */
export function resultRoutes(config: BridgeConfig, allocations: readonly Allocation[]): ResultRoute[] {
  const routes: ResultRoute[] = (config.ipam?.routes ?? []).map((r) => ({ dst: formatCidr(r.dst), ...(r.gw ? { gw: formatIp(r.gw) } : {}) }));
  if (config.isDefaultGateway) {
    for (const a of allocations) {
      const dst = a.gateway.family === 4 ? "0.0.0.0/0" : "::/0";
      const existing = routes.find((r) => r.dst === dst);
      if (existing) {
        if (existing.gw && existing.gw !== formatIp(a.gateway)) {
          throw new CniError(CniCode.InvalidConfig, `isDefaultGateway is ineffective because IPAM sets the default route via ${existing.gw}`);
        }
        existing.gw = formatIp(a.gateway);
        continue;
      }
      routes.push({ dst, gw: formatIp(a.gateway) });
    }
  }
  return routes;
}

function resultDns(config: BridgeConfig): Promise<Dns> {
  if (Object.keys(config.dns).length > 0) return Promise.resolve(config.dns);
  const file = config.ipam?.resolvConf;
  if (!file) return Promise.resolve({});
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new CniError(CniCode.IoFailure, `cannot read ipam.resolvConf ${file}`);
  }
  return Promise.resolve(parseResolvConf(text));
}

export function parseResolvConf(text: string): Dns {
  const nameservers: string[] = [];
  const search: string[] = [];
  const options: string[] = [];
  let domain: string | undefined;
  for (const line of text.split("\n")) {
    const [key, ...rest] = line.replace(/[#;].*$/, "").trim().split(/\s+/);
    if (key === "nameserver" && rest[0]) nameservers.push(rest[0]);
    else if (key === "domain" && rest[0]) domain = rest[0];
    else if (key === "search") search.push(...rest);
    else if (key === "options") options.push(...rest);
  }
  return parseDns({ ...(nameservers.length ? { nameservers } : {}), ...(domain ? { domain } : {}), ...(search.length ? { search } : {}), ...(options.length ? { options } : {}) }, "resolvConf.");
}

interface PrevResult {
  interfaces: { name: string; mac?: string; sandbox?: string }[];
  ips: { address: string; interface?: number }[];
  routes: { dst: string }[];
}

function parsePrevResult(raw: unknown): PrevResult {
  if (typeof raw !== "object" || raw === null) throw new CniError(CniCode.InvalidConfig, "CHECK needs prevResult (the result of the ADD)");
  const r = raw as Record<string, unknown>;
  const list = (k: string): Record<string, unknown>[] => (Array.isArray(r[k]) ? (r[k] as unknown[]).filter((x): x is Record<string, unknown> => typeof x === "object" && x !== null) : []);
  return {
    interfaces: list("interfaces").map((i) => ({
      name: typeof i["name"] === "string" ? i["name"] : "",
      ...(typeof i["mac"] === "string" ? { mac: i["mac"] } : {}),
      ...(typeof i["sandbox"] === "string" ? { sandbox: i["sandbox"] } : {}),
    })),
    ips: list("ips").map((i) => ({ address: typeof i["address"] === "string" ? i["address"] : "", ...(typeof i["interface"] === "number" ? { interface: i["interface"] } : {}) })),
    routes: list("routes").map((x) => ({ dst: typeof x["dst"] === "string" ? x["dst"] : "" })),
  };
}
