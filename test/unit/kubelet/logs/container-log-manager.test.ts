import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { gunzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ContainerLogManager, planRotation, planSymlinks, rotationTimestamp } from "../../../../kubelet/logs/container-log-manager.ts";
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

describe("the legacy /var/log/containers symlinks", () => {
  const id = (c: string) => c.repeat(64);
  const labels = { "io.kubernetes.pod.name": "web", "io.kubernetes.pod.namespace": "ns", "io.kubernetes.pod.uid": "u1", "io.kubernetes.container.name": "app" };

  it("point <pod>_<ns>_<container>-<id>.log at the container's log and go with their container", () => {
    const plan = planSymlinks(
      [{ id: id("a"), labels, annotations: { "io.kubernetes.container.restartCount": "2" } }, { id: id("b"), labels: {}, annotations: {} }],
      [`web_ns_app-${id("a")}.log`, `old_ns_app-${id("c")}.log`, "unrelated.log"],
      "/var/log/pods",
    );
    expect([...plan.want]).toEqual([[`web_ns_app-${id("a")}.log`, "/var/log/pods/ns_web_u1/app/2.log"]]);
    expect(plan.remove).toEqual([`old_ns_app-${id("c")}.log`]);
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
    const m = new ContainerLogManager({ runtime, policy: { maxSizeBytes: 10, maxFiles: 3, workers: 1, intervalMs: 10_000 }, logger: silentLogger(), clock, podLogsDir: dir, symlinkDir: join(dir, "containers") });
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

  it("keeps the symlinks in step with the runtime's containers", async () => {
    const cid = "d".repeat(64);
    const labels = { "io.kubernetes.pod.name": "web", "io.kubernetes.pod.namespace": "ns", "io.kubernetes.pod.uid": "u1", "io.kubernetes.container.name": "app" };
    let containers = [{ id: cid, labels, annotations: { "io.kubernetes.container.restartCount": "0" } }];
    const runtime = { runtime: () => Promise.resolve({ containers }) } as unknown as RuntimeService;
    const links = join(dir, "containers");
    const m = new ContainerLogManager({ runtime, policy: { maxSizeBytes: 1, maxFiles: 5, workers: 1, intervalMs: 10_000 }, logger: silentLogger(), podLogsDir: join(dir, "pods"), symlinkDir: links });
    await m.syncSymlinks(new AbortController().signal);
    expect(await readlink(join(links, `web_ns_app-${cid}.log`))).toBe(join(dir, "pods", "ns_web_u1", "app", "0.log"));
    containers = [];
    await m.syncSymlinks(new AbortController().signal);
    expect(await readdir(links)).toEqual([]);
  });

  it("gives the log its name back when the runtime cannot reopen it", async () => {
    const log = join(dir, "0.log");
    const { runtime } = fakeRuntime(log, () => Promise.reject(new Error("no such container")));
    const m = new ContainerLogManager({ runtime, policy: { maxSizeBytes: 1, maxFiles: 5, workers: 1, intervalMs: 10_000 }, logger: silentLogger(), podLogsDir: dir, symlinkDir: join(dir, "containers") });
    await writeFile(log, "still here\n");
    await m.rotateLogs(new AbortController().signal);
    expect(await readdir(dir)).toEqual(["0.log"]);
    expect(await readFile(log, "utf8")).toBe("still here\n");
  });
});
