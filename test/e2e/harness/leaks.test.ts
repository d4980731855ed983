/** The leak check itself: it must see what a sandbox leaves behind, and only this run's leftovers. */
import { mkdir, rm, rmdir } from "node:fs/promises";
import { cgroupHierarchies } from "../../../src-shared/cgroups.ts";
import { describe, expect, it } from "vitest";
import { run } from "../../../src-shared/exec.ts";
import { findLeaks, takeBaseline, uniqueName } from "../../harness/leaks.ts";

describe("leak check", () => {
  it("reports a network namespace, folder and cgroup of this run, and not another run's", async () => {
    const baseline = await takeBaseline();
    const ours = uniqueName();
    const theirs = `dh-zz${ours.slice(-6)}`; // another run's tag
    let cgroup: string | undefined;
    try {
      await run("ip", ["netns", "add", ours]);
      await run("ip", ["netns", "add", theirs]);
      await mkdir(`/tmp/${ours}`);
      // A cgroup under the first hierarchy there is (a v1 controller, or the v2 root).
      const hierarchy = (await cgroupHierarchies())[0]?.mountPoint ?? "/sys/fs/cgroup";
      cgroup = `${hierarchy}/${ours}`;
      await mkdir(cgroup);
      const leaks = await findLeaks(baseline);
      expect(leaks).toContain(`network namespace ${ours}`);
      expect(leaks).toContain(`folder /tmp/${ours}`);
      expect(leaks).toContain(`cgroup ${cgroup}`);
      expect(leaks.join("\n")).not.toContain(theirs);
    } finally {
      await run("ip", ["netns", "del", ours], { allowFailure: true });
      await run("ip", ["netns", "del", theirs], { allowFailure: true });
      await rm(`/tmp/${ours}`, { recursive: true, force: true });
      if (cgroup) await rmdir(cgroup).catch(() => undefined);
    }
  });
});
