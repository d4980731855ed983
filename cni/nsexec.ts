/**
 * Runs `ip -batch -` inside a pod's network namespace, fast, for the daemon.
 *
 * `nsenter --net=<ns> ip -batch -` spawned from Node costs ~4-5 ms: Node forks its whole (large) process, then
 * two execs. This keeps one small perl process (builtins only) that forks per request; the fork enters the
 * namespace itself (setns(2) through perl's `syscall`), then forks and execs `ip`: ~1.5 ms. The fork answers
 * with one line, written in one write shorter than PIPE_BUF so concurrent answers never interleave.
 * The one-shot plugin keeps using nsenter (starting this helper would cost what it saves).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { detachHelper } from "../src-shared/exec.ts";

/** setns(2) per architecture (asm-generic numbering for the newer ones). */
const SETNS: Partial<Record<NodeJS.Architecture, number>> = { x64: 308, arm64: 268, ia32: 346, arm: 375, riscv64: 268, loong64: 268, ppc64: 350, s390x: 339 };

// Request: "<id> <I|N> <hex netns path> <hex payload>\n". I: the payload is an `ip -batch` script; answer
// "<id> <exit code> <hex of ip's output, cut>\n". N: the payload is rtnetlink messages (each asking for an
// ACK), sent in order on a netlink socket opened inside the namespace; answer "<id> 0 " or
// "<id> <errno> <hex of the failing message's position>" (no process exec at all: ~0.5 ms).
const HELPER = String.raw`$|=1; my ($nr, $ip) = @ARGV; $SIG{CHLD} = 'IGNORE';
while (my $l = <STDIN>) {
  chomp $l; my ($id, $kind, $nsx, $scx) = split / /, $l;
  my $pid = fork();
  if (!defined $pid) { syswrite(STDOUT, "$id 255 " . unpack("H*", "fork: $!") . "\n"); next; }
  next if $pid;
  $SIG{CHLD} = 'DEFAULT';
  my $done = sub { my ($code, $err) = @_; syswrite(STDOUT, "$id $code " . unpack("H*", substr($err, 0, 1500)) . "\n"); exit 0; };
  my $ns = pack("H*", $nsx); my $script = pack("H*", $scx // "");
  open(my $fh, "<", $ns) or $done->(254, "cannot open $ns: $!");
  syscall($nr, fileno($fh), 0x40000000) == 0 or $done->(254, "setns $ns: $!");
  close($fh);
  if ($kind eq "N") {
    socket(my $nl, 16, 3, 0) or $done->(253, "netlink socket: $!");
    my ($off, $n) = (0, 0);
    while ($off + 16 <= length($script)) {
      my $len = unpack("L", substr($script, $off, 4));
      defined(send($nl, substr($script, $off, $len), 0)) or $done->(253, "netlink send: $!");
      my $buf = ""; defined(recv($nl, $buf, 65536, 0)) or $done->(253, "netlink recv: $!");
      if (unpack("S", substr($buf, 4, 2)) == 2) { my $e = -unpack("l", substr($buf, 16, 4)); $done->($e, "$n") if $e; }
      $off += ($len + 3) & ~3; $n++;
    }
    $done->(0, "");
  }
  pipe(my $ir, my $iw) or $done->(255, "pipe: $!"); pipe(my $er, my $ew) or $done->(255, "pipe: $!");
  my $c = fork(); defined $c or $done->(255, "fork: $!");
  if ($c == 0) { close $iw; close $er; open(STDIN, "<&", $ir); open(STDOUT, ">&", $ew); open(STDERR, ">&", $ew); exec { $ip } $ip, "-batch", "-"; exit 127; }
  close $ir; close $ew; syswrite($iw, $script); close $iw;
  my $err = ""; while (sysread($er, my $b, 4096)) { $err .= $b; }
  waitpid($c, 0); $done->($? & 127 ? 128 + ($? & 127) : $? >> 8, $err);
}`;

export interface NsRunResult {
  code: number;
  output: string;
}

export class NetnsRunner {
  private child: ChildProcess | undefined;
  private buffered = "";
  private nextId = 1;
  private readonly pending = new Map<number, (r: NsRunResult) => void>();
  private readonly ipPath: string;

  constructor(ipPath: string) {
    this.ipPath = ipPath;
  }

  /** Whether this machine's architecture is known (else callers use nsenter). */
  static supported(): boolean {
    return SETNS[process.arch] !== undefined;
  }

  private helper(): ChildProcess {
    if (this.child && this.child.exitCode === null && !this.child.killed) return this.child;
    const child = spawn("/usr/bin/perl", ["-e", HELPER, String(SETNS[process.arch]), this.ipPath], { stdio: ["pipe", "pipe", "inherit"] });
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      this.buffered += chunk;
      for (let nl = this.buffered.indexOf("\n"); nl >= 0; nl = this.buffered.indexOf("\n")) {
        const [id, code, hex] = this.buffered.slice(0, nl).split(" ");
        this.buffered = this.buffered.slice(nl + 1);
        const cb = this.pending.get(Number(id));
        this.pending.delete(Number(id));
        cb?.({ code: Number(code), output: Buffer.from(hex ?? "", "hex").toString("utf8") });
      }
    });
    child.on("exit", () => {
      if (this.child === child) this.child = undefined;
      for (const [id, cb] of this.pending) {
        this.pending.delete(id);
        cb({ code: 255, output: "the netns helper exited" });
      }
    });
    // The daemon must not stay alive for the helper's sake, nor the helper for the daemon's.
    detachHelper(child);
    this.child = child;
    this.buffered = "";
    return child;
  }

  run(netns: string, script: string, timeoutMs = 20_000): Promise<NsRunResult> {
    return this.request("I", netns, Buffer.from(script), timeoutMs);
  }

  /**
   * Sends rtnetlink requests inside the namespace, in order, stopping at the first error: code 0, or the
   * errno with `output` the failing message's position.
   */
  netlink(netns: string, messages: readonly Buffer[], timeoutMs = 20_000): Promise<NsRunResult> {
    return this.request("N", netns, Buffer.concat(messages.map((m) => Buffer.concat([m, Buffer.alloc((4 - (m.length % 4)) % 4)]))), timeoutMs);
  }

  private request(kind: "I" | "N", netns: string, payload: Buffer, timeoutMs: number): Promise<NsRunResult> {
    const child = this.helper();
    const id = this.nextId++;
    return new Promise<NsRunResult>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ code: 255, output: `no answer within ${timeoutMs} ms` });
      }, timeoutMs);
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      child.stdin?.write(`${id} ${kind} ${Buffer.from(netns).toString("hex")} ${payload.toString("hex")}\n`);
    });
  }

  close(): void {
    stopHelper(this.child);
    this.child = undefined;
  }
}

/** Ends a helper child started with detachHelper: closes its stdin and kills it, if it still runs. */
export function stopHelper(child: ChildProcess | undefined): void {
  if (child && child.exitCode === null) {
    child.stdin?.end();
    child.kill("SIGKILL");
  }
}
