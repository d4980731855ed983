/** client-go's rest_client_requests_total as the shared API client counts it: by code, method and host, "<error>" when no answer came. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient } from "../../../../src-shared/kube/client.ts";
import { restClientRequests } from "../../../../src-shared/kube/client-metrics.ts";

let server: http.Server;
let host = "";
beforeAll(async () => {
  server = http.createServer((req, res) => {
    res.writeHead(req.method === "POST" ? 201 : req.url?.startsWith("/api/v1/namespaces/default/pods/missing") ? 404 : 200, { "Content-Type": "application/json" });
    res.end("{}");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

describe("rest_client_requests_total", () => {
  it("counts every request by its answer's code, its method and the server's host:port", async () => {
    const client = new KubeClient({ server: new URL(`http://${host}`), insecureSkipTLSVerify: false, token: () => Promise.resolve(undefined), context: "t" });
    const pods = { group: "", version: "v1", resource: "pods", namespace: "default" };
    const count = (code: string, method: string): number => restClientRequests.get({ code, method, host });
    const before = { get: count("200", "GET"), post: count("201", "POST"), missing: count("404", "GET") };
    await client.get({ ...pods, name: "p" });
    await client.get({ ...pods, name: "p" });
    await client.create(pods, { metadata: { name: "q" } });
    await expect(client.get({ ...pods, name: "missing" })).rejects.toThrow();
    expect(count("200", "GET") - before.get).toBe(2);
    expect(count("201", "POST") - before.post).toBe(1);
    expect(count("404", "GET") - before.missing).toBe(1);
    // No answer at all: "<error>", as client-go's.
    const down = new KubeClient({ server: new URL("http://127.0.0.1:1"), insecureSkipTLSVerify: false, token: () => Promise.resolve(undefined), context: "t" });
    const errors = restClientRequests.get({ code: "<error>", method: "GET", host: "127.0.0.1:1" });
    await expect(down.get({ ...pods, name: "p" })).rejects.toThrow();
    expect(restClientRequests.get({ code: "<error>", method: "GET", host: "127.0.0.1:1" }) - errors).toBe(1);
    client.close();
    down.close();
  });
});
