/**
 * The shared API plumbing (REST client and informer) against the local control plane over HTTPS with client
 * certificates: typed Status errors, the three patch types, and an informer that survives watch expiry (410),
 * compaction and a server restart without losing or duplicating objects.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1ConfigMap } from "@kubernetes/client-node";
import { TcpProxy } from "../../harness/tcp-proxy.ts";
import { eventually } from "../../harness/wait.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlPlane } from "../../control-plane/control-plane.ts";
import { ApiError, KubeClient } from "../../../src-shared/kube/client.ts";
import { Informer } from "../../../src-shared/kube/informer.ts";
import { silentLogger } from "../../../src-shared/log.ts";

let dir: string;
let cp: ControlPlane;
let client: KubeClient;
const cm = (name?: string) => ({ group: "", version: "v1", resource: "configmaps", namespace: "default", ...(name ? { name } : {}) });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "deckhand-kube-"));
  cp = new ControlPlane({ dir, log: silentLogger(), historyLimit: 50, bookmarkIntervalMs: 200 });
  await cp.start();
  client = KubeClient.fromFile(cp.adminKubeconfigPath);
});

afterAll(async () => {
  client.close();
  await cp.close();
  await rm(dir, { recursive: true, force: true });
});

describe("KubeClient", () => {
  it("creates, reads, patches three ways, and deletes, with typed Status errors", async () => {
    const created = await client.create<V1ConfigMap>(cm(), { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "one" }, data: { a: "1" } });
    expect(created.metadata?.uid).toBeTruthy();
    const dup = (await client.create(cm(), { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "one" } }).catch((e: unknown) => e)) as ApiError;
    expect(dup).toBeInstanceOf(ApiError);
    expect([dup.status, dup.reason, dup.code]).toEqual([409, "AlreadyExists", "AlreadyExists"]);

    await client.patch(cm("one"), "merge", { data: { b: "2" } });
    await client.patch(cm("one"), "strategic", { metadata: { labels: { x: "y" } } });
    const patched = await client.patch<V1ConfigMap>(cm("one"), "json", [{ op: "add", path: "/data/c", value: "3" }]);
    expect(patched.data).toEqual({ a: "1", b: "2", c: "3" });
    expect(patched.metadata?.labels).toEqual({ x: "y" });

    const stale = { ...created, data: { a: "stale" } };
    const conflict = (await client.update(cm("one"), stale).catch((e: unknown) => e)) as ApiError;
    expect([conflict.status, conflict.reason]).toEqual([409, "Conflict"]);

    await client.delete(cm("one"));
    const gone = (await client.get(cm("one")).catch((e: unknown) => e)) as ApiError;
    expect([gone.status, gone.reason, gone.code]).toEqual([404, "NotFound", "NotFound"]);
  });

  it("reports an unreachable server as Unavailable", async () => {
    const dead = client.withServer("https://127.0.0.1:1");
    const err = (await dead.get(cm("x"), { timeoutMs: 2000 }).catch((e: unknown) => e)) as ApiError;
    expect(err.code).toBe("Unavailable");
    dead.close();
  });
});

describe("Informer", () => {
  it("lists, follows changes, and relists after 410 Gone delivering only the difference", async () => {
    // The informer reaches the server through a proxy the test can cut.
    const proxy = new TcpProxy({ host: "127.0.0.1", port: cp.port });
    await proxy.start();
    const proxied = client.withServer(proxy.url);
    const informer = new Informer<V1ConfigMap>({ client: proxied, resource: cm(), labelSelector: "app=inf", logger: silentLogger(), backoff: { initialMs: 50, maxMs: 200 } });
    const seen: string[] = [];
    informer.on({
      added: (o) => seen.push(`add ${o.metadata?.name ?? ""}`),
      updated: (_p, o) => seen.push(`update ${o.metadata?.name ?? ""}=${o.data?.["v"] ?? ""}`),
      deleted: (o) => seen.push(`delete ${o.metadata?.name ?? ""}`),
    });
    const body = (name: string, v: string) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, labels: { app: "inf" } }, data: { v } });
    await client.create(cm(), body("a", "1"));
    await client.create(cm(), { ...body("ignored", "1"), metadata: { name: "ignored", labels: { app: "other" } } });
    const controller = new AbortController();
    informer.start(controller.signal);
    await informer.waitForSync();
    expect(informer.list().map((o) => o.metadata?.name)).toEqual(["a"]);

    await client.create(cm(), body("b", "1"));
    await client.patch(cm("a"), "merge", { data: { v: "2" } });
    await eventually(() => seen.includes("update a=2") && seen.includes("add b"));

    // An outage: while the informer is cut off, objects change and the watch history it would resume from
    // expires. Back online, its watch gets 410 Gone; it must relist and deliver exactly the difference.
    const listsBefore = informer.lists;
    proxy.cut();
    await client.delete(cm("b"));
    await client.create(cm(), body("c", "1"));
    for (let i = 0; i < 60; i++) await client.patch(cm("ignored"), "merge", { data: { v: String(i) } });
    cp.compact();
    expect(informer.list().map((o) => o.metadata?.name).sort()).toEqual(["a", "b"]); // the cache outlives the outage
    proxy.restore();
    await eventually(() => informer.list().map((o) => o.metadata?.name).sort().join() === "a,c", { timeoutMs: 20_000 });
    expect(informer.lists).toBeGreaterThan(listsBefore);
    expect(seen.filter((s) => s === "delete b")).toHaveLength(1);
    expect(seen.filter((s) => s === "add c")).toHaveLength(1);
    await informer.close();
    controller.abort();
    proxied.close();
    await proxy.close();
  });
});
