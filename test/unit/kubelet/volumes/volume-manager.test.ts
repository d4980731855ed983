import type { V1Pod } from "@kubernetes/client-node";
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../../../src-shared/log.ts";
import { memoryVolumeSize, VolumeManager, VolumeSetUpError, volumeReferences, type VolumeSources } from "../../../../kubelet/volumes/volume-manager.ts";
import type { Mounter } from "../../../../kubelet/volumes/mounter.ts";
import { mountPointsIn, parseMountInfo } from "../../../../src-shared/mountinfo.ts";
import type { TokenRequestSpec } from "../../../../kubelet/objects/token-manager.ts";
import { FakeClock } from "../../../harness/fake-clock.ts";

class FakeMounter implements Mounter {
  mounted = new Map<string, number | undefined>();
  mountTmpfs(path: string, size: number | undefined): Promise<void> {
    this.mounted.set(path, size);
    return Promise.resolve();
  }
  unmount(path: string): Promise<void> {
    this.mounted.delete(path);
    return Promise.resolve();
  }
  binds: { root: string; rel: string; target: string }[] = [];
  bindPinned(root: string, rel: string, target: string): Promise<void> {
    this.binds.push({ root, rel, target });
    this.mounted.set(target, undefined);
    return Promise.resolve();
  }
  mountPointsUnder(dir: string): Promise<string[]> {
    return Promise.resolve([...this.mounted.keys()].filter((p) => p === dir || p.startsWith(`${dir}/`)));
  }
}

class Sources implements VolumeSources {
  configMaps = new Map<string, { data?: Record<string, string> }>();
  secrets = new Map<string, { data?: Record<string, string> }>();
  tokens: TokenRequestSpec[] = [];
  registered = new Set<string>();
  register(pod: V1Pod): void {
    this.registered.add(pod.metadata?.uid ?? "");
  }
  unregister(uid: string): void {
    this.registered.delete(uid);
  }
  configMap(_ns: string, name: string) {
    return Promise.resolve(this.configMaps.get(name));
  }
  secret(_ns: string, name: string) {
    return Promise.resolve(this.secrets.get(name));
  }
  token(spec: TokenRequestSpec) {
    this.tokens.push(spec);
    return Promise.resolve({ token: `tok-${this.tokens.length}`, expiresAt: 2_000_000, refreshAt: 1_800_000 });
  }
}

let root: string;
let mounter: FakeMounter;
let sources: Sources;
let vm: VolumeManager;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "deckhand-vm-"));
  mounter = new FakeMounter();
  sources = new Sources();
  vm = new VolumeManager({ rootDir: root, sources, mounter, node: () => ({ memoryCapacityBytes: 1 << 30, cpuCapacityMilli: 2000 }), logger: silentLogger(), clock: new FakeClock() });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function pod(volumes: NonNullable<NonNullable<V1Pod["spec"]>["volumes"]>, limits?: Record<string, string>): V1Pod {
  return {
    metadata: { name: "web", namespace: "default", uid: "uid-1", labels: { app: "web" } },
    spec: { serviceAccountName: "default", volumes, containers: [{ name: "main", image: "i", ...(limits ? { resources: { limits } } : {}) }] },
  };
}

const vol = (plugin: string, name: string): string => join(root, "pods", "uid-1", "volumes", `kubernetes.io~${plugin}`, name);

describe("VolumeManager", () => {
  it("sets up each plugin where upstream puts it, API-data and memory volumes on a tmpfs", async () => {
    sources.configMaps.set("cfg", { data: { "a.conf": "A" } });
    sources.secrets.set("sec", { data: { pw: Buffer.from("hunter2").toString("base64") } });
    const p = pod(
      [
        { name: "scratch", emptyDir: {} },
        { name: "mem", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
        { name: "cfg", configMap: { name: "cfg" } },
        { name: "sec", secret: { secretName: "sec", defaultMode: 0o400 } },
        { name: "info", downwardAPI: { items: [{ path: "labels", fieldRef: { fieldPath: "metadata.labels" } }] } },
        { name: "api", projected: { sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3607 } }, { configMap: { name: "cfg", items: [{ key: "a.conf", path: "ca.crt" }] } }, { downwardAPI: { items: [{ path: "namespace", fieldRef: { fieldPath: "metadata.namespace" } }] } }] } },
      ],
      { memory: "64Mi" },
    );
    const res = await vm.setUpPod(p);
    expect(res.refreshAt).toBe(1_800_000);
    expect((await stat(vol("empty-dir", "scratch"))).mode & 0o777).toBe(0o777);
    expect(await readFile(join(vol("configmap", "cfg"), "a.conf"), "utf8")).toBe("A");
    expect(await readFile(join(vol("secret", "sec"), "pw"), "utf8")).toBe("hunter2");
    expect((await stat(join(vol("secret", "sec"), "pw"))).mode & 0o777).toBe(0o400);
    expect(await readFile(join(vol("downward-api", "info"), "labels"), "utf8")).toBe('app="web"');
    expect(await readFile(join(vol("projected", "api"), "token"), "utf8")).toBe("tok-1");
    expect(await readFile(join(vol("projected", "api"), "namespace"), "utf8")).toBe("default");
    expect(sources.tokens).toEqual([{ namespace: "default", serviceAccount: "default", audience: "", expirationSeconds: 3607, pod: { name: "web", uid: "uid-1" } }]);
    expect(mounter.mounted).toEqual(
      new Map([
        [vol("empty-dir", "mem"), 16 << 20],
        [vol("secret", "sec"), 64 << 20],
        [vol("downward-api", "info"), 64 << 20],
        [vol("projected", "api"), 64 << 20],
      ]),
    );
    expect(sources.registered.has("uid-1")).toBe(true);
    expect(res.volumes.get("cfg")).toEqual({ plugin: "configMap", path: vol("configmap", "cfg"), readOnly: true });
  });

  it("rewrites a changed ConfigMap through a new ..data and leaves an unchanged one alone", async () => {
    sources.configMaps.set("cfg", { data: { k: "v1" } });
    const p = pod([{ name: "cfg", configMap: { name: "cfg" } }]);
    await vm.setUpPod(p);
    const first = await readlink(join(vol("configmap", "cfg"), "..data"));
    await vm.setUpPod(p);
    expect(await readlink(join(vol("configmap", "cfg"), "..data"))).toBe(first);
    sources.configMaps.set("cfg", { data: { k: "v2" } });
    await vm.setUpPod(p);
    expect(await readlink(join(vol("configmap", "cfg"), "..data"))).not.toBe(first);
    expect(await readFile(join(vol("configmap", "cfg"), "k"), "utf8")).toBe("v2");
  });

  it("fails with FailedMount's message naming the volume and the missing object; optional ones are empty", async () => {
    const err = await vm.setUpPod(pod([{ name: "cfg", configMap: { name: "missing" } }])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VolumeSetUpError);
    expect((err as Error).message).toBe('MountVolume.SetUp failed for volume "cfg" : configmap "missing" not found');
    await vm.setUpPod(pod([{ name: "cfg", configMap: { name: "missing", optional: true } }]));
    expect((await readdir(vol("configmap", "cfg"))).filter((n) => !n.startsWith(".."))).toEqual([]);
    const host = await vm.setUpPod(pod([{ name: "h", hostPath: { path: join(root, "nope"), type: "Directory" } }])).catch((e: unknown) => e);
    expect((host as Error).message).toBe(`MountVolume.SetUp failed for volume "h" : hostPath type check failed: ${join(root, "nope")} is not a directory`);
  });

  it("tears a pod's volumes down (tmpfs unmounted first), removes its folder, and cleans orphaned folders", async () => {
    sources.secrets.set("sec", { data: {} });
    await vm.setUpPod(pod([{ name: "sec", secret: { secretName: "sec" } }, { name: "d", emptyDir: {} }]));
    await vm.tearDownPod("uid-1");
    expect(mounter.mounted.size).toBe(0);
    await expect(lstat(join(root, "pods", "uid-1", "volumes"))).rejects.toThrow(/ENOENT/);
    await vm.removePod("uid-1");
    await expect(lstat(join(root, "pods", "uid-1"))).rejects.toThrow(/ENOENT/);

    // Orphans: folders of pods nobody owns (e.g. deleted while the kubelet was down), mounts and all.
    await mkdir(join(root, "pods", "keep", "volumes"), { recursive: true });
    await vm.setUpPod(pod([{ name: "sec", secret: { secretName: "sec" } }]));
    expect(await vm.cleanupOrphans(new Set(["keep"]))).toEqual(["uid-1"]);
    expect(mounter.mounted.size).toBe(0);
    expect(await readdir(join(root, "pods"))).toEqual(["keep"]);
    expect(sources.registered.has("uid-1")).toBe(false);
  });

  it("pins a subPath at upstream's volume-subpaths/<volume>/<container>/<index>, of the pinned path's type, replaced for a new container and unmounted at teardown", async () => {
    const mounter = new FakeMounter();
    const v = new VolumeManager({ rootDir: root, sources, mounter, node: () => ({ memoryCapacityBytes: 1 << 30, cpuCapacityMilli: 0 }), logger: silentLogger() });
    await v.setUpPod(pod([{ name: "d", emptyDir: {} }]));
    await mkdir(join(vol("empty-dir", "d"), "sub"));
    await writeFile(join(vol("empty-dir", "d"), "file"), "x");
    const dirPin = await v.pinSubPath("uid-1", { volume: "d", container: "main", index: 0, root: vol("empty-dir", "d"), rel: "sub" });
    const filePin = await v.pinSubPath("uid-1", { volume: "d", container: "main", index: 1, root: vol("empty-dir", "d"), rel: "file" });
    const pins = join(root, "pods", "uid-1", "volume-subpaths", "d", "main");
    expect([dirPin, filePin]).toEqual([join(pins, "0"), join(pins, "1")]);
    expect((await stat(dirPin)).isDirectory()).toBe(true);
    expect((await stat(filePin)).isFile()).toBe(true);
    // A restarted container: the old pin is unmounted and made again.
    await v.pinSubPath("uid-1", { volume: "d", container: "main", index: 0, root: vol("empty-dir", "d"), rel: "sub" });
    expect(mounter.binds.map((b) => b.target)).toEqual([dirPin, filePin, dirPin]);
    await v.tearDownPod("uid-1");
    expect(await mounter.mountPointsUnder(join(root, "pods", "uid-1"))).toEqual([]);
    await expect(stat(join(root, "pods", "uid-1", "volume-subpaths"))).rejects.toThrow(/ENOENT/);
  });

  it("refuses to remove a folder that keeps a mount it cannot undo", async () => {
    const stuck = new (class extends FakeMounter {
      override unmount(): Promise<void> {
        return Promise.resolve();
      }
    })();
    const v = new VolumeManager({ rootDir: root, sources, mounter: stuck, node: () => ({ memoryCapacityBytes: 1 << 30, cpuCapacityMilli: 0 }), logger: silentLogger() });
    await v.setUpPod(pod([{ name: "m", emptyDir: { medium: "Memory" } }]));
    await expect(v.tearDownPod("uid-1")).rejects.toThrow(/still mounted/);
    expect((await stat(vol("empty-dir", "m"))).isDirectory()).toBe(true);
  });
});

describe("memoryVolumeSize", () => {
  it("is the pod's memory limit, capped by a smaller sizeLimit, the node's memory without limits", () => {
    const p = pod([], { memory: "64Mi" });
    expect(memoryVolumeSize(p, undefined, 1 << 30)).toBe(64 << 20);
    expect(memoryVolumeSize(p, "16Mi", 1 << 30)).toBe(16 << 20);
    expect(memoryVolumeSize(p, "1Gi", 1 << 30)).toBe(64 << 20);
    expect(memoryVolumeSize(pod([]), undefined, 1 << 30)).toBe(1 << 30);
  });
});

describe("volumeReferences and mountPointsIn", () => {
  it("names the ConfigMaps and Secrets of volumes and projections", () => {
    const refs = volumeReferences(pod([{ name: "a", configMap: { name: "c1" } }, { name: "b", secret: { secretName: "s1" } }, { name: "p", projected: { sources: [{ configMap: { name: "c2" } }, { secret: { name: "s2" } }] } }]));
    expect(refs).toEqual({ configMaps: new Set(["c1", "c2"]), secrets: new Set(["s1", "s2"]) });
  });

  it("reads mount points under a folder from mountinfo, deepest first, escapes decoded", () => {
    const info = [
      "22 1 0:21 / / rw - ext4 /dev/root rw",
      "40 22 0:40 / /var/lib/kubelet/pods/u/volumes/kubernetes.io~secret/s rw - tmpfs tmpfs rw",
      "41 22 0:41 / /var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir/my\\040vol rw - tmpfs tmpfs rw",
      "42 22 0:42 / /var/lib/kubelet/pods/u2 rw - tmpfs tmpfs rw",
    ].join("\n");
    expect(mountPointsIn(parseMountInfo(info), "/var/lib/kubelet/pods/u")).toEqual([
      "/var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir/my vol",
      "/var/lib/kubelet/pods/u/volumes/kubernetes.io~secret/s",
    ]);
  });
});
