/**
 * `promtool check metrics` (Debian's prometheus package, installed by test/setup.sh) on an exposition text:
 * what it printed (empty when the text passes) and its exit code. `hasPromtool` lets a test skip without it.
 */
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";

export const hasPromtool = existsSync("/usr/bin/promtool");

export function promtoolCheck(text: string): { output: string; code: number | null } {
  const r = spawnSync("/usr/bin/promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  return { output: r.stdout + r.stderr, code: r.status };
}
