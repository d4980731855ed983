/**
 * `npm run demo -- --once` in CI: the demo (test/demo/main.ts, without run.sh's set-up) brings up its default
 * two nodes, checks everything it shows and exits 0; its output has the lines an operator reads, and the
 * nodes' namespaces it printed and its kubectl proxy are gone once it has exited (the harness leak check covers
 * the rest).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const REPO = resolve(fileURLToPath(new URL("../../..", import.meta.url)));

async function processesNaming(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir("/proc")).filter((e) => /^\d+$/.test(e))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(text)) found.push(`${pid}: ${cmdline.replaceAll("\0", " ")}`);
  }
  return found;
}

function runDemo(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    // The e2e run's tag (DECKHAND_E2E_RUN) is inherited: the demo's sandboxes are this run's for the leak check.
    const child = spawn(join(REPO, "node_modules", ".bin", "node"), [join(REPO, "test", "demo", "main.ts"), ...args], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"], signal: AbortSignal.timeout(timeoutMs), killSignal: "SIGINT" });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.once("error", rej);
    child.once("close", (code) => res({ code, stdout, stderr }));
  });
}

describe("npm run demo -- --once", () => {
  it("brings up two nodes, a Service answered across them, kubectl top and the node proxy, then leaves nothing", async () => {
    const { code, stdout, stderr } = await runDemo(["--once"], 240_000);
    if (code !== 0) console.log(`demo stdout:\n${stdout}\ndemo stderr:\n${stderr}`);
    expect(code).toBe(0);

    const nodes = [...stdout.matchAll(/^\[[\s\d.]+s\] node (\S+): netns (\S+), node IP ([\d.]+)/gm)].map((m) => ({ name: m[1] ?? "", netns: m[2] ?? "", ip: m[3] ?? "" }));
    expect(nodes).toHaveLength(2);
    // `kubectl get nodes -o wide` rows: each node Ready with its underlay address as INTERNAL-IP.
    for (const n of nodes) expect(stdout).toMatch(new RegExp(`^ {4}${n.name}\\s+Ready\\s+.*\\s${n.ip.replaceAll(".", "\\.")}\\s`, "m"));
    // `kubectl get pods -o wide`: one sample pod on each node.
    for (const n of nodes) expect(stdout).toMatch(new RegExp(`^ {4}hello-\\d\\s+1/1\\s+Running\\s+.*\\s${n.name}\\s`, "m"));

    // The ClusterIP request from the first node's pod was answered by the pod on the other node.
    const across = /kubectl exec (hello-\d) -- wget -O - http:\/\/(10\.96\.[\d.]+)\/whoami \(from (\S+)\): answered by (hello-\d) \((10\.244\.[\d.]+)\) on (\S+), a pod on the other node/.exec(stdout);
    expect(across).not.toBeNull();
    const [, fromPod, , fromNode, byPod, , byNode] = across ?? [];
    expect(fromNode).toBe(nodes[0]?.name);
    expect(byNode).toBe(nodes[1]?.name);
    expect(byPod).not.toBe(fromPod);

    expect(stdout).toMatch(/serves: hello again: this page was edited in the ConfigMap/);
    expect(stdout).toMatch(/response:200/);
    expect(stdout).toMatch(/postStart ran at \S/);
    // kubectl top: a row per node and per pod.
    const topNodes = /kubectl top nodes:\n((?: {4}.*\n)+)/.exec(stdout)?.[1] ?? "";
    for (const n of nodes) expect(topNodes).toMatch(new RegExp(`^ {4}${n.name}\\s+\\d+m\\s`, "m"));
    const topPods = /kubectl top pods:\n((?: {4}.*\n)+)/.exec(stdout)?.[1] ?? "";
    expect(topPods).toMatch(/^ {4}hello-1\s+\d+m\s/m);
    expect(topPods).toMatch(/^ {4}hello-2\s+\d+m\s/m);
    expect(stdout).toMatch(/kubectl proxy: GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/nodes\/\S+\/proxy\/stats\/summary gives the kubelet's Summary/);
    const ready = Number(/every check passed .*; ready in ([\d.]+) s/.exec(stdout)?.[1] ?? "NaN");
    expect(ready).toBeLessThan(60);
    expect(stdout).toContain("done: nothing left behind");
    for (const n of nodes) expect(existsSync(n.netns)).toBe(false);
    // kubectl proxy (outside the sandboxes, so outside the leak check) went with it: no process names its kubeconfig.
    const kubeconfig = /admin kubeconfig (\S+)/.exec(stdout)?.[1] ?? "";
    expect(kubeconfig).toMatch(/admin\.kubeconfig$/);
    expect(existsSync(kubeconfig)).toBe(false);
    expect(await processesNaming(kubeconfig)).toEqual([]);
  }, 270_000);
});
