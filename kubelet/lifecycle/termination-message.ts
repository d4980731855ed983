/**
 * Termination messages (upstream's getTerminationMessage and readLastStringFromContainerLogs in
 * kuberuntime_container.go, limits from kubecontainer): where a container's message comes from once it has
 * exited, the tail of what it wrote (4 KiB, the end of the file), the log fallback of `FallbackToLogsOnError`
 * (the last 80 log lines, of which the last 2 KiB), and how the message joins the runtime's own. The pod-wide
 * share (12 KiB split between the containers) is applied with the pod status (status/pod-status.ts). Pure.
 */
import { TERMINATION_MESSAGE_PATH_ANNOTATION, TERMINATION_MESSAGE_POLICY_ANNOTATION } from "../runtime/labels.ts";

/** kubecontainer.MaxContainerTerminationMessageLength: the end of the file is kept. */
export const MAX_CONTAINER_TERMINATION_MESSAGE_LENGTH = 1024 * 4;
/** kubecontainer.MaxContainerTerminationMessageLogLength: bytes kept of the log fallback. */
export const MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LENGTH = 1024 * 2;
/** kubecontainer.MaxContainerTerminationMessageLogLines: log lines read for the fallback. */
export const MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LINES = 80;

export const DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log";

/**
 * Where an exited container's message is read: the path it was created with (annotation), and whether its log
 * may stand in (FallbackToLogsOnError, a non-zero exit, and a container that ran at all).
 */
export function terminationMessageSource(annotations: Readonly<Record<string, string>>, exitCode: number, reason: string): { path: string; fallbackToLogs: boolean } {
  const policy = annotations[TERMINATION_MESSAGE_POLICY_ANNOTATION] ?? "File";
  return {
    path: annotations[TERMINATION_MESSAGE_PATH_ANNOTATION] ?? "",
    fallbackToLogs: policy === "FallbackToLogsOnError" && exitCode !== 0 && reason !== "ContainerCannotRun",
  };
}

/** The last `max` bytes (tail.ReadAtMost keeps the end of the file). */
export function lastBytes(data: Buffer, max: number): Buffer {
  return data.length <= max ? data : data.subarray(data.length - max);
}

/**
 * The log fallback from the tail of a CRI log file (`<time> <stream> <P|F> <text>` lines): the last 80 lines'
 * texts, a full line ending in a newline, a partial one not, and of that the last 2 KiB (upstream's circular
 * buffer). Lines that do not parse are skipped, as upstream's reader does.
 */
export function logTailMessage(log: Buffer): string {
  const lines = log.toString("utf8").split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const parts: string[] = [];
  for (const line of lines.slice(-MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LINES)) {
    const m = /^(\S+) (stdout|stderr) (\S+) (.*)$/s.exec(line);
    if (!m) continue;
    const tags = (m[3] ?? "").split(":");
    parts.push(tags[0] === "P" ? (m[4] ?? "") : `${m[4] ?? ""}\n`);
  }
  return lastBytes(Buffer.from(parts.join(""), "utf8"), MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LENGTH).toString("utf8");
}

/** The runtime's message, then the container's own after ": " (upstream's convertToKubeContainerStatus). */
export function enrichMessage(runtimeMessage: string, terminationMessage: string): string {
  if (terminationMessage === "") return runtimeMessage;
  return runtimeMessage === "" ? terminationMessage : `${runtimeMessage}: ${terminationMessage}`;
}
