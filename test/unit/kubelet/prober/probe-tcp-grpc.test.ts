import { afterAll, beforeAll, describe, expect, it } from "vitest";
import net, { type AddressInfo } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { tcpProbe } from "../../../../kubelet/prober/probe-tcp.ts";
import {
  HEALTH_CHECK_METHOD,
  decodeHealthCheckRequest,
  encodeHealthCheckRequest,
  encodeHealthCheckResponse,
  grpcProbe,
} from "../../../../kubelet/prober/probe-grpc.ts";
import { PROBE_USER_AGENT } from "../../../../kubelet/prober/probe.ts";

/** A port nothing listens on (bound, read, released). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe("TCP probe", () => {
  it("succeeds when a connection opens, and closes it", async () => {
    const server = net.createServer();
    const closed = new Promise<void>((resolve) => server.on("connection", (sock) => sock.on("close", () => resolve())));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    expect(await tcpProbe({ host: "127.0.0.1", port, timeoutSeconds: 1 })).toEqual({ status: "success", output: "" });
    await closed; // the probe's connection was closed by the prober
    await new Promise((r) => server.close(r));
  });

  it("fails a refused connection with Go's wording", async () => {
    const port = await freePort();
    expect(await tcpProbe({ host: "127.0.0.1", port, timeoutSeconds: 1 })).toEqual({ status: "failure", output: `dial tcp 127.0.0.1:${port}: connect: connection refused` });
  });
});

/** The standard health service, hand-rolled: services "" and "ok" serve, "bad" does not, others are unknown. */
function healthService(): grpc.ServiceDefinition {
  return {
    Check: {
      path: HEALTH_CHECK_METHOD,
      requestStream: false,
      responseStream: false,
      // An object, not the bare string: grpc-js's server takes a falsy message ("") for none.
      requestSerialize: (r: { service: string }) => encodeHealthCheckRequest(r.service),
      requestDeserialize: (b: Buffer) => ({ service: decodeHealthCheckRequest(b) }),
      responseSerialize: (n: number) => encodeHealthCheckResponse(n),
      responseDeserialize: (b: Buffer) => b.length,
    },
  };
}

describe("gRPC probe", () => {
  let server: grpc.Server;
  let bare: grpc.Server;
  let port = 0;
  let barePort = 0;
  const agents: string[] = [];

  beforeAll(async () => {
    server = new grpc.Server();
    server.addService(healthService(), {
      Check: (call: grpc.ServerUnaryCall<{ service: string }, number>, cb: grpc.sendUnaryData<number>) => {
        agents.push(String(call.metadata.get("user-agent")[0] ?? ""));
        const service = call.request.service;
        if (service === "" || service === "ok") cb(null, 1);
        else if (service === "bad") cb(null, 2);
        else if (service === "slow") setTimeout(() => cb(null, 1), 3_000).unref();
        else cb({ code: grpc.status.NOT_FOUND, details: "unknown service" });
      },
    });
    port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    bare = new grpc.Server();
    barePort = await new Promise<number>((resolve, reject) => bare.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  });

  afterAll(() => {
    server.forceShutdown();
    bare.forceShutdown();
  });

  const probe = (service: string, p = port) => grpcProbe({ host: "127.0.0.1", port: p, service, timeoutSeconds: 1 });

  it("succeeds when the service is SERVING, sending the service name and upstream's User-Agent", async () => {
    expect(await probe("")).toEqual({ status: "success", output: "service healthy" });
    expect(await probe("ok")).toEqual({ status: "success", output: "service healthy" });
    expect(agents[0]).toMatch(new RegExp(`^${PROBE_USER_AGENT.replace(".", "\\.")}`));
  });

  it("fails with upstream's messages: not serving, an RPC error, no health service", async () => {
    expect(await probe("bad")).toEqual({ status: "failure", output: 'service unhealthy (responded with "NOT_SERVING")' });
    expect(await probe("other")).toEqual({ status: "failure", output: "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service" });
    const r = await probe("", barePort);
    expect(r.status).toBe("failure");
    expect(r.output).toMatch(/^error: this server does not implement the grpc health protocol \(grpc\.health\.v1\.Health\): /);
  });

  it("fails an RPC slower than the timeout, and a server that is not there within the timeout", async () => {
    expect(await probe("slow")).toEqual({ status: "failure", output: "timeout: health rpc did not complete within 1s" });
    const gone = await freePort();
    const started = performance.now();
    expect(await probe("", gone)).toEqual({ status: "failure", output: `timeout: failed to connect service "127.0.0.1:${gone}" within 1s: context deadline exceeded` });
    expect(performance.now() - started).toBeLessThan(2_500);
  });

  it("encodes and decodes the two health messages", () => {
    expect(encodeHealthCheckRequest("")).toEqual(Buffer.alloc(0));
    expect(decodeHealthCheckRequest(encodeHealthCheckRequest("a".repeat(300)))).toBe("a".repeat(300));
    expect(encodeHealthCheckResponse(2)).toEqual(Buffer.from([0x08, 0x02]));
  });
});
