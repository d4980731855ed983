/**
 * The mounts the volume manager makes itself: tmpfs for memory-backed emptyDirs and for the secret, projected
 * and downwardAPI volumes (upstream wraps those in a memory emptyDir so their content never touches the disk).
 * An interface so the volume manager is unit tested without mounting; the real one makes the mount(2) and
 * umount2(2) calls (see SystemMounter) and reads /proc/self/mountinfo.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { constants as osConstants } from "node:os";
import { DeckhandError } from "../../src-shared/errors.ts";
import { mountPointsIn, parseMountInfo } from "../../src-shared/mountinfo.ts";
import { detachHelper, run } from "../../src-shared/exec.ts";

export interface Mounter {
  /** Mounts a tmpfs of at most `sizeBytes` (undefined: the kernel's default, half the RAM) at `path`. */
  mountTmpfs(path: string, sizeBytes: number | undefined, signal?: AbortSignal): Promise<void>;
  unmount(path: string, signal?: AbortSignal): Promise<void>;
  /**
   * Bind-mounts `root/rel` onto `target` (which exists, of the same type), pinned: the path is walked from
   * `root` one element at a time without following any symlink and the mount is made from the file descriptor
   * so reached, so a symlink swapped in after the caller's checks cannot redirect it (upstream's
   * doBindSubPath, CVE-2017-1002101). Fails with ELOOP/ENOTDIR when an element is a symlink.
   */
  bindPinned(root: string, rel: string, target: string, signal?: AbortSignal): Promise<void>;
  /** Mount points at or under `dir`, deepest first. */
  mountPointsUnder(dir: string): Promise<string[]>;
  /** Stops what the mounter keeps running (the kubelet's shutdown). */
  close?(): void;
}

/** mount(2) and umount2(2) per architecture (asm-generic numbering for the newer ones). */
const SYSCALLS: Partial<Record<NodeJS.Architecture, { mount: number; umount2: number }>> = {
  x64: { mount: 165, umount2: 166 },
  arm64: { mount: 40, umount2: 39 },
  riscv64: { mount: 40, umount2: 39 },
  loong64: { mount: 40, umount2: 39 },
  ia32: { mount: 21, umount2: 52 },
  arm: { mount: 21, umount2: 52 },
  ppc64: { mount: 21, umount2: 52 },
  s390x: { mount: 21, umount2: 52 },
};

/**
 * openat(2) and the open flags a pinned walk needs (O_PATH | O_NOFOLLOW | O_CLOEXEC, and O_DIRECTORY for the
 * folders on the way), where they are known; elsewhere a subPath is bind-mounted by path (not pinned).
 */
const OPENAT: Partial<Record<NodeJS.Architecture, { openat: number; flags: number; directory: number }>> = {
  x64: { openat: 257, flags: 0o10000000 | 0o400000 | 0o2000000, directory: 0o200000 },
  arm64: { openat: 56, flags: 0o10000000 | 0o100000 | 0o2000000, directory: 0o40000 },
};

/** How long one mount or unmount may take, as the spawned `mount` fallback's timeout. */
const REQUEST_TIMEOUT_MS = 30_000;

// Requests "<id> M <hex target> <hex options>" (a tmpfs), "<id> U <hex target>", "<id> B <hex target> <hex root>
// <hex rel>" (a pinned bind: every element opened with openat(O_PATH|O_NOFOLLOW) from the last, a symlink
// refused with ELOOP, then mount(/proc/self/fd/N, target, MS_BIND)); answers "<id> <errno>" (0: done). The calls
// are made in this process, which is in the kubelet's mount namespace.
const HELPER = String.raw`use POSIX (); $|=1; my ($mnt, $umnt, $openat, $fl, $dir) = @ARGV;
sub pin { my ($target, $root, $rel) = @_;
  my @parts = grep { $_ ne "" && $_ ne "." } split m{/}, $rel;
  my $fd = syscall($openat, -100, $root, $fl | $dir, 0); return $! + 0 if $fd < 0;
  for my $i (0 .. $#parts) {
    my $p = $parts[$i]; my $n = syscall($openat, $fd, $p, $fl | ($i < $#parts ? $dir : 0), 0); my $e = $! + 0;
    POSIX::close($fd); return $e if $n < 0; $fd = $n;
  }
  my @st = POSIX::fstat($fd); if (!@st || ($st[2] & 0170000) == 0120000) { POSIX::close($fd); return 40; }
  my $src = "/proc/self/fd/$fd"; my $r = syscall($mnt, $src, $target, 0, 4096, 0); my $e = $! + 0;
  POSIX::close($fd); return $r == 0 ? 0 : $e;
}
while (my $l = <STDIN>) {
  chomp $l; my ($id, $kind, $tx, $ox, $rx) = split / /, $l;
  my $target = pack("H*", $tx); my $r;
  if ($kind eq "M") { my $o = pack("H*", $ox // ""); my $src = "tmpfs"; my $fs = "tmpfs"; $r = syscall($mnt, $src, $target, $fs, 0, $o); }
  elsif ($kind eq "B") { syswrite(STDOUT, "$id " . pin($target, pack("H*", $ox), ($rx // "-") eq "-" ? "" : pack("H*", $rx)) . "\n"); next; }
  else { $r = syscall($umnt, $target, 0); }
  syswrite(STDOUT, "$id " . ($r == 0 ? 0 : ($! + 0)) . "\n");
}`;

/**
 * The real mounts. A tmpfs is mounted by mount(2) in a small persistent perl helper (perl-base is Essential on
 * Debian): spawning util-linux's `mount` forks the whole kubelet first, ~7 ms of it blocking the event loop, for
 * each secret and token volume of every pod. `mount`/`umount` are run where the architecture's syscall numbers
 * are unknown.
 */
export class SystemMounter implements Mounter {
  private child: ChildProcess | undefined;
  private buffered = "";
  private nextId = 1;
  private readonly pending = new Map<number, (errno: number) => void>();

  async mountTmpfs(path: string, sizeBytes: number | undefined, signal?: AbortSignal): Promise<void> {
    const options = ["mode=0777", ...(sizeBytes !== undefined && sizeBytes > 0 ? [`size=${Math.ceil(sizeBytes)}`] : [])].join(",");
    if (!SYSCALLS[process.arch]) {
      await run("mount", ["-t", "tmpfs", "-o", options, "tmpfs", path], { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
      return;
    }
    const errno = await this.request(`M ${Buffer.from(path).toString("hex")} ${Buffer.from(options).toString("hex")}`, `mount tmpfs at ${path}`, signal);
    if (errno !== 0) throw new DeckhandError("Internal", `mount tmpfs at ${path} (${options}): ${errnoName(errno)}`);
  }

  async unmount(path: string, signal?: AbortSignal): Promise<void> {
    if (!SYSCALLS[process.arch]) {
      await run("umount", [path], { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
      return;
    }
    const errno = await this.request(`U ${Buffer.from(path).toString("hex")}`, `umount ${path}`, signal);
    if (errno !== 0) throw new DeckhandError("Internal", `umount ${path}: ${errnoName(errno)}`);
  }

  async bindPinned(root: string, rel: string, target: string, signal?: AbortSignal): Promise<void> {
    const hex = (v: string): string => Buffer.from(v).toString("hex");
    if (!SYSCALLS[process.arch] || !OPENAT[process.arch]) {
      await run("mount", ["--bind", join(root, rel), target], { timeoutMs: REQUEST_TIMEOUT_MS, ...(signal ? { signal } : {}) });
      return;
    }
    // An empty rel (the volume itself) still travels as a field: "-" hex-decodes to nothing.
    const errno = await this.request(`B ${hex(target)} ${hex(root)} ${rel === "" ? "-" : hex(rel)}`, `bind ${join(root, rel)} at ${target}`, signal);
    if (errno !== 0) throw new DeckhandError(errno === osConstants.errno.ELOOP || errno === osConstants.errno.ENOTDIR ? "InvalidArgument" : "Internal", `bind ${join(root, rel)} at ${target}: ${errnoName(errno)}`);
  }

  async mountPointsUnder(dir: string): Promise<string[]> {
    return mountPointsIn(parseMountInfo(await readFile("/proc/self/mountinfo", "utf8")), dir);
  }

  /** Stops the helper (it also exits by itself when the kubelet does: its stdin closes). */
  close(): void {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null) {
      child.stdin?.end();
      child.kill("SIGKILL");
    }
  }

  private helper(): ChildProcess {
    if (this.child && this.child.exitCode === null && !this.child.killed) return this.child;
    const nr = SYSCALLS[process.arch] ?? { mount: 0, umount2: 0 };
    const o = OPENAT[process.arch] ?? { openat: 0, flags: 0, directory: 0 };
    const child = spawn("/usr/bin/perl", ["-e", HELPER, String(nr.mount), String(nr.umount2), String(o.openat), String(o.flags), String(o.directory)], { stdio: ["pipe", "pipe", "inherit"] });
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      this.buffered += chunk;
      for (let nl = this.buffered.indexOf("\n"); nl >= 0; nl = this.buffered.indexOf("\n")) {
        const [id, errno] = this.buffered.slice(0, nl).split(" ");
        this.buffered = this.buffered.slice(nl + 1);
        const done = this.pending.get(Number(id));
        this.pending.delete(Number(id));
        done?.(Number(errno));
      }
    });
    child.on("exit", () => {
      if (this.child === child) this.child = undefined;
      this.buffered = "";
      for (const [id, done] of this.pending) {
        this.pending.delete(id);
        done(-1);
      }
    });
    detachHelper(child);
    this.child = child;
    return child;
  }

  /**
   * One request to the helper, answered by its errno. Bounded as `run` bounds a spawned mount: the caller's
   * signal or REQUEST_TIMEOUT_MS ends the wait, and the helper is killed then (a mount(2) that hangs would hold
   * every later request behind it; the next request starts a fresh helper).
   */
  private request(line: string, what: string, signal?: AbortSignal): Promise<number> {
    if (signal?.aborted) return Promise.reject(new DeckhandError("Cancelled", `${what}: cancelled`));
    const child = this.helper();
    const id = this.nextId++;
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    const bound = signal ? AbortSignal.any([signal, timeout]) : timeout;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.pending.delete(id);
        if (this.child === child) this.close();
        reject(signal?.aborted ? new DeckhandError("Cancelled", `${what}: cancelled`) : new DeckhandError("DeadlineExceeded", `${what}: no answer from the mount helper in ${REQUEST_TIMEOUT_MS / 1000} s`));
      };
      bound.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, (errno) => {
        bound.removeEventListener("abort", onAbort);
        resolve(errno);
      });
      child.stdin?.write(`${id} ${line}\n`);
    });
  }
}

function errnoName(errno: number): string {
  if (errno < 0) return "the mount helper exited";
  return Object.entries(osConstants.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
}
