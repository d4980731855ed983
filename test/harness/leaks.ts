/**
 * What e2e suites may leave on the machine, and the check that fails the run when they do. Every sandbox is
 * named with SANDBOX_PREFIX, so its netns, folder, cgroups and processes can be found by name alone.
 */
import { existsSync } from "node:fs";
import { readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { run } from "../../src-shared/exec.ts";
import { cgroupHierarchies } from "../../src-shared/cgroups.ts";

export const SANDBOX_PREFIX = "dh-";
const OWNER_FILE = "owner.pid";
const RUN_ENV = "DECKHAND_E2E_RUN";

/**
 * This run's tag: set once by the e2e global setup and inherited by every test worker, so each name a run
 * makes starts with `dh-<run>` and the leak check can tell this run's leftovers from live sandboxes of runs
 * going on beside it. Outside a test run (demo, benchmarks) each process has its own.
 */
export function runTag(): string {
  process.env[RUN_ENV] ??= randomBytes(2).toString("hex");
  return process.env[RUN_ENV];
}

/** A unique name for anything a test creates (netns, folder, cgroup, veth ≤ 15 chars): `dh-<run 4><rand 4>`. */
export function uniqueName(): string {
  return `${SANDBOX_PREFIX}${runTag()}${randomBytes(2).toString("hex")}`;
}

/** Records which process owns a sandbox folder, so a later run can tell a crashed run's leftovers from a live one. */
export async function writeOwnerFile(dir: string): Promise<void> {
  await writeFile(join(dir, OWNER_FILE), String(process.pid));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sandbox names whose folder exists but whose owner process is gone (a crashed or killed run). */
export async function staleSandboxes(): Promise<string[]> {
  const stale: string[] = [];
  const candidates = new Set<string>();
  for (const e of await readdir("/tmp").catch(() => [])) if (e.startsWith(SANDBOX_PREFIX)) candidates.add(e);
  for (const e of await readdir("/run/netns").catch(() => [])) if (e.startsWith(SANDBOX_PREFIX)) candidates.add(e);
  for (const name of candidates) {
    const owner = Number(await readFile(join("/tmp", name, OWNER_FILE), "utf8").catch(() => "0"));
    if (owner) {
      if (!alive(owner)) stale.push(name);
      continue;
    }
    // No owner file: a sandbox still being created, or one from a crash before it wrote one. Only the old ones.
    const since = await stat(join("/tmp", name)).then((s) => Date.now() - s.mtimeMs, () => Infinity);
    if (since > 30 * 60_000) stale.push(name);
  }
  return stale;
}

export interface Baseline {
  varLibCni: string[];
  runContainerd: string[];
}

async function listTree(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      out.push(p);
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out.sort();
}

/** What the host holds in the paths tests must leave as found, before the suites run. */
export async function takeBaseline(): Promise<Baseline> {
  return { varLibCni: await listTree("/var/lib/cni"), runContainerd: await listTree("/run/containerd") };
}

/** The sandbox a path or command line belongs to, from the `/tmp/dh-xxxx` it names. */
function sandboxNamed(text: string): string | undefined {
  return new RegExp(`/tmp/(${SANDBOX_PREFIX}[\\w-]+)`).exec(text)?.[1];
}

/** Whether a name belongs to a run other than this one (or to this run's own live process). */
async function ownerAlive(name: string): Promise<boolean> {
  if (!name.startsWith(`${SANDBOX_PREFIX}${runTag()}`)) return true;
  const owner = Number(await readFile(join("/tmp", name, OWNER_FILE), "utf8").catch(() => "0"));
  return owner > 0 && owner !== process.pid && alive(owner);
}

/**
 * Everything this run's sandboxes left behind, as human-readable lines (empty when clean). Names of other
 * runs (another tag) are theirs to clean; every owner of this run has exited by the time the check runs.
 */
export async function findLeaks(baseline: Baseline): Promise<string[]> {
  const leaks: string[] = [];
  const live = new Map<string, boolean>();
  const isLive = async (name: string | undefined): Promise<boolean> => {
    if (name === undefined) return false;
    if (!live.has(name)) live.set(name, await ownerAlive(name));
    return live.get(name) ?? false;
  };
  for (const e of await readdir("/run/netns").catch(() => [])) if (e.startsWith(SANDBOX_PREFIX) && !(await isLive(e))) leaks.push(`network namespace ${e}`);
  for (const e of await readdir("/tmp").catch(() => [])) if (e.startsWith(SANDBOX_PREFIX) && !(await isLive(e))) leaks.push(`folder /tmp/${e}`);
  const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
  for (const line of mountinfo.split("\n")) {
    if (line.includes(`/tmp/${SANDBOX_PREFIX}`) && !(await isLive(sandboxNamed(line)))) leaks.push(`mount ${line.split(" ")[4] ?? line}`);
  }
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")).replaceAll("\0", " ");
    if (cmdline.includes(`/tmp/${SANDBOX_PREFIX}`) && !(await isLive(sandboxNamed(cmdline)))) leaks.push(`process ${entry}: ${cmdline.slice(0, 200)}`);
  }
  for (const h of await cgroupHierarchies()) {
    for (const e of await readdir(h.mountPoint).catch(() => [])) {
      if ((e.startsWith(SANDBOX_PREFIX) && !(await isLive(e))) || e === "kubepods" || e === "kubepods.slice") leaks.push(`cgroup ${join(h.mountPoint, e)}`);
    }
  }
  for (const [dir, before] of [["/var/lib/cni", baseline.varLibCni], ["/run/containerd", baseline.runContainerd]] as const) {
    const known = new Set(before);
    for (const p of await listTree(dir)) if (!known.has(p)) leaks.push(`file ${p}`);
  }
  const rules = await run("iptables-save", [], { allowFailure: true }).catch(() => undefined);
  const kubeRules = rules?.stdout.split("\n").filter((l) => l.startsWith("-A KUBE-")).length ?? 0;
  if (kubeRules > 0) leaks.push(`host iptables: ${kubeRules} KUBE-* rules`);
  return leaks;
}
