import { describe, expect, it } from "vitest";
import { CommandError, run } from "../../../src-shared/exec.ts";
import type { DeckhandError } from "../../../src-shared/errors.ts";

describe("run", () => {
  it("collects output and passes stdin", async () => {
    const r = await run("sh", ["-c", "cat; echo err >&2"], { input: "hi\n" });
    expect(r).toEqual({ stdout: "hi\n", stderr: "err\n", code: 0, signal: null });
  });

  it("throws a CommandError naming the command, exit code and stderr", async () => {
    const err = await run("sh", ["-c", "echo broken >&2; exit 3"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).message).toBe("sh -c echo broken >&2; exit 3 failed with exit code 3: broken");
    expect((err as CommandError).result.code).toBe(3);
  });

  it("resolves failures when allowed", async () => {
    expect((await run("sh", ["-c", "exit 4"], { allowFailure: true })).code).toBe(4);
  });

  it("gives NotFound for a missing program", async () => {
    const err = await run("/nonexistent/program", []).catch((e: unknown) => e);
    expect((err as DeckhandError).code).toBe("NotFound");
  });

  it("kills the child on abort and on timeout", async () => {
    const controller = new AbortController();
    const pending = run("sleep", ["10"], { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    expect(((await pending.catch((e: unknown) => e)) as DeckhandError).code).toBe("Cancelled");
    const timedOut = await run("sleep", ["10"], { timeoutMs: 50, allowFailure: true });
    expect(timedOut.signal).toBe("SIGKILL");
  });
});
