import https from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeletServer, type ServerHost } from "../../../../kubelet/server/server.ts";
import { KubeletAuthenticator } from "../../../../kubelet/server/authn.ts";
import { alwaysAllow } from "../../../../kubelet/server/authz.ts";
import { selfSignedServingCert } from "../../../../kubelet/server/self-signed.ts";
import { silentLogger } from "../../../../src-shared/log.ts";

const cert = selfSignedServingCert("node-1", ["127.0.0.1"]);
const asked: boolean[] = [];
const host: ServerHost = {
  pods: () => [],
  runningPods: () => [],
  configz: () => ({}),
  metrics: () => "",
  probeMetrics: () => "",
  healthChecks: () => [],
  pod: () => undefined,
  containerLogPath: () => Promise.resolve(""),
  containerRunning: () => Promise.resolve(false),
  streamURL: () => Promise.resolve(""),
  statsSummary: (only) => (asked.push(only), { node: { nodeName: "node-1", startTime: "2026-01-01T00:00:00Z" }, pods: [] }),
  resourceMetrics: () => "scrape_error 0\n",
  cadvisorMetrics: () => "container_scrape_error 0\n",
};

function get(port: number, path: string): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: "127.0.0.1", port, path, rejectUnauthorized: false }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, type: res.headers["content-type"] }));
      })
      .on("error", reject);
  });
}

const stop = new AbortController();
const server = new KubeletServer({
  host,
  nodeName: "node-1",
  address: "127.0.0.1",
  port: 0,
  tls: { certPem: cert.certPem, keyPem: cert.keyPem, settings: {} },
  authenticator: new KubeletAuthenticator({ x509: false, webhook: { enabled: false, cacheTTLMs: 0, review: undefined }, anonymous: true, log: silentLogger() }),
  authorizer: alwaysAllow,
  fineGrainedAuthz: false,
  enableDebuggingHandlers: true,
  enableSystemLogHandler: false,
  log: silentLogger(),
});
beforeAll(() => server.start(stop.signal));
afterAll(async () => {
  stop.abort();
  await server.close();
});

describe("the stats routes of the kubelet server", () => {
  it("serve /stats/summary as JSON, passing only_cpu_and_memory", async () => {
    const r = await get(server.port, "/stats/summary");
    expect(r).toMatchObject({ status: 200, type: "application/json" });
    expect(JSON.parse(r.body)).toEqual({ node: { nodeName: "node-1", startTime: "2026-01-01T00:00:00Z" }, pods: [] });
    await get(server.port, "/stats/summary?only_cpu_and_memory=true");
    expect(asked).toEqual([false, true]);
  });

  it("serve /metrics/resource and /metrics/cadvisor as Prometheus text; other /stats/ paths stay 501", async () => {
    expect(await get(server.port, "/metrics/resource")).toMatchObject({ status: 200, body: "scrape_error 0\n", type: "text/plain; version=0.0.4; charset=utf-8" });
    expect(await get(server.port, "/metrics/cadvisor")).toMatchObject({ status: 200, body: "container_scrape_error 0\n" });
    expect((await get(server.port, "/stats/default/p/uid/c")).status).toBe(501);
  });
});
