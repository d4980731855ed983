/**
 * `npm run bench -- kubelet-api`: the kubelet API on 10250 as operators use it through the control plane,
 * beside the same work done directly on the node, interleaved in one run (compare.ts):
 *
 *   logs   `kubectl logs` of a container whose log holds `BENCH_LOG_MIB` MiB (100), all of it read to the
 *          end, against reading the CRI log file directly and decoding its lines (what the kubelet does).
 *   exec   `kubectl exec <pod> -- true` round trips (WebSocket to the control plane, SPDY to the kubelet,
 *          containerd's streaming server), against CRI ExecSync of `true`.
 *
 * Knobs: BENCH_LOG_MIB (100), BENCH_LOG_ROUNDS (5), BENCH_EXEC_ROUNDS (100); the kubelet runs compiled
 * (`npm run build` first) unless DECKHAND_FROM_SOURCE=1. Target (issue 12): ≤ 1.2× the direct path. This
 * prints the figures beside the target; it asserts nothing.
 */
import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import type { V1Pod } from "@kubernetes/client-node";
import { TestCluster } from "../test/harness/cluster.ts";
import { eventually } from "../test/harness/wait.ts";
import { run } from "../src-shared/exec.ts";
import { compare, interleave, printComparison, summarize, summaryRow } from "./compare.ts";

const LOG_MIB = Number(process.env["BENCH_LOG_MIB"] ?? 100);
const LOG_ROUNDS = Number(process.env["BENCH_LOG_ROUNDS"] ?? 5);
const EXEC_ROUNDS = Number(process.env["BENCH_EXEC_ROUNDS"] ?? 100);
const WARMUP = 2;
const fromSource = process.env["DECKHAND_FROM_SOURCE"] === "1";

/** A child's wall time and how many bytes it wrote to stdout (read and dropped). */
function timed(cmd: string, args: string[]): Promise<{ ms: number; bytes: number; code: number | null }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
    let bytes = 0;
    child.stdout.on("data", (c: Buffer) => (bytes += c.length));
    child.on("error", reject);
    child.on("close", (code) => resolve({ ms: performance.now() - t0, bytes, code }));
  });
}

/** The CRI log file decoded as the kubelet serves it: each line's content, partial lines joined. */
function readCriLog(path: string): Promise<{ ms: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let bytes = 0;
    let rest = "";
    const s = createReadStream(path, { encoding: "utf8", highWaterMark: 1 << 20 });
    s.on("data", (chunk) => {
      const text = rest + String(chunk);
      let start = 0;
      for (let nl = text.indexOf("\n", start); nl >= 0; nl = text.indexOf("\n", start)) {
        // <timestamp> <stream> <P|F> <content>
        const a = text.indexOf(" ", start);
        const b = text.indexOf(" ", a + 1);
        const tag = text.charCodeAt(b + 1);
        bytes += nl - (b + 3) + (tag === 70 /* F */ ? 1 : 0);
        start = nl + 1;
      }
      rest = text.slice(start);
    });
    s.on("error", reject);
    s.on("end", () => resolve({ ms: performance.now() - t0, bytes }));
  });
}

const cluster = new TestCluster();
try {
  if (!fromSource) await run("npm", ["run", "--silent", "build"], { timeoutMs: 300_000 });
  await cluster.start();
  // The whole log in one file (no rotation during the run).
  const node = await cluster.addNode({ compiled: !fromSource, config: { containerLogMaxSize: "2Gi" } });
  await eventually(async () => ((await cluster.kubectl(["get", "node", node.name, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"])).stdout === "True" ? true : undefined), { timeoutMs: 60_000, message: "the node to be Ready" });
  const cri = node.sandbox.criClient();
  const kubeconfig = cluster.adminKubeconfig;
  const podsRef = { group: "", version: "v1", resource: "pods", namespace: "default" };
  // 99 characters and a newline per line, written once, then the container sleeps.
  const lines = Math.ceil((LOG_MIB * 1024 * 1024) / 100);
  const line = "x".repeat(99);
  const pod: V1Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "bench-api", namespace: "default" },
    spec: {
      nodeName: node.name,
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", `yes ${line} | head -n ${lines}; echo log-complete; exec sleep 3600`] }],
    },
  };
  await cluster.client.create(podsRef, pod);
  const containerId = await eventually(async () => {
    const p = await cluster.client.get<V1Pod>({ ...podsRef, name: "bench-api" });
    const s = p.status?.containerStatuses?.[0];
    return s?.state?.running ? (s.containerID ?? "").replace(/^containerd:\/\//, "") : undefined;
  }, { timeoutMs: 60_000, message: "the bench pod running" });
  const logPath = (await cri.runtime("ContainerStatus", { container_id: containerId, verbose: false })).status?.log_path ?? "";
  const hostLog = node.sandbox.hostPath(logPath);
  await eventually(async () => ((await run("tail", ["-c", "200", hostLog])).stdout.includes("log-complete") ? true : undefined), { timeoutMs: 300_000, intervalMs: 500, message: "the log written" });
  const expected = lines * 100 + "log-complete\n".length;
  console.log(`kubelet API benchmark: ${LOG_MIB} MiB log (${lines} lines), ${LOG_ROUNDS} log rounds, ${EXEC_ROUNDS} exec rounds, ${WARMUP} warm-up rounds each; kubelet ${fromSource ? "from source" : "compiled"}`);

  const logsDirect: number[] = [];
  const logsKubectl: number[] = [];
  await interleave({ rounds: LOG_ROUNDS, warmup: WARMUP }, [
    async (_r, record) => {
      const d = await readCriLog(hostLog);
      if (d.bytes !== expected) throw new Error(`direct read got ${d.bytes} bytes, want ${expected}`);
      if (record) logsDirect.push(d.ms);
    },
    async (_r, record) => {
      const k = await timed("kubectl", ["--kubeconfig", kubeconfig, "logs", "bench-api"]);
      if (k.code !== 0 || k.bytes !== expected) throw new Error(`kubectl logs exited ${k.code} with ${k.bytes} bytes, want ${expected}`);
      if (record) logsKubectl.push(k.ms);
    },
  ]);
  printComparison(`kubectl logs of ${LOG_MIB} MiB`, { reference: "CRI log file read and decoded", ours: "kubectl logs (control plane, kubelet)" }, compare(logsDirect, logsKubectl), "≤ 1.2×");

  const execDirect: number[] = [];
  const execKubectl: number[] = [];
  const kubectlAlone: number[] = [];
  await interleave({ rounds: EXEC_ROUNDS, warmup: WARMUP }, [
    async (_r, record) => {
      const t0 = performance.now();
      const r = await cri.runtime("ExecSync", { container_id: containerId, cmd: ["true"], timeout: 10 });
      if (r.exit_code !== 0) throw new Error(`ExecSync exited ${r.exit_code}`);
      if (record) execDirect.push(performance.now() - t0);
    },
    async (_r, record) => {
      const k = await timed("kubectl", ["--kubeconfig", kubeconfig, "exec", "bench-api", "--", "true"]);
      if (k.code !== 0) throw new Error(`kubectl exec exited ${k.code}`);
      if (record) execKubectl.push(k.ms);
    },
    async (_r, record) => {
      // kubectl starting and reading its kubeconfig, no call made: the part of its figures that is not ours.
      const k = await timed("kubectl", ["--kubeconfig", kubeconfig, "version", "--client", "-o", "json"]);
      if (record) kubectlAlone.push(k.ms);
    },
  ]);
  printComparison("exec round trip (true)", { reference: "CRI ExecSync", ours: "kubectl exec (WebSocket, SPDY)" }, compare(execDirect, execKubectl), "≤ 1.2×");
  console.log(summaryRow("kubectl alone (version --client)", summarize(kubectlAlone)));
  console.log("  (kubectl's own start, as above for every call, is in its figures; the direct paths have none)");
} finally {
  await cluster.teardown();
}
