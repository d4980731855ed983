import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  goArch,
  osImageFromOsRelease,
  parseCpuList,
  parseHugePagesDirName,
  parseMeminfo,
  parseOsRelease,
  readFsInfo,
  readMachineInfo,
} from "../../../cadvisor/machine.ts";
import { isDeckhandError } from "../../../src-shared/errors.ts";

const DEBIAN = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
`;

const MEMINFO = `MemTotal:       24684084 kB
MemFree:        23722296 kB
MemAvailable:   23845276 kB
SwapTotal:       2097148 kB
HugePages_Total:       4
HugePages_Free:        4
Hugepagesize:       2048 kB
`;

describe("os-release", () => {
  it("parses quoted, unquoted and escaped values, skipping comments", () => {
    const text = `# a comment\nNAME='Single Quoted'\nID=debian\n\nVERSION="1 \\"quoted\\" \\$x"\nbad line\n`;
    expect(parseOsRelease(text)).toEqual({ NAME: "Single Quoted", ID: "debian", VERSION: '1 "quoted" $x' });
  });

  it("keeps the first assignment of a key", () => {
    expect(parseOsRelease("ID=a\nID=b\n")).toEqual({ ID: "a" });
  });

  it("gives PRETTY_NAME as the osImage, or Linux without one (cAdvisor's getOperatingSystem)", () => {
    expect(osImageFromOsRelease(DEBIAN)).toBe("Debian GNU/Linux 12 (bookworm)");
    expect(osImageFromOsRelease("NAME=Foo\n")).toBe("Linux");
    expect(osImageFromOsRelease("OLD_PRETTY_NAME=x\nPRETTY_NAME=Plain\n")).toBe("Plain");
  });
});

describe("meminfo", () => {
  it("gives kB values in bytes and unit-less values as they are", () => {
    const m = parseMeminfo(MEMINFO);
    expect(m["MemTotal"]).toBe(24684084 * 1024);
    expect(m["SwapTotal"]).toBe(2097148 * 1024);
    expect(m["HugePages_Total"]).toBe(4);
    expect(m["Hugepagesize"]).toBe(2048 * 1024);
  });

  it("skips lines it does not understand", () => {
    expect(parseMeminfo("garbage\nMemTotal: 1 kB\n")).toEqual({ MemTotal: 1024 });
  });
});

describe("cpu lists and sysfs names", () => {
  it.each([
    ["0-1\n", [0, 1]],
    ["0", [0]],
    ["0-3,8,10-11", [0, 1, 2, 3, 8, 10, 11]],
    ["", []],
  ])("parses %j", (text, cpus) => {
    expect(parseCpuList(text)).toEqual(cpus);
  });

  it("rejects a malformed list", () => {
    expect(() => parseCpuList("0-a")).toThrow(/not N or N-M/);
  });

  it("reads the page size of a hugepages directory", () => {
    expect(parseHugePagesDirName("hugepages-2048kB")).toBe(2048);
    expect(parseHugePagesDirName("hugepages-1048576kB")).toBe(1048576);
    expect(parseHugePagesDirName("something")).toBeUndefined();
  });

  it("spells architectures as GOARCH does", () => {
    expect(goArch("x64")).toBe("amd64");
    expect(goArch("arm64")).toBe("arm64");
    expect(goArch("ia32")).toBe("386");
    expect(goArch("ppc64", "LE")).toBe("ppc64le");
    expect(goArch("ppc64", "BE")).toBe("ppc64");
    expect(goArch("s390x")).toBe("s390x");
  });
});

describe("readMachineInfo on a host tree", () => {
  let root: string;
  const put = (path: string, text: string): void => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  };

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "deckhand-machine-"));
    put("/proc/meminfo", MEMINFO);
    put("/sys/devices/system/cpu/online", "0-3\n");
    put("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "4\n");
    put("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "0\n");
    put("/etc/machine-id", "3d1219c7c4c5404aaa1f6d2a48adfda4\n");
    put("/sys/class/dmi/id/product_uuid", "ec2a1b2c-0000-1111-2222-333344445555\n");
    put("/proc/sys/kernel/random/boot_id", "b63b60ed-0da6-4afb-a33b-e0a1b8ff851e\n");
    put("/etc/os-release", DEBIAN);
    mkdirSync(join(root, "var/lib/kubelet"), { recursive: true });
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it("reads every fact", async () => {
    const info = await readMachineInfo({ hostRoot: root, rootFs: join(root, "var/lib/kubelet"), imageFs: join(root, "var/lib/containerd") });
    expect(info).toMatchObject({
      numCores: 4,
      memoryCapacity: 24684084 * 1024,
      swapCapacity: 2097148 * 1024,
      hugePages: [
        { pageSizeKiB: 2048, numPages: 4 },
        { pageSizeKiB: 1048576, numPages: 0 },
      ],
      machineID: "3d1219c7c4c5404aaa1f6d2a48adfda4",
      systemUUID: "ec2a1b2c-0000-1111-2222-333344445555",
      bootID: "b63b60ed-0da6-4afb-a33b-e0a1b8ff851e",
      osImage: "Debian GNU/Linux 12 (bookworm)",
      operatingSystem: "linux",
      architecture: goArch(process.arch),
    });
    expect(info.kernelVersion).toMatch(/^\d+\.\d+/);
    expect(info.rootFs?.path).toBe(join(root, "var/lib/kubelet"));
    expect(info.rootFs?.capacityBytes).toBeGreaterThan(0);
    // Not created yet: the filesystem it will live on.
    expect(info.imageFs?.path).toBe(join(root, "var/lib"));
  });

  it("degrades the identifiers as cAdvisor does", async () => {
    rmSync(join(root, "etc/machine-id"));
    rmSync(join(root, "sys/class/dmi"), { recursive: true });
    rmSync(join(root, "etc/os-release"));
    put("/var/lib/dbus/machine-id", "dbus-id\n");
    const info = await readMachineInfo({ hostRoot: root, rootFs: root, imageFs: root });
    expect(info.machineID).toBe("dbus-id");
    expect(info.systemUUID).toBe("");
    expect(info.osImage).toBe("Unknown");
    put("/usr/lib/os-release", "NAME=NoPretty\n");
    expect((await readMachineInfo({ hostRoot: root, rootFs: root, imageFs: root })).osImage).toBe("Linux");
  });

  it("counts /proc/stat CPUs without sysfs", async () => {
    rmSync(join(root, "sys/devices"), { recursive: true });
    put("/proc/stat", "cpu  1 2 3\ncpu0 1 2 3\ncpu1 1 2 3\nintr 5\n");
    expect((await readMachineInfo({ hostRoot: root, rootFs: root, imageFs: root })).numCores).toBe(2);
  });

  it("fails Unavailable without /proc/meminfo", async () => {
    rmSync(join(root, "proc/meminfo"));
    const err = await readMachineInfo({ hostRoot: root, rootFs: root, imageFs: root }).catch((e: unknown) => e);
    expect(isDeckhandError(err, "Unavailable")).toBe(true);
  });

  it("statfs's a directory with inode counts", async () => {
    const fs = await readFsInfo(root);
    expect(fs.capacityBytes).toBeGreaterThanOrEqual(fs.availableBytes);
    expect(fs.usedBytes).toBeLessThanOrEqual(fs.capacityBytes);
    expect(fs.inodesUsed).toBe(fs.inodes - fs.inodesFree);
  });
});
