import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SdNotifier } from "../../../src-shared/sd-notify.ts";
import { silentLogger } from "../../../src-shared/log.ts";
import { FakeClock } from "../../harness/fake-clock.ts";
import { NotifySocket } from "../../harness/notify-socket.ts";

let dir: string;
let systemd: NotifySocket | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sd-notify-"));
});

afterEach(async () => {
  await systemd?.close();
  systemd = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function listen(path = join(dir, "notify")): Promise<NotifySocket> {
  systemd = new NotifySocket(path);
  await systemd.start();
  return systemd;
}

describe("SdNotifier", () => {
  it("sends READY=1, then STOPPING=1 when its signal aborts, each as one datagram to a socket path", async () => {
    const socket = await listen();
    const notifier = new SdNotifier({ logger: silentLogger(), env: { NOTIFY_SOCKET: socket.path } });
    const stop = new AbortController();
    notifier.start(stop.signal);
    notifier.ready();
    await socket.waitFor("READY=1");
    stop.abort();
    await notifier.close();
    // close() returns once the helper has sent everything; unix datagrams arrive in order, so the last one
    // received means all were.
    await socket.waitFor("STOPPING=1");
    expect(socket.texts()).toEqual(["READY=1", "STOPPING=1"]);
  });

  it("reaches an abstract socket (@name) and keeps a multi-line state in one datagram", async () => {
    const socket = await listen(`@deckhand-test-${randomBytes(6).toString("hex")}`);
    const notifier = new SdNotifier({ logger: silentLogger(), env: { NOTIFY_SOCKET: socket.path } });
    notifier.start(new AbortController().signal);
    notifier.notify("STATUS=syncing pods\nREADY=1");
    await notifier.close();
    await socket.waitFor("STOPPING=1");
    expect(socket.texts()).toEqual(["STATUS=syncing pods\nREADY=1", "STOPPING=1"]);
  });

  it("pings the watchdog every WATCHDOG_USEC/2 when WATCHDOG_PID is ours", async () => {
    const socket = await listen();
    const clock = new FakeClock();
    const notifier = new SdNotifier({ logger: silentLogger(), clock, pid: 4242, env: { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: "20000000", WATCHDOG_PID: "4242" } });
    expect(notifier.watchdogIntervalMs).toBe(20_000);
    const stop = new AbortController();
    notifier.start(stop.signal);
    await socket.waitFor("WATCHDOG=1");
    await clock.advance(9_999);
    notifier.notify("STATUS=marker");
    await socket.waitFor("STATUS=marker");
    expect(socket.texts()).toEqual(["WATCHDOG=1", "STATUS=marker"]);
    await clock.advance(1);
    await socket.waitFor("WATCHDOG=1", 10_000, 2);
    await clock.advance(10_000);
    await socket.waitFor("WATCHDOG=1", 10_000, 3);
    stop.abort();
    await notifier.close();
    await socket.waitFor("STOPPING=1");
    expect(socket.texts()).toEqual(["WATCHDOG=1", "STATUS=marker", "WATCHDOG=1", "WATCHDOG=1", "STOPPING=1"]);
  });

  it("leaves the watchdog to the process WATCHDOG_PID names", async () => {
    const socket = await listen();
    const notifier = new SdNotifier({ logger: silentLogger(), pid: 4242, env: { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: "20000000", WATCHDOG_PID: "1" } });
    expect(notifier.watchdogIntervalMs).toBeUndefined();
    notifier.start(new AbortController().signal);
    notifier.ready();
    await notifier.close();
    await socket.waitFor("STOPPING=1");
    // The helper sends in order: a ping from start() would have come first.
    expect(socket.texts()).toEqual(["READY=1", "STOPPING=1"]);
  });

  it("removes systemd's variables from the environment it read, so that child processes cannot speak for the service", async () => {
    const socket = await listen();
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: "1000000", WATCHDOG_PID: String(process.pid), PATH: "/usr/bin" };
    const notifier = new SdNotifier({ logger: silentLogger(), env, unsetEnvironment: true });
    notifier.start(new AbortController().signal);
    expect(env).toEqual({ PATH: "/usr/bin" });
    notifier.ready();
    await notifier.close();
    await socket.waitFor("READY=1");
  });

  it("logs a datagram systemd could not be sent, and carries on", async () => {
    const lines: string[] = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(line) });
    const missing = join(dir, "gone.sock");
    const notifier = new SdNotifier({ logger, env: { NOTIFY_SOCKET: missing } });
    notifier.start(new AbortController().signal);
    notifier.ready();
    await notifier.close();
    const warnings = lines.map((l) => JSON.parse(l) as { msg: string; helper?: string }).filter((l) => l.msg === "sd_notify failed");
    expect(warnings.map((w) => w.helper).join("\n")).toContain(`send to ${missing}: No such file or directory`);
  });

  it("does nothing without NOTIFY_SOCKET", async () => {
    const lines: string[] = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(line) });
    // A helper it tried to start would fail loudly: this interpreter does not exist.
    const notifier = new SdNotifier({ logger, env: { WATCHDOG_USEC: "1000000" }, perl: join(dir, "no-perl") });
    expect(notifier.enabled).toBe(false);
    expect(notifier.watchdogIntervalMs).toBeUndefined();
    notifier.start(new AbortController().signal);
    notifier.ready();
    await notifier.close();
    expect(lines).toEqual([]);
  });
});
