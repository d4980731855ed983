import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { containerVolumeMounts, expandSubPathExpr, subPathOf, type PodVolume } from "../../../../kubelet/volumes/container-mounts.ts";

let dir: string;
let vols: Map<string, PodVolume>;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "deckhand-mounts-"));
  await mkdir(join(dir, "data", "logs"), { recursive: true });
  await mkdir(join(dir, "outside"));
  await writeFile(join(dir, "outside", "secret"), "x");
  await symlink(join(dir, "outside"), join(dir, "data", "escape"));
  await symlink("logs", join(dir, "data", "inside"));
  vols = new Map([
    ["data", { plugin: "emptyDir", path: join(dir, "data"), readOnly: false }],
    ["cfg", { plugin: "configMap", path: join(dir, "cfg"), readOnly: true }],
  ]);
  await mkdir(join(dir, "cfg"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const env = new Map([["POD", "web-1"]]);

describe("containerVolumeMounts", () => {
  it("mounts volumes with readOnly (forced for API data), propagation and subPath", async () => {
    const mounts = await containerVolumeMounts(
      {
        name: "c",
        image: "i",
        volumeMounts: [
          { name: "data", mountPath: "/data" },
          { name: "data", mountPath: "/logs", subPath: "logs", readOnly: true, mountPropagation: "HostToContainer" },
          { name: "cfg", mountPath: "/etc/cfg" },
          { name: "data", mountPath: "/per-pod", subPathExpr: "pods/$(POD)" },
        ],
      },
      vols,
      env,
    );
    expect(mounts).toEqual([
      { container_path: "/data", host_path: join(dir, "data"), readonly: false, propagation: "PROPAGATION_PRIVATE", selinux_relabel: false },
      { container_path: "/logs", host_path: join(dir, "data", "logs"), readonly: true, propagation: "PROPAGATION_HOST_TO_CONTAINER", selinux_relabel: false },
      { container_path: "/etc/cfg", host_path: join(dir, "cfg"), readonly: true, propagation: "PROPAGATION_PRIVATE", selinux_relabel: false },
      { container_path: "/per-pod", host_path: join(dir, "data", "pods", "web-1"), readonly: false, propagation: "PROPAGATION_PRIVATE", selinux_relabel: false },
    ]);
  });

  it("follows a symlink that stays inside the volume", async () => {
    const [m] = await containerVolumeMounts({ name: "c", image: "i", volumeMounts: [{ name: "data", mountPath: "/x", subPath: "inside" }] }, vols, env);
    expect(m?.host_path).toBe(join(dir, "data", "logs"));
  });

  it("refuses subPaths that escape the volume: .., absolute, a symlink out, an expression expanding to ..", async () => {
    const mount = (m: Record<string, unknown>) => containerVolumeMounts({ name: "c", image: "i", volumeMounts: [{ name: "data", mountPath: "/x", ...m }] }, vols, new Map([["UP", ".."]]));
    await expect(mount({ subPath: "../outside" })).rejects.toThrow("unable to provision SubPath `../outside`: must not contain '..'");
    await expect(mount({ subPath: "/etc" })).rejects.toThrow("error SubPath `/etc` must not be an absolute path");
    await expect(mount({ subPath: "escape" })).rejects.toThrow(/not within volume path/);
    await expect(mount({ subPath: "escape/deeper" })).rejects.toThrow(/not within volume path/);
    await expect(mount({ subPathExpr: "$(UP)/outside" })).rejects.toThrow(/must not contain '..'/);
  });

  it("refuses a mount of an unknown volume and Bidirectional propagation outside privileged containers", async () => {
    await expect(containerVolumeMounts({ name: "c", image: "i", volumeMounts: [{ name: "nope", mountPath: "/x" }] }, vols, env)).rejects.toThrow('cannot find volume "nope" to mount into container "c"');
    await expect(containerVolumeMounts({ name: "c", image: "i", volumeMounts: [{ name: "data", mountPath: "/x", mountPropagation: "Bidirectional" }] }, vols, env)).rejects.toThrow(
      "Bidirectional mount propagation is available only to privileged containers",
    );
    const [m] = await containerVolumeMounts({ name: "c", image: "i", securityContext: { privileged: true }, volumeMounts: [{ name: "data", mountPath: "/x", mountPropagation: "Bidirectional" }] }, vols, env);
    expect(m?.propagation).toBe("PROPAGATION_BIDIRECTIONAL");
  });

  it("expands subPathExpr from the container's env only ($$ escapes, unknown to nothing)", () => {
    expect(expandSubPathExpr("$(POD)/$(NOPE)/$$x", env)).toBe("web-1//$x");
    expect(() => subPathOf({ name: "v", mountPath: "/m", subPath: "a", subPathExpr: "b" }, "c", env)).toThrow(/mutually exclusive/);
  });
});
