import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { gunzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ContainerLogManager, planRotation, rotationTimestamp } from "../../../../kubelet/logs/container-log-manager.ts";
import type { RuntimeService } from "../../../../kubelet/cri/services.ts";
import { silentLogger } from "../../../../src-shared/log.ts";
import { FakeClock } from "../../../harness/fake-clock.ts";

describe("the rotation plan (upstream's cleanupUnusedLogs, removeExcessLogs, compression)", () => {
  it("drops temporary files and uncompressed copies, keeps maxFiles - 2 rotated files, compresses the rest", () => {
    const l = "/p/c/0.log";
    const files = [`${l}.20200101-000001.gz`, `${l}.20200101-000002.gz`, `${l}.20200101-000003`, `${l}.20200101-000003.gz.tmp`, `${l}.20200101-000004`, `${l}.20200101-000004.gz`];
    expect(planRotation(files, 5)).toEqual({
      remove: [`${l}.20200101-000003.gz.tmp`, `${l}.20200101-000004`, `${l}.20200101-000001.gz`],
      compress: [`${l}.20200101-000003`],
    });
    expect(planRotation([`${l}.20200101-000001`], 2)).toEqual({ remove: [`${l}.20200101-000001`], compress: [] });
  });

  it("names rotated files with Go's 20060102-150405 in local time", () => {
    expect(rotationTimestamp(new Date(2020, 0, 2, 3, 4, 5).getTime())).toBe("20200102-030405");
  });
});

describe("the container log manager", () => {
  let dir = "";
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "log-rotation-"));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  function fakeRuntime(logPath: string, reopen: () => Promise<void>): { runtime: RuntimeService; reopened: string[] } {
    const reopened: string[] = [];
    const runtime = {
      runtime: (method: string, req: { container_id?: string }) => {
        if (method === "ListContainers") return Promise.resolve({ containers: [{ id: "c1" }] });
        if (method === "ContainerStatus") return Promise.resolve({ status: { log_path: logPath, state: "CONTAINER_RUNNING" } });
        if (method === "ReopenContainerLog") {
          reopened.push(req.container_id ?? "");
          return reopen();
        }
        return Promise.reject(new Error(`unexpected ${method}`));
      },
    } as unknown as RuntimeService;
    return { runtime, reopened };
  }

  it("rotates a log past maxSize, compresses older rotations and keeps maxFiles files", async () => {
    const log = join(dir, "0.log");
    const clock = new FakeClock(new Date(2020, 0, 1, 0, 0, 0).getTime());
    const { runtime, reopened } = fakeRuntime(log, () => writeFile(log, ""));
    const m = new ContainerLogManager({ runtime, policy: { maxSizeBytes: 10, maxFiles: 3, workers: 1, intervalMs: 10_000 }, logger: silentLogger(), clock });
    const signal = new AbortController().signal;
    await writeFile(log, "short\n");
    await m.rotateLogs(signal);
    expect(reopened).toEqual([]);
    for (const [i, text] of ["first rotation\n", "second rotation\n", "third rotation\n"].entries()) {
      await writeFile(log, text);
      await clock.advance(1000 * (i + 1));
      await m.rotateLogs(signal);
    }
    expect(reopened).toEqual(["c1", "c1", "c1"]);
    const files = (await readdir(dir)).sort();
    expect(files).toEqual(["0.log", "0.log.20200101-000003.gz", "0.log.20200101-000006"]);
    expect(gunzipSync(await readFile(join(dir, "0.log.20200101-000003.gz"))).toString()).toBe("second rotation\n");
    expect(await readFile(join(dir, "0.log.20200101-000006"), "utf8")).toBe("third rotation\n");
  });

  it("gives the log its name back when the runtime cannot reopen it", async () => {
    const log = join(dir, "0.log");
    const { runtime } = fakeRuntime(log, () => Promise.reject(new Error("no such container")));
    const m = new ContainerLogManager({ runtime, policy: { maxSizeBytes: 1, maxFiles: 5, workers: 1, intervalMs: 10_000 }, logger: silentLogger() });
    await writeFile(log, "still here\n");
    await m.rotateLogs(new AbortController().signal);
    expect(await readdir(dir)).toEqual(["0.log"]);
    expect(await readFile(log, "utf8")).toBe("still here\n");
  });
});
