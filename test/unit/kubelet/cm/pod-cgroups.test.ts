import { afterEach, describe, expect, it } from "vitest";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PodCgroupManager } from "../../../../kubelet/cm/pod-cgroups.ts";
import { Cgroupfs } from "../../../../kubelet/cm/cgroupfs.ts";

// A cgroup v2 tree as files (the kernel's interface files are plain files here; cgroup-v2.rst gives their
// formats): this machine's cgroup2 mount owns no cpu or memory controller, so the v2 path is tested on fixtures.
describe("PodCgroupManager on a cgroup v2 tree (fixture)", () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  async function tree(): Promise<string> {
    const root = await mkdtemp(join(tmpdir(), "deckhand-unit-cgroup2-"));
    dirs.push(root);
    await writeFile(join(root, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n");
    await writeFile(join(root, "cgroup.subtree_control"), "io\n");
    return root;
  }

  it("enables cpu, memory and pids down to the pod's parent before setting the pod's limits", async () => {
    const root = await tree();
    const pod = join(root, "kubepods/burstable/poduid-1");
    // What the kernel would show once the parents delegate: the children's controllers and limit files.
    for (const d of ["kubepods", "kubepods/burstable"]) {
      await mkdir(join(root, d), { recursive: true });
      await writeFile(join(root, d, "cgroup.controllers"), "cpu memory pids\n");
      await writeFile(join(root, d, "cgroup.subtree_control"), "\n");
    }
    await mkdir(pod, { recursive: true });
    for (const f of ["cpu.weight", "cpu.max", "memory.max"]) await writeFile(join(pod, f), "");
    const manager = new PodCgroupManager({ cgroupRoot: "/", fs: new Cgroupfs({ hierarchies: [{ mountPoint: root, fsType: "cgroup2", options: "rw" }] }) });
    await manager.ensure("uid-1", "Burstable", { cpuShares: 1024, cpuQuotaUs: 50_000, cpuPeriodUs: 100_000, memoryLimitBytes: 64 * 1024 ** 2 });
    for (const d of [".", "kubepods", "kubepods/burstable"]) expect(await readFile(join(root, d, "cgroup.subtree_control"), "utf8")).toBe("+cpu +memory +pids");
    expect(await readFile(join(pod, "cpu.max"), "utf8")).toBe("50000 100000");
    expect(await readFile(join(pod, "memory.max"), "utf8")).toBe(String(64 * 1024 ** 2));
  });

  it("leaves alone a tree whose root owns none of those controllers (a hybrid host's cgroup2 mount)", async () => {
    const root = await mkdtemp(join(tmpdir(), "deckhand-unit-cgroup2-"));
    dirs.push(root);
    await writeFile(join(root, "cgroup.controllers"), "hugetlb\n");
    await writeFile(join(root, "cgroup.subtree_control"), "");
    const manager = new PodCgroupManager({ cgroupRoot: "/", fs: new Cgroupfs({ hierarchies: [{ mountPoint: root, fsType: "cgroup2", options: "rw" }] }) });
    await manager.ensure("uid-2", "BestEffort", { cpuShares: 2 });
    expect(await readFile(join(root, "cgroup.subtree_control"), "utf8")).toBe("");
  });
});
