import { appendFile, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { V1PodStatus } from "@kubernetes/client-node";
import { logContainerId, readContainerLog } from "../../../../kubelet/server/container-logs.ts";
import type { LogOptions } from "../../../../kubelet/server/cri-log.ts";
import { silentLogger } from "../../../../src-shared/log.ts";
import { eventually } from "../../../harness/wait.ts";

const status = (cs: object): V1PodStatus => ({ containerStatuses: [{ name: "c", image: "i", imageID: "", ready: false, restartCount: 0, ...cs }] });

describe("which container's log (upstream's validateContainerLogStatus)", () => {
  it("takes the running container, the terminated one, or the last terminated one", () => {
    expect(logContainerId(status({ containerID: "containerd://run", state: { running: {} } }), "c", "p_ns", false)).toBe("run");
    expect(logContainerId(status({ state: { terminated: { exitCode: 0, containerID: "containerd://done" } } }), "c", "p_ns", false)).toBe("done");
    expect(logContainerId(status({ state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: { terminated: { exitCode: 1, containerID: "containerd://last" } } }), "c", "p_ns", false)).toBe("last");
    expect(logContainerId(status({ containerID: "containerd://run", state: { running: {} }, lastState: { terminated: { exitCode: 1, containerID: "containerd://prev" } } }), "c", "p_ns", true)).toBe("prev");
  });

  it("fails with upstream's messages", () => {
    expect(() => logContainerId(status({ state: { running: {} } }), "c", "p_ns", true)).toThrow('previous terminated container "c" in pod "p_ns" not found');
    expect(() => logContainerId(status({ state: { waiting: { reason: "ContainerCreating" } } }), "c", "p_ns", false)).toThrow('container "c" in pod "p_ns" is waiting to start: ContainerCreating');
    expect(() => logContainerId(status({ state: { waiting: { reason: "ErrImagePull" } } }), "c", "p_ns", false)).toThrow("is waiting to start: image can't be pulled");
    expect(() => logContainerId(status({ state: { waiting: { reason: "ImagePullBackOff" } } }), "c", "p_ns", false)).toThrow("is waiting to start: trying and failing to pull image");
    expect(() => logContainerId(status({}), "c", "p_ns", false)).toThrow('container "c" in pod "p_ns" is waiting to start - no logs yet');
    expect(() => logContainerId(status({}), "other", "p_ns", false)).toThrow('container "other" in pod "p_ns" is not available');
  });
});

describe("reading a CRI log file", () => {
  let dir = "";
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "cri-log-"));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  const opts = (o: Partial<LogOptions> = {}): LogOptions => ({ follow: false, tailLines: undefined, limitBytes: undefined, sinceMs: undefined, timestamps: false, previous: false, ...o });
  const l = (text: string, tag = "F"): string => `2020-01-01T00:00:00.000000001Z stdout ${tag} ${text}\n`;

  async function read(path: string, o: LogOptions, isRunning = () => Promise.resolve(false), signal = new AbortController().signal): Promise<string> {
    let out = "";
    await readContainerLog(path, o, { write: (d) => ((out += d.toString()), Promise.resolve()) }, { isRunning, signal, log: silentLogger(), pollMs: 20, stateCheckMs: 50 });
    return out;
  }

  it("reads every line, or the last n, skipping lines it cannot parse", async () => {
    const f = join(dir, "0.log");
    await writeFile(f, l("a") + "garbage\n" + l("b", "P") + l("c") + l("d"));
    expect(await read(f, opts())).toBe("a\nbc\nd\n");
    expect(await read(f, opts({ tailLines: 2 }))).toBe("c\nd\n");
  });

  it("sends what each 64 KiB read of the file gives in one write, however many lines it holds, and stops at limitBytes", async () => {
    const f = join(dir, "0.log");
    const lines = Array.from({ length: 20_000 }, (_, i) => l(`line ${i}`)).join("");
    await writeFile(f, lines);
    const writes: number[] = [];
    let out = "";
    await readContainerLog(f, opts(), { write: (d) => ((out += d.toString()), writes.push(d.length), Promise.resolve()) }, { isRunning: () => Promise.resolve(false), signal: new AbortController().signal, log: silentLogger() });
    expect(out).toBe(Array.from({ length: 20_000 }, (_, i) => `line ${i}\n`).join(""));
    expect(writes.length).toBeLessThanOrEqual(Math.ceil(Buffer.byteLength(lines) / (64 * 1024)));
    expect(await read(f, opts({ limitBytes: 20 }))).toBe("line 0\nline 1\nline 2");
  });

  it("fails with NotFound when the file is missing", async () => {
    await expect(read(join(dir, "none.log"), opts())).rejects.toMatchObject({ code: "NotFound" });
  });

  it("follows new lines and a rotation, and ends once the container stops running", async () => {
    const f = join(dir, "0.log");
    await writeFile(f, l("one"));
    let running = true;
    let out = "";
    const done = readContainerLog(f, opts({ follow: true }), { write: (d) => ((out += d.toString()), Promise.resolve()) }, { isRunning: () => Promise.resolve(running), signal: new AbortController().signal, log: silentLogger(), pollMs: 20, stateCheckMs: 50 });
    await eventually(() => out === "one\n", { timeoutMs: 2000 });
    await appendFile(f, l("two"));
    await eventually(() => out === "one\ntwo\n", { timeoutMs: 2000 });
    // Rotation: the file is renamed (with a last line the reader has not seen yet) and a new one is opened.
    await appendFile(f, l("three"));
    await rename(f, `${f}.20200101-000000`);
    await writeFile(f, l("four"));
    await eventually(() => out === "one\ntwo\nthree\nfour\n", { timeoutMs: 2000 });
    running = false;
    await done;
  });

  it("stops following when the client goes away", async () => {
    const f = join(dir, "0.log");
    await writeFile(f, l("x"));
    const ctl = new AbortController();
    const p = read(f, opts({ follow: true }), () => Promise.resolve(true), ctl.signal);
    setTimeout(() => ctl.abort(), 100);
    expect(await p).toBe("x\n");
  });
});
