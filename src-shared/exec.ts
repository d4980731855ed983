import { spawn, type ChildProcess } from "node:child_process";
import { DeckhandError } from "./errors.ts";

export interface RunOptions {
  signal?: AbortSignal;
  /** Written to the child's stdin, which is then closed. */
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the child (SIGKILL) after this long. */
  timeoutMs?: number;
  /** Resolve instead of throwing when the exit code is non-zero. */
  allowFailure?: boolean;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit code, or null when a signal ended the child. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The child exited non-zero (or by a signal); code `Internal`, with the command, exit code and stderr in `details`. */
export class CommandError extends DeckhandError {
  readonly result: RunResult;
  constructor(command: string, result: RunResult) {
    const how = result.code === null ? `signal ${result.signal ?? "?"}` : `exit code ${result.code}`;
    const detail = result.stderr.trim() || result.stdout.trim();
    super("Internal", `${command} failed with ${how}${detail ? `: ${detail.slice(0, 2000)}` : ""}`, {
      details: { command, code: result.code, signal: result.signal },
    });
    this.name = "CommandError";
    this.result = result;
  }
}

/**
 * Runs a program without a shell and collects its output. The signal (and timeout) kill the child; a
 * missing program rejects with code `NotFound`.
 */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const command = [file, ...args].join(" ");
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new DeckhandError("Cancelled", `${command}: aborted before start`, { cause: options.signal.reason }));
      return;
    }
    const child = spawn(file, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      signal: options.signal,
      killSignal: "SIGKILL",
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    child.stderr?.on("data", (b: Buffer) => err.push(b));
    const timer =
      options.timeoutMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    let spawnError: Error | undefined;
    child.on("error", (e: NodeJS.ErrnoException) => {
      spawnError = e;
    });
    if (options.input !== undefined && child.stdin) {
      child.stdin.on("error", () => undefined); // a child that exits without reading stdin is reported by its exit code
      child.stdin.end(options.input);
    }
    child.on("close", (code, sig) => {
      clearTimeout(timer);
      if (spawnError !== undefined) {
        const e = spawnError as NodeJS.ErrnoException;
        if (e.code === "ENOENT") reject(new DeckhandError("NotFound", `${file}: program not found`, { cause: e }));
        else if (e.name === "AbortError")
          reject(new DeckhandError("Cancelled", `${command}: aborted`, { cause: options.signal?.reason ?? e }));
        else reject(new DeckhandError("Internal", `${command}: ${e.message}`, { cause: e }));
        return;
      }
      const result: RunResult = {
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        code,
        signal: sig,
      };
      if (code === 0 || options.allowFailure) resolve(result);
      else reject(new CommandError(command, result));
    });
  });
}

/**
 * Lets a long-lived helper child neither keep this process alive nor die of its errors: errors on the child
 * and its stdin are left to the exit handler, and the child and its pipes are unref'd.
 */
export function detachHelper(child: ChildProcess): void {
  child.on("error", () => undefined);
  child.stdin?.on("error", () => undefined);
  child.unref();
  (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
}
