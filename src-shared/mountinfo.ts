/**
 * /proc/<pid>/mountinfo, parsed once for everyone who reads the mount table (the kubelet's volumes, the stats
 * collector's filesystems, the cgroup hierarchies). Each line is
 * `<id> <parent> <maj:min> <root> <mount point> <mount options> [optional fields...] - <fs type> <source> <super options>`
 * (proc(5)); paths escape space, tab, newline and backslash as octal (`\040`). Pure.
 */

export interface MountInfo {
  mountPoint: string;
  fsType: string;
  source: string;
  /** The super block options (`rw,size=1024k,...`). */
  superOptions: string;
}

/** Decodes the octal escapes mountinfo uses for spaces and the like (`\040`). */
export function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const mountPoint = line.slice(0, sep).split(" ")[4];
    if (mountPoint === undefined) continue;
    const [fsType = "", source = "", superOptions = ""] = line.slice(sep + 3).split(" ");
    out.push({ mountPoint: unescapeMountPath(mountPoint), fsType, source, superOptions });
  }
  return out;
}

/** Mount points at `dir` or under it, deepest first, each once. */
export function mountPointsIn(mounts: readonly MountInfo[], dir: string): string[] {
  const base = dir.replace(/\/+$/, "");
  const found = new Set<string>();
  for (const m of mounts) if (m.mountPoint === base || m.mountPoint.startsWith(`${base}/`)) found.add(m.mountPoint);
  return [...found].sort((a, b) => b.length - a.length);
}

/** The deepest mount that holds `path` (the last one mounted there when several are stacked). */
export function mountOf(mounts: readonly MountInfo[], path: string): MountInfo | undefined {
  let best: MountInfo | undefined;
  for (const m of mounts) {
    const inside = m.mountPoint === "/" || path === m.mountPoint || path.startsWith(`${m.mountPoint}/`);
    if (inside && (best === undefined || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}
