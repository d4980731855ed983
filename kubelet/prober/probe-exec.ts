/**
 * Exec probes through CRI ExecSync (upstream's pkg/probe/exec with the runtime's RunInContainer): exit 0 is a
 * success, another exit code a failure with the command's output, and a command that outlives the probe's
 * timeout a failure saying so (upstream's ExecProbeTimeout, GA). Anything else (container gone, runtime
 * down) is an error: the prober retries it and the worker throws the result away.
 */
import type { RuntimeService } from "../cri/services.ts";
import { isDeckhandError } from "../../src-shared/errors.ts";
import { MAX_PROBE_OUTPUT, type ProbeOutcome } from "./probe.ts";

/**
 * Time the runtime gets on top of the probe's timeout before the call itself is abandoned: upstream's CRI
 * client adds its runtime request timeout (2 minutes) so the runtime can kill the command and answer.
 */
export const EXEC_DEADLINE_SLACK_MS = 120_000;

export interface ExecProbeOptions {
  runtime: RuntimeService;
  containerId: string;
  cmd: string[];
  timeoutSeconds: number;
  signal?: AbortSignal;
  deadlineSlackMs?: number;
}

export async function execProbe(o: ExecProbeOptions): Promise<ProbeOutcome> {
  const callOptions = {
    timeoutMs: o.timeoutSeconds * 1000 + (o.deadlineSlackMs ?? EXEC_DEADLINE_SLACK_MS),
    ...(o.signal ? { signal: o.signal } : {}),
  };
  let res;
  try {
    res = await o.runtime.runtime("ExecSync", { container_id: o.containerId, cmd: o.cmd, timeout: o.timeoutSeconds }, callOptions);
  } catch (err) {
    // The runtime kills the command at the timeout and answers DeadlineExceeded (upstream's TimeoutError).
    if (isDeckhandError(err, "DeadlineExceeded") && !o.signal?.aborted) return { status: "failure", output: `command ${JSON.stringify(o.cmd.join(" "))} timed out` };
    throw err;
  }
  // Upstream appends stderr to stdout (no interleaving through ExecSync) and keeps the first 10 KiB.
  const output = Buffer.concat([res.stdout, res.stderr]).subarray(0, MAX_PROBE_OUTPUT).toString("utf8");
  return { status: res.exit_code === 0 ? "success" : "failure", output };
}
