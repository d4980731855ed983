/**
 * A sandbox node whose containerd runs pods on deckhand-bridge: a CNI bin dir inside the node's folder with
 * the launcher (symlinked, as an operator would install it) and the reference `loopback` containerd needs for
 * `lo`, the deckhand CNI daemon started inside the node's network and mount namespaces, and a conflist.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, rename, symlink, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { NodeSandbox, type NodeSandboxOptions } from "./node-sandbox.ts";
import type { RunResult } from "../../src-shared/exec.ts";
import { uniqueName } from "./leaks.ts";
import { eventually, pollUntil } from "./wait.ts";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const LAUNCHER = join(REPO, "bin", "deckhand-bridge");

export interface CniNodeOptions extends Omit<NodeSandboxOptions, "cniBinDir" | "withoutCni" | "name"> {
  podSubnet?: string;
  /** Start the CNI daemon (default true); without it every invocation runs the one-shot plugin. */
  daemon?: boolean;
  /** Extra fields of the deckhand-bridge plugin config. */
  pluginConfig?: Record<string, unknown>;
  /** Write no conflist at start (the test writes one later). */
  withoutConflist?: boolean;
}

export class CniNode {
  readonly node: NodeSandbox;
  readonly binDir: string;
  readonly daemonSocket: string;
  readonly podSubnet: string;
  private readonly options: CniNodeOptions;
  private daemon: ChildProcess | undefined;
  private daemonExit: Promise<void> | undefined;

  constructor(options: CniNodeOptions = {}) {
    const name = uniqueName();
    this.options = options;
    this.binDir = join("/tmp", name, "cni-bin");
    this.daemonSocket = join("/tmp", name, "cni.sock");
    this.podSubnet = options.podSubnet ?? "10.88.0.0/24";
    const { daemon: _d, pluginConfig: _p, withoutConflist: _w, ...sandboxOptions } = options;
    this.node = new NodeSandbox({ ...sandboxOptions, name, podSubnet: this.podSubnet, cniBinDir: this.binDir, withoutCni: true });
  }

  async start(signal?: AbortSignal): Promise<void> {
    await this.node.start(signal);
    try {
      await mkdir(this.binDir, { recursive: true });
      await symlink(LAUNCHER, join(this.binDir, "deckhand-bridge"));
      await symlink("/usr/lib/cni/loopback", join(this.binDir, "loopback"));
      // The kubelet's conflist chains the reference portmap (hostPorts).
      await symlink("/usr/lib/cni/portmap", join(this.binDir, "portmap"));
      if (this.options.daemon !== false) await this.startDaemon();
      if (!this.options.withoutConflist) {
        await this.writeConflist();
        await this.waitNetworkReady();
      }
    } catch (err) {
      await this.teardown().catch(() => undefined);
      throw err;
    }
  }

  /** The plugin config as the kubelet's conflist writer would make it, plus the test's fields. */
  pluginConf(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      type: "deckhand-bridge",
      bridge: "cni0",
      isGateway: true,
      isDefaultGateway: true,
      hairpinMode: true,
      ipMasq: false,
      ...(this.options.daemon !== false ? { daemonSocket: this.daemonSocket } : {}),
      ipam: { type: "host-local", ranges: [[{ subnet: this.podSubnet }]] },
      ...this.options.pluginConfig,
      ...extra,
    };
  }

  async writeConflist(extra: Record<string, unknown> = {}): Promise<void> {
    const conf = { cniVersion: "1.0.0", name: "deckhand", plugins: [this.pluginConf(extra)] };
    const file = join(this.node.cniConfDir, "10-deckhand.conflist");
    await writeFile(`${file}.tmp`, JSON.stringify(conf, null, 2));
    await rename(`${file}.tmp`, file);
  }

  async waitNetworkReady(timeoutMs = 15_000): Promise<void> {
    const net = async (): Promise<{ status?: boolean; reason?: string; message?: string } | undefined> =>
      (await this.node.criClient().runtime("Status", {})).status?.conditions.find((c) => c.type === "NetworkReady");
    await pollUntil(net, (c) => c?.status === true, { timeoutMs, message: `NetworkReady on ${this.node.name}` });
  }


  /** Starts the CNI daemon inside the node (its net and mount namespaces, as containerd runs). */
  async startDaemon(): Promise<void> {
    if (this.daemon) return;
    const log = createWriteStream(join(this.node.dir, "cni-daemon.log"), { flags: "a" });
    await new Promise<void>((ok, fail) => {
      log.once("open", () => ok());
      log.once("error", fail);
    });
    const child = spawn("nsenter", [`--mount=${this.node.mountNsFile}`, `--net=${this.node.netnsPath}`, LAUNCHER, "daemon", "--socket", this.daemonSocket], {
      stdio: ["ignore", log, log],
      env: { ...process.env, DECKHAND_LOG_LEVEL: process.env["DECKHAND_LOG_LEVEL"] ?? "info" },
    });
    this.daemon = child;
    this.daemonExit = new Promise((ok) =>
      child.once("exit", () => {
        log.end();
        if (this.daemon === child) this.daemon = undefined;
        ok();
      }),
    );
    const outcome = await eventually(async () => {
      if (!this.daemon) return "exited";
      return (await this.node.exec("test", ["-S", this.daemonSocket], { allowFailure: true })).code === 0 ? "listening" : undefined;
    }, { timeoutMs: 15_000, intervalMs: 50, message: `the CNI daemon of ${this.node.name} to listen` });
    if (outcome === "exited") throw new Error(`the CNI daemon of ${this.node.name} exited at start`);
  }

  get daemonPid(): number | undefined {
    return this.daemon?.pid;
  }

  async stopDaemon(sig: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.daemon;
    if (!child) return;
    child.kill(sig);
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await this.daemonExit;
    clearTimeout(timer);
  }

  /** Runs deckhand-bridge inside the node as containerd would, with these CNI_* variables and stdin. */
  invoke(env: Record<string, string>, stdin: string | object): Promise<RunResult> {
    return this.node.exec(join(this.binDir, "deckhand-bridge"), [], {
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", CNI_PATH: this.binDir, ...env },
      input: typeof stdin === "string" ? stdin : JSON.stringify(stdin),
      allowFailure: true,
    });
  }

  /**
   * A bare network namespace for invoking the plugin directly, pinned on a file inside the node's mount
   * namespace (its private /var/lib/kubelet): it goes away with the node even if the test forgets it.
   */
  async createNetns(label: string): Promise<string> {
    const path = `/var/lib/kubelet/dh-netns/${label}`;
    await this.node.exec("mkdir", ["-p", "/var/lib/kubelet/dh-netns"]);
    await this.node.exec("touch", [path]);
    await this.node.exec("unshare", [`--net=${path}`, "ip", "link", "set", "lo", "up"]);
    return path;
  }

  async deleteNetns(path: string): Promise<void> {
    await this.node.exec("umount", [path], { allowFailure: true });
    await this.node.exec("rm", ["-f", path], { allowFailure: true });
  }

  async teardown(): Promise<void> {
    await this.stopDaemon().catch(() => undefined);
    await this.node.teardown();
  }
}
