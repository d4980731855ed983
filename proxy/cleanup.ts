/**
 * `kube-proxy --cleanup` (upstream CleanupLeftovers, both modes): removes the jump rules from the built-in chains
 * and flushes and deletes every chain the iptables mode owns, in one `iptables-restore --noflush`, and deletes
 * the nftables mode's `kube-proxy` tables (`ip` and `ip6`). KUBE-FIREWALL and its jumps stay: they are the
 * kubelet's (the proxier only keeps a copy of its rule), as upstream leaves them.
 */
import { isDeckhandError } from "../src-shared/errors.ts";
import type { Logger } from "../src-shared/log.ts";
import { chainsFromSave, hostExec, type Exec, type IptablesRunner } from "./iptables.ts";
import { NftRunner } from "./nftables/nft.ts";
import {
  JUMP_RULES,
  KUBE_EXTERNAL_SERVICES,
  KUBE_FORWARD,
  KUBE_MARK_MASQ,
  KUBE_NODEPORTS,
  KUBE_POSTROUTING,
  KUBE_PROXY_CANARY,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
  type Table,
} from "./rules.ts";
import { isServiceChainName } from "./types.ts";

const OWNED: Record<Table, readonly string[]> = {
  nat: [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ, KUBE_PROXY_CANARY],
  filter: [KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL, KUBE_PROXY_CANARY],
  mangle: [KUBE_PROXY_CANARY],
};

/** The restore input that removes what the proxier owns, given `iptables-save -t <table>` of each table. */
export function cleanupRestoreText(saves: Record<Table, string>, keep: ReadonlySet<string> = new Set()): string {
  let out = "";
  for (const table of ["mangle", "filter", "nat"] as const) {
    const save = saves[table];
    const existing = chainsFromSave(save);
    const chains = [...OWNED[table].filter((c) => existing.has(c)), ...(table === "nat" ? [...existing].filter(isServiceChainName) : [])].filter((c) => !keep.has(c));
    const deletes: string[] = [];
    for (const line of save.split("\n")) {
      if (!line.startsWith("-A ")) continue;
      const chain = line.split(" ")[1] ?? "";
      if (chains.includes(chain)) continue; // flushed with its chain
      if (JUMP_RULES.some((j) => j.table === table && j.chain === chain && line.includes(` -j ${j.target}`) && line.includes(j.comment))) {
        deletes.push(`-D${line.slice(2)}`);
      }
    }
    if (chains.length === 0 && deletes.length === 0) continue;
    out += `*${table}\n${chains.map((c) => `:${c} - [0:0]\n`).join("")}${deletes.map((d) => `${d}\n`).join("")}${chains.map((c) => `-X ${c}\n`).join("")}COMMIT\n`;
  }
  return out;
}

/** Removes everything the proxier owns. Returns true when something went wrong (logged). */
export async function cleanupLeftovers(iptables: IptablesRunner, log: Logger): Promise<boolean> {
  const saves = { mangle: await iptables.save("mangle"), filter: await iptables.save("filter"), nat: await iptables.save("nat") };
  const text = cleanupRestoreText(saves);
  if (text === "") {
    log.info("nothing to clean up");
    return false;
  }
  try {
    await iptables.restore(text);
    log.info("removed kube-proxy's iptables rules and chains");
    return false;
  } catch (err) {
    // Someone else jumps to KUBE-MARK-MASQ (a CNI portmap externalSetMarkChain, an old kubelet): keep it.
    log.warn({ err }, "cleanup restore failed; retrying without KUBE-MARK-MASQ");
    try {
      await iptables.restore(cleanupRestoreText(saves, new Set([KUBE_MARK_MASQ])));
      return false;
    } catch (err2) {
      log.error({ err: err2 }, "iptables cleanup failed");
      return true;
    }
  }
}

/** Deletes the nftables mode's tables (ip and ip6). Returns true when something went wrong (logged). */
export async function cleanupNftables(log: Logger, exec: Exec = hostExec): Promise<boolean> {
  let failed = false;
  for (const family of ["ip", "ip6"] as const) {
    try {
      if (await new NftRunner({ family, exec }).deleteTable()) log.info({ family }, "removed kube-proxy's nftables table");
    } catch (err) {
      // Without nft there is no table of ours to remove.
      if (isDeckhandError(err, "NotFound")) return failed;
      log.error({ err, family }, "nftables cleanup failed");
      failed = true;
    }
  }
  return failed;
}

/** `--cleanup`: both modes' state. Returns true when something went wrong. */
export async function cleanupAllModes(iptables: IptablesRunner, log: Logger, exec: Exec = hostExec): Promise<boolean> {
  const ipt = await cleanupLeftovers(iptables, log).catch((err: unknown) => {
    if (isDeckhandError(err, "NotFound")) return false; // no iptables here: no iptables rules of ours either
    log.error({ err }, "iptables cleanup failed");
    return true;
  });
  const nft = await cleanupNftables(log, exec);
  return ipt || nft;
}
