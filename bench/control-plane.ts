/**
 * `npm run bench -- control-plane [objects] [watches]`: the local control plane (test/control-plane) at
 * 10,000 pods and 200 concurrent watches, over HTTPS from a separate client process, as the node agents use it:
 *
 *  - create: 10,000 pods bound to 100 nodes, 32 requests in flight (objects/s);
 *  - list: all pods as JSON (one response), paginated by 500 like kubectl and informers, as a kubectl Table,
 *    and one node's pods by fieldSelector spec.nodeName (p50 of 5);
 *  - watch fan-out: 200 watches open at once (100 with spec.nodeName=<node> like kubelets, 100 on all pods
 *    like informers), then 1,000 pod status patches; per delivered event, the time from the write's start to
 *    its arrival at the watcher (p50/p99/max), events delivered per second, and whether every watcher saw
 *    every event it should (none may fall behind or be dropped).
 *
 * The server runs as its own process (npm run control-plane), so client and server do not share an event loop.
 * Loopback only. Nothing here asserts a time.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import https from "node:https";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { eventually } from "../test/harness/wait.ts";
import { fileURLToPath } from "node:url";
import { formatMs, summarize } from "./compare.ts";

const REPO = resolve(fileURLToPath(new URL("..", import.meta.url)));
const OBJECTS = Number(process.argv[2] ?? 10_000);
const WATCHES = Number(process.argv[3] ?? 200);
const NODES = 100;
const PATCHES = 1_000;

interface Conn {
  host: string;
  port: number;
  agent: https.Agent;
}

function kubeconfigField(text: string, key: string): string {
  const m = new RegExp(`${key}: "?([^"\\n]+)"?`).exec(text);
  if (m?.[1] === undefined) throw new Error(`no ${key} in kubeconfig`);
  return m[1];
}

function request(c: Conn, method: string, path: string, body?: unknown, contentType = "application/json", accept = "application/json"): Promise<{ code: number; text: string }> {
  return new Promise((resolveP, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      { host: c.host, port: c.port, method, path, agent: c.agent, headers: { Accept: accept, ...(data === undefined ? {} : { "Content-Type": contentType, "Content-Length": Buffer.byteLength(data) }) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => resolveP({ code: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

async function must(c: Conn, method: string, path: string, body?: unknown, contentType?: string, accept?: string): Promise<string> {
  const r = await request(c, method, path, body, contentType, accept);
  if (r.code >= 300) throw new Error(`${method} ${path}: ${r.code} ${r.text.slice(0, 300)}`);
  return r.text;
}

async function pool<T>(items: readonly T[], width: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (i < items.length) {
        const t = items[i++];
        if (t !== undefined) await fn(t);
      }
    }),
  );
}

async function time(fn: () => Promise<unknown>, runs = 5): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return summarize(ms).p50;
}

interface Watcher {
  node: string | undefined;
  received: Map<string, number>;
  req: ReturnType<typeof https.request>;
  bookmarksOrOther: number;
}

function openWatch(c: Conn, path: string, node: string | undefined, onEvent: (w: Watcher, name: string, sentAt: number) => void): Promise<Watcher> {
  return new Promise((resolveP, reject) => {
    const w: Watcher = { node, received: new Map(), req: undefined as unknown as ReturnType<typeof https.request>, bookmarksOrOther: 0 };
    const req = https.request({ host: c.host, port: c.port, method: "GET", path, agent: c.agent, headers: { Accept: "application/json" } }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`watch ${path}: ${res.statusCode ?? 0}`));
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const ev = JSON.parse(line) as { type: string; object: { metadata?: { name?: string; annotations?: Record<string, string> } } };
          const sent = ev.object.metadata?.annotations?.["bench/sent"];
          if (ev.type === "MODIFIED" && sent !== undefined) onEvent(w, `${ev.object.metadata?.name ?? ""}@${sent}`, Number(sent));
          else w.bookmarksOrOther++;
        }
      });
      resolveP(w);
    });
    w.req = req;
    req.on("error", () => undefined);
    req.end();
  });
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "deckhand-bench-cp-"));
  const child = spawn(join(REPO, "node_modules/.bin/node"), [join(REPO, "test/control-plane/main.ts"), "--dir", dir, "--port", "0", "--history", "200000"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, DECKHAND_LOG_LEVEL: "warn" },
  });
  let stdout = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => process.stderr.write(d));
  try {
    await eventually(() => stdout.includes("admin.kubeconfig"), { timeoutMs: 10_000, intervalMs: 50, message: "the control plane to write admin.kubeconfig" });
    const kc = await readFile(join(dir, "admin.kubeconfig"), "utf8");
    const server = new URL(kubeconfigField(kc, "server"));
    const b64 = (k: string) => Buffer.from(kubeconfigField(kc, k), "base64").toString();
    const agent = new https.Agent({ keepAlive: true, maxSockets: WATCHES + 64, ca: b64("certificate-authority-data"), cert: b64("client-certificate-data"), key: b64("client-key-data") });
    const c: Conn = { host: server.hostname, port: Number(server.port), agent };
    console.log(`control plane: ${server.href} (pid ${child.pid ?? "?"}); ${OBJECTS} pods on ${NODES} nodes, ${WATCHES} watches`);

    // ---- create
    const names = Array.from({ length: OBJECTS }, (_, i) => `pod-${String(i).padStart(5, "0")}`);
    const t0 = performance.now();
    await pool(names, 32, async (name) => {
      const i = Number(name.slice(4));
      await must(c, "POST", "/api/v1/namespaces/default/pods", {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, labels: { app: `app-${i % 50}` } },
        spec: { nodeName: `node-${i % NODES}`, containers: [{ name: "c", image: "registry.local/app:1.0", ports: [{ containerPort: 8080 }] }] },
      });
    });
    const createMs = performance.now() - t0;
    console.log(`create   ${OBJECTS} pods: ${(createMs / 1000).toFixed(1)} s (${Math.round((OBJECTS / createMs) * 1000)} objects/s, 32 in flight)`);

    // ---- list
    let bytes = 0;
    const full = await time(async () => {
      bytes = (await must(c, "GET", "/api/v1/pods")).length;
    });
    const paged = await time(async () => {
      let cont = "";
      do {
        const body = JSON.parse(await must(c, "GET", `/api/v1/pods?limit=500${cont === "" ? "" : `&continue=${encodeURIComponent(cont)}`}`)) as { metadata: { continue?: string } };
        cont = body.metadata.continue ?? "";
      } while (cont !== "");
    });
    const table = await time(() => must(c, "GET", "/api/v1/pods?limit=500", undefined, undefined, "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"));
    const byNode = await time(() => must(c, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-7"));
    console.log(`list     all ${OBJECTS} pods (${(bytes / 1e6).toFixed(1)} MB JSON): ${formatMs(full)}   paginated by 500: ${formatMs(paged)}`);
    console.log(`list     first 500 as a kubectl Table: ${formatMs(table)}   one node's ${OBJECTS / NODES} pods by fieldSelector: ${formatMs(byNode)}   (p50 of 5)`);

    // ---- watch fan-out
    const rv = (JSON.parse(await must(c, "GET", "/api/v1/pods?limit=1")) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    const latencies: number[] = [];
    let lastArrival = 0;
    const onEvent = (w: Watcher, key: string, sentAt: number) => {
      const now = Date.now();
      lastArrival = now;
      latencies.push(now - sentAt);
      w.received.set(key, now);
    };
    const tw = performance.now();
    const watchers = await Promise.all(
      Array.from({ length: WATCHES }, (_, i) => {
        const node = i < WATCHES / 2 ? `node-${i % NODES}` : undefined;
        const q = `watch=true&resourceVersion=${rv}&allowWatchBookmarks=true&timeoutSeconds=600${node === undefined ? "" : `&fieldSelector=spec.nodeName%3D${node}`}`;
        return openWatch(c, `/api/v1/pods?${q}`, node, onEvent);
      }),
    );
    console.log(`watch    ${WATCHES} watches open in ${formatMs(performance.now() - tw)}`);
    const patched: { name: string; node: string; key: string }[] = [];
    const tp = Date.now();
    await pool(
      Array.from({ length: PATCHES }, (_, i) => i),
      16,
      async (i) => {
        const idx = (i * 7919) % OBJECTS;
        const name = names[idx] ?? "";
        const sent = String(Date.now());
        await must(c, "PATCH", `/api/v1/namespaces/default/pods/${name}/status`, { metadata: { annotations: { "bench/sent": sent } }, status: { phase: "Running" } }, "application/merge-patch+json");
        // Status writes ignore metadata: annotate through the main resource, which is what watchers see.
        await must(c, "PATCH", `/api/v1/namespaces/default/pods/${name}`, { metadata: { annotations: { "bench/sent": sent } } }, "application/merge-patch+json");
        patched.push({ name, node: `node-${idx % NODES}`, key: `${name}@${sent}` });
      },
    );
    const writeMs = Date.now() - tp;
    const expected = watchers.reduce((n, w) => n + patched.filter((p) => w.node === undefined || w.node === p.node).length, 0);
    // Up to 20 s for the events to arrive; what did not is reported as missing below.
    await eventually(() => latencies.length >= expected, { timeoutMs: 20_000, intervalMs: 50 }).catch(() => undefined);
    const missing = watchers.reduce((n, w) => n + patched.filter((p) => (w.node === undefined || w.node === p.node) && !w.received.has(p.key)).length, 0);
    const s = summarize(latencies);
    const span = Math.max(1, lastArrival - tp);
    console.log(
      `watch    ${PATCHES} pod writes (${writeMs} ms) → ${latencies.length}/${expected} events delivered (${missing} missing), ${Math.round((latencies.length / span) * 1000)} events/s to watchers`,
    );
    console.log(`watch    write-to-watcher latency: p50 ${s.p50} ms, p90 ${s.p90} ms, p99 ${s.p99} ms, max ${s.max} ms`);
    for (const w of watchers) w.req.destroy();
    const mem = JSON.parse(await must(c, "GET", "/version")) as { gitVersion: string };
    console.log(`server   ${mem.gitVersion}; the client process peaked at ${Math.round(process.resourceUsage().maxRSS / 1024)} MB RSS`);
    agent.destroy();
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
