import { describe, expect, it } from "vitest";
import { parseCgroupMounts } from "../../../src-shared/cgroups.ts";

// Lines as /proc/self/mountinfo prints them on the two layouts the agent must handle.
const HYBRID = `27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 27 0:26 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
31 30 0:27 / /sys/fs/cgroup rw,relatime - tmpfs cgroup rw,mode=755
32 31 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 31 0:30 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
35 31 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
36 27 0:32 / /sys/fs/cgroup-elsewhere rw - cgroup cgroup rw,pids`;

const V2 = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:23 / /sys rw,nosuid shared:2 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:3 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot`;

describe("parseCgroupMounts", () => {
  it("finds each v1 controller and the unified tree of a hybrid host", () => {
    expect(parseCgroupMounts(HYBRID)).toEqual([
      { mountPoint: "/sys/fs/cgroup/cpu", fsType: "cgroup", options: "rw,cpu" },
      { mountPoint: "/sys/fs/cgroup/memory", fsType: "cgroup", options: "rw,memory" },
      { mountPoint: "/sys/fs/cgroup/systemd", fsType: "cgroup", options: "rw,name=systemd" },
      { mountPoint: "/sys/fs/cgroup/unified", fsType: "cgroup2", options: "rw" },
    ]);
  });

  it("finds the single tree of a pure v2 host, with optional fields before the separator", () => {
    expect(parseCgroupMounts(V2)).toEqual([
      { mountPoint: "/sys/fs/cgroup", fsType: "cgroup2", options: "rw,nsdelegate,memory_recursiveprot" },
    ]);
  });

  it("ignores malformed lines", () => {
    expect(parseCgroupMounts("garbage\n\n1 2 3")).toEqual([]);
  });
});
