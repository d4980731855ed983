/**
 * Work inside a pod's network namespace. Node cannot move its thread into another namespace and a netlink
 * socket belongs to the namespace of the thread that opened it, so this is one child process per operation:
 * `nsenter --net=<netns> ip -batch -` with every command on stdin (measured ~3-4 ms from the daemon, the one
 * spawn of an ADD; the interface itself is created from the node side straight into the namespace, already up).
 */
import { existsSync } from "node:fs";
import { run } from "../src-shared/exec.ts";
import { formatCidr, formatIp, type IpAddr, type IpNet } from "./ip.ts";
import { CniCode, CniError } from "./spec.ts";

/** containerd runs plugins with its own environment, which may lack /usr/sbin in PATH: use absolute paths. */
function findTool(name: string, dirs: readonly string[]): string {
  for (const d of dirs) if (existsSync(`${d}/${name}`)) return `${d}/${name}`;
  return name;
}
const BIN_DIRS = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];
let ipPath: string | undefined;
let nsenterPath: string | undefined;
export function tools(): { ip: string; nsenter: string } {
  ipPath ??= findTool("ip", BIN_DIRS);
  nsenterPath ??= findTool("nsenter", ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]);
  return { ip: ipPath, nsenter: nsenterPath };
}

export interface PodRoute {
  dst: IpNet;
  gw?: IpAddr;
}

/** The `ip -batch` script that gives the pod's interface its addresses and routes (pure, unit tested). */
export function podSetupScript(ifname: string, addresses: readonly IpNet[], routes: readonly PodRoute[]): string {
  const lines: string[] = [`link set dev ${ifname} up`];
  for (const a of addresses) {
    lines.push(a.ip.family === 4 ? `address add ${formatCidr(a)} brd + dev ${ifname}` : `address add ${formatCidr(a)} dev ${ifname} nodad`);
  }
  for (const r of routes) {
    const dst = formatCidr(r.dst);
    lines.push(`route add ${dst}${r.gw ? ` via ${formatIp(r.gw)}` : ""} dev ${ifname}`);
  }
  return `${lines.join("\n")}\n`;
}

export async function runInNetns(netns: string, script: string, what: string, json = false): Promise<string> {
  if (!script) return "";
  const { ip, nsenter } = tools();
  const res = await run(nsenter, [`--net=${netns}`, ip, ...(json ? ["-json"] : []), "-batch", "-"], { input: script, allowFailure: true, timeoutMs: 20_000 });
  if (res.code !== 0) {
    throw new CniError(CniCode.Internal, `${what} in ${netns} failed: ${(res.stderr || res.stdout).trim() || `exit code ${String(res.code)}`}`);
  }
  return res.stdout;
}

export interface PodInterfaceState {
  exists: boolean;
  mac?: string;
  up?: boolean;
  addresses: string[];
  routes: { dst: string; gateway?: string; dev?: string }[];
}

interface IpJsonAddr {
  ifname?: string;
  address?: string;
  flags?: string[];
  operstate?: string;
  addr_info?: { local?: string; prefixlen?: number; family?: string }[];
}
interface IpJsonRoute {
  dst?: string;
  gateway?: string;
  dev?: string;
}

/** What the pod's namespace holds for `ifname` (CHECK). */
export async function inspectPodInterface(netns: string, ifname: string): Promise<PodInterfaceState> {
  const out = await runInNetns(netns, "address show\nroute show\nroute show root ::/0\n", "reading the pod's interfaces", true);
  // -batch prints one JSON document per command, each on its own line.
  const docs = out.split("\n").filter((l) => l.trim().startsWith("["));
  const addrs = JSON.parse(docs[0] ?? "[]") as IpJsonAddr[];
  const routes = [...(JSON.parse(docs[1] ?? "[]") as IpJsonRoute[]), ...(JSON.parse(docs[2] ?? "[]") as IpJsonRoute[])];
  const link = addrs.find((a) => a.ifname === ifname);
  if (!link) return { exists: false, addresses: [], routes: [] };
  const full = link as IpJsonAddr & { address?: string };
  return {
    exists: true,
    ...(full.address ? { mac: full.address } : {}),
    up: (link.flags ?? []).includes("UP"),
    addresses: (link.addr_info ?? []).filter((a) => a.local).map((a) => `${a.local ?? ""}/${a.prefixlen ?? 0}`),
    routes: routes
      .filter((r) => r.dev === ifname)
      .map((r) => ({ dst: r.dst === "default" ? "default" : (r.dst ?? ""), ...(r.gateway ? { gateway: r.gateway } : {}), ...(r.dev ? { dev: r.dev } : {}) })),
  };
}
