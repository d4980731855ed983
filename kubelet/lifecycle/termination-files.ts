/**
 * The termination message files on disk, as upstream lays them out: one empty file per container attempt at
 * `<rootDir>/pods/<uid>/containers/<name>/<8 hex digits>` (mode 0666, so any user in the container can write
 * it), bind-mounted at the container's terminationMessagePath; read back once the container has exited
 * (through the mount CRI reports, so no spec is needed), with the log fallback; removed with the pod.
 */
import type { V1Container } from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, rm, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ContainerStatus, Input, Mount } from "../cri/types.ts";
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import {
  DEFAULT_TERMINATION_MESSAGE_PATH,
  MAX_CONTAINER_TERMINATION_MESSAGE_LENGTH,
  MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LINES,
  lastBytes,
  logTailMessage,
  terminationMessageSource,
} from "./termination-message.ts";

/** Upstream's getPodContainerDir. */
export function podContainerDir(rootDir: string, uid: string, containerName: string): string {
  return join(rootDir, "pods", uid, "containers", containerName);
}

/** Where termination message files are made and removed (an interface: unit tests use an in-memory one). */
export interface TerminationMessageFiles {
  /**
   * Creates the container's termination message file and returns its mount. A file that cannot be created
   * leaves the container without it (upstream logs and goes on), as does an empty terminationMessagePath.
   */
  create(uid: string, container: V1Container): Promise<Input<Mount> | undefined>;
  /** Removes the pod's files (its container folders, and the pod folder if nothing else is in it). */
  removePod(uid: string): Promise<void>;
}

export class DiskTerminationMessageFiles implements TerminationMessageFiles {
  private readonly rootDir: string;
  private readonly log: Logger;

  constructor(options: { rootDir: string; logger: Logger }) {
    this.rootDir = options.rootDir;
    this.log = options.logger.child({ component: "termination-files" });
  }

  async create(uid: string, container: V1Container): Promise<Input<Mount> | undefined> {
    const containerPath = container.terminationMessagePath ?? DEFAULT_TERMINATION_MESSAGE_PATH;
    if (containerPath === "") return undefined;
    const dir = podContainerDir(this.rootDir, uid, container.name);
    // Pod uid and container name are unique enough; a random id tells the attempts apart (upstream's makeUID).
    const hostPath = join(dir, randomBytes(4).toString("hex"));
    try {
      await mkdir(dir, { recursive: true, mode: 0o750 });
      await writeFile(hostPath, "", { flag: "wx" });
      // The umask must not decide the mode.
      await chmod(hostPath, 0o666);
    } catch (err) {
      this.log.warn({ path: hostPath, err: errorMessage(err) }, "error on creating termination-log file");
      return undefined;
    }
    return { host_path: hostPath, container_path: containerPath };
  }

  async removePod(uid: string): Promise<void> {
    await rm(join(this.rootDir, "pods", uid, "containers"), { recursive: true, force: true });
    // Volumes live beside it: the pod folder goes only when empty.
    await rmdir(join(this.rootDir, "pods", uid)).catch(() => undefined);
  }
}

/** At most the last `max` bytes of a file; undefined when it does not exist. */
async function readTail(path: string, max: number): Promise<Buffer | undefined> {
  let file;
  try {
    file = await open(path, "r");
  } catch (err) {
    if ((err as { code?: unknown }).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const { size } = await file.stat();
    const length = Math.min(size, max);
    const buf = Buffer.alloc(length);
    const { bytesRead } = await file.read(buf, 0, length, size - length);
    return buf.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/** Enough of a CRI log for its last 80 lines (containerd splits lines at 16 KiB). */
const LOG_TAIL_READ_BYTES = MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LINES * (16 * 1024 + 64);

/**
 * An exited container's termination message (upstream's getTerminationMessage, then the log fallback):
 * the tail of the mounted file, else, under FallbackToLogsOnError after a failure, the tail of its log.
 */
export async function readTerminationMessage(status: Pick<ContainerStatus, "annotations" | "mounts" | "log_path" | "exit_code" | "reason">): Promise<string> {
  const { path, fallbackToLogs } = terminationMessageSource(status.annotations, status.exit_code, status.reason);
  const mount = path === "" ? undefined : status.mounts.find((m) => m.container_path === path);
  if (mount) {
    let data: Buffer | undefined;
    try {
      data = await readTail(mount.host_path, MAX_CONTAINER_TERMINATION_MESSAGE_LENGTH);
    } catch (err) {
      return `Error on reading termination log ${mount.host_path}: ${errorMessage(err)}`;
    }
    // An empty or missing file lets the log stand in when the policy allows.
    if (data !== undefined && (data.length > 0 || !fallbackToLogs)) return data.toString("utf8");
  }
  if (!fallbackToLogs || status.log_path === "") return "";
  try {
    const log = await readTail(status.log_path, LOG_TAIL_READ_BYTES);
    return log === undefined ? "" : logTailMessage(lastBytes(log, LOG_TAIL_READ_BYTES));
  } catch (err) {
    return `Error on reading termination message from logs: ${errorMessage(err)}`;
  }
}
