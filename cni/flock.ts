/**
 * flock(2) on a lock file, as host-local takes it on `<dataDir>/<network>/lock`, so that our plugin, a running
 * reference host-local and operators' scripts exclude each other.
 *
 * Node has no flock. A lock held through a child process works because flock locks belong to the open file
 * description: a small perl helper (perl-base is Essential on Debian; the script uses builtins only, so it
 * starts in ~1.5 ms) opens the file, and takes and drops the lock on request over a pipe. The kernel drops the
 * lock when the helper dies, and the helper exits when our end of the pipe closes, so a plugin or daemon killed
 * at any point leaves no lock behind. The daemon keeps one helper per lock file (a lock round trip is ~0.1 ms);
 * the one-shot plugin starts one per invocation.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { CniCode, CniError } from "./spec.ts";
import { detachHelper } from "../src-shared/exec.ts";
import { stopHelper } from "./nsexec.ts";

// L: open (creating) the file, flock LOCK_EX, and make sure the file we locked is still the one at the path
// (someone may have removed it meanwhile); U: close, which releases it.
const HELPER = String.raw`$|=1; my $p=shift; my $f;
while (my $l = <STDIN>) {
  if ($l =~ /^L/) {
    for (;;) {
      if (!open($f, ">>", $p)) { print "E open $p: $!\n"; last; }
      if (!flock($f, 2)) { print "E flock $p: $!\n"; close($f); last; }
      my @a = stat($f); my @b = stat($p);
      if (@b && $a[0] == $b[0] && $a[1] == $b[1]) { print "L\n"; last; }
      close($f);
    }
  } elsif ($l =~ /^U/) { close($f) if $f; undef $f; print "U\n"; }
}`;

export class FileLock {
  readonly path: string;
  private child: ChildProcess | undefined;
  private buffered = "";
  private waiters: ((line: string) => void)[] = [];
  private queue: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  private helper(): ChildProcess {
    if (this.child && this.child.exitCode === null && !this.child.killed) return this.child;
    mkdirSync(dirname(this.path), { recursive: true });
    const child = spawn("/usr/bin/perl", ["-e", HELPER, this.path], { stdio: ["pipe", "pipe", "inherit"] });
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      this.buffered += chunk;
      for (let nl = this.buffered.indexOf("\n"); nl >= 0; nl = this.buffered.indexOf("\n")) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        this.waiters.shift()?.(line);
      }
    });
    child.on("exit", () => {
      if (this.child === child) this.child = undefined;
      for (const w of this.waiters.splice(0)) w("E lock helper exited");
    });
    // The daemon must not stay alive for the helper's sake, nor the helper for the daemon's.
    detachHelper(child);
    this.child = child;
    this.buffered = "";
    return child;
  }

  private ask(cmd: "L" | "U", timeoutMs: number): Promise<string> {
    const child = this.helper();
    return new Promise<string>((resolve) => {
      const timer = setTimeout(() => {
        // Abandon the helper: killing it drops whatever it holds or waits for.
        child.kill("SIGKILL");
        resolve("T");
      }, timeoutMs);
      this.waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
      child.stdin?.write(`${cmd}\n`);
    });
  }

  /** Runs `fn` holding the lock (callers in this process queue behind each other first). */
  async with<T>(fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
    const previous = this.queue;
    let done!: () => void;
    this.queue = new Promise<void>((r) => (done = r));
    await previous;
    try {
      const got = await this.ask("L", timeoutMs);
      if (got === "T") throw new CniError(CniCode.TryAgainLater, `IPAM lock ${this.path} is held by another process for more than ${timeoutMs / 1000} s`);
      if (got !== "L") throw new CniError(CniCode.IoFailure, `IPAM lock ${this.path}: ${got.replace(/^E /, "")}`);
      try {
        return await fn();
      } finally {
        // Not awaited: the pipe keeps order, so the next "L" is handled after this "U" anyway.
        void this.ask("U", 5_000).then((released) => {
          if (released !== "U") this.close();
        });
      }
    } finally {
      done();
    }
  }

  /** Stops the helper (which releases the lock if held). */
  close(): void {
    stopHelper(this.child);
    this.child = undefined;
  }
}
