/**
 * A private worker node on this machine for end-to-end tests: its own network namespace (loopback only, no
 * default route), a persistent mount namespace with that namespace's sysfs and the cgroup hierarchies, private
 * copies of the fixed paths containerd and CNI insist on, and its own containerd.
 *
 * Why a persistent mount namespace: `ip netns exec` gives every command a fresh mount namespace whose
 * /sys/fs/cgroup is empty (runc fails), and containerd restarted into a new one loses the mounts of the shims
 * that survived it. So the namespace is prepared once, pinned on a file, and every process of the node enters
 * it with `nsenter --mount=<file> --net=/run/netns/<name>` (see shared/notes/runtime-facts.md).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { run, type RunOptions, type RunResult } from "../../src-shared/exec.ts";
import { DeckhandError } from "../../src-shared/errors.ts";
import { CriClient } from "../../kubelet/cri/client.ts";
import { cgroupHierarchies, removeCgroupTree } from "../../src-shared/cgroups.ts";
import { uniqueName, writeOwnerFile } from "./leaks.ts";
import { buildTestImages, importImages } from "./images.ts";
import { eventually } from "./wait.ts";
import type { Underlay } from "./underlay.ts";

/** Host paths that containerd 1.6 and libcni use whatever their config says; each node gets its own copy. */
const PRIVATE_PATHS = ["/run/containerd", "/var/lib/cni", "/var/log/pods", "/var/log/containers", "/var/lib/kubelet"] as const;

export interface NodeSandboxOptions {
  /** Adopt an existing node by name (to clean up after a crashed run); a new unique name by default. */
  name?: string;
  /** Pod subnet of the node's temporary CNI conf (reference bridge plugin; issue 4 replaces it). */
  podSubnet?: string;
  /** Directory of CNI plugin binaries containerd runs. */
  cniBinDir?: string;
  /** Write no CNI conf (the runtime then reports NetworkReady=false until something writes one). */
  withoutCni?: boolean;
  /** Extra TOML appended to containerd's config. */
  extraContainerdConfig?: string;
  /** Import the test images (busybox and pause) after containerd starts; default true. */
  importImages?: boolean;
  /**
   * The node's own address (CIDR, e.g. "172.31.0.10/24") on an `eth0` inside the node, for a kubelet to
   * report as InternalIP. Without `underlay`, a veth pair with both ends inside the node carries it and nothing
   * outside the node's namespace sees it.
   */
  nodeAddress?: string;
  /** The network joining nodes: `eth0` is then the node's port on it, carrying `nodeAddress`. */
  underlay?: Underlay;
}

export class NodeSandbox {
  /** Unique per run: netns name, folder and cgroup root all derive from it. */
  readonly name: string;
  /** The node's folder on the host, holding its config, sockets, containerd root/state and private paths. */
  readonly dir: string;
  readonly netnsPath: string;
  readonly mountNsFile: string;
  /** Parent cgroup of everything this node runs (the kubelet's cgroupRoot): `/<name>`. */
  readonly cgroupRoot: string;
  readonly containerdSocket: string;
  readonly cniConfDir: string;
  readonly podSubnet: string;

  private readonly options: NodeSandboxOptions;
  private containerd: ChildProcess | undefined;
  private containerdExit: Promise<void> | undefined;
  private cri: CriClient | undefined;
  private created = false;

  constructor(options: NodeSandboxOptions = {}) {
    this.options = options;
    this.name = options.name ?? uniqueName();
    this.dir = join("/tmp", this.name);
    this.netnsPath = `/run/netns/${this.name}`;
    this.mountNsFile = join(this.dir, "ns", "mnt");
    this.cgroupRoot = `/${this.name}`;
    this.containerdSocket = join(this.dir, "containerd.sock");
    this.cniConfDir = join(this.dir, "cni", "net.d");
    this.podSubnet = options.podSubnet ?? "10.88.0.0/24";
  }

  /** Creates the namespaces and starts containerd. On failure everything made so far is removed. */
  async start(signal?: AbortSignal): Promise<void> {
    this.created = true;
    try {
      await this.createNamespaces(signal);
      await this.writeContainerdConfig();
      if (!this.options.withoutCni) await this.writeCniConf();
      await this.startContainerd(signal);
      if (this.options.importImages !== false) {
        const { busybox, pause } = await buildTestImages(signal ? { signal } : {});
        await importImages({ address: this.containerdSocket, images: [busybox, pause], ...(signal ? { signal } : {}) });
      }
    } catch (err) {
      await this.teardown().catch(() => undefined);
      throw err;
    }
  }

  private async createNamespaces(signal?: AbortSignal): Promise<void> {
    const opts: RunOptions = signal ? { signal } : {};
    await mkdir(join(this.dir, "ns"), { recursive: true });
    await writeOwnerFile(this.dir);
    await run("ip", ["netns", "add", this.name], opts);
    await run("ip", ["-n", this.name, "link", "set", "lo", "up"], opts);
    if (this.options.nodeAddress && this.options.underlay) {
      await this.options.underlay.attach(this.name, this.options.nodeAddress);
    } else if (this.options.nodeAddress) {
      // This kernel has no dummy device: a veth pair with both ends inside the node serves as well.
      await run("ip", ["-n", this.name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer"], opts);
      await run("ip", ["-n", this.name, "addr", "add", this.options.nodeAddress, "dev", "eth0"], opts);
      await run("ip", ["-n", this.name, "link", "set", "eth0-peer", "up"], opts);
      await run("ip", ["-n", this.name, "link", "set", "eth0", "up"], opts);
    }
    // The ns file must sit on a private mount, or the kernel refuses to pin a mount namespace there (on hosts
    // whose / is a shared mount, as with systemd).
    await run("mount", ["--bind", join(this.dir, "ns"), join(this.dir, "ns")], opts);
    await run("mount", ["--make-private", join(this.dir, "ns")], opts);
    await writeFile(this.mountNsFile, "");
    for (const p of PRIVATE_PATHS) {
      await mkdir(p, { recursive: true }); // the mount point on the host; stays empty there
      await mkdir(this.hostPath(p), { recursive: true });
    }
    const script = mountSetupScript(await cgroupHierarchies(), PRIVATE_PATHS.map((p) => [this.hostPath(p), p]));
    // Enter the node's netns first so the sysfs mounted inside shows the node's own interfaces.
    await run(
      "nsenter",
      [`--net=${this.netnsPath}`, "unshare", `--mount=${this.mountNsFile}`, "--propagation", "slave", "sh", "-ec", script],
      opts,
    );
  }

  /** The node's address without prefix length, when it has one. */
  get nodeIP(): string | undefined {
    return this.options.nodeAddress?.split("/")[0];
  }

  /** Where a path of the node's private file system view lives on the host. */
  hostPath(nodePath: string): string {
    for (const p of PRIVATE_PATHS) {
      if (nodePath === p || nodePath.startsWith(`${p}/`)) return join(this.dir, "private", p.slice(1), nodePath.slice(p.length));
    }
    return nodePath;
  }

  private async writeContainerdConfig(): Promise<void> {
    const d = this.dir;
    const toml = `version = 2
root = "${d}/containerd/root"
state = "${d}/containerd/state"
[grpc]
  address = "${this.containerdSocket}"
[ttrpc]
  address = "${d}/containerd.sock.ttrpc"
[debug]
  address = "${d}/containerd-debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "${d}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:1"
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${this.options.cniBinDir ?? "/usr/lib/cni"}"
    conf_dir = "${this.cniConfDir}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${d}/certs.d"
${this.options.extraContainerdConfig ?? ""}`;
    await mkdir(join(d, "certs.d"), { recursive: true });
    await mkdir(this.cniConfDir, { recursive: true });
    await writeFile(join(d, "containerd.toml"), toml);
  }

  /** The reference bridge + host-local conf, until our own plugin (issue 4) takes over. */
  private async writeCniConf(): Promise<void> {
    const conf = {
      cniVersion: "1.0.0",
      name: "deckhand-sandbox",
      plugins: [
        {
          type: "bridge",
          bridge: "cni0",
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: "host-local",
            ranges: [[{ subnet: this.podSubnet }]],
            routes: [{ dst: "0.0.0.0/0" }],
            dataDir: join(this.dir, "cni", "ipam"),
          },
        },
      ],
    };
    await writeFile(join(this.cniConfDir, "10-deckhand.conflist"), JSON.stringify(conf, null, 2));
  }

  /** Trust a registry's CA for pulls (containerd's certs.d layout: `<host:port>/hosts.toml`). */
  async trustRegistry(host: string, caCertPem: string): Promise<void> {
    const hostDir = join(this.dir, "certs.d", host);
    await mkdir(hostDir, { recursive: true });
    await writeFile(join(hostDir, "ca.crt"), caCertPem);
    await writeFile(
      join(hostDir, "hosts.toml"),
      // containerd 1.6 also tries `server` as a last-resort host with its own settings: it needs the CA too.
      `server = "https://${host}"\nca = "${join(hostDir, "ca.crt")}"\n[host."https://${host}"]\n  capabilities = ["pull", "resolve"]\n  ca = "${join(hostDir, "ca.crt")}"\n`,
    );
  }

  /** Starts containerd inside the node and waits until its CRI answers. */
  async startContainerd(signal?: AbortSignal): Promise<void> {
    if (this.containerd) throw new DeckhandError("FailedPrecondition", `containerd of ${this.name} is already running`);
    const logFile = createWriteStream(join(this.dir, "containerd.log"), { flags: "a" });
    await new Promise<void>((resolve, reject) => {
      logFile.once("open", () => resolve());
      logFile.once("error", reject);
    });
    const child = spawn(
      "nsenter",
      [`--mount=${this.mountNsFile}`, `--net=${this.netnsPath}`, "containerd", "--config", join(this.dir, "containerd.toml")],
      { stdio: ["ignore", logFile, logFile] },
    );
    this.containerd = child;
    this.containerdExit = new Promise<void>((resolve) => {
      child.once("exit", () => {
        logFile.end();
        if (this.containerd === child) this.containerd = undefined;
        resolve();
      });
    });
    await this.waitForCri(signal);
  }

  private async waitForCri(signal?: AbortSignal): Promise<void> {
    const outcome = await eventually(async () => {
      if (!this.containerd) return "exited";
      await this.criClient().runtime("Status", {}, { timeoutMs: 1000 });
      return "answering";
    }, { timeoutMs: 20_000, intervalMs: 50, message: `containerd of ${this.name} to answer CRI`, diagnose: () => this.containerdLogTail(), ...(signal ? { signal } : {}) });
    if (outcome === "exited") throw new DeckhandError("Unavailable", `containerd of ${this.name} exited during start: ${await this.containerdLogTail()}`);
  }

  private async containerdLogTail(): Promise<string> {
    const text = await readFile(join(this.dir, "containerd.log"), "utf8").catch(() => "");
    return text.split("\n").slice(-10).join("\n");
  }

  get containerdPid(): number | undefined {
    return this.containerd?.pid;
  }

  /** A CRI client bound to this node's containerd (one per sandbox, closed at teardown). */
  criClient(): CriClient {
    this.cri ??= new CriClient({ endpoint: `unix://${this.containerdSocket}` });
    return this.cri;
  }

  /** Graceful stop (SIGTERM); shims and containers keep running, as on a real node. */
  async stopContainerd(): Promise<void> {
    await this.signalContainerd("SIGTERM");
  }

  /** SIGKILL, as a crash would. */
  async killContainerd(): Promise<void> {
    await this.signalContainerd("SIGKILL");
  }

  async restartContainerd(signal?: AbortSignal): Promise<void> {
    await this.stopContainerd();
    await this.startContainerd(signal);
  }

  private async signalContainerd(sig: NodeJS.Signals): Promise<void> {
    const child = this.containerd;
    if (!child) return;
    child.kill(sig);
    const exited = this.containerdExit;
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** Runs a command inside the node (its network and mount namespaces). */
  exec(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return run("nsenter", [`--mount=${this.mountNsFile}`, `--net=${this.netnsPath}`, file, ...args], options);
  }

  /**
   * Runs a command of the host inside a pod's network namespace, found through the pid of its sandbox
   * (the pause process), which CRI reports in the sandbox's verbose status.
   */
  async execInPod(podSandboxId: string, file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const pid = await this.sandboxPid(podSandboxId);
    return run("nsenter", [`--net=/proc/${pid}/ns/net`, file, ...args], options);
  }

  async sandboxPid(podSandboxId: string): Promise<number> {
    const status = await this.criClient().runtime("PodSandboxStatus", { pod_sandbox_id: podSandboxId, verbose: true });
    const info = status.info["info"];
    const pid = info === undefined ? undefined : (JSON.parse(info) as { pid?: number }).pid;
    if (!pid) throw new DeckhandError("NotFound", `sandbox ${podSandboxId} of ${this.name} has no running pause process`);
    return pid;
  }

  /**
   * Removes everything the node made: its pods (through CRI while containerd runs), containerd and every
   * process left in its cgroups or speaking to its sockets, the mount namespace, the netns, its cgroup tree
   * and its folder. Safe to call twice and after a failed start.
   */
  async teardown(): Promise<void> {
    if (!this.created && !existsSync(this.dir) && !existsSync(this.netnsPath)) return;
    const problems: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    // Removing pods through CRI is the polite way; when it fails (a broken network config, say), the steps
    // below still take every process, mount and namespace away, and the leak check verifies that.
    if (this.containerd) await this.removeAllPods().catch((err: unknown) => console.warn(`teardown of ${this.name}: removing pods through CRI failed: ${err instanceof Error ? err.message : String(err)}`));
    await attempt("stop containerd", () => this.stopContainerd());
    this.cri?.close();
    this.cri = undefined;
    await attempt("kill leftover processes", () => this.killLeftovers());
    if (existsSync(this.mountNsFile)) await attempt("unmount mount namespace", () => run("umount", [this.mountNsFile]));
    if (existsSync(join(this.dir, "ns"))) await attempt("unmount ns folder", () => run("umount", [join(this.dir, "ns")], { allowFailure: true }));
    if (existsSync(this.netnsPath)) await attempt("delete netns", () => run("ip", ["netns", "del", this.name]));
    await attempt("remove cgroups", () => removeCgroupTree(this.cgroupRoot));
    await attempt("remove folder", () => rm(this.dir, { recursive: true, force: true, maxRetries: 3 }));
    this.created = false;
    if (problems.length > 0) throw new DeckhandError("Internal", `teardown of ${this.name} left problems:\n${problems.join("\n")}`);
  }

  private async removeAllPods(): Promise<void> {
    const cri = this.criClient();
    const { items } = await cri.runtime("ListPodSandbox", {}, { timeoutMs: 10_000 });
    for (const sb of items) {
      await cri.runtime("StopPodSandbox", { pod_sandbox_id: sb.id }, { timeoutMs: 30_000 });
      await cri.runtime("RemovePodSandbox", { pod_sandbox_id: sb.id }, { timeoutMs: 30_000 });
    }
  }

  /** Processes of this node that outlived containerd: shims (they name our socket) and anything in our cgroups. */
  private async killLeftovers(): Promise<void> {
    for (let round = 0; round < 20; round++) {
      const pids = new Set<number>([...(await processesMentioning(this.dir)), ...(await processesInCgroupTree(this.cgroupRoot))]);
      pids.delete(process.pid);
      if (pids.size === 0) return;
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      await sleep(100);
    }
    throw new DeckhandError("Internal", `processes of ${this.name} survived SIGKILL`);
  }
}

/** The shell script run once inside the new mount namespace: fresh sysfs, cgroup hierarchies, private paths. */
function mountSetupScript(hierarchies: readonly { mountPoint: string; fsType: string; options: string }[], binds: readonly (readonly [string, string])[]): string {
  const lines = ["umount -l /sys", "mount -t sysfs sysfs /sys"];
  const unified = hierarchies.length === 1 && hierarchies[0]?.mountPoint === "/sys/fs/cgroup";
  if (!unified) lines.push("mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup");
  for (const h of hierarchies) {
    lines.push(`mkdir -p ${h.mountPoint}`, `mount -t ${h.fsType} -o ${h.options} ${h.fsType} ${h.mountPoint}`);
  }
  for (const [from, to] of binds) lines.push(`mount --bind ${from} ${to}`);
  return lines.join("\n");
}

async function processesMentioning(text: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(text)) found.push(Number(entry));
  }
  return found;
}

async function processesInCgroupTree(root: string): Promise<number[]> {
  const found: number[] = [];
  for (const h of await cgroupHierarchies()) {
    const base = join(h.mountPoint, root);
    if (!existsSync(base)) continue;
    const walk = async (dir: string): Promise<void> => {
      const procs = await readFile(join(dir, "cgroup.procs"), "utf8").catch(() => "");
      for (const line of procs.split("\n")) if (line.trim()) found.push(Number(line));
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await walk(join(dir, e.name));
    };
    await walk(base);
  }
  return found;
}

