import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseBlkioV1, parseFlatKeyed, parseIoStat, parseMeminfo, parseNetDev, parseSingleValue, usageNanoCores, v1Sample, v2Sample, type CgroupSample, type V1Files, type V2Files } from "../../../cadvisor/cgroup-stats.ts";
import { isDeckhandError } from "../../../src-shared/errors.ts";

const FIXTURES = join(import.meta.dirname, "fixtures");

/** Every file of a recorded v1 cgroup (one directory per controller) by file name. */
function v1Files(name: string): V1Files {
  const files: Record<string, string> = {};
  for (const controller of readdirSync(join(FIXTURES, "v1", name))) {
    for (const f of readdirSync(join(FIXTURES, "v1", name, controller))) files[f] = readFileSync(join(FIXTURES, "v1", name, controller, f), "utf8");
  }
  return files;
}

function v2Files(name: string): V2Files {
  const files: Record<string, string> = {};
  for (const f of readdirSync(join(FIXTURES, "v2", name))) files[f] = readFileSync(join(FIXTURES, "v2", name, f), "utf8");
  return files;
}

describe("cgroup v1 (files recorded on this machine)", () => {
  it("reads a container: cpuacct in ns, USER_HZ ticks, CFS periods from cpu.stat, working set = usage − total_inactive_file, rss, faults, pids", () => {
    const s = v1Sample(v1Files("container"), 1000);
    // No CFS quota on this container: the kernel counted no period.
    expect(s.cpu).toEqual({ usageNanos: 564994614, userNanos: 530_000_000, systemNanos: 30_000_000, cfs: { periods: 0, throttledPeriods: 0, throttledNanos: 0 } });
    expect(s.memory).toEqual({
      usageBytes: 10702848,
      workingSetBytes: 10702848 - 8069120,
      rssBytes: 2211840,
      cacheBytes: 8151040,
      pageFaults: 1510,
      majorPageFaults: 1,
      swapBytes: 0,
    });
    // 9223372036854771712 (v1's "no limit") is above 2^62: no limit, so no availableBytes later.
    expect(s.memory?.limitBytes).toBeUndefined();
    expect(s.pids).toEqual({ current: 2 });
  });

  it("reads the pod level (totals include the container) and the root cgroup (no pids.current there)", () => {
    const pod = v1Sample(v1Files("pod"), 1000);
    expect(pod.cpu?.usageNanos).toBe(564994614);
    expect(pod.memory?.usageBytes).toBe(10715136);
    expect(pod.memory?.workingSetBytes).toBe(10715136 - 8069120);
    // pgfault is the cgroup's own (cAdvisor's ContainerData): nothing ran in the pod cgroup itself.
    expect(pod.memory?.pageFaults).toBe(0);
    const root = v1Sample(v1Files("root"), 1000);
    expect(root.cpu?.usageNanos).toBeGreaterThan(0);
    expect(root.memory?.workingSetBytes).toBe(Math.max(0, (root.memory?.usageBytes ?? 0) - 156000256));
    expect(root.pids).toBeUndefined();
  });

  it("keeps a real limit and leaves out what a missing controller would give", () => {
    const files = { ...v1Files("container"), "memory.limit_in_bytes": "104857600\n" };
    delete files["pids.current"];
    delete files["cpuacct.usage"];
    const s = v1Sample(files, 0);
    expect(s.memory?.limitBytes).toBe(104857600);
    expect(s.cpu).toBeUndefined();
    expect(s.pids).toBeUndefined();
  });
});

describe("cgroup v2 (files written to Documentation/admin-guide/cgroup-v2.rst)", () => {
  it("reads a container: cpu.stat usec and CFS throttling, memory.current, inactive_file, anon, file, memory.max, pids", () => {
    const s = v2Sample(v2Files("container"), 5000);
    expect(s.cpu).toEqual({ usageNanos: 2_500_000_000, userNanos: 2_000_000_000, systemNanos: 500_000_000, cfs: { periods: 40, throttledPeriods: 3, throttledNanos: 120_000_000 } });
    expect(s.memory).toEqual({
      usageBytes: 41943040,
      workingSetBytes: 41943040 - 12582912,
      rssBytes: 20971520,
      cacheBytes: 16777216,
      pageFaults: 52000,
      majorPageFaults: 12,
      swapBytes: 0,
      limitBytes: 104857600,
    });
    expect(s.pids).toEqual({ current: 3 });
  });

  it("treats memory.max \"max\" as no limit", () => {
    expect(v2Sample({ ...v2Files("container"), "memory.max": "max\n" }, 0).memory?.limitBytes).toBeUndefined();
  });

  it("emulates the root cgroup's usage from /proc/meminfo (MemTotal − MemFree) as runc does", () => {
    const s = v2Sample(v2Files("root"), 0);
    const usage = (8048576 - 4048576) * 1024;
    expect(s.memory?.usageBytes).toBe(usage);
    expect(s.memory?.workingSetBytes).toBe(usage - 536870912);
    expect(s.cpu?.usageNanos).toBe(900_000_000_000);
  });
});

describe("parsers", () => {
  it("flat keyed files skip lines that are not key and number", () => {
    expect([...parseFlatKeyed("a 1\n\nbad\nb x\nc 3\n")]).toEqual([["a", 1], ["c", 3]]);
  });

  it("a single-value file that is not a number is an InvalidArgument naming the file", () => {
    expect(parseSingleValue("12\n", "f")).toBe(12);
    expect(parseSingleValue("max\n", "f")).toBeUndefined();
    let err: unknown;
    try {
      parseSingleValue("garbage", "memory.current");
    } catch (e) {
      err = e;
    }
    expect(isDeckhandError(err, "InvalidArgument")).toBe(true);
    expect((err as Error).message).toContain("memory.current");
  });

  it("meminfo in bytes", () => {
    expect(parseMeminfo("MemTotal:  10 kB\nHugePages_Total:  2\n").get("MemTotal")).toBe(10240);
  });
});

describe("usageNanoCores", () => {
  const at = (timeMs: number, usageNanos: number): CgroupSample => ({ timeMs, cpu: { usageNanos } });

  it("is core-nanoseconds per second between two samples", () => {
    expect(usageNanoCores(at(0, 0), at(10_000, 10_000_000_000))).toBe(1_000_000_000);
    expect(usageNanoCores(at(0, 5e9), at(2_000, 5.5e9))).toBe(250_000_000);
  });

  it("is undefined without an earlier sample, with no time between, or when the counter went back", () => {
    expect(usageNanoCores(undefined, at(1, 1))).toBeUndefined();
    expect(usageNanoCores(at(5, 1), at(5, 2))).toBeUndefined();
    expect(usageNanoCores(at(0, 10), at(1000, 5))).toBeUndefined();
  });
});

describe("net/dev (recorded on this machine)", () => {
  it("gives rx/tx bytes, packets, errors and drops per interface, leaving out lo (and veth*, docker*)", () => {
    expect(parseNetDev(readFileSync(join(FIXTURES, "proc", "net-dev"), "utf8"))).toEqual([
      { name: "ifb0", rxBytes: 0, rxPackets: 0, rxErrors: 0, rxDropped: 0, txBytes: 0, txPackets: 0, txErrors: 0, txDropped: 0 },
      { name: "ifb1", rxBytes: 0, rxPackets: 0, rxErrors: 0, rxDropped: 0, txBytes: 0, txPackets: 0, txErrors: 0, txDropped: 0 },
      { name: "eth0", rxBytes: 639283864, rxPackets: 19732, rxErrors: 0, rxDropped: 0, txBytes: 2592576, txPackets: 16378, txErrors: 0, txDropped: 0 },
    ]);
    expect(parseNetDev("h1\nh2\n  eth1: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n")).toEqual([{ name: "eth1", rxBytes: 1, rxPackets: 2, rxErrors: 3, rxDropped: 4, txBytes: 9, txPackets: 10, txErrors: 11, txDropped: 12 }]);
    expect(parseNetDev("h1\nh2\n  veth12: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n docker0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n")).toEqual([]);
  });

  it("rejects a line without its 17 fields, as cAdvisor rejects the file", () => {
    expect(() => parseNetDev("h1\nh2\n eth0: 1 2 3\n")).toThrow(/17 fields/);
  });
});

describe("block I/O", () => {
  it("v1: the throttle counters per device, bytes and operations", () => {
    const bytes = "254:0 Read 1459200\n254:0 Write 314773504\n254:0 Sync 0\n254:0 Async 0\n254:0 Discard 0\n254:0 Total 316232704\n8:16 Read 4096\n8:16 Write 0\nTotal 316236800\n";
    const ops = "254:0 Read 192\n254:0 Write 353\n254:0 Total 545\n8:16 Read 1\n8:16 Write 0\nTotal 546\n";
    expect(parseBlkioV1(bytes, ops)).toEqual([
      { major: 8, minor: 16, readBytes: 4096, writeBytes: 0, reads: 1, writes: 0 },
      { major: 254, minor: 0, readBytes: 1459200, writeBytes: 314773504, reads: 192, writes: 353 },
    ]);
    // What this machine's files hold when nothing was accounted.
    expect(parseBlkioV1("Total 0\n", "Total 0\n")).toEqual([]);
  });

  it("v2: io.stat as cgroup-v2.rst writes it", () => {
    expect(parseIoStat("8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021\n")).toEqual([
      { major: 8, minor: 0, readBytes: 90430464, writeBytes: 299008000, reads: 8950, writes: 1252 },
      { major: 8, minor: 16, readBytes: 1459200, writeBytes: 314773504, reads: 192, writes: 353 },
    ]);
  });
});
