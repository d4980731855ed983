/**
 * The iptables side of the proxier: one `iptables-restore --noflush --counters` per sync (input on stdin, the
 * xtables lock waited for with `-w 5 -W 100000` as upstream's pkg/util/iptables does), `iptables-save` to find
 * our chains and the jump rules in the built-in chains, and the canary check that notices when someone else
 * flushed the tables.
 *
 * Every command goes through an `Exec`, so tests and the benchmark run them inside a network namespace they
 * created (`netnsExec`) and never touch the host's tables.
 */
import { run, CommandError, type RunOptions, type RunResult } from "../src-shared/exec.ts";
import { DeckhandError } from "../src-shared/errors.ts";
import { KUBE_PROXY_CANARY, jumpRuleArgs, type JumpRule, type Table } from "./rules.ts";

export type Exec = (file: string, args: readonly string[], options?: RunOptions) => Promise<RunResult>;

/** Runs commands directly (production: kube-proxy runs in the node's network namespace). */
export const hostExec: Exec = (file, args, options) => run(file, args, options);

/** Runs every command inside the named network namespace (tests and benchmarks). */
export function netnsExec(netnsName: string): Exec {
  const path = netnsName.startsWith("/") ? netnsName : `/run/netns/${netnsName}`;
  return (file, args, options) => run("nsenter", [`--net=${path}`, "--", file, ...args], options);
}

/** Upstream's wait flags: wait up to 5 s for the xtables lock, polling every 100 ms. */
export const WAIT_FLAGS = ["-w", "5", "-W", "100000"] as const;
/** iptables exits 4 for "resource problem", e.g. it could not get the lock in time. */
const RESOURCE_PROBLEM = 4;

/** iptables-restore failed; `line` is the input line it rejected when it said so. */
export class RestoreError extends DeckhandError {
  readonly line: number | undefined;
  readonly context: string;
  constructor(message: string, line: number | undefined, context: string, cause: unknown) {
    super("Internal", message, { cause, details: { line, context } });
    this.name = "RestoreError";
    this.line = line;
    this.context = context;
  }
}

/** Chain names declared in iptables-save output (`:NAME POLICY [p:b]`). */
export function chainsFromSave(save: string): Set<string> {
  const chains = new Set<string>();
  for (const line of save.split("\n")) {
    if (line.charCodeAt(0) !== 58 /* ':' */) continue;
    const sp = line.indexOf(" ");
    chains.add(sp < 0 ? line.slice(1) : line.slice(1, sp));
  }
  return chains;
}

/** Whether a saved rule is this jump: same built-in chain and target, carrying its comment. */
function isJumpLine(line: string, j: JumpRule): boolean {
  if (!line.startsWith(`-A ${j.chain} `)) return false;
  if (!line.endsWith(` -j ${j.target}`) && !line.includes(` -j ${j.target} `)) return false;
  if (j.comment && !line.includes(j.comment)) return false;
  return true;
}

/** Jump rules of `wanted` that the saved tables (by table name) lack. */
export function missingJumps(saves: Partial<Record<Table, string>>, wanted: readonly JumpRule[]): JumpRule[] {
  const lines: Partial<Record<Table, string[]>> = {};
  const missing: JumpRule[] = [];
  for (const j of wanted) {
    const l = (lines[j.table] ??= (saves[j.table] ?? "").split("\n"));
    if (!l.some((line) => isJumpLine(line, j))) missing.push(j);
  }
  return missing;
}

/** The input lines around a failing line (1-based), for the log. */
export function linesAround(text: string, line: number, count = 3): string {
  const lines = text.split("\n");
  const from = Math.max(0, line - 1 - count);
  const to = Math.min(lines.length, line + count);
  return lines
    .slice(from, to)
    .map((l, i) => `${from + i + 1}${from + i + 1 === line ? "*" : " "} ${l}`)
    .join("\n");
}

export interface IptablesRunnerOptions {
  exec?: Exec;
  /** Kill a hung iptables/iptables-save command after this long (default 5 minutes, as upstream's rule checks). */
  timeoutMs?: number;
  /**
   * Kill a hung iptables-restore after this long (default 30 minutes). Upstream sets none; iptables-nft 1.8.9
   * needs minutes for a full restore of 10,000 Services (its cost grows with rules × chains).
   */
  restoreTimeoutMs?: number;
}

export class IptablesRunner {
  private readonly exec: Exec;
  private readonly timeoutMs: number;
  private readonly restoreTimeoutMs: number;
  /** One iptables command at a time from this process, as upstream's runner mutex. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: IptablesRunnerOptions = {}) {
    this.exec = options.exec ?? hostExec;
    this.timeoutMs = options.timeoutMs ?? 300_000;
    this.restoreTimeoutMs = options.restoreTimeoutMs ?? 1_800_000;
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** `iptables-restore -w 5 -W 100000 --noflush --counters` with `text` on stdin. */
  restore(text: string, signal?: AbortSignal): Promise<void> {
    return this.serialize(async () => {
      try {
        await this.exec("iptables-restore", [...WAIT_FLAGS, "--noflush", "--counters"], {
          input: text,
          timeoutMs: this.restoreTimeoutMs,
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        const stderr = err instanceof CommandError ? err.result.stderr : "";
        const m = /line (\d+) failed/.exec(stderr);
        const line = m ? Number(m[1]) : undefined;
        const context = line === undefined ? "" : linesAround(text, line);
        throw new RestoreError(`iptables-restore failed${line === undefined ? "" : ` at line ${line}`}: ${(stderr || String(err)).trim().slice(0, 500)}`, line, context, err);
      }
    });
  }

  /** `iptables-save -t <table>`. */
  save(table: Table, signal?: AbortSignal): Promise<string> {
    return this.serialize(async () => {
      const r = await this.exec("iptables-save", ["-t", table], { timeoutMs: this.timeoutMs, ...(signal ? { signal } : {}) });
      return r.stdout;
    });
  }

  /** Whether `chain` exists in `table` (`iptables -S CHAIN`); throws when iptables could not answer. */
  chainExists(table: Table, chain: string, signal?: AbortSignal): Promise<boolean> {
    return this.serialize(async () => {
      const r = await this.exec("iptables", [...WAIT_FLAGS, "-t", table, "-S", chain], {
        allowFailure: true,
        timeoutMs: this.timeoutMs,
        ...(signal ? { signal } : {}),
      });
      if (r.code === RESOURCE_PROBLEM) throw new DeckhandError("Unavailable", `iptables -t ${table} -S ${chain}: ${r.stderr.trim()}`);
      return r.code === 0;
    });
  }

  /** Whether a jump rule is in place (`iptables -C`). */
  ruleExists(j: JumpRule, signal?: AbortSignal): Promise<boolean> {
    return this.serialize(async () => {
      const args = splitArgs(jumpRuleArgs(j));
      const r = await this.exec("iptables", [...WAIT_FLAGS, "-t", j.table, "-C", j.chain, ...args], {
        allowFailure: true,
        timeoutMs: this.timeoutMs,
        ...(signal ? { signal } : {}),
      });
      if (r.code === RESOURCE_PROBLEM) throw new DeckhandError("Unavailable", `iptables -t ${j.table} -C ${j.chain}: ${r.stderr.trim()}`);
      return r.code === 0;
    });
  }

  /**
   * The canary check: false when any table lost KUBE-PROXY-CANARY (upstream's canary: a table was flushed and
   * its chains deleted, as a firewall reload does) or one of `jumps` is gone (a flush of the rules alone,
   * `iptables -t nat -F`, leaves the chains but drops the jumps into ours).
   */
  async canaryIntact(jumps: readonly JumpRule[], signal?: AbortSignal): Promise<boolean> {
    for (const table of ["mangle", "nat", "filter"] as const) {
      if (!(await this.chainExists(table, KUBE_PROXY_CANARY, signal))) return false;
    }
    for (const j of jumps) if (!(await this.ruleExists(j, signal))) return false;
    return true;
  }

  /** `iptables --version` ≥ 1.6.2 supports MASQUERADE --random-fully. */
  async supportsRandomFully(signal?: AbortSignal): Promise<boolean> {
    const r = await this.exec("iptables", ["--version"], { allowFailure: true, ...(signal ? { signal } : {}) });
    const m = /v(\d+)\.(\d+)\.(\d+)/.exec(r.stdout);
    if (!m) return false;
    const v = [Number(m[1]), Number(m[2]), Number(m[3])] as const;
    return v[0] > 1 || (v[0] === 1 && (v[1] > 6 || (v[1] === 6 && v[2] >= 2)));
  }
}

/** Splits rule arguments the way a shell would for our own double-quoted comments. */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2] ?? "");
  return out;
}

/** Reads a sysctl (`sysctl -n`), undefined when it does not exist. */
export async function readSysctl(exec: Exec, name: string): Promise<string | undefined> {
  const r = await exec("sysctl", ["-n", name], { allowFailure: true });
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/** Writes a sysctl (`sysctl -w name=value`); throws with sysctl's message on failure. */
export async function writeSysctl(exec: Exec, name: string, value: string | number): Promise<void> {
  await exec("sysctl", ["-q", "-w", `${name}=${value}`]);
}
