/**
 * systemd's side of sd_notify for tests: a real unix datagram socket (a path, or `@name` for an abstract one,
 * which lives in the network namespace that binds it) that records every datagram it receives, with the time it
 * came. Bound by a Perl child (Node has no datagram unix sockets; perl-base is on every Debian system).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { eventually } from "./wait.ts";

const RECEIVER = String.raw`
use strict;
use Socket;
my $path = shift;
(my $addr = $path) =~ s/^@/\0/;
socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!\n";
bind($s, pack_sockaddr_un($addr)) or die "bind $path: $!\n";
$| = 1;
print "bound\n";
while (defined(recv($s, my $buf, 65536, 0))) {
  $buf =~ s/\\/\\\\/g;
  $buf =~ s/\n/\\n/g;
  print "$buf\n";
}
`;

export interface Datagram {
  text: string;
  at: number;
}

export class NotifySocket {
  readonly path: string;
  readonly received: Datagram[] = [];
  private child: ChildProcess | undefined;

  constructor(path: string) {
    this.path = path;
  }

  async start(): Promise<void> {
    const child = spawn("perl", ["-e", RECEIVER, this.path], { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    await new Promise<void>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`notify socket receiver exited (${String(code)}): ${stderr}`)));
      lines.on("line", (line) => {
        if (line === "bound") {
          resolve();
          return;
        }
        this.received.push({ text: line.replace(/\\(\\|n)/g, (_m, c: string) => (c === "n" ? "\n" : "\\")), at: Date.now() });
      });
    });
  }

  /** The datagrams received so far, as text. */
  texts(): string[] {
    return this.received.map((d) => d.text);
  }

  /** Waits until a datagram equal to `text` has come (counting from `from`); returns it. */
  async waitFor(text: string, timeoutMs = 10_000, from = 0): Promise<Datagram> {
    return eventually(() => Promise.resolve(this.received.slice(from).find((d) => d.text === text)), { message: `datagram ${JSON.stringify(text)} on ${this.path}`, timeoutMs: timeoutMs, intervalMs: 20 });
  }

  async close(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
}
