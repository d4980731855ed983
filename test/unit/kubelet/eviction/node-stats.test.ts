import { afterEach, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { NodeStats } from "../../../../kubelet/eviction/node-stats.ts";

const Mi = 1024 * 1024;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A v1 memory + pids tree: root, kubepods, one best-effort pod with one container (and its sandbox). */
function tree() {
  const root = mkdtempSync(join(tmpdir(), "deckhand-ev-"));
  dirs.push(root);
  const cg = (path: string, usage: number, inactive: number, limit = 2 ** 63 - 4096, pids?: number): void => {
    const m = join(root, "memory", path);
    mkdirSync(m, { recursive: true });
    writeFileSync(join(m, "memory.usage_in_bytes"), `${usage}\n`);
    writeFileSync(join(m, "memory.limit_in_bytes"), `${limit}\n`);
    writeFileSync(join(m, "memory.stat"), `cache 0\nrss 0\ntotal_inactive_file ${inactive}\ntotal_rss ${usage - inactive}\n`);
    if (pids !== undefined) {
      mkdirSync(join(root, "pids", path), { recursive: true });
      writeFileSync(join(root, "pids", path, "pids.current"), `${pids}\n`);
    }
  };
  cg("/", 3000 * Mi, 1000 * Mi);
  cg("/node/kubepods", 300 * Mi, 100 * Mi, 500 * Mi, 12);
  cg("/node/kubepods/besteffort/podu1", 250 * Mi, 50 * Mi, undefined, 7);
  cg("/node/kubepods/besteffort/podu1/c1", 240 * Mi, 40 * Mi, undefined, 6);
  cg("/node/kubepods/besteffort/podu1/sandbox", 1 * Mi, 0, undefined, 1);
  const rootDir = join(root, "kubelet");
  const vol = join(rootDir, "pods", "u1", "volumes", "kubernetes.io~empty-dir", "scratch");
  mkdirSync(vol, { recursive: true });
  writeFileSync(join(vol, "data"), Buffer.alloc(64 * 1024, 1));
  const logs = join(root, "logs", "default_p_u1", "app");
  mkdirSync(logs, { recursive: true });
  writeFileSync(join(logs, "0.log"), Buffer.alloc(8192, 1));
  mkdirSync(join(root, "proc", "sys", "kernel"), { recursive: true });
  writeFileSync(join(root, "proc", "sys", "kernel", "pid_max"), "32768\n");
  writeFileSync(join(root, "proc", "loadavg"), "0.1 0.2 0.3 2/400 1234\n");
  const stats = new NodeStats({
    cgroupRoot: "/node",
    rootDir,
    imageFsDir: rootDir,
    podLogsDir: join(root, "logs"),
    memoryCapacityBytes: () => 4000 * Mi,
    allocatableMemoryBytes: () => 600 * Mi,
    containerNames: () => new Map([["c1", "app"]]),
    writableLayers: () => Promise.resolve(new Map([["c1", { bytes: 5 * Mi, inodes: 9 }]])),
    procRoot: join(root, "proc"),
    hierarchies: () => Promise.resolve([
      { mountPoint: join(root, "memory"), fsType: "cgroup", options: "rw,memory" },
      { mountPoint: join(root, "pids"), fsType: "cgroup", options: "rw,pids" },
    ]),
  });
  return { stats, root };
}

const pod: V1Pod = {
  metadata: { name: "p", namespace: "default", uid: "u1" },
  spec: { volumes: [{ name: "scratch", emptyDir: {} }, { name: "ram", emptyDir: { medium: "Memory" } }], containers: [{ name: "app" }] },
};

describe("NodeStats", () => {
  it("memory: the working sets of the root and kubepods (its limit), the usage-only upper bound, pid figures", async () => {
    const { stats } = tree();
    const f = await stats.figures();
    expect(f).toMatchObject({ nodeWorkingSetBytes: 2000 * Mi, podsWorkingSetBytes: 200 * Mi, podsLimitBytes: 500 * Mi, allocatableMemoryBytes: 600 * Mi, maxPid: 32768, processes: 400 });
    expect(f.nodeFs?.capacityBytes).toBeGreaterThan(0);
    expect(stats.memoryUpperBound()).toMatchObject({ nodeWorkingSetBytes: 3000 * Mi, podsWorkingSetBytes: 300 * Mi, podsLimitBytes: 500 * Mi });
  });

  it("pod usage: memory and processes from the pod cgroup (the sandbox left out); disk from emptyDirs on disk, logs and writable layers", async () => {
    const { stats } = tree();
    const mem = (await stats.podUsage([pod], "memory")).get("u1");
    expect(mem).toEqual({ memoryWorkingSetBytes: 200 * Mi, processes: 7, containers: [{ name: "app", memoryWorkingSetBytes: 200 * Mi }], volumes: [] });
    const disk = (await stats.podUsage([pod], "ephemeral-storage")).get("u1");
    expect(disk?.volumes.map((v) => v.name)).toEqual(["scratch"]);
    expect(disk?.volumes[0]?.usedBytes).toBeGreaterThanOrEqual(64 * 1024);
    expect(disk?.containers[0]).toMatchObject({ name: "app", rootfsBytes: 5 * Mi, rootfsInodes: 9 });
    expect(disk?.containers[0]?.logsBytes).toBeGreaterThanOrEqual(8192);
    // A pod without a cgroup has no memory stats (ranked first, as upstream).
    expect((await stats.podUsage([{ ...pod, metadata: { ...pod.metadata, uid: "gone" } }], "memory")).has("gone")).toBe(false);
  });
});
