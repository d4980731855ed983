/**
 * `/containerLogs`: which container's log a request means (upstream's validateContainerLogStatus, over the
 * pod's status), and the reader that streams a CRI log file through the options (cri-log.ts): from the start
 * of the last `tailLines` lines, and, while following, on as the file grows and across a rotation (the file
 * renamed and a new one opened at the same path: the old one is read to its end, then the new one from its
 * start), until the container stops running, the byte limit is reached, or the client goes away.
 */
import { open, stat, type FileHandle } from "node:fs/promises";
import { watch } from "node:fs";
import type { V1ContainerStatus, V1PodStatus } from "@kubernetes/client-node";
import { DeckhandError } from "../../src-shared/errors.ts";
import type { Logger } from "../../src-shared/log.ts";
import { CriLogWriter, parseCriLogLine, tailStart, type LogOptions } from "./cri-log.ts";

/** Without the runtime prefix: `containerd://abc` → `abc`. */
function bareId(id: string): string {
  const i = id.indexOf("://");
  return i < 0 ? id : id.slice(i + 3);
}

/**
 * The CRI id of the container whose log is wanted, from the pod's status; throws (BadRequest for the
 * handler) with upstream's message when there is none.
 */
export function logContainerId(status: Pick<V1PodStatus, "containerStatuses" | "initContainerStatuses" | "ephemeralContainerStatuses"> | undefined, containerName: string, podName: string, previous: boolean): string {
  const all: V1ContainerStatus[] = [...(status?.containerStatuses ?? []), ...(status?.initContainerStatuses ?? []), ...(status?.ephemeralContainerStatuses ?? [])];
  const cs = all.find((c) => c.name === containerName);
  const fail = (msg: string): never => {
    throw new DeckhandError("FailedPrecondition", msg);
  };
  if (cs === undefined) return fail(`container "${containerName}" in pod "${podName}" is not available`);
  const last = cs.lastState?.terminated;
  const { waiting, running, terminated } = cs.state ?? {};
  if (previous) {
    if (last === undefined || !last.containerID) return fail(`previous terminated container "${containerName}" in pod "${podName}" not found`);
    return bareId(last.containerID);
  }
  if (running !== undefined) return bareId(cs.containerID ?? "");
  if (terminated !== undefined) {
    if (terminated.containerID) return bareId(terminated.containerID);
    if (last?.containerID) return bareId(last.containerID);
    return fail(`container "${containerName}" in pod "${podName}" is terminated`);
  }
  if (last !== undefined) {
    if (!last.containerID) return fail(`container "${containerName}" in pod "${podName}" is terminated`);
    return bareId(last.containerID);
  }
  if (waiting !== undefined) {
    if (waiting.reason === "ErrImagePull") return fail(`container "${containerName}" in pod "${podName}" is waiting to start: image can't be pulled`);
    if (waiting.reason === "ImagePullBackOff") return fail(`container "${containerName}" in pod "${podName}" is waiting to start: trying and failing to pull image`);
    return fail(`container "${containerName}" in pod "${podName}" is waiting to start: ${waiting.reason ?? ""}`);
  }
  return fail(`container "${containerName}" in pod "${podName}" is waiting to start - no logs yet`);
}

export interface LogSink {
  /** Resolves when the bytes are accepted (back-pressure). */
  write(data: Buffer): Promise<void>;
}

export interface ReadLogsDeps {
  /** Whether the container still runs (CRI ContainerStatus); following ends once it does not. */
  isRunning: () => Promise<boolean>;
  signal: AbortSignal;
  log: Logger;
  /** How often to look at the file when no change is signalled, and to ask whether the container runs. */
  pollMs?: number;
  stateCheckMs?: number;
}

const CHUNK = 64 * 1024;

/** Waits for a change of the file (inotify), at most `ms`. */
function waitForChange(path: string, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    let watcher: ReturnType<typeof watch> | undefined;
    const done = (): void => {
      clearTimeout(timer);
      watcher?.close();
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    try {
      watcher = watch(path, { persistent: false }, done);
      watcher.on("error", done);
    } catch {
      // The path is gone (rotation under way): the timer brings us back.
    }
  });
}

/** Streams the log at `path` to `sink` through `opts`. Throws NotFound when the file cannot be opened. */
export async function readContainerLog(path: string, opts: LogOptions, sink: LogSink, deps: ReadLogsDeps): Promise<void> {
  const pollMs = deps.pollMs ?? 1000;
  const stateCheckMs = deps.stateCheckMs ?? 5000;
  const writer = new CriLogWriter(opts);
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (err) {
    throw new DeckhandError("NotFound", `failed to open log file "${path}": ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  try {
    let pos = 0;
    if (opts.tailLines !== undefined) {
      // The tail is found in what the file holds now (read whole: kubelet logs are bounded by rotation).
      const { size } = await fh.stat();
      const buf = Buffer.alloc(size);
      const { bytesRead } = await fh.read(buf, 0, size, 0);
      pos = tailStart(buf.subarray(0, bytesRead), opts.tailLines);
    }
    let pending = Buffer.alloc(0);
    let lastStateCheck = 0; // the first end of file asks at once
    const chunk = Buffer.alloc(CHUNK);
    for (;;) {
      if (deps.signal.aborted || writer.done) return;
      const { bytesRead } = await fh.read(chunk, 0, CHUNK, pos);
      if (bytesRead > 0) {
        pos += bytesRead;
        let data = pending.length > 0 ? Buffer.concat([pending, chunk.subarray(0, bytesRead)]) : Buffer.from(chunk.subarray(0, bytesRead));
        // What a chunk's lines give goes out in one write: one write per line (a chunk of the HTTP response
        // each) made a 100 MiB log of short lines cost seconds in framing alone, here and in every proxy after.
        const outs: Buffer[] = [];
        let nl: number;
        while ((nl = data.indexOf(0x0a)) >= 0) {
          const line = data.subarray(0, nl + 1);
          data = data.subarray(nl + 1);
          if (line.length === 1) continue;
          try {
            const out = writer.write(parseCriLogLine(line));
            if (out.length > 0) outs.push(out);
          } catch (err) {
            deps.log.warn({ path, err: err instanceof Error ? err.message : String(err) }, "skipping a log line that cannot be parsed");
            continue;
          }
          if (writer.done) break;
        }
        if (outs.length > 0) await sink.write(outs.length === 1 ? (outs[0] as Buffer) : Buffer.concat(outs));
        if (writer.done || deps.signal.aborted) return;
        pending = Buffer.from(data);
        continue;
      }
      // End of the file.
      if (!opts.follow) return;
      const [mine, current] = await Promise.all([fh.stat(), stat(path).catch(() => undefined)]);
      if (current !== undefined && current.ino !== mine.ino) {
        // Rotated: this file is complete; go on with the new one from its start.
        await fh.close();
        fh = await open(path, "r");
        pos = 0;
        pending = Buffer.alloc(0);
        continue;
      }
      if (Date.now() - lastStateCheck >= stateCheckMs || current === undefined) {
        lastStateCheck = Date.now();
        if (!(await deps.isRunning())) {
          // One last look: what was written before the exit.
          const { bytesRead: tailBytes } = await fh.read(chunk, 0, 1, pos);
          if (tailBytes > 0) continue;
          return;
        }
      }
      await waitForChange(path, pollMs, deps.signal);
    }
  } finally {
    await fh.close().catch(() => undefined);
  }
}
