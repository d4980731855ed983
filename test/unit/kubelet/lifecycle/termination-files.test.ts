import { describe, expect, it } from "vitest";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DiskTerminationMessageFiles, readTerminationMessage } from "../../../../kubelet/lifecycle/termination-files.ts";
import { silentLogger } from "../../../../src-shared/log.ts";

const PATH = "io.kubernetes.container.terminationMessagePath";
const POLICY = "io.kubernetes.container.terminationMessagePolicy";

const criLine = (stream: "stdout" | "stderr", tag: "F" | "P", text: string) => `2026-12-03T10:00:00.000000000Z ${stream} ${tag} ${text}\n`;

async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "deckhand-unit-termination-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("DiskTerminationMessageFiles", () => {
  it("creates one world-writable empty file per attempt under pods/<uid>/containers/<name>/, and removes them with the pod", () =>
    inTempDir(async (root) => {
      const files = new DiskTerminationMessageFiles({ rootDir: root, logger: silentLogger() });
      const first = await files.create("uid-1", { name: "app" });
      const second = await files.create("uid-1", { name: "app", terminationMessagePath: "/tmp/msg" });
      expect(first?.container_path).toBe("/dev/termination-log");
      expect(second?.container_path).toBe("/tmp/msg");
      for (const m of [first, second]) {
        expect(m?.host_path).toMatch(new RegExp(`^${root}/pods/uid-1/containers/app/[0-9a-f]{8}$`));
        const st = await stat(m?.host_path ?? "");
        expect(st.size).toBe(0);
        expect(st.mode & 0o777).toBe(0o666);
      }
      expect(first?.host_path).not.toBe(second?.host_path);
      expect(await files.create("uid-1", { name: "quiet", terminationMessagePath: "" })).toBeUndefined();
      await files.removePod("uid-1");
      expect(await readdir(join(root, "pods"))).toEqual([]);
      // Something else of the pod's (a volume) keeps its folder.
      await files.create("uid-2", { name: "app" });
      await mkdir(join(root, "pods", "uid-2", "volumes"));
      await files.removePod("uid-2");
      expect(await readdir(join(root, "pods", "uid-2"))).toEqual(["volumes"]);
    }));
});

describe("readTerminationMessage (files)", () => {
  it("reads the mounted file, else the log under FallbackToLogsOnError, else nothing", async () => {
    await inTempDir(async (dir) => {
      const file = join(dir, "msg");
      const log = join(dir, "0.log");
      await writeFile(log, criLine("stdout", "F", "from the log"));
      const status = (annotations: Record<string, string>, exit_code: number) => ({
        annotations,
        mounts: [{ container_path: "/dev/termination-log", host_path: file, readonly: false, selinux_relabel: false, propagation: "PROPAGATION_PRIVATE" as const, uidMappings: [], gidMappings: [], recursive_read_only: false, image: null, image_sub_path: "" }],
        log_path: log,
        exit_code,
        reason: exit_code === 0 ? "Completed" : "Error",
      });
      const file_ = { [PATH]: "/dev/termination-log", [POLICY]: "File" };
      const fallback = { [PATH]: "/dev/termination-log", [POLICY]: "FallbackToLogsOnError" };
      // No file yet (a container that never wrote it and whose file went): nothing, or the log.
      expect(await readTerminationMessage(status(file_, 1))).toBe("");
      expect(await readTerminationMessage(status(fallback, 1))).toBe("from the log\n");
      await writeFile(file, "");
      expect(await readTerminationMessage(status(fallback, 1))).toBe("from the log\n");
      expect(await readTerminationMessage(status(fallback, 0))).toBe("");
      await writeFile(file, `${"z".repeat(5000)}!`);
      const message = await readTerminationMessage(status(fallback, 1));
      expect(message).toHaveLength(4096);
      expect(message.endsWith("z!")).toBe(true);
      // A path no mount matches: as a missing file.
      expect(await readTerminationMessage(status({ [PATH]: "/elsewhere", [POLICY]: "File" }, 1))).toBe("");
    });
  });
});
