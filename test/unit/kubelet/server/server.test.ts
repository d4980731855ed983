import https from "node:https";
import type { TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeletServer, HealthzServer, healthzResponse, type ServerHost } from "../../../../kubelet/server/server.ts";
import { KubeletAuthenticator } from "../../../../kubelet/server/authn.ts";
import type { KubeletAuthorizer } from "../../../../kubelet/server/authz.ts";
import { selfSignedServingCert } from "../../../../kubelet/server/self-signed.ts";
import { silentLogger } from "../../../../src-shared/log.ts";
import { eventually } from "../../../harness/wait.ts";

const cert = selfSignedServingCert("node-1", ["127.0.0.1"]);
const pod: V1Pod = {
  metadata: { name: "p", namespace: "ns", uid: "u1" },
  spec: { containers: [{ name: "c" }] },
  status: { containerStatuses: [{ name: "c", image: "i", imageID: "", ready: true, restartCount: 0, containerID: "containerd://abc", state: { running: {} } }] },
};

let logDir = "";
let streamPort = 0;
/** A stand-in for the runtime's streaming server: answers the upgrade and echoes; records what it saw. */
const seen: { path: string; upgrade: string; closed: boolean }[] = [];
const streaming = http.createServer((_q, r) => r.end());
streaming.on("upgrade", (req: http.IncomingMessage, sock: Socket) => {
  const entry = { path: req.url ?? "", upgrade: String(req.headers.upgrade), closed: false };
  seen.push(entry);
  sock.on("close", () => (entry.closed = true));
  sock.write("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n");
  sock.pipe(sock);
});
const host: ServerHost = {
  pods: () => [pod],
  runningPods: () => [],
  configz: () => ({ kubeletconfig: { port: 10250 } }),
  metrics: () => "kubelet_node_name{node=\"node-1\"} 1\n",
  probeMetrics: () => "",
  healthChecks: () => [{ name: "ping" }, { name: "log" }, { name: "syncloop" }],
  pod: (ns, name) => (ns === "ns" && name === "p" ? pod : undefined),
  containerLogPath: () => Promise.resolve(join(logDir, "0.log")),
  containerRunning: () => Promise.resolve(false),
  streamURL: () => Promise.resolve(`http://127.0.0.1:${streamPort}/exec/token`),
};

/** bob may read metrics only. */
const authorizer: KubeletAuthorizer = { authorize: (a) => Promise.resolve({ allowed: a.user.username === "admin" || (a.user.username === "bob" && a.subresource === "metrics"), reason: "" }) };
const authenticator = new KubeletAuthenticator({
  x509: false,
  webhook: { enabled: true, cacheTTLMs: 1000, review: (b) => {
    const token = (b as { spec: { token: string } }).spec.token;
    return Promise.resolve({ status: token === "admin" || token === "bob" ? { authenticated: true, user: { username: token, groups: [] } } : { authenticated: false } });
  } },
  anonymous: false,
  log: silentLogger(),
});

function server(enableDebuggingHandlers = true): KubeletServer {
  return new KubeletServer({ host, nodeName: "node-1", address: "127.0.0.1", port: 0, tls: { certPem: cert.certPem, keyPem: cert.keyPem, settings: { minVersion: "TLSv1.3" } }, authenticator, authorizer, fineGrainedAuthz: true, enableDebuggingHandlers, enableSystemLogHandler: true, systemLogDir: logDir, log: silentLogger() });
}

function get(port: number, path: string, token?: string): Promise<{ status: number; body: string; type: string | undefined; cert: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: "127.0.0.1", port, path, rejectUnauthorized: false, headers: token ? { Authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = "";
      const peer = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, type: res.headers["content-type"], cert: peer }));
    });
    req.on("error", reject);
  });
}

const stop = new AbortController();
let s: KubeletServer;
let noDebug: KubeletServer;
beforeAll(async () => {
  logDir = await mkdtemp(join(tmpdir(), "kubelet-server-"));
  await new Promise<void>((r) => streaming.listen(0, "127.0.0.1", r));
  streamPort = (streaming.address() as AddressInfo).port;
  s = server();
  noDebug = server(false);
  await writeFile(join(logDir, "0.log"), "2020-01-01T00:00:00Z stdout F hello\n2020-01-01T00:00:01Z stderr F world\n");
  await s.start(stop.signal);
  await noDebug.start(stop.signal);
});
afterAll(async () => {
  stop.abort();
  await s.close();
  await noDebug.close();
  streaming.close();
  await rm(logDir, { recursive: true, force: true });
});

describe("the kubelet server", () => {
  it("serves TLS with its certificate and refuses an unauthenticated call with 401 Unauthorized", async () => {
    const r = await get(s.port, "/pods");
    expect(r).toMatchObject({ status: 401, body: "Unauthorized" });
    expect(r.cert).toBe(new X509Certificate(cert.certPem).fingerprint256);
  });

  it("lets through what the authorizer allows and forbids the rest with upstream's message", async () => {
    expect(await get(s.port, "/metrics", "bob")).toMatchObject({ status: 200, body: 'kubelet_node_name{node="node-1"} 1\n', type: "text/plain; version=0.0.4; charset=utf-8" });
    expect(await get(s.port, "/pods", "bob")).toMatchObject({ status: 403, body: "Forbidden (user=bob, verb=get, resource=nodes, subresource=proxy)" });
    const pods = await get(s.port, "/pods", "admin");
    expect(JSON.parse(pods.body)).toEqual({ kind: "PodList", apiVersion: "v1", metadata: {}, items: [pod] });
  });

  it("serves container logs, and answers a missing pod or container with upstream's 404 messages", async () => {
    expect((await get(s.port, "/containerLogs/ns/p/c?timestamps=true", "admin")).body).toBe("2020-01-01T00:00:00Z hello\n2020-01-01T00:00:01Z world\n");
    expect((await get(s.port, "/containerLogs/ns/p/c?tailLines=1", "admin")).body).toBe("world\n");
    expect(await get(s.port, "/containerLogs/ns/q/c", "admin")).toMatchObject({ status: 404, body: 'pod "q" does not exist' });
    expect(await get(s.port, "/containerLogs/ns/p/d", "admin")).toMatchObject({ status: 404, body: 'container "d" not found in pod "p"' });
    expect(await get(s.port, "/containerLogs/ns/p/c?previous=true", "admin")).toMatchObject({ status: 400, body: 'previous terminated container "c" in pod "p_ns" not found' });
    expect(await get(s.port, "/containerLogs/ns/p/c?tailLines=-1", "admin")).toMatchObject({ status: 422, body: '{"message": "Invalid request."}' });
  });

  it("answers routes not implemented yet with 501, unknown ones with 404, and debugging routes with 405 when disabled", async () => {
    expect(await get(s.port, "/exec/ns/p/c", "admin")).toMatchObject({ status: 400, body: "Upgrade request required" });
    expect((await get(s.port, "/run/ns/p/c", "admin")).status).toBe(501);
    expect((await get(s.port, "/stats/summary", "admin")).status).toBe(501);
    expect((await get(s.port, "/nothing", "admin")).status).toBe(404);
    expect(await get(noDebug.port, "/containerLogs/ns/p/c", "admin")).toMatchObject({ status: 405, body: "Debug endpoints are disabled." });
    expect(await get(noDebug.port, "/healthz", "admin")).toMatchObject({ status: 200, body: "ok" });
  });

  it("splices an exec upgrade to the runtime's streaming server, and closes it when the client leaves", async () => {
    const sock = await new Promise<Socket>((resolve, reject) => {
      const req = https.request({ host: "127.0.0.1", port: s.port, method: "POST", path: "/exec/ns/p/c?command=sh&stdin=true&stdout=true", rejectUnauthorized: false, headers: { Authorization: "Bearer admin", Connection: "Upgrade", Upgrade: "SPDY/3.1" } });
      req.on("upgrade", (_res, socket) => resolve(socket));
      req.on("response", (res) => reject(new Error(`no upgrade: ${res.statusCode ?? 0}`)));
      req.on("error", reject);
      req.end();
    });
    const echoed = new Promise<string>((resolve) => sock.once("data", (d: Buffer) => resolve(d.toString())));
    sock.write("ping");
    expect(await echoed).toBe("ping");
    expect(seen.at(-1)).toMatchObject({ path: "/exec/token", upgrade: "SPDY/3.1", closed: false });
    sock.destroy();
    await eventually(() => seen.at(-1)?.closed, { timeoutMs: 2000, message: "the upstream stream closed" });
    expect(s.activeStreams).toBe(0);
  });

  it("refuses an upgrade without credentials with 401 before reaching the runtime", async () => {
    const before = seen.length;
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.request({ host: "127.0.0.1", port: s.port, method: "POST", path: "/exec/ns/p/c?command=sh&stdout=true", rejectUnauthorized: false, headers: { Connection: "Upgrade", Upgrade: "SPDY/3.1" } });
      req.on("response", (res) => resolve(res.statusCode ?? 0));
      req.on("upgrade", () => reject(new Error("upgraded")));
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(401);
    expect(seen.length).toBe(before);
  });

  it("serves files under /logs/", async () => {
    expect((await get(s.port, "/logs/", "admin")).body).toContain('<a href="0.log">0.log</a>');
    expect((await get(s.port, "/logs/0.log", "admin")).body).toContain("stdout F hello");
    expect((await get(s.port, "/logs/../etc/passwd", "admin")).status).not.toBe(200);
  });
});

describe("healthz", () => {
  it("says ok, or lists every check with 500 when one fails", () => {
    expect(healthzResponse([{ name: "ping" }, { name: "syncloop" }])).toEqual({ status: 200, body: "ok" });
    expect(healthzResponse([{ name: "ping" }, { name: "syncloop", error: "stale" }])).toEqual({ status: 500, body: "[+]ping ok\n[-]syncloop failed: reason withheld\nhealthz check failed\n" });
    expect(healthzResponse([{ name: "ping" }], "ping")).toEqual({ status: 200, body: "ok" });
    expect(healthzResponse([{ name: "ping" }], "nope").status).toBe(404);
  });

  it("is served on its own plain HTTP port", async () => {
    const h = new HealthzServer({ address: "127.0.0.1", port: 0, checks: () => [{ name: "ping" }], log: silentLogger() });
    const ctl = new AbortController();
    await h.start(ctl.signal);
    try {
      const res = await fetch(`http://127.0.0.1:${h.port}/healthz`);
      expect([res.status, await res.text()]).toEqual([200, "ok"]);
    } finally {
      await h.close();
    }
  });
});
