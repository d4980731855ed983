import { describe, expect, it } from "vitest";
import {
  MAX_CONTAINER_TERMINATION_MESSAGE_LENGTH,
  MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LENGTH,
  enrichMessage,
  lastBytes,
  logTailMessage,
  terminationMessageSource,
} from "../../../../kubelet/lifecycle/termination-message.ts";

const PATH = "io.kubernetes.container.terminationMessagePath";
const POLICY = "io.kubernetes.container.terminationMessagePolicy";

const criLine = (stream: "stdout" | "stderr", tag: "F" | "P", text: string) => `2026-12-03T10:00:00.000000000Z ${stream} ${tag} ${text}\n`;

describe("termination message sources", () => {
  it("falls back to the log only under FallbackToLogsOnError, after a failure of a container that ran", () => {
    const fallback = { [PATH]: "/dev/termination-log", [POLICY]: "FallbackToLogsOnError" };
    expect(terminationMessageSource(fallback, 1, "Error")).toEqual({ path: "/dev/termination-log", fallbackToLogs: true });
    expect(terminationMessageSource(fallback, 0, "Completed").fallbackToLogs).toBe(false);
    expect(terminationMessageSource(fallback, 128, "ContainerCannotRun").fallbackToLogs).toBe(false);
    expect(terminationMessageSource({ [PATH]: "/m", [POLICY]: "File" }, 1, "Error")).toEqual({ path: "/m", fallbackToLogs: false });
    expect(terminationMessageSource({}, 1, "Error")).toEqual({ path: "", fallbackToLogs: false });
  });

  it("keeps the end of a long message (tail.ReadAtMost), 4 KiB", () => {
    const data = Buffer.from(`${"a".repeat(5000)}END`);
    const kept = lastBytes(data, MAX_CONTAINER_TERMINATION_MESSAGE_LENGTH);
    expect(kept.length).toBe(4096);
    expect(kept.toString().endsWith("aEND")).toBe(true);
    expect(lastBytes(Buffer.from("short"), 4096).toString()).toBe("short");
  });

  it("reads the last 80 log lines' texts, partial lines joined, and keeps the last 2 KiB", () => {
    const log = criLine("stdout", "F", "one") + criLine("stderr", "P", "par") + criLine("stderr", "F", "tial") + "not a cri line\n";
    expect(logTailMessage(Buffer.from(log))).toBe("one\npartial\n");
    const many = Array.from({ length: 100 }, (_, i) => criLine("stdout", "F", `line ${i}`)).join("");
    const tail = logTailMessage(Buffer.from(many));
    expect(tail.startsWith("line 20\n")).toBe(true);
    expect(tail.endsWith("line 99\n")).toBe(true);
    const long = Array.from({ length: 10 }, (_, i) => criLine("stdout", "F", `${i}${"x".repeat(500)}`)).join("");
    const cut = logTailMessage(Buffer.from(long));
    expect(Buffer.byteLength(cut)).toBe(MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LENGTH);
    expect(cut.endsWith(`9${"x".repeat(500)}\n`)).toBe(true);
  });

  it("joins the runtime's message and the container's as upstream", () => {
    expect(enrichMessage("", "")).toBe("");
    expect(enrichMessage("", "bye")).toBe("bye");
    expect(enrichMessage("OOM", "")).toBe("OOM");
    expect(enrichMessage("OOM", "bye")).toBe("OOM: bye");
  });
});
