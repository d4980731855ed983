/**
 * The kubelet under systemd's notify protocol, as the installed unit runs it (Type=notify, WatchdogSec): the real
 * kubelet process, started with NOTIFY_SOCKET pointing at a real datagram socket standing in for systemd, says
 * READY=1 only once it has registered its node, pings the watchdog at half of WATCHDOG_USEC, and says
 * STOPPING=1 on SIGTERM.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { V1Node } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, type ClusterNode } from "../../harness/cluster.ts";
import { NotifySocket } from "../../harness/notify-socket.ts";

const WATCHDOG_MS = 4000;
const cluster = new TestCluster();
let node: ClusterNode;
let systemd: NotifySocket;

beforeAll(async () => {
  await cluster.start();
  node = await cluster.addNode({ start: false });
  systemd = new NotifySocket(join(node.sandbox.dir, "notify.sock"));
  await systemd.start();
  // What systemd puts in a notify service's environment (WATCHDOG_PID unset: the main process is the kubelet).
  process.env["NOTIFY_SOCKET"] = systemd.path;
  process.env["WATCHDOG_USEC"] = String(WATCHDOG_MS * 1000);
  try {
    await node.kubelet?.start();
  } finally {
    delete process.env["NOTIFY_SOCKET"];
    delete process.env["WATCHDOG_USEC"];
  }
});

afterAll(async () => {
  if (node?.kubelet) console.log(`kubelet log tail:\n${await node.kubelet.logTail(Number(process.env["KUBELET_LOG_LINES"] ?? 20))}`);
  await systemd?.close();
  await cluster.teardown();
});

/** When the kubelet logged `msg` (pino's ms timestamp). */
async function loggedAt(msg: string): Promise<number | undefined> {
  const text = await readFile(node.kubelet?.logPath ?? "", "utf8");
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    const entry = JSON.parse(line) as { msg?: string; time?: number };
    if (entry.msg === msg) return entry.time;
  }
  return undefined;
}

describe("sd_notify", () => {
  it("says READY=1 once the node is registered", async () => {
    const ready = await systemd.waitFor("READY=1", 60_000);
    const registered = await loggedAt("registered the node");
    expect(registered, "the kubelet logged its registration").toBeDefined();
    expect(ready.at).toBeGreaterThanOrEqual(registered ?? Infinity);
    const n = await cluster.client.get<V1Node>({ group: "", version: "v1", resource: "nodes", name: node.name });
    expect(n.metadata?.name).toBe(node.name);
    expect(systemd.texts().filter((t) => t === "READY=1")).toHaveLength(1);
  }, 90_000);

  it("pings the watchdog every WATCHDOG_USEC/2", async () => {
    const count = (): number => systemd.texts().filter((t) => t === "WATCHDOG=1").length;
    const before = count();
    // Three more pings; each came well inside the period systemd would kill at.
    for (let i = 1; i <= 3; i++) await systemd.waitFor("WATCHDOG=1", 2 * WATCHDOG_MS, systemd.received.length);
    const pings = systemd.received.filter((d) => d.text === "WATCHDOG=1").map((d) => d.at);
    expect(pings.length).toBeGreaterThanOrEqual(before + 3);
    const gaps = pings.slice(1).map((t, i) => t - (pings[i] ?? t));
    for (const gap of gaps.slice(-3)) {
      expect(gap).toBeGreaterThan(WATCHDOG_MS / 4);
      expect(gap).toBeLessThan(WATCHDOG_MS);
    }
  }, 30_000);

  it("says STOPPING=1 on SIGTERM, and nothing after it", async () => {
    expect(systemd.texts()).not.toContain("STOPPING=1");
    await node.kubelet?.stop();
    expect(node.kubelet?.running).toBe(false);
    // The kubelet has exited: every datagram it sent is in (close() waits for the helper to send them).
    await systemd.waitFor("STOPPING=1", 5000);
    expect(systemd.texts().at(-1)).toBe("STOPPING=1");
  }, 30_000);
});
