/**
 * The kubelet's volume manager (upstream's pkg/kubelet/volumemanager, without attach/detach: no plugin here
 * needs it). The desired state is the pod's spec; the actual state is the node's folders and mounts under
 * `<root-dir>/pods/<uid>/volumes` (layout.ts), which survive a kubelet restart and are adopted as they are.
 *
 * - `setUpPod` brings every volume of a pod to its desired state before any container starts, and again on
 *   every sync of the pod: emptyDir folders (memory-backed ones on a tmpfs sized as upstream), hostPath type
 *   checks, and the content of configMap, secret, downwardAPI and projected volumes written by the atomic
 *   writer (secret, downwardAPI and projected on a tmpfs). A later sync rewrites what changed (an updated
 *   ConfigMap or Secret, a token due for refresh); what did not change is not written. A volume that cannot
 *   be set up throws a VolumeSetUpError naming it: the pod waits (FailedMount).
 * - `tearDownPod` unmounts and removes the volumes of a pod whose containers are all gone; `removePod` its
 *   whole folder once the pod is deleted; `cleanupOrphans` (housekeeping) does both for pod folders no pod
 *   owns, e.g. of pods deleted while the kubelet was down.
 */
import type { V1Pod, V1Volume, V1Container } from "@kubernetes/client-node";
import { chmodSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { DeckhandError, errorMessage, isDeckhandError } from "../../src-shared/errors.ts";
import type { Logger } from "../../src-shared/log.ts";
import { quantityValue } from "../../src-shared/quantity.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import { writeAtomically } from "./atomic-writer.ts";
import type { PodVolume } from "./container-mounts.ts";
import { checkHostPathType } from "./host-path.ts";
import { setVolumeOwnership } from "./ownership.ts";
import { pluginOf, podDir, podsDir, podSubPathsDir, podVolumes, podVolumesDir } from "./layout.ts";
import type { Mounter } from "./mounter.ts";
import { VolumeError, configMapData, downwardPayload, keysPayload, payloadKey, secretData, type ApiData, type Payload } from "./payload.ts";
import type { Token, TokenRequestSpec } from "../objects/token-manager.ts";

/** Where the volume manager reads ConfigMaps, Secrets and tokens (the watch managers and the token manager). */
export interface VolumeSources {
  /** The objects `pod` references now: their watches start (or stop) accordingly. */
  register(pod: V1Pod): void;
  unregister(uid: string): void;
  /** undefined: the object does not exist. */
  configMap(namespace: string, name: string, signal?: AbortSignal): Promise<{ data?: Record<string, string>; binaryData?: Record<string, string> } | undefined>;
  secret(namespace: string, name: string, signal?: AbortSignal): Promise<{ data?: Record<string, string> } | undefined>;
  token(spec: TokenRequestSpec, signal?: AbortSignal): Promise<Token>;
}

/** A volume of the pod could not be set up: upstream's FailedMount, with its message. */
export class VolumeSetUpError extends DeckhandError {
  readonly volume: string;
  constructor(volume: string, cause: unknown) {
    super(isDeckhandError(cause) ? cause.code : "Internal", `MountVolume.SetUp failed for volume ${JSON.stringify(volume)} : ${errorMessage(cause)}`, { cause });
    this.name = "VolumeSetUpError";
    this.volume = volume;
  }
}

export interface VolumeManagerOptions {
  rootDir: string;
  sources: VolumeSources;
  mounter: Mounter;
  node: () => { memoryCapacityBytes: number; cpuCapacityMilli: number };
  logger: Logger;
  clock?: Clock;
}

export interface PodVolumesSetUp {
  volumes: Map<string, PodVolume>;
  /** When a token of the pod must be fetched again (ms since the epoch): the pod's next sync by then. */
  refreshAt?: number;
}

/**
 * The size of a memory-backed emptyDir, upstream's calculateEmptyDirMemorySize: the pod's memory limit (the
 * node's memory when some container has none), capped by `sizeLimit` when that is smaller. Pure.
 */
export function memoryVolumeSize(pod: V1Pod, sizeLimit: string | number | undefined, nodeMemoryBytes: number): number {
  const containers: V1Container[] = pod.spec?.containers ?? [];
  const limits = containers.map((c) => (c.resources?.limits as Record<string, string | number> | undefined)?.["memory"]);
  let podLimit = limits.length > 0 && limits.every((l) => l !== undefined) ? limits.reduce<number>((s, l) => s + quantityValue(l ?? 0), 0) : nodeMemoryBytes;
  for (const c of pod.spec?.initContainers ?? []) {
    const l = (c.resources?.limits as Record<string, string | number> | undefined)?.["memory"];
    if (l !== undefined) podLimit = Math.max(podLimit, quantityValue(l));
  }
  podLimit = Math.min(podLimit, nodeMemoryBytes);
  const size = sizeLimit === undefined ? 0 : quantityValue(sizeLimit);
  return size > 0 && size < podLimit ? size : podLimit;
}

/** The API-data volumes live on a tmpfs, as upstream wraps them in a memory emptyDir (secrets never on disk). */
const ON_TMPFS = new Set(["secret", "downwardAPI", "projected"]);

export class VolumeManager {
  private readonly o: VolumeManagerOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  /** What was last written into each API-data volume folder (payloadKey): an equal payload is not written again. */
  private readonly written = new Map<string, string>();
  /** tmpfs mounts this kubelet run has made or found (no mountinfo read on every sync). */
  private readonly tmpfs = new Set<string>();
  /** emptyDir folders whose fsGroup ownership this kubelet run has applied. */
  private readonly owned = new Set<string>();

  constructor(options: VolumeManagerOptions) {
    this.o = options;
    this.log = options.logger.child({ component: "volume-manager" });
    this.clock = options.clock ?? systemClock;
  }

  /** The pod's volumes as the containers mount them (no I/O). */
  volumesOf(pod: V1Pod): Map<string, PodVolume> {
    return podVolumes(this.o.rootDir, pod);
  }

  /**
   * Pins a checked subPath of the pod's `index`-th volumeMount of `container` by a bind mount at upstream's
   * `<pod>/volume-subpaths/<volume>/<container>/<index>` (see Mounter.bindPinned), made anew for each container
   * created (a restarted container's old pin is replaced). Returns the path the runtime mounts.
   */
  async pinSubPath(uid: string, p: { volume: string; container: string; index: number; root: string; rel: string }, signal?: AbortSignal): Promise<string> {
    const target = join(podSubPathsDir(this.o.rootDir, uid), p.volume, p.container, String(p.index));
    if ((await this.o.mounter.mountPointsUnder(target)).includes(target)) await this.o.mounter.unmount(target, signal);
    // The mount point is of the pinned path's type: a folder, or an empty file for a file.
    const isDir = statSync(join(p.root, p.rel)).isDirectory();
    mkdirSync(dirname(target), { recursive: true, mode: 0o750 });
    rmSync(target, { recursive: true, force: true }); // not a mount point (checked above): what a previous pin left
    if (isDir) mkdirSync(target, { mode: 0o750 });
    else writeFileSync(target, "", { mode: 0o640 });
    await this.o.mounter.bindPinned(p.root, p.rel, target, signal);
    return target;
  }

  async setUpPod(pod: V1Pod, signal?: AbortSignal): Promise<PodVolumesSetUp> {
    const volumes = this.volumesOf(pod);
    const result: PodVolumesSetUp = { volumes };
    // The objects the pod references (its volumes' and its env's) are watched from its first sync on.
    this.o.sources.register(pod);
    if ((pod.spec?.volumes ?? []).length === 0) return result;
    // All at once, as upstream's operation executor mounts each volume on its own: one pod's ConfigMap, Secret
    // and token fetches and its tmpfs mounts overlap instead of adding up. The first failure in spec order is told.
    const specVolumes = pod.spec?.volumes ?? [];
    const outcomes = await Promise.allSettled(
      specVolumes.map((v) => {
        const target = volumes.get(v.name);
        return target ? this.setUp(pod, v, target, signal) : Promise.reject(new VolumeError("InvalidArgument", "volume type is not supported by this kubelet"));
      }),
    );
    for (const [i, o] of outcomes.entries()) {
      if (o.status === "fulfilled") {
        if (o.value !== undefined) result.refreshAt = Math.min(result.refreshAt ?? Infinity, o.value);
        continue;
      }
      const err: unknown = o.reason;
      if (signal?.aborted || isDeckhandError(err, "Cancelled")) throw err;
      throw new VolumeSetUpError(specVolumes[i]?.name ?? "", err);
    }
    return result;
  }

  private async setUp(pod: V1Pod, v: V1Volume, target: PodVolume, signal?: AbortSignal): Promise<number | undefined> {
    const plugin = pluginOf(v);
    if (plugin === "hostPath") {
      await checkHostPathType(v.hostPath?.path ?? "", v.hostPath?.type);
      return undefined;
    }
    if (plugin === "emptyDir") {
      const medium = v.emptyDir?.medium ?? "";
      if (medium !== "" && medium !== "Memory") throw new VolumeError("InvalidArgument", `emptyDir.medium: Unsupported value: ${JSON.stringify(medium)}`);
      const fresh = this.ensureDir(target.path, 0o777);
      if (medium === "Memory") await this.ensureTmpfs(target.path, fresh, memoryVolumeSize(pod, v.emptyDir?.sizeLimit, this.o.node().memoryCapacityBytes), signal);
      if (fresh || medium === "Memory") chmodSync(target.path, 0o777); // upstream's emptyDir is world-writable
      // Once per volume and kubelet run, as upstream sets ownership when it sets the volume up, not on every sync.
      if (!this.owned.has(target.path)) {
        await this.applyFsGroup(pod, target.path, false);
        this.owned.add(target.path);
      }
      return undefined;
    }
    const fresh = this.ensureDir(target.path, 0o755);
    if (plugin !== undefined && ON_TMPFS.has(plugin)) await this.ensureTmpfs(target.path, fresh, memoryVolumeSize(pod, undefined, this.o.node().memoryCapacityBytes), signal);
    const { payload, refreshAt } = await this.payloadOf(pod, v, signal);
    const key = payloadKey(payload);
    if (this.written.get(target.path) !== key) {
      const changed = writeAtomically(target.path, payload, this.clock.now());
      // New files: the group again (the walk is short, these volumes are small).
      if (changed) await this.applyFsGroup(pod, target.path, true, true);
      if (changed) this.log.info({ pod: `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`, volume: v.name, files: payload.size }, "volume content written");
      this.written.set(target.path, key);
    }
    return refreshAt;
  }

  private async payloadOf(pod: V1Pod, v: V1Volume, signal?: AbortSignal): Promise<{ payload: Payload; refreshAt?: number }> {
    const ns = pod.metadata?.namespace ?? "";
    const node = this.o.node();
    const configMap = async (name: string): Promise<ApiData | undefined> => {
      const cm = await this.o.sources.configMap(ns, name, signal);
      return cm ? configMapData(cm) : undefined;
    };
    const secret = async (name: string): Promise<ApiData | undefined> => {
      const s = await this.o.sources.secret(ns, name, signal);
      return s ? secretData(s) : undefined;
    };
    if (v.configMap) {
      const s = v.configMap;
      return { payload: keysPayload("configmap", s.name ?? "", await configMap(s.name ?? ""), s.items, s.defaultMode, s.optional === true, "configMap") };
    }
    if (v.secret) {
      const s = v.secret;
      return { payload: keysPayload("secret", s.secretName ?? "", await secret(s.secretName ?? ""), s.items, s.defaultMode, s.optional === true, "secret") };
    }
    if (v.downwardAPI) {
      return { payload: downwardPayload(pod, (v.downwardAPI.items ?? []), v.downwardAPI.defaultMode, node, "downwardAPI") };
    }
    if (v.projected) {
      const payload: Payload = new Map();
      const mode = v.projected.defaultMode;
      let refreshAt: number | undefined;
      const sources = v.projected.sources ?? [];
      // The sources' objects are fetched at once; the payload is still built in the sources' order.
      const fetched = sources.map((src) => (src.configMap ? configMap(src.configMap.name ?? "") : src.secret ? secret(src.secret.name ?? "") : undefined));
      for (const f of fetched) f?.catch(() => undefined); // awaited below, in order; no unhandled rejection meanwhile
      for (const [i, src] of sources.entries()) {
        const field = `projected.sources[${i}]`;
        if (src.configMap) keysPayload("configmap", src.configMap.name ?? "", await fetched[i], src.configMap.items, mode, src.configMap.optional === true, `${field}.configMap`, payload);
        else if (src.secret) keysPayload("secret", src.secret.name ?? "", await fetched[i], src.secret.items, mode, src.secret.optional === true, `${field}.secret`, payload);
        else if (src.downwardAPI) downwardPayload(pod, (src.downwardAPI.items ?? []), mode, node, `${field}.downwardAPI`, payload);
        else if (src.serviceAccountToken) {
          const t = src.serviceAccountToken;
          const sa = pod.spec?.serviceAccountName ?? "";
          if (sa === "") throw new VolumeError("InvalidArgument", "cannot request a token: the pod has no serviceAccountName");
          const token = await this.o.sources.token(
            { namespace: ns, serviceAccount: sa, audience: t.audience ?? "", expirationSeconds: t.expirationSeconds ?? 3600, pod: { name: pod.metadata?.name ?? "", uid: pod.metadata?.uid ?? "" } },
            signal,
          );
          payload.set(t.path, { data: Buffer.from(token.token, "utf8"), mode: mode ?? 0o644 });
          refreshAt = Math.min(refreshAt ?? Infinity, token.refreshAt);
        } else throw new VolumeError("InvalidArgument", `${field}: this projection is not supported by this kubelet`);
      }
      return refreshAt === undefined ? { payload } : { payload, refreshAt };
    }
    throw new VolumeError("InvalidArgument", "volume type is not supported by this kubelet");
  }

  /** The pod's fsGroup on a volume folder; `always` ignores OnRootMismatch (content just rewritten). */
  private async applyFsGroup(pod: V1Pod, path: string, readOnly: boolean, always = false): Promise<void> {
    const sc = pod.spec?.securityContext;
    if (sc?.fsGroup === undefined) return;
    await setVolumeOwnership(path, sc.fsGroup, readOnly, always ? "Always" : sc.fsGroupChangePolicy);
  }

  /**
   * Makes the folder (with `mode`); true when it did not exist. Synchronous, as the atomic writer (see there):
   * two or three syscalls cost less than thread-pool round trips on the pod's start path.
   */
  private ensureDir(path: string, mode: number): boolean {
    try {
      mkdirSync(path, { mode });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    mkdirSync(path, { recursive: true, mode });
    return true;
  }

  /**
   * Mounts a tmpfs at `path` unless one is there (checked once per kubelet run, then remembered). A folder just
   * made (`fresh`) has nothing mounted on it: the mount table, which grows with the node's pods, is not read.
   */
  private async ensureTmpfs(path: string, fresh: boolean, sizeBytes: number, signal?: AbortSignal): Promise<void> {
    if (this.tmpfs.has(path)) return;
    if (fresh || !(await this.o.mounter.mountPointsUnder(path)).includes(path)) await this.o.mounter.mountTmpfs(path, sizeBytes, signal);
    this.tmpfs.add(path);
  }

  /**
   * Unmounts and removes the volumes of a pod whose containers are gone (hostPath volumes are the host's and
   * stay). Refuses to remove anything while a mount under the folder remains.
   */
  async tearDownPod(uid: string, signal?: AbortSignal): Promise<void> {
    const subPaths = podSubPathsDir(this.o.rootDir, uid);
    await this.unmountAll(subPaths, signal);
    await rm(subPaths, { recursive: true, force: true });
    const dir = podVolumesDir(this.o.rootDir, uid);
    await this.unmountAll(dir, signal);
    await rm(dir, { recursive: true, force: true });
    for (const k of [...this.written.keys()]) if (k.startsWith(`${dir}/`)) this.written.delete(k);
    for (const k of [...this.owned]) if (k.startsWith(`${dir}/`)) this.owned.delete(k);
    for (const k of [...this.tmpfs]) if (k.startsWith(`${dir}/`)) this.tmpfs.delete(k);
  }

  /** Removes the pod's whole folder, its volumes first. */
  async removePod(uid: string, signal?: AbortSignal): Promise<void> {
    await this.tearDownPod(uid, signal);
    const dir = podDir(this.o.rootDir, uid);
    await this.unmountAll(dir, signal);
    await rm(dir, { recursive: true, force: true });
  }

  private async unmountAll(dir: string, signal?: AbortSignal): Promise<void> {
    for (const mp of await this.o.mounter.mountPointsUnder(dir)) await this.o.mounter.unmount(mp, signal);
    const left = await this.o.mounter.mountPointsUnder(dir);
    if (left.length > 0) throw new DeckhandError("FailedPrecondition", `volumes of ${dir} still mounted: ${left.join(", ")}`);
  }

  /** Whether the pod's volumes folder is gone (torn down, or never made): what it held is freed. */
  isTornDown(uid: string): boolean {
    return !existsSync(podVolumesDir(this.o.rootDir, uid));
  }

  /** The pod is gone for good: its watches stop. */
  forgetPod(uid: string): void {
    this.o.sources.unregister(uid);
  }

  /**
   * Upstream's cleanupOrphanedPodDirs: the folders under `<root-dir>/pods` of pods `keep` does not name are
   * removed (volumes unmounted first). Returns the uids removed.
   */
  async cleanupOrphans(keep: ReadonlySet<string>, signal?: AbortSignal): Promise<string[]> {
    let uids: string[];
    try {
      uids = await readdir(podsDir(this.o.rootDir));
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const uid of uids) {
      if (keep.has(uid)) continue;
      try {
        await this.removePod(uid, signal);
        this.forgetPod(uid);
        removed.push(uid);
        this.log.info({ podUID: uid, dir: join(podsDir(this.o.rootDir), uid) }, "removed an orphaned pod folder");
      } catch (err) {
        this.log.warn({ podUID: uid, err: errorMessage(err) }, "could not remove an orphaned pod folder; will retry");
      }
    }
    return removed;
  }
}

/** Names of the ConfigMaps and Secrets a pod's volumes reference (for the watches). Pure. */
export function volumeReferences(pod: V1Pod): { configMaps: Set<string>; secrets: Set<string> } {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  for (const v of pod.spec?.volumes ?? []) {
    if (v.configMap?.name) configMaps.add(v.configMap.name);
    if (v.secret?.secretName) secrets.add(v.secret.secretName);
    for (const s of v.projected?.sources ?? []) {
      if (s.configMap?.name) configMaps.add(s.configMap.name);
      if (s.secret?.name) secrets.add(s.secret.name);
    }
  }
  return { configMaps, secrets };
}
