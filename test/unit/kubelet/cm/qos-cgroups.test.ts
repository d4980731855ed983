import { afterEach, describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../../../src-shared/log.ts";
import type { CgroupHierarchy } from "../../../../src-shared/cgroups.ts";
import { Cgroupfs, resourceWrites } from "../../../../kubelet/cm/cgroupfs.ts";
import { burstableShares, cgroupConfigOf, QosCgroupManager, reservedCgroups, type ReservedCgroup } from "../../../../kubelet/cm/qos-cgroups.ts";
import { PodCgroupManager } from "../../../../kubelet/cm/pod-cgroups.ts";
import type { EventRecorder } from "../../../../kubelet/events.ts";
import { testPod, TEST_IMAGE } from "../../../harness/runtime-fixture.ts";

const Mi = 1024 ** 2;
const burstable = (name: string, cpu: string, extra: Partial<NonNullable<V1Pod["spec"]>> = {}): V1Pod =>
  testPod(name, { containers: [{ name: "app", image: TEST_IMAGE, resources: { requests: { cpu, memory: "10Mi" } } }], ...extra });
const guaranteed = (name: string): V1Pod => testPod(name, { containers: [{ name: "app", image: TEST_IMAGE, resources: { requests: { cpu: "1", memory: "64Mi" }, limits: { cpu: "1", memory: "64Mi" } } }] });

describe("QoS cgroup arithmetic (upstream's getCgroupConfig, setCPUCgroupConfig)", () => {
  it("turns node allocatable into kubepods' memory limit, cpu shares and pids limit", () => {
    expect(cgroupConfigOf({ cpu: "1500m", memory: "1Gi", pid: "4096", pods: "110", "ephemeral-storage": "10Gi" })).toEqual({ cpuShares: 1536, memoryLimitBytes: 1024 * Mi, pidsLimit: 4096 });
  });

  it("gives burstable the shares of its pods' cpu requests (init containers and overhead counted), the minimum without any", () => {
    const withInit = burstable("i", "100m", { initContainers: [{ name: "setup", image: TEST_IMAGE, resources: { requests: { cpu: "1" } } }], overhead: { cpu: "50m" } });
    expect(burstableShares([burstable("a", "250m"), withInit, guaranteed("g"), testPod("e")])).toBe(Math.trunc(((250 + 1050) * 1024) / 1000));
    expect(burstableShares([guaranteed("g"), testPod("e")])).toBe(2);
  });

  it("writes 'max' for an unlimited v2 value and -1 on v1", () => {
    const v2: CgroupHierarchy = { mountPoint: "/x", fsType: "cgroup2", options: "rw" };
    const v1: CgroupHierarchy = { mountPoint: "/x", fsType: "cgroup", options: "rw,memory" };
    expect(resourceWrites(v2, { cpuQuotaUs: -1, memoryLimitBytes: -1, pidsLimit: -1 })).toEqual([["cpu.max", "max 100000"], ["memory.max", "max"], ["pids.max", "max"]]);
    expect(resourceWrites(v1, { cpuShares: 2, memoryLimitBytes: -1, pidsLimit: 10 })).toEqual([["memory.limit_in_bytes", "-1"]]);
  });

  it("lists the reserved cgroups enforceNodeAllocatable asks for", () => {
    const c = { systemReserved: { memory: "1Gi", cpu: "500m" }, kubeReserved: { cpu: "100m" }, systemReservedCgroup: "/system.slice", kubeReservedCgroup: "/kube.slice" };
    expect(reservedCgroups({ ...c, enforceNodeAllocatable: ["pods", "system-reserved", "kube-reserved-compressible"] })).toEqual([
      { key: "system-reserved", path: "/system.slice", resources: { memory: "1Gi", cpu: "500m" }, compressibleOnly: false },
      { key: "kube-reserved-compressible", path: "/kube.slice", resources: { cpu: "100m" }, compressibleOnly: true },
    ]);
    expect(reservedCgroups({ ...c, enforceNodeAllocatable: ["pods"] })).toEqual([]);
  });
});

describe("QosCgroupManager on fixture trees", () => {
  const dirs: string[] = [];
  const stops: AbortController[] = [];
  afterEach(async () => {
    for (const s of stops.splice(0)) s.abort();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  async function tmp(): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), "deckhand-unit-qos-"));
    dirs.push(d);
    return d;
  }

  /** A v1 host: cpu, memory and pids each in its own hierarchy (files are plain files here). */
  async function v1(): Promise<{ root: string; hierarchies: CgroupHierarchy[] }> {
    const root = await tmp();
    const hierarchies: CgroupHierarchy[] = [];
    for (const c of ["cpu", "memory", "pids"]) {
      await mkdir(join(root, c));
      hierarchies.push({ mountPoint: join(root, c), fsType: "cgroup", options: `rw,${c}` });
    }
    return { root, hierarchies };
  }

  function manager(hierarchies: CgroupHierarchy[], pods: V1Pod[], extra: { reserved?: ReservedCgroup[]; events?: EventRecorder } = {}): { qos: QosCgroupManager; podCgroups: PodCgroupManager } {
    const fs = new Cgroupfs({ hierarchies });
    const qos = new QosCgroupManager({
      cgroupRoot: "/node-a",
      fs,
      nodeAllocatable: () => ({ cpu: "2", memory: "3Gi", pid: "30000", pods: "110" }),
      activePods: () => pods,
      nodeName: "node-a",
      logger: silentLogger(),
      ...extra,
    });
    return { qos, podCgroups: new PodCgroupManager({ cgroupRoot: "/node-a", fs, qos }) };
  }

  const read = (path: string): Promise<string> => readFile(path, "utf8");

  it("v1: kubepods carries node allocatable, besteffort the minimum shares, burstable its pods' requests as they come and go", async () => {
    const { root, hierarchies } = await v1();
    const pods: V1Pod[] = [burstable("a", "250m")];
    const { qos, podCgroups } = manager(hierarchies, pods);
    const stop = new AbortController();
    stops.push(stop);
    await qos.start(stop.signal);
    expect(await read(join(root, "cpu/node-a/kubepods/cpu.shares"))).toBe("2048");
    expect(await read(join(root, "memory/node-a/kubepods/memory.limit_in_bytes"))).toBe(String(3 * 1024 * Mi));
    expect(await read(join(root, "pids/node-a/kubepods/pids.max"))).toBe("30000");
    expect(await read(join(root, "cpu/node-a/kubepods/besteffort/cpu.shares"))).toBe("2");
    expect(await read(join(root, "cpu/node-a/kubepods/burstable/cpu.shares"))).toBe("256");

    // A new burstable pod: the QoS cgroup is updated before the pod's own cgroup is made.
    const b = burstable("b", "500m");
    pods.push(b);
    await podCgroups.ensure(b.metadata?.uid ?? "", "Burstable", { cpuShares: 512, pidsLimit: 64 });
    expect(await read(join(root, "cpu/node-a/kubepods/burstable/cpu.shares"))).toBe("768");
    expect(await read(join(root, `pids/node-a/kubepods/burstable/pod${b.metadata?.uid ?? ""}/pids.max`))).toBe("64");
    // It goes: the shares follow. (The kernel empties a cgroup's files with it; here they are plain files.)
    pods.splice(0);
    for (const c of ["cpu", "memory", "pids"]) await rm(join(root, c, `node-a/kubepods/burstable/pod${b.metadata?.uid ?? ""}`), { recursive: true });
    await podCgroups.remove(b.metadata?.uid ?? "");
    expect(await read(join(root, "cpu/node-a/kubepods/burstable/cpu.shares"))).toBe("2");
    await qos.close();
  });

  it("v2: delegates cpu, memory and pids down to the QoS cgroups and writes weight, memory.max and pids.max", async () => {
    const root = await tmp();
    await writeFile(join(root, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids\n");
    await writeFile(join(root, "cgroup.subtree_control"), "");
    // What the kernel shows in node-a and kubepods once their parents delegate.
    for (const d of ["node-a", "node-a/kubepods"]) {
      await mkdir(join(root, d), { recursive: true });
      await writeFile(join(root, d, "cgroup.controllers"), "cpu memory pids\n");
      await writeFile(join(root, d, "cgroup.subtree_control"), "");
    }
    const { qos } = manager([{ mountPoint: root, fsType: "cgroup2", options: "rw" }], [burstable("a", "1")]);
    const stop = new AbortController();
    stops.push(stop);
    await qos.start(stop.signal);
    for (const d of [".", "node-a", "node-a/kubepods"]) expect(await read(join(root, d, "cgroup.subtree_control"))).toBe("+cpu +memory +pids");
    expect(await read(join(root, "node-a/kubepods/memory.max"))).toBe(String(3 * 1024 * Mi));
    expect(await read(join(root, "node-a/kubepods/pids.max"))).toBe("30000");
    expect(await read(join(root, "node-a/kubepods/cpu.weight"))).toBe("79");
    expect(await read(join(root, "node-a/kubepods/besteffort/cpu.weight"))).toBe("1");
    expect(await read(join(root, "node-a/kubepods/burstable/cpu.weight"))).toBe("39");
    await qos.close();
  });

  it("puts the reservations on existing reserved cgroups, and reports a missing one", async () => {
    const { root, hierarchies } = await v1();
    for (const c of ["cpu", "memory", "pids"]) await mkdir(join(root, c, "system.slice"));
    const events: { type: string; reason: string; message: string }[] = [];
    const recorder: EventRecorder = { event: (_o, type, reason, message) => events.push({ type, reason, message }) };
    const reserved: ReservedCgroup[] = [
      { key: "system-reserved", path: "/system.slice", resources: { cpu: "500m", memory: "256Mi", pid: "1000" }, compressibleOnly: false },
      { key: "kube-reserved-compressible", path: "/kube.slice", resources: { cpu: "100m", memory: "64Mi" }, compressibleOnly: true },
    ];
    const { qos } = manager(hierarchies, [], { reserved, events: recorder });
    const stop = new AbortController();
    stops.push(stop);
    await qos.start(stop.signal);
    expect(await read(join(root, "cpu/system.slice/cpu.shares"))).toBe("512");
    expect(await read(join(root, "memory/system.slice/memory.limit_in_bytes"))).toBe(String(256 * Mi));
    expect(await read(join(root, "pids/system.slice/pids.max"))).toBe("1000");
    expect(events).toContainEqual({ type: "Normal", reason: "SuccessfulNodeAllocatableEnforcement", message: "Updated limits on system-reserved cgroup /system.slice" });
    const failed = events.filter((e) => e.type === "Warning" && e.reason === "FailedNodeAllocatableEnforcement").map((e) => e.message);
    expect(failed[0]).toContain('Failed to enforce Kube Reserved Compressible Cgroup Limits on "/kube.slice"');
    await qos.close();
  });
});
