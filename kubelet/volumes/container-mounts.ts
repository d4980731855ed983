/**
 * A container's volumeMounts as CRI mounts (upstream's makeMounts, pkg/kubelet/kubelet_pods.go): each names a
 * volume the volume manager set up; `readOnly` (always for the API-data volumes), `subPath` or `subPathExpr`
 * (expanded with the container's environment) inside the volume, `mountPropagation` as CRI's propagation.
 *
 * A subPath must stay inside its volume: absolute paths and `..` elements are refused before anything is
 * looked at, then the path is resolved on the disk (symlinks followed) and refused if it leaves the volume; a
 * missing subPath is created, one element at a time, never through a symlink that leaves the volume. The
 * checked path is then pinned, as upstream's: bind-mounted by the volume manager under
 * `<pod>/volume-subpaths/<volume>/<container>/<index>` from a walk that follows no symlink, and that bind mount
 * is what the runtime mounts, so a container swapping a checked folder for a symlink afterwards cannot
 * redirect it (CVE-2017-1002101).
 */
import type { V1Container, V1VolumeMount } from "@kubernetes/client-node";
import { lstat, mkdir, realpath } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { DeckhandError, errorMessage, isDeckhandError } from "../../src-shared/errors.ts";
import type { Input, Mount, MountPropagation } from "../cri/types.ts";

/** A volume of the pod as set up on the node: where its content is, and whether every mount of it is read-only. */
export interface PodVolume {
  /** The plugin (emptyDir, hostPath, configMap...). */
  plugin: string;
  /** Where the content is on the node. */
  path: string;
  /** configMap, secret, downwardAPI and projected volumes are mounted read-only whatever the mount says. */
  readOnly: boolean;
}

/** A volumeMount that cannot be honoured: the container waits with CreateContainerConfigError. */
export class MountError extends DeckhandError {
  constructor(message: string) {
    super("InvalidArgument", message);
    this.name = "MountError";
  }
}

const PROPAGATION: Record<string, MountPropagation> = {
  None: "PROPAGATION_PRIVATE",
  HostToContainer: "PROPAGATION_HOST_TO_CONTAINER",
  Bidirectional: "PROPAGATION_BIDIRECTIONAL",
};

/** Upstream's subpath $(VAR) expansion: only the container's env; an unknown reference expands to nothing. */
export function expandSubPathExpr(expr: string, env: ReadonlyMap<string, string>): string {
  return expr.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => (whole === "$$" ? "$" : (env.get(name ?? "") ?? "")));
}

/** The subPath of a mount, checked as a path (not yet on the disk); "" when the mount has none. Pure. */
export function subPathOf(m: V1VolumeMount, container: string, env: ReadonlyMap<string, string>): string {
  if (m.subPath && m.subPathExpr) throw new MountError(`volumeMount ${JSON.stringify(m.name)} of container ${JSON.stringify(container)}: subPath and subPathExpr are mutually exclusive`);
  const sub = m.subPathExpr ? expandSubPathExpr(m.subPathExpr, env) : (m.subPath ?? "");
  if (sub === "") return "";
  if (sub.startsWith("/")) throw new MountError(`error SubPath \`${sub}\` must not be an absolute path`);
  if (sub.split("/").includes("..")) throw new MountError(`unable to provision SubPath \`${sub}\`: must not contain '..'`);
  return sub.replace(/\/+$/, "");
}

export function propagationOf(m: V1VolumeMount, privileged: boolean): MountPropagation {
  const p = m.mountPropagation ?? "None";
  const out = PROPAGATION[p];
  if (out === undefined) throw new MountError(`volumeMount ${JSON.stringify(m.name)}: invalid mountPropagation: ${JSON.stringify(p)}`);
  if (out === "PROPAGATION_BIDIRECTIONAL" && !privileged) throw new MountError("Bidirectional mount propagation is available only to privileged containers");
  return out;
}

const within = (base: string, path: string): boolean => path === base || path.startsWith(base.endsWith(sep) ? base : base + sep);

/**
 * Pins a checked subPath (`rel` below the volume's real path `root`, symlinks already resolved) for the
 * `index`-th volumeMount of `container`, and returns the node path the runtime is to mount.
 */
export type SubPathPinner = (p: { volume: string; container: string; index: number; root: string; rel: string }) => Promise<string>;

/**
 * The node path of `sub` inside the volume at `base`, every symlink resolved and checked to stay inside it;
 * what is missing is created (folders, 0755). `root`: the volume's own real path.
 */
export async function resolveSubPath(base: string, sub: string, describe: string): Promise<{ root: string; path: string }> {
  const root = await realpath(base);
  let current = root;
  for (const part of sub.split("/").filter((p) => p !== "" && p !== ".")) {
    const next = join(current, part);
    let st;
    try {
      st = await lstat(next);
    } catch {
      await mkdir(next, { mode: 0o755 });
      current = next;
      continue;
    }
    const resolved = st.isSymbolicLink() ? await realpath(next).catch(() => undefined) : next;
    if (resolved === undefined || !within(root, resolved)) throw new MountError(`failed to prepare subPath for ${describe}: subpath ${JSON.stringify(join(base, sub))} not within volume path ${JSON.stringify(base)}`);
    current = resolved;
  }
  return { root, path: current };
}

/**
 * The CRI mounts of `container`'s volumeMounts. `env`: the container's environment (for subPathExpr). `pin`:
 * how a checked subPath is pinned (without one, the checked path itself is mounted: unit tests).
 */
export async function containerVolumeMounts(container: V1Container, volumes: ReadonlyMap<string, PodVolume>, env: ReadonlyMap<string, string>, pin?: SubPathPinner): Promise<Input<Mount>[]> {
  const out: Input<Mount>[] = [];
  const privileged = container.securityContext?.privileged === true;
  for (const [index, m] of (container.volumeMounts ?? []).entries()) {
    const v = volumes.get(m.name);
    if (!v) throw new MountError(`cannot find volume ${JSON.stringify(m.name)} to mount into container ${JSON.stringify(container.name)}`);
    const propagation = propagationOf(m, privileged);
    const sub = subPathOf(m, container.name, env);
    let hostPath = v.path;
    if (sub !== "") {
      const describe = `volumeMount ${JSON.stringify(m.name)} of container ${JSON.stringify(container.name)}`;
      const { root, path } = await resolveSubPath(v.path, sub, describe);
      hostPath = path;
      if (pin) {
        try {
          hostPath = await pin({ volume: m.name, container: container.name, index, root, rel: relative(root, path) });
        } catch (err) {
          // A symlink met on the pinned walk: the volume changed under the check; the container waits as for an escape.
          if (isDeckhandError(err, "InvalidArgument")) throw new MountError(`failed to prepare subPath for ${describe}: ${errorMessage(err)}`);
          throw err;
        }
      }
    }
    out.push({ container_path: m.mountPath, host_path: hostPath, readonly: v.readOnly || m.readOnly === true, propagation, selinux_relabel: false });
  }
  return out;
}
