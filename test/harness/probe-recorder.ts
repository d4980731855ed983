/**
 * When each HTTP probe arrived, seen where it lands: an HTTP server run inside a node's network namespace (where
 * the kubelet makes its probes from) on the namespace's loopback, answering 200 to everything and writing one
 * line per request, `<ms since the epoch, µs precision> <path>`, to its stdout. Probes aim at it with
 * `httpGet.host: 127.0.0.1`, a path naming the probe (e.g. `/observer`, `/heavy/c3/readiness`), and the
 * recorder's port. One process serves every probe of a test or benchmark: no fork per request in the pods,
 * timestamps taken in one place, and nothing in the measurement but the probe's own arrival.
 *
 *   nsenter --net=/run/netns/<node> node probe-recorder.ts      (prints "listening <port>" first)
 *
 * `gridLateness` turns one probe's arrivals into lateness against the period grid they should be on.
 */
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";

const SELF = fileURLToPath(import.meta.url);

/** Arrivals by path, in ms since the epoch (fractional). */
export class ProbeRecorder {
  readonly port: number;
  private readonly child: ChildProcess;
  private readonly arrivals = new Map<string, number[]>();
  private total = 0;

  private constructor(child: ChildProcess, port: number, lines: AsyncIterable<string>) {
    this.child = child;
    this.port = port;
    void (async () => {
      for await (const line of lines) {
        const space = line.indexOf(" ");
        const at = Number(line.slice(0, space));
        const path = line.slice(space + 1);
        let list = this.arrivals.get(path);
        if (!list) this.arrivals.set(path, (list = []));
        list.push(at);
        this.total++;
      }
    })();
  }

  /** Starts a recorder in the network namespace at `netnsPath` (a node's), on 127.0.0.1 there. */
  static async start(netnsPath: string): Promise<ProbeRecorder> {
    const child = spawn("nsenter", [`--net=${netnsPath}`, process.execPath, SELF], { stdio: ["ignore", "pipe", "inherit"] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    const port = first.done ? NaN : Number(/^listening (\d+)$/.exec(first.value)?.[1]);
    if (!Number.isInteger(port)) {
      child.kill("SIGKILL");
      throw new Error(`probe recorder did not start: ${first.done ? "no output" : first.value}`);
    }
    return new ProbeRecorder(child, port, { [Symbol.asyncIterator]: () => lines });
  }

  /** Arrivals at `path` so far (a copy), optionally only those in [from, to). */
  at(path: string, from = -Infinity, to = Infinity): number[] {
    return (this.arrivals.get(path) ?? []).filter((t) => t >= from && t < to);
  }

  /** Paths seen, with the number of arrivals in [from, to). */
  counts(from = -Infinity, to = Infinity): Map<string, number> {
    return new Map([...this.arrivals].map(([p, list]) => [p, list.filter((t) => t >= from && t < to).length]));
  }

  get requests(): number {
    return this.total;
  }

  /** Stops the recorder process (by its pid) and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGTERM");
    await exited;
  }
}

/**
 * Lateness (ms) of each run of a periodic probe against the grid of its period, from its arrival times: run
 * i is counted as tick k = round((t_i − t_0) / period), and its offset t_i − k·period is compared with the
 * smallest offset seen (the grid's phase as well as the arrivals show it: a constant delay in getting there
 * cancels out). A skipped tick leaves a gap, not lateness; `skipped` counts them.
 */
export function gridLateness(arrivals: readonly number[], periodMs: number): { lateness: number[]; skipped: number } {
  if (arrivals.length === 0) return { lateness: [], skipped: 0 };
  const sorted = [...arrivals].sort((a, b) => a - b);
  const t0 = sorted[0] ?? 0;
  const ticks = sorted.map((t) => Math.round((t - t0) / periodMs));
  const offsets = sorted.map((t, i) => t - (ticks[i] ?? 0) * periodMs);
  const base = Math.min(...offsets);
  const distinct = new Set(ticks).size;
  const last = ticks[ticks.length - 1] ?? 0;
  return { lateness: offsets.map((o) => o - base), skipped: last + 1 - distinct };
}

// ---------------------------------------------------------------------------------------------------------------
// The recorder process.

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let pending = "";
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    process.stdout.write(pending);
    pending = "";
  };
  const server = http.createServer((req, res) => {
    const at = performance.timeOrigin + performance.now();
    pending += `${at.toFixed(3)} ${req.url ?? ""}\n`;
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
    res.writeHead(200, { "content-type": "text/plain", connection: "close" });
    res.end("ok");
  });
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    process.stdout.write(`listening ${typeof address === "object" && address ? address.port : 0}\n`);
  });
  process.on("SIGTERM", () => process.exit(0));
}
