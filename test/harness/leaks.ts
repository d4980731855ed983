/**
 * What e2e suites may leave on the machine, and the check that fails the run when they do. Every sandbox is
 * named with SANDBOX_PREFIX, so its netns, folder, cgroups and processes can be found by name alone.
 */
import { existsSync } from "node:fs";
import { readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../../src-shared/exec.ts";
import { cgroupHierarchies } from "../../src-shared/cgroups.ts";

export const SANDBOX_PREFIX = "dh-";
const OWNER_FILE = "owner.pid";

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

/** Everything sandboxes left behind, as human-readable lines (empty when clean). */
export async function findLeaks(baseline: Baseline): Promise<string[]> {
  const leaks: string[] = [];
  for (const e of await readdir("/run/netns").catch(() => [])) if (e.startsWith(SANDBOX_PREFIX)) leaks.push(`network namespace ${e}`);
  for (const e of await readdir("/tmp").catch(() => [])) if (e.startsWith(SANDBOX_PREFIX)) leaks.push(`folder /tmp/${e}`);
  const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
  for (const line of mountinfo.split("\n")) if (line.includes(`/tmp/${SANDBOX_PREFIX}`)) leaks.push(`mount ${line.split(" ")[4] ?? line}`);
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")).replaceAll("\0", " ");
    if (cmdline.includes(`/tmp/${SANDBOX_PREFIX}`)) leaks.push(`process ${entry}: ${cmdline.slice(0, 200)}`);
  }
  for (const h of await cgroupHierarchies()) {
    for (const e of await readdir(h.mountPoint).catch(() => [])) {
      if (e.startsWith(SANDBOX_PREFIX) || e === "kubepods" || e === "kubepods.slice") leaks.push(`cgroup ${join(h.mountPoint, e)}`);
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
