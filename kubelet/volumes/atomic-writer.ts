/**
 * Upstream's AtomicWriter (pkg/volume/util/atomic_writer.go): a volume's files are written into a fresh
 * timestamped folder `..2006_01_02_15_04_05.<random>`, then the `..data` symlink is swapped over to it with one
 * rename, and every top-level name the user sees is a symlink through `..data`. A reader therefore sees the
 * old set of files or the new one, never half of each; the old folder goes after the swap. A payload equal to
 * what `..data` already shows writes nothing.
 *
 * Synchronous on purpose: a volume's payload is a few small files (a ConfigMap or Secret holds at most 1 MiB)
 * written to tmpfs or the page cache, some twenty syscalls of microseconds each, while the same steps as
 * promises cost a thread-pool round trip apiece, which under load added up to tens of milliseconds per pod
 * (measured with the pod-startup benchmark's volume variant).
 */
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
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

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Removes a symlink (dangling ones too, which rmSync leaves behind as it stats the target). */
function unlinkIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

/** Files under `dir` by relative path (with their permission bits). */
function readTree(dir: string, prefix = ""): Map<string, { data: Buffer; mode: number }> {
  const out = new Map<string, { data: Buffer; mode: number }>();
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix === "" ? e.name : `${prefix}/${e.name}`;
    const full = join(dir, e.name);
    if (e.isDirectory()) for (const [k, v] of readTree(full, rel)) out.set(k, v);
    else out.set(rel, { data: readFileSync(full), mode: statSync(full).mode & 0o7777 });
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
export function writeAtomically(target: string, payload: Payload, now: number = Date.now()): boolean {
  for (const path of payload.keys()) checkPath(path, "path");
  mkdirSync(target, { recursive: true });
  const dataLink = join(target, DATA_DIR);
  const oldTs = exists(dataLink) ? readlinkSync(dataLink) : undefined;
  const oldTsPath = oldTs === undefined ? undefined : join(target, oldTs);
  const oldPaths = new Set<string>();
  if (oldTsPath && exists(oldTsPath)) {
    const current = readTree(oldTsPath);
    for (const k of current.keys()) oldPaths.add(topLevel(k));
    if (samePayload(payload, current)) {
      createUserVisible(target, payload);
      return false;
    }
  }
  const tsDir = mkdtempSync(join(target, timestampPrefix(now)));
  chmodSync(tsDir, 0o755);
  for (const [path, f] of payload) {
    const file = join(tsDir, path);
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    writeFileSync(file, f.data, { mode: f.mode });
    chmodSync(file, f.mode); // writeFile's mode passes through the umask
  }
  const tmpLink = join(target, DATA_DIR_TMP);
  unlinkIfThere(tmpLink);
  symlinkSync(tsDir.slice(target.length + 1), tmpLink);
  renameSync(tmpLink, dataLink);
  createUserVisible(target, payload);
  const keep = new Set([...payload.keys()].map(topLevel));
  for (const name of oldPaths) if (!keep.has(name)) unlinkIfThere(join(target, name));
  if (oldTsPath) rmSync(oldTsPath, { recursive: true, force: true });
  return true;
}

/** The user-visible names: `<top>` → `..data/<top>` for every top-level element of the payload. */
function createUserVisible(target: string, payload: Payload): void {
  for (const top of new Set([...payload.keys()].map(topLevel))) {
    const link = join(target, top);
    if (exists(link)) continue;
    symlinkSync(join(DATA_DIR, top), link);
  }
}
