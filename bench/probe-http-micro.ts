/**
 * `npm run bench -- probe-http-micro [--probes N] [--rounds R] [--warmup W] [--https]`: the kubelet-side CPU of
 * one HTTP probe, in process. A server in a child process (its CPU is not counted) answers `GET /healthz`
 * with 200 "ok"; each step runs N probes one after the other and records process.cpuUsage() (user + system)
 * divided by N. Steps interleave round by round (compare.ts) so that both series see the same machine load:
 *
 * - reference: the probe's GET as it was on node:http (http.request, agent: false, the timer and
 *   AbortSignal.any of the old httpGetWithRedirects), kept here only as the yardstick;
 * - ours: httpProbe(newRequestForHttpGet(...)), the prober's whole HTTP path on http-get.ts's client.
 *
 * Target (issue 10): ≤ 1 ms of kubelet CPU per HTTP probe. This prints; it asserts nothing.
 */
import { spawn } from "node:child_process";
import http from "node:http";
import https from "node:https";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { httpProbe, newRequestForHttpGet, type HttpProbeRequest } from "../kubelet/prober/probe-http.ts";
import { MAX_PROBE_OUTPUT } from "../kubelet/prober/probe.ts";
import { createCA, issueCert } from "../test/control-plane/pki.ts";
import { compare, interleave, printComparison } from "./compare.ts";

const { values: args } = parseArgs({
  options: {
    probes: { type: "string", default: "200" },
    rounds: { type: "string", default: "15" },
    warmup: { type: "string", default: "3" },
    https: { type: "boolean", default: false },
  },
});
const PROBES = Number(args.probes);

/** The server: node:http(s) on 127.0.0.1, port on stdout; TLS key and certificate from the environment. */
const SERVER = `
const tls = process.env.BENCH_TLS_KEY !== undefined;
const mod = await import(tls ? "node:https" : "node:http");
const handler = (req, res) => { res.setHeader("content-type", "text/plain"); res.end("ok"); };
const server = tls ? mod.createServer({ key: process.env.BENCH_TLS_KEY, cert: process.env.BENCH_TLS_CERT }, handler) : mod.createServer(handler);
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
`;

/** The old probe GET on node:http, as kubelet/prober/probe-http.ts had it before http-get.ts. */
function referenceProbe(request: HttpProbeRequest, timeoutMs: number): Promise<number> {
  const deadline = new AbortController();
  const outer = new AbortController();
  const timer = setTimeout(() => deadline.abort(new Error("timeout")), timeoutMs);
  const signal = AbortSignal.any([outer.signal, deadline.signal]);
  const url = request.url;
  const secure = url.protocol === "https:";
  return new Promise<number>((resolve, reject) => {
    const req = (secure ? https : http).request(
      {
        method: "GET",
        protocol: url.protocol,
        host: url.hostname,
        port: url.port,
        path: `${url.pathname}${url.search}`,
        agent: false,
        headers: [["Host", request.hostHeader], ...request.headers].flat(),
        signal,
        ...(secure ? { rejectUnauthorized: false } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const done = (): void => {
          res.removeAllListeners("data");
          Buffer.concat(chunks).subarray(0, MAX_PROBE_OUTPUT).toString("utf8");
          resolve(res.statusCode ?? 0);
          res.destroy();
        };
        res.on("data", (chunk: Buffer) => {
          chunks.push(chunk);
          size += chunk.length;
          if (size >= MAX_PROBE_OUTPUT) done();
        });
        res.on("end", done);
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  }).finally(() => clearTimeout(timer));
}

async function main(): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (args.https) {
    const ca = await createCA("probe-bench-ca");
    const cert = await issueCert(ca, { commonName: "pod", ips: ["127.0.0.1"], server: true });
    env["BENCH_TLS_KEY"] = cert.keyPem;
    env["BENCH_TLS_CERT"] = cert.certPem;
  }
  const child = spawn(process.execPath, ["--input-type=module", "-e", SERVER], { env, stdio: ["pipe", "pipe", "inherit"] });
  try {
    const [line] = (await once(createInterface({ input: child.stdout }), "line")) as [string];
    const port = Number(line);
    const request = newRequestForHttpGet({ path: "/healthz", port, ...(args.https ? { scheme: "HTTPS" } : {}) }, { name: "bench" }, "127.0.0.1");
    const reference: number[] = [];
    const ours: number[] = [];
    const measure = async (into: number[], record: boolean, probe: () => Promise<void>): Promise<void> => {
      const before = process.cpuUsage();
      for (let i = 0; i < PROBES; i++) await probe();
      const used = process.cpuUsage(before);
      if (record) into.push((used.user + used.system) / 1000 / PROBES);
    };
    await interleave({ rounds: Number(args.rounds), warmup: Number(args.warmup) }, [
      (_r, record) =>
        measure(reference, record, async () => {
          const status = await referenceProbe(request, 1000);
          if (status !== 200) throw new Error(`reference probe: status ${status}`);
        }),
      (_r, record) =>
        measure(ours, record, async () => {
          const r = await httpProbe(request, { timeoutSeconds: 1 });
          if (r.status !== "success") throw new Error(`probe: ${r.status} ${r.output}`);
        }),
    ]);
    const c = compare(reference, ours);
    printComparison(
      `CPU per ${args.https ? "HTTPS" : "HTTP"} probe (this process, ${PROBES} sequential probes a sample)`,
      { reference: "node:http request (before)", ours: "httpProbe on http-get.ts (now)" },
      c,
      "≤ 1 ms per HTTP probe",
    );
    // The figures are below a millisecond: the same at µs resolution.
    const us = (ms: number): string => `${Math.round(ms * 1000)} µs`;
    console.log(`  in µs: before p50 ${us(c.reference.p50)} (min ${us(c.reference.min)}, max ${us(c.reference.max)}), now p50 ${us(c.ours.p50)} (min ${us(c.ours.min)}, max ${us(c.ours.max)}), paired difference p50 ${us(c.pairedOverheadP50)}`);
  } finally {
    const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, "exit");
    child.stdin.end();
    await exited;
  }
}

await main();
