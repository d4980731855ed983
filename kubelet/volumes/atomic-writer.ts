/**
 * Upstream's AtomicWriter (pkg/volume/util/atomic_writer.go): a volume's files are written into a fresh
 * timestamped folder `..2006_01_02_15_04_05.<random>`, then the `..data` symlink is swapped over to it with one
 * rename, and every top-level name the user sees is a symlink through `..data`. A reader therefore sees the
 * old set of files or the new one, never half of each; the old folder goes after the swap. A payload equal to
 * what `..data` already shows writes nothing.
 */
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, stat, symlink, writeFile, chmod } from "node:fs/promises";
import { dirname, join } from "node:path";
import { checkPath, type Payload } from "./payload.ts";

export const DATA_DIR = "..data";
const DATA_DIR_TMP = "..data_tmp";

/** Go's "..2006_01_02_15_04_05." layout, in UTC. */
export function timestampPrefix(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, "0");
  return `..${d.getUTCFullYear()}_${p(d.getUTCMonth() + 1)}_${p(d.getUTCDate())}_${p(d.getUTCHours())}_${p(d.getUTCMinutes())}_${p(d.getUTCSeconds())}.`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Files under `dir` by relative path (with their permission bits). */
async function readTree(dir: string, prefix = ""): Promise<Map<string, { data: Buffer; mode: number }>> {
  const out = new Map<string, { data: Buffer; mode: number }>();
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix === "" ? e.name : `${prefix}/${e.name}`;
    const full = join(dir, e.name);
    if (e.isDirectory()) for (const [k, v] of await readTree(full, rel)) out.set(k, v);
    else out.set(rel, { data: await readFile(full), mode: (await stat(full)).mode & 0o7777 });
  }
  return out;
}

function samePayload(payload: Payload, current: Map<string, { data: Buffer; mode: number }>): boolean {
  if (payload.size !== current.size) return false;
  for (const [path, f] of payload) {
    const c = current.get(path);
    if (!c || c.mode !== f.mode || !c.data.equals(f.data)) return false;
  }
  return true;
}

const topLevel = (path: string): string => path.split("/")[0] ?? path;

/**
 * Writes `payload` into `target` atomically (see above). Returns whether anything changed. `now` names the
 * timestamped folder.
 */
export async function writeAtomically(target: string, payload: Payload, now: number = Date.now()): Promise<boolean> {
  for (const path of payload.keys()) checkPath(path, "path");
  await mkdir(target, { recursive: true });
  const dataLink = join(target, DATA_DIR);
  const oldTs = (await exists(dataLink)) ? await readlink(dataLink) : undefined;
  const oldTsPath = oldTs === undefined ? undefined : join(target, oldTs);
  const oldPaths = new Set<string>();
  if (oldTsPath && (await exists(oldTsPath))) {
    const current = await readTree(oldTsPath);
    for (const k of current.keys()) oldPaths.add(topLevel(k));
    if (samePayload(payload, current)) {
      await createUserVisible(target, payload);
      return false;
    }
  }
  const tsDir = await mkdtemp(join(target, timestampPrefix(now)));
  await chmod(tsDir, 0o755);
  for (const [path, f] of payload) {
    const file = join(tsDir, path);
    await mkdir(dirname(file), { recursive: true, mode: 0o755 });
    await writeFile(file, f.data, { mode: f.mode });
    await chmod(file, f.mode); // writeFile's mode passes through the umask
  }
  const tmpLink = join(target, DATA_DIR_TMP);
  await rm(tmpLink, { force: true });
  await symlink(tsDir.slice(target.length + 1), tmpLink);
  await rename(tmpLink, dataLink);
  await createUserVisible(target, payload);
  const keep = new Set([...payload.keys()].map(topLevel));
  for (const name of oldPaths) if (!keep.has(name)) await rm(join(target, name), { force: true, recursive: false });
  if (oldTsPath) await rm(oldTsPath, { recursive: true, force: true });
  return true;
}

/** The user-visible names: `<top>` → `..data/<top>` for every top-level element of the payload. */
async function createUserVisible(target: string, payload: Payload): Promise<void> {
  for (const top of new Set([...payload.keys()].map(topLevel))) {
    const link = join(target, top);
    if (await exists(link)) continue;
    await symlink(join(DATA_DIR, top), link);
  }
}
