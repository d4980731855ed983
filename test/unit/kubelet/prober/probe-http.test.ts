import { afterAll, beforeAll, describe, expect, it } from "vitest";
import http from "node:http";
import https from "node:https";
import net, { type AddressInfo } from "node:net";
import type { V1Container } from "@kubernetes/client-node";
import { createCA, issueCert } from "../../../control-plane/pki.ts";
import { httpProbe, newRequestForHttpGet } from "../../../../kubelet/prober/probe-http.ts";
import { PROBE_USER_AGENT, MAX_PROBE_OUTPUT } from "../../../../kubelet/prober/probe.ts";

let server: http.Server;
let secure: https.Server;
let port = 0;
let securePort = 0;
const seen: http.IncomingHttpHeaders[] = [];

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? "/";
  seen.push(req.headers);
  switch (url) {
    case "/ok":
      res.end("fine");
      return;
    case "/fail":
      res.writeHead(503).end("secret details");
      return;
    case "/same":
      res.writeHead(302, { location: "/ok" }).end();
      return;
    case "/other":
      res.writeHead(302, { location: `http://localhost:${port}/ok` }).end("moved");
      return;
    case "/loop":
      res.writeHead(302, { location: "/loop" }).end();
      return;
    case "/abs":
      res.writeHead(301, { location: `http://127.0.0.1:${port}/headers` }).end();
      return;
    case "/rel":
      res.writeHead(307, { location: "/headers" }).end();
      return;
    case "/headers":
      res.end(JSON.stringify(req.headers));
      return;
    case "/big":
      res.end("x".repeat(3 * MAX_PROBE_OUTPUT));
      return;
    case "/slow":
      setTimeout(() => res.end("late"), 3_000).unref();
      return;
    default:
      res.writeHead(404).end();
  }
}

beforeAll(async () => {
  server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
  const ca = await createCA("probe-test-ca");
  const cert = await issueCert(ca, { commonName: "pod", ips: ["127.0.0.1"], server: true });
  secure = https.createServer({ key: cert.keyPem, cert: cert.certPem }, handler);
  await new Promise<void>((r) => secure.listen(0, "127.0.0.1", r));
  securePort = (secure.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const s of [server, secure]) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

const container: V1Container = { name: "app", ports: [{ name: "http", containerPort: 0 }] };
const probe = (path: string, extra: { port?: number | string; scheme?: string; httpHeaders?: { name: string; value: string }[] } = {}) =>
  httpProbe(newRequestForHttpGet({ path, port: extra.port ?? port, ...(extra.scheme ? { scheme: extra.scheme } : {}), ...(extra.httpHeaders ? { httpHeaders: extra.httpHeaders } : {}) }, container, "127.0.0.1"), {
    timeoutSeconds: 1,
  });

describe("HTTP probe", () => {
  it("succeeds on 2xx with the body as output, fails on other codes without showing the body", async () => {
    expect(await probe("/ok")).toEqual({ status: "success", output: "fine" });
    expect(await probe("/fail")).toEqual({ status: "failure", output: "HTTP probe failed with statuscode: 503" });
    expect(await probe("/nothing")).toEqual({ status: "failure", output: "HTTP probe failed with statuscode: 404" });
  });

  it("defaults the host to the pod IP, resolves named ports, and sends upstream's User-Agent and Accept", async () => {
    const named: V1Container = { name: "app", ports: [{ name: "web", containerPort: port }] };
    const req = newRequestForHttpGet({ path: "/headers", port: "web" }, named, "127.0.0.1");
    expect(req.url.href).toBe(`http://127.0.0.1:${port}/headers`);
    const r = await httpProbe(req, { timeoutSeconds: 1 });
    const headers = JSON.parse(r.output) as Record<string, string>;
    expect(headers["user-agent"]).toBe(PROBE_USER_AGENT);
    expect(PROBE_USER_AGENT).toMatch(/^kube-probe\/\d+\.\d+$/);
    expect(headers["accept"]).toBe("*/*");
    expect(headers["host"]).toBe(`127.0.0.1:${port}`);
    expect(() => newRequestForHttpGet({ port: "nope" }, named, "127.0.0.1")).toThrow(/invalid syntax/);
    expect(() => newRequestForHttpGet({ port: 70000 }, named, "127.0.0.1")).toThrow(/invalid port number/);
  });

  it("sends the probe's headers, a Host override, and drops an Accept given empty", async () => {
    const r = await probe("/headers", {
      httpHeaders: [
        { name: "Host", value: "svc.example" },
        { name: "X-Probe", value: "1" },
        { name: "Accept", value: "" },
        { name: "User-Agent", value: "mine" },
      ],
    });
    const headers = JSON.parse(r.output) as Record<string, string>;
    expect(headers).toMatchObject({ host: "svc.example", "x-probe": "1", "user-agent": "mine" });
    expect(headers["accept"]).toBeUndefined();
  });

  it("follows redirects to the same host, keeping a Host override only across a relative one", async () => {
    expect(await probe("/same")).toEqual({ status: "success", output: "fine" });
    const hostHeader = [{ name: "Host", value: "svc.example" }];
    const rel = JSON.parse((await probe("/rel", { httpHeaders: hostHeader })).output) as Record<string, string>;
    expect(rel["host"]).toBe("svc.example");
    expect(rel["referer"]).toBe(`http://127.0.0.1:${port}/rel`);
    const abs = JSON.parse((await probe("/abs", { httpHeaders: hostHeader })).output) as Record<string, string>;
    expect(abs["host"]).toBe(`127.0.0.1:${port}`);
  });

  it("does not follow a redirect to another host: a success with a warning", async () => {
    const before = seen.length;
    expect(await probe("/other")).toEqual({ status: "warning", output: "Probe terminated redirects, Response body: moved" });
    // The other host was never asked.
    expect(seen.length).toBe(before + 1);
  });

  it("stops after 10 redirects", async () => {
    const before = seen.length;
    const r = await probe("/loop");
    expect(r).toEqual({ status: "failure", output: `Get "http://127.0.0.1:${port}/loop": stopped after 10 redirects` });
    expect(seen.length - before).toBe(10);
  });

  it("reads at most 10 KiB of body", async () => {
    const r = await probe("/big");
    expect(r.status).toBe("success");
    expect(r.output.length).toBe(MAX_PROBE_OUTPUT);
  });

  it("fails a response slower than the timeout, at the timeout", async () => {
    const started = performance.now();
    const r = await probe("/slow");
    const elapsed = performance.now() - started;
    expect(r).toEqual({ status: "failure", output: `Get "http://127.0.0.1:${port}/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)` });
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(2_500);
  });

  it("fails a refused connection with Go's wording", async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const freePort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    expect(await probe("/ok", { port: freePort })).toEqual({
      status: "failure",
      output: `Get "http://127.0.0.1:${freePort}/ok": dial tcp 127.0.0.1:${freePort}: connect: connection refused`,
    });
  });

  it("probes HTTPS without verifying the certificate", async () => {
    expect(await probe("/ok", { port: securePort, scheme: "HTTPS" })).toEqual({ status: "success", output: "fine" });
  });

  it("ends at once when the worker's signal aborts", async () => {
    const stop = new AbortController();
    const started = performance.now();
    const pending = httpProbe(newRequestForHttpGet({ path: "/slow", port }, container, "127.0.0.1"), { timeoutSeconds: 10, signal: stop.signal });
    setTimeout(() => stop.abort(new Error("stopped")), 50);
    await expect(pending).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

/** A server speaking raw bytes: each path's script writes its reply, packets apart, so the client sees them split. */
describe("HTTP probe against raw responses", () => {
  let raw: net.Server;
  let rawPort = 0;
  const requests: string[] = [];
  const scripts: Record<string, (socket: net.Socket) => Promise<void> | void> = {
    "/chunked": (s) => packets(s, ["HTTP/1.1 200 OK\r\nTransfer-", "Encoding: chunked\r\n\r\n3\r", "\nabc\r\n", "4;x=y\r\ndefg\r\n0\r\n\r\n"]),
    // Not HTTP, and the connection left open: the first line is enough to fail.
    "/garbage": (s) => packets(s, ["garb", "age\r\n"]),
    "/cut": (s) => packets(s, ["HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"], true),
    "/badchunk": (s) => packets(s, ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n"], true),
    "/interim": (s) => packets(s, ["HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n"]),
    "/silent": (s) => void s.end(),
    "/http10": (s) => packets(s, ["HTTP/1.0 503 Busy\r\n\r\nbusy ", "for now"], true),
    "/stall": (s) => packets(s, ["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]),
  };

  async function packets(socket: net.Socket, parts: readonly string[], close = false): Promise<void> {
    for (const part of parts) {
      socket.write(part);
      // Let the bytes leave as their own segment.
      await new Promise((r) => setTimeout(r, 5));
    }
    if (close) socket.end();
  }

  beforeAll(async () => {
    raw = net.createServer((socket) => {
      let head = "";
      socket.on("error", () => undefined);
      socket.on("data", (d: Buffer) => {
        head += d.toString("latin1");
        if (!head.includes("\r\n\r\n")) return;
        requests.push(head);
        const path = (head.split(" ")[1] ?? "").split("?")[0] ?? "";
        const script = scripts[path];
        if (script) void script(socket);
        else if (path.startsWith("/hop/")) {
          const n = Number(path.slice(5));
          socket.end(n === 0 ? "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhome" : `HTTP/1.1 302 Found\r\nLocation: /hop/${n - 1}\r\nContent-Length: 0\r\n\r\n`);
        } else socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
      });
    });
    await new Promise<void>((r) => raw.listen(0, "127.0.0.1", r));
    rawPort = (raw.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => raw.close(() => r())));

  const rawProbe = (path: string, timeoutSeconds = 1) => httpProbe(newRequestForHttpGet({ path, port: rawPort }, container, "127.0.0.1"), { timeoutSeconds });
  const target = (path: string) => `Get "http://127.0.0.1:${rawPort}${path}"`;

  it("sends one HTTP/1.1 GET with Host, the defaults and Connection: close", async () => {
    requests.length = 0;
    await rawProbe("/hop/0?q=1");
    expect(requests).toEqual([`GET /hop/0?q=1 HTTP/1.1\r\nHost: 127.0.0.1:${rawPort}\r\nUser-Agent: ${PROBE_USER_AGENT}\r\nAccept: */*\r\nConnection: close\r\n\r\n`]);
  });

  it("decodes a chunked body split across packets", async () => {
    expect(await rawProbe("/chunked")).toEqual({ status: "success", output: "abcdefg" });
  });

  it("skips an interim 100 and takes a 204 without body", async () => {
    expect(await rawProbe("/interim")).toEqual({ status: "success", output: "" });
  });

  it("reads an HTTP/1.0 body up to the close (and does not show it for a failure)", async () => {
    expect(await rawProbe("/http10")).toEqual({ status: "failure", output: "HTTP probe failed with statuscode: 503" });
  });

  it("fails a malformed response, or none, with Go's words", async () => {
    expect(await rawProbe("/garbage")).toEqual({ status: "failure", output: `${target("/garbage")}: net/http: HTTP/1.x transport connection broken: malformed HTTP response "garbage"` });
    expect(await rawProbe("/silent")).toEqual({ status: "failure", output: `${target("/silent")}: EOF` });
  });

  it("errors a probe whose body is cut, malformed or late, as upstream's DoHTTPProbe returns the read error", async () => {
    await expect(rawProbe("/cut")).rejects.toThrow(`${target("/cut")}: read body: unexpected EOF`);
    await expect(rawProbe("/badchunk")).rejects.toThrow(`${target("/badchunk")}: read body: invalid byte in chunk length`);
    const started = performance.now();
    await expect(rawProbe("/stall")).rejects.toThrow(`${target("/stall")}: read body: context deadline exceeded (Client.Timeout or context cancellation while reading body)`);
    expect(performance.now() - started).toBeGreaterThanOrEqual(950);
  });

  it("follows 9 redirects in a row, not 10", async () => {
    requests.length = 0;
    expect(await rawProbe("/hop/9")).toEqual({ status: "success", output: "home" });
    expect(requests).toHaveLength(10);
    requests.length = 0;
    expect(await rawProbe("/hop/10")).toEqual({ status: "failure", output: `${target("/hop/0")}: stopped after 10 redirects` });
    expect(requests).toHaveLength(10);
  });

  it("fails a header that cannot be sent without connecting", async () => {
    requests.length = 0;
    const r = await httpProbe(newRequestForHttpGet({ path: "/hop/0", port: rawPort, httpHeaders: [{ name: "X-A", value: "1\r\nX-B: 2" }] }, container, "127.0.0.1"), { timeoutSeconds: 1 });
    expect(r).toEqual({ status: "failure", output: `${target("/hop/0")}: net/http: invalid header field value for "X-A"` });
    expect(requests).toHaveLength(0);
  });

  it("probes an IPv6 literal host", async () => {
    const v6 = http.createServer((req, res) => res.end(`v6 ${req.headers.host ?? ""}`));
    await new Promise<void>((r) => v6.listen(0, "::1", r));
    const v6Port = (v6.address() as AddressInfo).port;
    try {
      const req = newRequestForHttpGet({ path: "/", port: v6Port, host: "::1" }, container, "127.0.0.1");
      expect(req.url.href).toBe(`http://[::1]:${v6Port}/`);
      expect(await httpProbe(req, { timeoutSeconds: 1 })).toEqual({ status: "success", output: `v6 [::1]:${v6Port}` });
    } finally {
      await new Promise((r) => v6.close(r));
    }
  });
});
