/**
 * `ipMasq`: the reference plugin's masquerade rules, per container, in the node's nat table:
 *   POSTROUTING -s <pod ip> -j CNI-<hash>;  CNI-<hash>: -d <pod subnet> -j ACCEPT, ! -d 224.0.0.0/4 -j MASQUERADE
 * Off for Kubernetes pod networks (pod IPs are routable, source addresses must be preserved); here for
 * compatibility with the reference option. Through iptables-restore, so it works with either backend.
 */
import { createHash } from "node:crypto";
import { run } from "../src-shared/exec.ts";
import { formatCidr, networkOf, type IpNet } from "./ip.ts";
import { CniCode, CniError } from "./spec.ts";

export function masqChain(network: string, containerId: string): string {
  return `CNI-${createHash("sha512").update(`${network}${containerId}`).digest("hex").slice(0, 24)}`;
}

function comment(network: string, containerId: string): string {
  return `-m comment --comment "name: ${network} id: ${containerId}"`;
}

export function masqRules(network: string, containerId: string, addresses: readonly IpNet[]): string {
  const chain = masqChain(network, containerId);
  const c = comment(network, containerId);
  const lines = ["*nat", `:${chain} - [0:0]`];
  for (const a of addresses.filter((x) => x.ip.family === 4)) {
    lines.push(`-A ${chain} -d ${formatCidr({ ip: networkOf(a), prefix: a.prefix })} ${c} -j ACCEPT`);
  }
  lines.push(`-A ${chain} ! -d 224.0.0.0/4 ${c} -j MASQUERADE`);
  for (const a of addresses.filter((x) => x.ip.family === 4)) lines.push(`-A POSTROUTING -s ${formatCidr({ ip: a.ip, prefix: 32 })} ${c} -j ${chain}`);
  lines.push("COMMIT", "");
  return lines.join("\n");
}

export async function setupMasquerade(network: string, containerId: string, addresses: readonly IpNet[]): Promise<void> {
  await teardownMasquerade(network, containerId);
  const res = await run("iptables-restore", ["-w", "5", "--noflush"], { input: masqRules(network, containerId, addresses), allowFailure: true });
  if (res.code !== 0) throw new CniError(CniCode.Internal, `ipMasq: iptables-restore failed: ${res.stderr.trim()}`);
}

/** Removes the container's chain and the POSTROUTING jumps to it; nothing to do is fine. */
export async function teardownMasquerade(network: string, containerId: string): Promise<void> {
  const chain = masqChain(network, containerId);
  const saved = await run("iptables-save", ["-t", "nat"], { allowFailure: true }).catch(() => undefined);
  if (!saved || saved.code !== 0 || !saved.stdout.includes(chain)) return;
  const lines = ["*nat"];
  for (const l of saved.stdout.split("\n")) if (l.startsWith("-A POSTROUTING ") && l.endsWith(`-j ${chain}`)) lines.push(l.replace(/^-A /, "-D "));
  lines.push(`-F ${chain}`, `-X ${chain}`, "COMMIT", "");
  const res = await run("iptables-restore", ["-w", "5", "--noflush"], { input: lines.join("\n"), allowFailure: true });
  if (res.code !== 0) throw new CniError(CniCode.Internal, `ipMasq: removing ${chain} failed: ${res.stderr.trim()}`);
}
