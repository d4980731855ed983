import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { StatsCollector } from "../../../cadvisor/collector.ts";
import { cgroupLayout } from "../../../cadvisor/cgroup-reader.ts";
import type { CgroupHierarchy } from "../../../src-shared/cgroups.ts";
import { silentLogger } from "../../../src-shared/log.ts";
import { FakeClock } from "../../harness/fake-clock.ts";

const FIXTURES = join(import.meta.dirname, "fixtures");
const UID = "0c9c1e6a-5d1b-4a34-9a2e-fixture00001";
const CID = "a".repeat(64);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A v1 hybrid layout as this machine mounts it (cpu and cpuacct apart), fed from the recorded files. */
function v1Tree(cgroupRoot: string): { root: string; hierarchies: CgroupHierarchy[] } {
  const root = mkdtempSync(join(tmpdir(), "deckhand-cg-v1-"));
  dirs.push(root);
  const hierarchies: CgroupHierarchy[] = [
    { mountPoint: join(root, "cpu"), fsType: "cgroup", options: "rw,cpu" },
    { mountPoint: join(root, "cpuacct"), fsType: "cgroup", options: "rw,cpuacct" },
    { mountPoint: join(root, "memory"), fsType: "cgroup", options: "rw,memory" },
    { mountPoint: join(root, "pids"), fsType: "cgroup", options: "rw,pids" },
    { mountPoint: join(root, "unified"), fsType: "cgroup2", options: "rw" },
  ];
  const place = (fixture: string, path: string): void => {
    for (const c of ["cpu", "cpuacct", "memory", "pids"]) {
      const dst = join(root, c, path);
      mkdirSync(dst, { recursive: true });
      try {
        cpSync(join(FIXTURES, "v1", fixture, c), dst, { recursive: true });
      } catch {
        // the root cgroup has no pids files
      }
    }
  };
  place("root", "/");
  place("kubepods", `${cgroupRoot}/kubepods`);
  place("pod", `${cgroupRoot}/kubepods/besteffort/pod${UID}`);
  place("container", `${cgroupRoot}/kubepods/besteffort/pod${UID}/${CID}`);
  return { root, hierarchies };
}

function bumpCpu(root: string, path: string, nanos: number): void {
  writeFileSync(join(root, "cpuacct", path, "cpuacct.usage"), `${nanos}\n`);
}

describe("the layout", () => {
  it("is v1 when a v1 hierarchy carries memory (hybrid), else the cgroup2 tree", () => {
    const v1 = cgroupLayout([
      { mountPoint: "/sys/fs/cgroup/cpu,cpuacct", fsType: "cgroup", options: "rw,cpu,cpuacct" },
      { mountPoint: "/sys/fs/cgroup/memory", fsType: "cgroup", options: "rw,memory" },
      { mountPoint: "/sys/fs/cgroup/unified", fsType: "cgroup2", options: "rw" },
    ]);
    expect(v1).toEqual({ version: 1, mounts: { cpu: "/sys/fs/cgroup/cpu,cpuacct", cpuacct: "/sys/fs/cgroup/cpu,cpuacct", memory: "/sys/fs/cgroup/memory" }, procRoot: "/proc" });
    expect(cgroupLayout([{ mountPoint: "/sys/fs/cgroup", fsType: "cgroup2", options: "rw,nsdelegate" }])).toEqual({ version: 2, mounts: { unified: "/sys/fs/cgroup" }, procRoot: "/proc" });
    expect(cgroupLayout([])).toBeUndefined();
  });
});

describe("the collector on a v1 tree", () => {
  it("does no I/O before start, then samples node, pods root, pod and container every interval with a CPU rate", async () => {
    const clock = new FakeClock();
    const tree = v1Tree("/dh-test");
    let asked = 0;
    const c = new StatsCollector({ cgroupRoot: "/dh-test", intervalMs: 10_000, clock, log: silentLogger(), hierarchies: () => (asked++, Promise.resolve(tree.hierarchies)) });
    expect(asked).toBe(0);
    expect(c.snapshot()).toBeUndefined();
    const stop = new AbortController();
    c.start(stop.signal);
    await clock.advance(0);
    expect(c.passCount).toBe(1);
    const first = c.snapshot();
    expect(first?.version).toBe(1);
    expect(first?.node?.sample.memory?.usageBytes).toBeGreaterThan(0);
    expect(first?.pods?.sample.cpu?.usageNanos).toBe(564994614);
    const pod = first?.podCgroups.get(UID);
    expect(pod?.path).toBe(`/dh-test/kubepods/besteffort/pod${UID}`);
    expect(pod?.containers.get(CID)?.sample.memory?.workingSetBytes).toBe(10702848 - 8069120);
    // One sample: no rate yet.
    expect(pod?.containers.get(CID)?.usageNanoCores).toBeUndefined();

    // Half a core for 10 s.
    bumpCpu(tree.root, `/dh-test/kubepods/besteffort/pod${UID}/${CID}`, 564994614 + 5_000_000_000);
    await clock.advance(10_000);
    expect(c.passCount).toBe(2);
    expect(c.snapshot()?.podCgroups.get(UID)?.containers.get(CID)?.usageNanoCores).toBe(500_000_000);
    expect(c.snapshot()?.podCgroups.get(UID)?.stats.usageNanoCores).toBe(0);

    // A pod gone from the tree is gone from the next snapshot.
    rmSync(join(tree.root, "memory", "/dh-test/kubepods/besteffort"), { recursive: true });
    await clock.advance(10_000);
    expect(c.snapshot()?.podCgroups.size).toBe(0);
    await c.close();
    await clock.advance(30_000);
    expect(c.passCount).toBe(3);
  });
});

describe("the kubelet's system container", () => {
  it("is the kubelet's own cgroups, one per v1 hierarchy as /proc/self/cgroup lists them", async () => {
    const tree = v1Tree("/dh-test");
    const proc = join(tree.root, "proc");
    mkdirSync(join(proc, "self"), { recursive: true });
    writeFileSync(join(proc, "self", "cgroup"), "9:name=systemd:/\n8:pids:/dh-test/kubepods\n4:memory:/dh-test/kubepods\n2:cpuacct:/\n1:cpu:/\n0::/\n");
    const c = new StatsCollector({ cgroupRoot: "/dh-test", log: silentLogger(), procRoot: proc, hierarchies: () => Promise.resolve(tree.hierarchies) });
    await c.housekeep();
    const s = c.snapshot();
    expect(s?.systemContainers?.kubelet?.path).toBe("/dh-test/kubepods");
    // CPU from the root of the cpuacct hierarchy, memory from the kubepods cgroup of the memory one.
    expect(s?.systemContainers?.kubelet?.stats.sample.cpu?.usageNanos).toBe(s?.node?.sample.cpu?.usageNanos);
    expect(s?.systemContainers?.kubelet?.stats.sample.memory?.usageBytes).toBe(s?.pods?.sample.memory?.usageBytes);
    expect(s?.systemContainers?.runtime).toBeUndefined();
  });

  it("is the configured cgroup when one is given, and the runtime's likewise", async () => {
    const tree = v1Tree("/dh-test");
    const c = new StatsCollector({ cgroupRoot: "/dh-test", log: silentLogger(), systemCgroups: { kubelet: "/dh-test/kubepods", runtime: "/" }, hierarchies: () => Promise.resolve(tree.hierarchies) });
    await c.housekeep();
    expect(c.snapshot()?.systemContainers?.kubelet?.path).toBe("/dh-test/kubepods");
    expect(c.snapshot()?.systemContainers?.runtime?.stats.sample.cpu?.usageNanos).toBe(c.snapshot()?.node?.sample.cpu?.usageNanos);
  });
});

describe("the collector on a v2 tree", () => {
  it("reads pods and containers from the unified tree, the root's memory from meminfo, a pod's network from its process, the node's from the kubelet's own", async () => {
    const root = mkdtempSync(join(tmpdir(), "deckhand-cg-v2-"));
    dirs.push(root);
    const cg = join(root, "cgroup");
    cpSync(join(FIXTURES, "v2", "root"), cg, { recursive: true });
    mkdirSync(join(root, "proc"));
    cpSync(join(FIXTURES, "v2", "root", "meminfo"), join(root, "proc", "meminfo"));
    const guaranteedPod = join(cg, "kubepods", `pod${UID}`);
    cpSync(join(FIXTURES, "v2", "container"), join(guaranteedPod, CID), { recursive: true });
    cpSync(join(FIXTURES, "v2", "container"), guaranteedPod, { recursive: true });
    // A process of the pod (pid 4242) whose net/dev is this machine's recorded one.
    writeFileSync(join(guaranteedPod, CID, "cgroup.procs"), "4242\n");
    mkdirSync(join(root, "proc", "4242", "net"), { recursive: true });
    cpSync(join(FIXTURES, "proc", "net-dev"), join(root, "proc", "4242", "net", "dev"));
    // The kubelet's own cgroup: the 0:: line.
    mkdirSync(join(root, "proc", "self", "net"), { recursive: true });
    writeFileSync(join(root, "proc", "self", "cgroup"), "0::/system.slice/kubelet.service\n");
    cpSync(join(FIXTURES, "v2", "container"), join(cg, "system.slice", "kubelet.service"), { recursive: true });
    // The kubelet's own namespace: the node's interfaces.
    writeFileSync(join(root, "proc", "self", "net", "dev"), "h1\nh2\n    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  eth0: 100 2 0 0 0 0 0 0 200 3 0 0 0 0 0 0\n   cni0: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n vethab12: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n");
    const clock = new FakeClock();
    const c = new StatsCollector({ cgroupRoot: "/", clock, log: silentLogger(), procRoot: join(root, "proc"), hierarchies: () => Promise.resolve([{ mountPoint: cg, fsType: "cgroup2", options: "rw" }]) });
    await c.housekeep();
    const s = c.snapshot();
    expect(s?.version).toBe(2);
    expect(s?.node?.sample.memory?.usageBytes).toBe((8048576 - 4048576) * 1024);
    expect(s?.pods).toBeUndefined();
    const pod = s?.podCgroups.get(UID);
    expect(pod?.path).toBe(`/kubepods/pod${UID}`);
    expect(pod?.containers.get(CID)?.sample).toMatchObject({ cpu: { usageNanos: 2_500_000_000 }, memory: { limitBytes: 104857600 }, pids: { current: 3 } });
    expect(pod?.network?.map((i) => i.name)).toEqual(["ifb0", "ifb1", "eth0"]);
    expect(pod?.containers.get(CID)?.sample.io?.map((d) => [d.major, d.minor, d.readBytes, d.writes])).toEqual([[8, 0, 90430464, 1252], [8, 16, 1459200, 353]]);
    expect(s?.nodeNetwork?.map((i) => [i.name, i.rxBytes, i.txBytes])).toEqual([["eth0", 100, 200], ["cni0", 1, 1]]);
    expect(s?.systemContainers?.kubelet?.path).toBe("/system.slice/kubelet.service");
    expect(s?.systemContainers?.kubelet?.stats.sample.cpu?.usageNanos).toBe(2_500_000_000);
  });
});
