/**
 * sd_notify(3) for a service systemd runs with `Type=notify`: `READY=1` when the service is up, `STOPPING=1`
 * when it begins to shut down, and `WATCHDOG=1` every WATCHDOG_USEC/2 when the unit sets `WatchdogSec`
 * (systemd then restarts a service whose pings stop). Each state is one datagram to `$NOTIFY_SOCKET` (a path,
 * or `@name` for an abstract socket); without that variable every call does nothing.
 *
 * Node has no unix datagram sockets. A long-lived Perl child (perl-base and its Socket module are on every
 * Debian system; bin/deckhand-bridge already needs Perl) reads one state per line on its stdin and sends each
 * as one datagram: a few milliseconds to start, once, and no race with short-lived senders (systemd-notify(1)
 * may exit before systemd has looked up which unit it belongs to). The datagrams come from the child's PID,
 * so the unit must say `NotifyAccess=all`.
 *
 * Lifecycle: the constructor does nothing; `start(signal)` starts the helper and the watchdog; when `signal`
 * aborts, `STOPPING=1` goes out and the helper is told to end; `close()` waits until it has sent everything.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { systemClock, type Clock } from "./clock.ts";
import type { Logger } from "./log.ts";
import { PeriodicLoop } from "./loop.ts";

// One state per line; "\n" inside a state (several assignments in one datagram) is written as a literal \n.
const HELPER = String.raw`
use strict;
use Socket;
my $name = shift;
(my $path = $name) =~ s/^@/\0/;
socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!\n";
my $addr = pack_sockaddr_un($path);
while (my $line = <STDIN>) {
  chomp $line;
  $line =~ s/\\n/\n/g;
  defined(send($s, $line, 0, $addr)) or print STDERR "send to $name: $!\n";
}
`;

/** The variables systemd sets for a notify service. */
const NOTIFY_VARIABLES = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] as const;

export interface SdNotifierOptions {
  logger: Logger;
  /** Where NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID come from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * Remove those variables from `env` at start (sd_notify's unset_environment), so that no child process
   * (nsenter, ip, iptables...) can speak for the service. Default true when `env` is process.env.
   */
  unsetEnvironment?: boolean;
  /** This process's PID, for WATCHDOG_PID; default process.pid. */
  pid?: number;
  clock?: Clock;
  /** The Perl interpreter; default `perl` from PATH. */
  perl?: string;
}

export class SdNotifier {
  private readonly o: SdNotifierOptions;
  private readonly log: Logger;
  private readonly socket: string | undefined;
  private readonly watchdogMs: number | undefined;
  private helper: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private watchdog: PeriodicLoop | undefined;
  private stopped = false;

  constructor(options: SdNotifierOptions) {
    this.o = options;
    this.log = options.logger.child({ component: "sd-notify" });
    const env = options.env ?? process.env;
    const socket = env["NOTIFY_SOCKET"];
    this.socket = socket ? socket : undefined;
    // sd_watchdog_enabled: WATCHDOG_USEC, for us unless WATCHDOG_PID names another process.
    const usec = Number(env["WATCHDOG_USEC"] ?? "");
    const pid = env["WATCHDOG_PID"];
    const ours = pid === undefined || pid === "" || Number(pid) === (options.pid ?? process.pid);
    this.watchdogMs = this.socket && Number.isFinite(usec) && usec > 0 && ours ? usec / 1000 : undefined;
  }

  /** Whether systemd listens (NOTIFY_SOCKET is set). */
  get enabled(): boolean {
    return this.socket !== undefined;
  }

  /** The watchdog period systemd asked for (WATCHDOG_USEC, in ms), when it is ours to keep. */
  get watchdogIntervalMs(): number | undefined {
    return this.watchdogMs;
  }

  start(signal: AbortSignal): void {
    const env = this.o.env ?? process.env;
    if (this.o.unsetEnvironment ?? env === process.env) for (const v of NOTIFY_VARIABLES) delete env[v];
    if (!this.socket || this.helper || signal.aborted) return;
    const child = spawn(this.o.perl ?? "perl", ["-e", HELPER, this.socket], { stdio: ["pipe", "ignore", "pipe"] });
    this.helper = child;
    this.exited = new Promise((resolve) => {
      child.once("error", (err) => {
        this.log.warn({ err: err.message }, "cannot start the sd_notify helper; systemd will not hear from this service");
        resolve();
      });
      child.once("close", (code, sig) => {
        if (code !== 0) this.log.warn({ code, signal: sig }, "the sd_notify helper ended");
        resolve();
      });
    });
    child.stdin?.on("error", () => undefined); // a helper that died is reported by "close"
    child.stderr?.setEncoding("utf8").on("data", (text: string) => this.log.warn({ helper: text.trim() }, "sd_notify failed"));
    if (this.watchdogMs !== undefined) {
      const period = this.watchdogMs / 2;
      this.log.info({ watchdogMs: this.watchdogMs }, "systemd watchdog enabled");
      this.watchdog = new PeriodicLoop({
        name: "sd-notify watchdog",
        intervalMs: period,
        run: () => {
          this.notify("WATCHDOG=1");
          return Promise.resolve();
        },
        logger: this.log,
        clock: this.o.clock ?? systemClock,
      });
      this.watchdog.start(signal);
    }
    signal.addEventListener("abort", () => this.stop(), { once: true });
  }

  /** Sends one state (e.g. "READY=1", or "STATUS=..."); nothing without NOTIFY_SOCKET or after stopping. */
  notify(state: string): void {
    const stdin = this.helper?.stdin;
    if (this.stopped || !stdin?.writable) return;
    stdin.write(`${state.replace(/\n/g, "\\n")}\n`);
  }

  /** The service is up. */
  ready(): void {
    this.notify("READY=1");
  }

  /** STOPPING=1, then nothing more: the helper sends what it holds and ends. */
  private stop(): void {
    if (this.stopped) return;
    this.notify("STOPPING=1");
    this.stopped = true;
    this.helper?.stdin?.end();
  }

  /** Stops (if the signal did not already) and waits until every state has been sent. */
  async close(): Promise<void> {
    this.stop();
    await this.watchdog?.close();
    const helper = this.helper;
    if (!helper) return;
    // Perl sends a few queued lines in microseconds; one that hangs is not allowed to hold the shutdown.
    const timer = setTimeout(() => helper.kill("SIGKILL"), 2000);
    await this.exited;
    clearTimeout(timer);
  }
}
