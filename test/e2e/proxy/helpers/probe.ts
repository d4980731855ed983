/**
 * A test client, run inside a client namespace: makes requests and prints one JSON summary line.
 *   http URL COUNT [TIMEOUT_MS]        new TCP connection per request; counts answers by first word
 *   udp HOST PORT COUNT SPORT [TIMEOUT_MS]   datagrams from a fixed source port; counts answers
 *   connect HOST PORT [TIMEOUT_MS]     one TCP connect: "ok", "refused", "timeout" or the error code, and its time
 *   get URL                            one GET: status and body (or the error code as status 0)
 * Answers are "<backend> <source address it saw>"; `sources` counts the second word.
 */
import { createSocket } from "node:dgram";
import { request } from "node:http";
import { connect } from "node:net";

const [mode, ...args] = process.argv.slice(2);
const counts: Record<string, number> = {};
const sources: Record<string, number> = {};
const errors: Record<string, number> = {};
const note = (answer: string): void => {
  const [who, src] = answer.trim().split(" ");
  counts[who ?? ""] = (counts[who ?? ""] ?? 0) + 1;
  if (src) sources[src] = (sources[src] ?? 0) + 1;
};

function httpOnce(url: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => {
        note(body);
        resolve();
      });
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
    req.on("error", (e: NodeJS.ErrnoException) => {
      errors[e.code ?? e.message] = (errors[e.code ?? e.message] ?? 0) + 1;
      resolve();
    });
    req.end();
  });
}

async function udpRun(host: string, port: number, count: number, sport: number, timeoutMs: number): Promise<void> {
  const sock = createSocket({ type: "udp4", reuseAddr: true });
  await new Promise<void>((r) => sock.bind(sport, "0.0.0.0", r));
  for (let i = 0; i < count; i++) {
    const answer = await new Promise<string | undefined>((resolve) => {
      const t = setTimeout(() => {
        sock.off("message", onMsg);
        resolve(undefined);
      }, timeoutMs);
      const onMsg = (m: Buffer): void => {
        clearTimeout(t);
        sock.off("message", onMsg);
        resolve(m.toString());
      };
      sock.on("message", onMsg);
      sock.send("ping", port, host);
    });
    if (answer === undefined) errors["TIMEOUT"] = (errors["TIMEOUT"] ?? 0) + 1;
    else note(answer);
  }
  sock.close();
}

const start = performance.now();
if (mode === "http") {
  const [url = "", count = "1", timeout = "2000"] = args;
  for (let i = 0; i < Number(count); i++) await httpOnce(url, Number(timeout));
  process.stdout.write(JSON.stringify({ counts, sources, errors, ms: performance.now() - start }) + "\n");
} else if (mode === "udp") {
  const [host = "", port = "0", count = "1", sport = "0", timeout = "1000"] = args;
  await udpRun(host, Number(port), Number(count), Number(sport), Number(timeout));
  process.stdout.write(JSON.stringify({ counts, sources, errors, ms: performance.now() - start }) + "\n");
} else if (mode === "connect") {
  const [host = "", port = "0", timeout = "2000"] = args;
  const result = await new Promise<string>((resolve) => {
    const s = connect({ host, port: Number(port), timeout: Number(timeout) });
    s.on("connect", () => {
      s.destroy();
      resolve("ok");
    });
    s.on("timeout", () => {
      s.destroy();
      resolve("timeout");
    });
    s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED" ? "refused" : (e.code ?? e.message)));
  });
  process.stdout.write(JSON.stringify({ result, ms: performance.now() - start }) + "\n");
} else if (mode === "get") {
  const [url = ""] = args;
  const out = await new Promise<{ status: number; body: string }>((resolve) => {
    const req = request(url, { agent: false, timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ status: 0, body: e.code ?? e.message }));
    req.end();
  });
  process.stdout.write(JSON.stringify(out) + "\n");
} else {
  process.stderr.write(`unknown mode ${String(mode)}\n`);
  process.exit(2);
}
