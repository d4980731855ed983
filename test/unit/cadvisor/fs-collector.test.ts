import { linkSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { diskUsage } from "../../../cadvisor/disk-usage.ts";
import { FsStatsCollector, type FsCollectorOptions } from "../../../cadvisor/fs-collector.ts";
import { mountOf, parseMountInfo } from "../../../src-shared/mountinfo.ts";
import { silentLogger } from "../../../src-shared/log.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "deckhand-fs-"));
  dirs.push(d);
  return d;
}
const KiB = 1024;

describe("diskUsage (du)", () => {
  it("counts allocated blocks and distinct inodes, the top directory included, a hard link once", async () => {
    const d = tmp();
    const empty = await diskUsage(d);
    expect(empty?.inodesUsed).toBe(1);
    writeFileSync(join(d, "a"), Buffer.alloc(64 * KiB, 1));
    mkdirSync(join(d, "sub"));
    writeFileSync(join(d, "sub", "b"), Buffer.alloc(32 * KiB, 1));
    linkSync(join(d, "a"), join(d, "sub", "a-again"));
    const u = await diskUsage(d);
    expect(u?.inodesUsed).toBe(4);
    // Blocks, not sizes: at least the data written, the directories' blocks on top.
    expect(u?.usedBytes).toBeGreaterThanOrEqual(96 * KiB);
    expect(u?.usedBytes).toBeLessThan(96 * KiB + (empty?.usedBytes ?? 0) * 2 + 16 * KiB);
    expect(await diskUsage(join(d, "missing"))).toBeUndefined();
    expect((await diskUsage(join(d, "a")))?.inodesUsed).toBe(1);
  });
});

describe("mountOf", () => {
  const mountinfo = [
    "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw",
    "30 22 0:27 / /var/lib/kubelet/pods/u/volumes/kubernetes.io~secret/s rw shared:9 - tmpfs tmpfs rw,size=1024k",
    "31 22 0:28 / /var/lib/kube rw shared:9 - tmpfs other rw",
  ].join("\n");

  it("is the deepest mount holding the path, not a sibling sharing a prefix", () => {
    expect(mountOf(parseMountInfo(mountinfo), "/var/lib/kubelet/pods/u/volumes/kubernetes.io~secret/s")).toMatchObject({ mountPoint: "/var/lib/kubelet/pods/u/volumes/kubernetes.io~secret/s", source: "tmpfs" });
    expect(mountOf(parseMountInfo(mountinfo), "/var/lib/kubelet")).toMatchObject({ mountPoint: "/", source: "/dev/vda1" });
    expect(mountOf(parseMountInfo(mountinfo), "/var/lib/kube/x")).toMatchObject({ mountPoint: "/var/lib/kube", source: "other" });
  });
});

describe("the filesystem collector", () => {
  it("measures volumes, etc-hosts and logs per pod, and takes the writable layers and image fs from the CRI", async () => {
    const root = tmp();
    const rootDir = join(root, "kubelet");
    const logs = join(root, "logs");
    const uid = "6d1c1529-731b-472e-a591-1e250c9312b0";
    const ed = join(rootDir, "pods", uid, "volumes", "kubernetes.io~empty-dir", "scratch");
    const cm = join(rootDir, "pods", uid, "volumes", "kubernetes.io~configmap", "conf");
    mkdirSync(ed, { recursive: true });
    mkdirSync(cm, { recursive: true });
    writeFileSync(join(ed, "data"), Buffer.alloc(256 * KiB, 1));
    writeFileSync(join(cm, "key"), "value");
    writeFileSync(join(rootDir, "pods", uid, "etc-hosts"), "127.0.0.1 localhost\n");
    const podLogDir = join(logs, `default_web_${uid}`);
    mkdirSync(join(podLogDir, "main"), { recursive: true });
    writeFileSync(join(podLogDir, "main", "0.log"), Buffer.alloc(128 * KiB, 1));
    const asked: string[] = [];
    const runtime: FsCollectorOptions["runtime"] = {
      runtime: ((method: string) => {
        asked.push(method);
        return Promise.resolve({ stats: [{ attributes: { id: "c1", metadata: null, labels: {}, annotations: {} }, cpu: null, memory: null, swap: null, writable_layer: { timestamp: "1796322073000000000", fs_id: { mountpoint: root }, used_bytes: { value: "12288" }, inodes_used: { value: "7" } } }] });
      }),
      image: ((method: string) => {
        asked.push(method);
        return Promise.resolve({ image_filesystems: [{ timestamp: "1796322073000000000", fs_id: { mountpoint: root }, used_bytes: { value: "5000000" }, inodes_used: { value: "300" } }], container_filesystems: [] });
      }),
    };
    const c = new FsStatsCollector({ runtime, rootDir, podLogsDir: logs, log: silentLogger(), mountinfoPath: join(root, "none") });
    expect(asked).toEqual([]);
    expect(c.snapshot()).toBeUndefined();
    await c.collect();
    const s = c.snapshot();
    expect(asked.sort()).toEqual(["ImageFsInfo", "ListContainerStats"]);
    expect(s?.rootFs?.capacityBytes).toBeGreaterThan(0);
    expect(s?.imageFs).toMatchObject({ usage: { usedBytes: 5e6, inodesUsed: 300 }, timeMs: 1796322073000 });
    expect(s?.imageFs?.fs.capacityBytes).toBeGreaterThan(0);
    expect(s?.writableLayers.get("c1")).toMatchObject({ usedBytes: 12288, inodesUsed: 7, timeMs: 1796322073000 });
    const pod = s?.pods.get(uid);
    expect(pod?.volumes.map((v) => [v.name, v.inodesUsed])).toEqual([["conf", 2], ["scratch", 2]]);
    expect(pod?.volumes.find((v) => v.name === "scratch")?.usedBytes).toBeGreaterThanOrEqual(256 * KiB);
    expect(pod?.etcHosts?.inodesUsed).toBe(1);
    expect(pod?.containerLogs.get("main")?.usedBytes).toBeGreaterThanOrEqual(128 * KiB);
    expect(pod?.containerLogs.get("main")?.inodesUsed).toBe(2);
    // The pod log directory itself, without its container's.
    expect(pod?.podLogs?.inodesUsed).toBe(1);
  });

  it("keeps going without the runtime's figures", async () => {
    const root = tmp();
    const fail = (): Promise<never> => Promise.reject(new Error("unavailable"));
    const c = new FsStatsCollector({ runtime: { runtime: fail, image: fail }, rootDir: root, podLogsDir: join(root, "logs"), log: silentLogger() });
    await c.collect();
    expect(c.snapshot()?.imageFs).toBeUndefined();
    expect(c.snapshot()?.writableLayers.size).toBe(0);
    expect(c.snapshot()?.rootFs).toBeDefined();
  });
});
