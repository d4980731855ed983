/**
 * The nftables side of the proxier: one `nft -f -` transaction per sync (atomic: all of it or nothing), listings
 * of our table's chains and sets, the check that the table is still there, the start-up check that `nft` and
 * the kernel can do what the mode needs, and `--cleanup`'s `delete table`. Every command goes through an `Exec`
 * (tests run it inside their network namespaces) and touches only the `kube-proxy` table of its family.
 */
import { release } from "node:os";
import { DeckhandError, isDeckhandError } from "../../src-shared/errors.ts";
import { CommandError } from "../../src-shared/exec.ts";
import { hostExec, linesAround, type Exec } from "../iptables.ts";
import { KUBE_PROXY_TABLE, namesFromList, type NftFamily } from "./rules.ts";

/** upstream (knftables.New): nft 1.0.1 or later; older ones parse the whole ruleset and can crash on others' rules. */
export const MIN_NFT_VERSION = [1, 0, 1] as const;
/** upstream NFTablesKubeProxyKernelVersion. */
export const MIN_KERNEL_VERSION = [5, 13, 0] as const;

/** `nft -f` refused a transaction; `line` is the input line it named, when it did. */
export class NftError extends DeckhandError {
  readonly line: number | undefined;
  readonly context: string;
  constructor(message: string, line: number | undefined, context: string, cause: unknown) {
    super("Internal", message, { cause, details: { line, context } });
    this.name = "NftError";
    this.line = line;
    this.context = context;
  }
}

function versionAtLeast(v: readonly number[], min: readonly number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    const a = v[i] ?? 0;
    const b = min[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

/** "1.0.6" out of `nft --version` ("nftables v1.0.6 (Lester Gooch #5)"). */
export function parseNftVersion(text: string): number[] | undefined {
  const m = /v(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/** [major, minor, patch] of a kernel release ("6.18.0-1-amd64"). */
export function parseKernelRelease(text: string): number[] | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

export interface NftRunnerOptions {
  family: NftFamily;
  exec?: Exec;
  /** Kill a hung nft after this long (default 5 minutes). */
  timeoutMs?: number;
}

export class NftRunner {
  readonly family: NftFamily;
  private readonly exec: Exec;
  private readonly timeoutMs: number;

  constructor(options: NftRunnerOptions) {
    this.family = options.family;
    this.exec = options.exec ?? hostExec;
    this.timeoutMs = options.timeoutMs ?? 300_000;
  }

  /**
   * `nft -f -` with `text` on stdin: one atomic transaction. Not serialised: the kernel orders transactions,
   * and a listing running beside one sees the table before or after it.
   */
  async run(text: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.exec("nft", ["-f", "-"], { input: text, timeoutMs: this.timeoutMs, ...(signal ? { signal } : {}) });
    } catch (err) {
      const stderr = err instanceof CommandError ? err.result.stderr : "";
      const m = /^[^:\n]*:(\d+):\d+/m.exec(stderr);
      const line = m ? Number(m[1]) : undefined;
      const context = line === undefined ? "" : linesAround(text, line);
      throw new NftError(`nft -f failed${line === undefined ? "" : ` at line ${line}`}: ${(stderr || String(err)).trim().slice(0, 500)}`, line, context, err);
    }
  }

  private async list(what: string[], signal?: AbortSignal): Promise<string> {
    return (await this.exec("nft", what, { timeoutMs: this.timeoutMs, ...(signal ? { signal } : {}) })).stdout;
  }

  /** Whether our table exists (someone may have deleted it: `nft delete table ip kube-proxy`, `nft flush ruleset`). */
  async tableExists(signal?: AbortSignal): Promise<boolean> {
    const out = await this.list(["list", "tables", this.family], signal);
    return out.split("\n").some((l) => l.trim() === `table ${this.family} ${KUBE_PROXY_TABLE}`);
  }

  /** The chains of our table (empty when it does not exist). */
  async chains(signal?: AbortSignal): Promise<Set<string>> {
    return namesFromList(await this.list(["list", "chains", this.family], signal), "chain");
  }

  /** The sets of our table, without their elements. */
  async sets(signal?: AbortSignal): Promise<Set<string>> {
    return namesFromList(await this.list(["-t", "list", "sets", this.family], signal), "set");
  }

  /** Deletes our table if it exists. */
  async deleteTable(signal?: AbortSignal): Promise<boolean> {
    if (!(await this.tableExists(signal))) return false;
    await this.run(`delete table ${this.family} ${KUBE_PROXY_TABLE}\n`, signal);
    return true;
  }

  /**
   * Refuses the mode when it cannot work here (no silent fallback): `nft` missing or older than 1.0.1, a kernel
   * older than 5.13, or a kernel that rejects what the rules use (checked with `nft --check` on a scratch table,
   * which changes nothing).
   */
  async checkSupported(kernelRelease = release(), signal?: AbortSignal): Promise<void> {
    let out: string;
    try {
      out = (await this.exec("nft", ["--version"], signal ? { signal } : {})).stdout;
    } catch (err) {
      if (isDeckhandError(err, "NotFound")) throw unsupported("the nft command is not installed (package nftables)", err);
      throw unsupported(`nft --version failed: ${String(err)}`, err);
    }
    const v = parseNftVersion(out);
    if (!v || !versionAtLeast(v, MIN_NFT_VERSION)) throw unsupported(`nft ${v?.join(".") ?? `of unknown version (${out.trim()})`} is older than ${MIN_NFT_VERSION.join(".")}`);
    const k = parseKernelRelease(kernelRelease);
    if (!k || !versionAtLeast(k, MIN_KERNEL_VERSION)) throw unsupported(`kernel ${kernelRelease} is older than ${MIN_KERNEL_VERSION.join(".")}`);
    const t = `${this.family} kube-proxy-probe`;
    const addr = this.family === "ip" ? "ipv4_addr" : "ipv6_addr";
    const probe = [
      `add table ${t}`,
      `add chain ${t} c { type nat hook prerouting priority -100 ; }`,
      `add chain ${t} e`,
      `add map ${t} m { type ${addr} . inet_proto . inet_service : verdict ; }`,
      `add set ${t} s { type ${addr} ; flags dynamic,timeout ; timeout 10s ; }`,
      `add rule ${t} c ${this.family} daddr . meta l4proto . th dport vmap @m`,
      `add rule ${t} c fib daddr type local meta l4proto . th dport vmap { tcp . 1 : goto e }`,
      `add rule ${t} e numgen random mod 2 vmap { 0 : return , 1 : return }`,
      `add rule ${t} e update @s { ${this.family} saddr }`,
      `add rule ${t} e mark set mark or 0x4000`,
      `add rule ${t} e meta l4proto tcp dnat to ${this.family === "ip" ? "10.0.0.1:80" : "[fd00::1]:80"}`,
    ].join("\n");
    try {
      await this.exec("nft", ["--check", "-f", "-"], { input: `${probe}\n`, timeoutMs: 30_000, ...(signal ? { signal } : {}) });
    } catch (err) {
      const stderr = err instanceof CommandError ? err.result.stderr.trim() : String(err);
      throw unsupported(`the kernel rejects rules the nftables mode needs: ${stderr.slice(0, 500)}`, err);
    }
  }
}

function unsupported(what: string, cause?: unknown): DeckhandError {
  return new DeckhandError("FailedPrecondition", `mode nftables cannot run here: ${what}; use mode iptables`, cause === undefined ? {} : { cause });
}
