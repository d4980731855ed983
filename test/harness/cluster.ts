/**
 * A cluster on this machine for end-to-end tests and the demo: the local control plane on the host's loopback
 * and sandbox nodes, each running the real kubelet process inside its own namespaces (as on a real node),
 * reaching the API at https://127.0.0.1:6443 through a forwarder in the node and a unix socket that the test
 * can cut to simulate an outage. The control plane reaches each node's kubelet (:10250, logs, exec, node proxy)
 * at the node's InternalIP through a CONNECT proxy inside the node (netns-connect-proxy.ts), as kube-apiserver's
 * egress selector would; the kubelet trusts the cluster CA as its clientCAFile. The nodes share an underlay
 * (underlay.ts: eth0 on 192.0.2.0/24, the node's InternalIP), over which each kubelet's pod-route controller
 * routes the other nodes' pod CIDRs, so pods on different nodes reach each other and a Service's ClusterIP
 * reaches endpoints anywhere. Everything lives under the nodes' folders and the switch's, and goes at teardown.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { request as httpRequest } from "node:http";
import type { Duplex } from "node:stream";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ControlPlane } from "../control-plane/control-plane.ts";
import type { NodeLifecycleOptions } from "../control-plane/controllers/nodelifecycle.ts";
import { KubeClient } from "../../src-shared/kube/client.ts";
import { run, type RunResult } from "../../src-shared/exec.ts";
import { silentLogger, type Logger } from "../../src-shared/log.ts";
import { NodeSandbox } from "./node-sandbox.ts";
import { TcpProxy } from "./tcp-proxy.ts";
import { Underlay, UNDERLAY_PREFIX_LENGTH, underlayAddress } from "./underlay.ts";
import { uniqueName } from "./leaks.ts";

const REPO = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const NODE_BIN = join(REPO, "node_modules", ".bin", "node");
export const API_PORT_IN_NODE = 6443;

export interface KubeletOptions {
  /** Extra KubeletConfiguration fields (merged over the harness's, objects key by key). */
  config?: Record<string, unknown>;
  /** Extra command-line flags. */
  flags?: string[];
  /** Run the compiled dist/ (as systemd does; `npm run build` first) rather than the TypeScript source. */
  compiled?: boolean;
}

/** A kubelet process inside a sandbox node. */
export class KubeletProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  readonly logPath: string;
  private readonly argv: string[];
  private readonly node: NodeSandbox;

  private readonly compiled: boolean;

  constructor(node: NodeSandbox, argv: string[], options: { compiled?: boolean } = {}) {
    this.node = node;
    this.argv = argv;
    this.compiled = options.compiled ?? false;
    this.logPath = join(node.dir, "kubelet.log");
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  async start(): Promise<void> {
    if (this.child) return;
    const log = createWriteStream(this.logPath, { flags: "a" });
    await new Promise<void>((res, rej) => {
      log.once("open", () => res());
      log.once("error", rej);
    });
    // Through the launcher systemd runs (bin/kubelet), from source unless the test asks for the compiled build.
    const child = spawn("nsenter", [`--mount=${this.node.mountNsFile}`, `--net=${this.node.netnsPath}`, join(REPO, "bin", "kubelet"), ...this.argv], {
      stdio: ["ignore", log, log],
      env: {
        ...process.env,
        DECKHAND_LOG_LEVEL: process.env["DECKHAND_LOG_LEVEL"] ?? "debug",
        ...(this.compiled ? {} : { DECKHAND_FROM_SOURCE: "1" }),
      },
    });
    this.child = child;
    this.exited = new Promise((res) =>
      child.once("exit", (code) => {
        log.end();
        if (this.child === child) this.child = undefined;
        res(code);
      }),
    );
  }

  /** SIGTERM and wait (the kubelet leaves pods running). */
  async stop(): Promise<void> {
    await this.signal("SIGTERM");
  }

  /** SIGKILL, as a crash. */
  async kill(): Promise<void> {
    await this.signal("SIGKILL");
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(sig);
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await this.exited;
    clearTimeout(timer);
  }

  async logTail(lines = 40): Promise<string> {
    const text = await readFile(this.logPath, "utf8").catch(() => "");
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  }
}

/**
 * Starts netns-forwarder.ts inside a network namespace: TCP on its `host`:`port` (127.0.0.1 by default)
 * forwarded to a unix socket on the host, where a test-side server listens. Resolves once it listens; stop it
 * by killing the child.
 */
export async function startNetnsForwarder(netnsPath: string, port: number, socketPath: string, what: string, host = "127.0.0.1"): Promise<ChildProcess> {
  const child = spawn("nsenter", [`--net=${netnsPath}`, NODE_BIN, join(REPO, "test", "harness", "netns-forwarder.ts"), host, String(port), socketPath], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((res, rej) => {
    child.stdout.once("data", () => res());
    child.once("exit", (code) => rej(new Error(`${what} exited with ${code ?? "a signal"}`)));
  });
  return child;
}

/** Starts netns-connect-proxy.ts inside a network namespace, serving CONNECT on `socketPath`; resolves once it listens. */
async function startConnectProxy(netnsPath: string, socketPath: string): Promise<ChildProcess> {
  const child = spawn("nsenter", [`--net=${netnsPath}`, NODE_BIN, join(REPO, "test", "harness", "netns-connect-proxy.ts"), socketPath], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((res, rej) => {
    child.stdout.once("data", () => res());
    child.once("exit", (code) => rej(new Error(`the cluster egress proxy exited with ${code ?? "a signal"}`)));
  });
  return child;
}

/** A TCP connection to host:port inside a node, through its CONNECT proxy. */
function connectThrough(socketPath: string, host: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, method: "CONNECT", path: `${host.includes(":") ? `[${host}]` : host}:${port}` });
    req.once("connect", (res, socket) => {
      if (res.statusCode === 200) resolve(socket);
      else {
        socket.destroy();
        reject(new Error(`connect ${host}:${port}: ${res.statusCode ?? 0} ${res.statusMessage ?? ""}`));
      }
    });
    req.once("error", reject);
    req.end();
  });
}

/** A worker node of the test cluster. */
export class ClusterNode {
  readonly name: string;
  readonly sandbox: NodeSandbox;
  /** The host side of the node's path to the API; `cut()` it for an outage. */
  readonly apiLink: TcpProxy;
  kubelet: KubeletProcess | undefined;
  private forwarder: ChildProcess | undefined;
  private egress: ChildProcess | undefined;

  constructor(name: string, sandbox: NodeSandbox, apiLink: TcpProxy) {
    this.name = name;
    this.sandbox = sandbox;
    this.apiLink = apiLink;
  }

  async startForwarder(): Promise<void> {
    this.forwarder = await startNetnsForwarder(this.sandbox.netnsPath, API_PORT_IN_NODE, this.apiLink.socketPath ?? "", `the API forwarder of ${this.name}`);
    this.egress = await startConnectProxy(this.sandbox.netnsPath, this.egressSocket);
  }

  /** The node's CONNECT proxy (the control plane's way to its kubelet). */
  get egressSocket(): string {
    return join(this.sandbox.dir, "cluster-egress.sock");
  }

  /** A TCP connection to host:port from inside the node. */
  dial(host: string, port: number): Promise<Duplex> {
    return connectThrough(this.egressSocket, host, port);
  }

  async teardown(): Promise<void> {
    await this.kubelet?.kill();
    this.forwarder?.kill("SIGKILL");
    this.egress?.kill("SIGKILL");
    await this.apiLink.close();
    await this.sandbox.teardown();
  }

  /**
   * Starts the real `bin/kube-proxy` inside the node (its mount and network namespaces) with the node's
   * credentials, as a DaemonSet or a unit would run it; `log()` is its stderr so far. The caller kills it.
   */
  async startKubeProxy(): Promise<{ child: ChildProcess; log: () => string }> {
    const configPath = join(this.sandbox.dir, "kube-proxy.yaml");
    await writeFile(configPath, `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclusterCIDR: 10.244.0.0/16\n`);
    const child = spawn("nsenter", [`--mount=${this.sandbox.mountNsFile}`, `--net=${this.sandbox.netnsPath}`, join(REPO, "bin", "kube-proxy"), "--config", configPath, "--kubeconfig", join(this.sandbox.dir, "kubelet.kubeconfig"), "--hostname-override", this.name], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, DECKHAND_FROM_SOURCE: "1" },
    });
    let log = "";
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (d: string) => (log += d));
    return { child, log: () => log };
  }

  /** Runs a command inside the node. */
  exec(file: string, args: readonly string[]): Promise<RunResult> {
    return this.sandbox.exec(file, args, { allowFailure: true });
  }
}

/** `over` merged over `base`: objects key by key (a test's `authentication.webhook` keeps the harness's `x509`). */
function mergeObjects(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const cur = out[k];
    out[k] = isObj(v) && isObj(cur) ? mergeObjects(cur, v) : v;
  }
  return out;
}

export interface TestClusterOptions {
  logger?: Logger;
  /** Cluster CIDR the control plane allocates node pod CIDRs from. */
  clusterCIDR?: string;
  serviceCIDR?: string;
  /** The control plane's shortest token lifetime (kube-apiserver's 600 s by default), for token refresh tests. */
  minTokenExpirationSeconds?: number;
  /** Serve metrics.k8s.io (kubectl top), scraping the kubelets at this interval (see ControlPlaneOptions). */
  metricsResolutionMs?: number;
  /** The node lifecycle controller's periods (tests of unreachable nodes shorten the grace period). */
  nodeLifecycle?: NodeLifecycleOptions;
}

export class TestCluster {
  readonly nodes: ClusterNode[] = [];
  private dir = "";
  private cp: ControlPlane | undefined;
  private admin: KubeClient | undefined;
  private readonly options: TestClusterOptions;
  /** The link joining the nodes (created at start, removed at teardown). */
  readonly underlay = new Underlay();
  private added = 0;

  constructor(options: TestClusterOptions = {}) {
    this.options = options;
  }

  async start(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), "deckhand-cluster-"));
    await this.underlay.start();
    this.cp = new ControlPlane({
      dir: this.dir,
      log: this.options.logger ?? silentLogger(),
      clusterCIDR: this.options.clusterCIDR ?? "10.244.0.0/16",
      serviceCIDR: this.serviceCIDR,
      // kubeadm's order; the nodes' addresses are reached through each node's CONNECT proxy.
      kubeletPreferredAddressTypes: ["InternalIP", "ExternalIP", "Hostname"],
      kubeletDialer: (host, port) => {
        const node = this.nodes.find((n) => n.sandbox.nodeIP === host);
        if (node === undefined) return Promise.reject(new Error(`no test node has the address ${host}`));
        return node.dial(host, port);
      },
      ...(this.options.minTokenExpirationSeconds !== undefined ? { minTokenExpirationSeconds: this.options.minTokenExpirationSeconds } : {}),
      ...(this.options.metricsResolutionMs !== undefined ? { metricsResolutionMs: this.options.metricsResolutionMs } : {}),
      ...(this.options.nodeLifecycle ? { nodeLifecycle: this.options.nodeLifecycle } : {}),
    });
    await this.cp.start();
    this.admin = KubeClient.fromFile(this.cp.adminKubeconfigPath);
  }

  get serviceCIDR(): string {
    return this.options.serviceCIDR ?? "10.96.0.0/16";
  }

  get controlPlane(): ControlPlane {
    if (!this.cp) throw new Error("cluster not started");
    return this.cp;
  }

  get client(): KubeClient {
    if (!this.admin) throw new Error("cluster not started");
    return this.admin;
  }

  get adminKubeconfig(): string {
    return this.controlPlane.adminKubeconfigPath;
  }

  /** Real kubectl against the cluster. */
  kubectl(args: readonly string[], input?: string): Promise<RunResult> {
    return run("kubectl", ["--kubeconfig", this.adminKubeconfig, ...args], { allowFailure: true, timeoutMs: 60_000, ...(input === undefined ? {} : { input }) });
  }

  /**
   * A new sandbox node with its kubelet started (unless `start: false`), on the underlay; several may be added
   * at once. Its containerd runs pods on
   * deckhand-bridge from a CNI bin dir of the node's own (the launcher, the reference `loopback` and `portmap`, as an
   * operator installs them); the kubelet writes the conflist once the node has a pod CIDR.
   */
  async addNode(options: KubeletOptions & { start?: boolean } = {}): Promise<ClusterNode> {
    // Counted before any await: nodes may be added at once (each boots its own containerd).
    const index = ++this.added;
    const sandboxName = uniqueName();
    const cniBinDir = join("/tmp", sandboxName, "cni-bin");
    const sandbox = new NodeSandbox({ name: sandboxName, withoutCni: true, nodeAddress: `${underlayAddress(index)}/${UNDERLAY_PREFIX_LENGTH}`, underlay: this.underlay, cniBinDir });
    await sandbox.start();
    // A real node's default route takes traffic it sends to a ClusterIP to the nat OUTPUT chain, where
    // kube-proxy's DNAT finds it; a sandbox has none, so the Service CIDR gets a route on the underlay instead.
    try {
      await run("ip", ["-n", sandbox.name, "route", "add", this.serviceCIDR, "dev", "eth0"]);
      await mkdir(cniBinDir, { recursive: true });
      await symlink(join(REPO, "bin", "deckhand-bridge"), join(cniBinDir, "deckhand-bridge"));
      await symlink("/usr/lib/cni/loopback", join(cniBinDir, "loopback"));
      // The kubelet's conflist chains portmap (hostPorts).
      await symlink("/usr/lib/cni/portmap", join(cniBinDir, "portmap"));
    } catch (err) {
      await sandbox.teardown().catch(() => undefined);
      throw err;
    }
    const name = `node-${index}-${sandbox.name}`.slice(0, 63);
    const apiLink = new TcpProxy({ host: "127.0.0.1", port: this.controlPlane.port }, { socketPath: join(sandbox.dir, "apiserver.sock") });
    const node = new ClusterNode(name, sandbox, apiLink);
    this.nodes.push(node);
    await apiLink.start();
    await node.startForwarder();

    // The node's credentials, pointing at the API as the node sees it.
    const kubeconfigPath = join(sandbox.dir, "kubelet.kubeconfig");
    await this.controlPlane.mintNodeKubeconfig(name, kubeconfigPath);
    const text = await readFile(kubeconfigPath, "utf8");
    await writeFile(kubeconfigPath, text.replace(/server: .*/, `server: "https://127.0.0.1:${API_PORT_IN_NODE}"`));

    // The kubelet trusts the cluster CA for client certificates (the API server's kubelet-client one).
    const clientCAFile = join(sandbox.dir, "cluster-ca.crt");
    await writeFile(clientCAFile, this.controlPlane.caPem);

    const manifests = join(sandbox.dir, "manifests");
    await mkdir(manifests, { recursive: true });
    const base = {
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      cgroupDriver: "cgroupfs",
      cgroupRoot: sandbox.cgroupRoot,
      staticPodPath: manifests,
      clusterDomain: "cluster.local",
      clusterDNS: ["10.96.0.10"],
      containerRuntimeEndpoint: `unix://${sandbox.containerdSocket}`,
      failSwapOn: false,
      authentication: { x509: { clientCAFile } },
    };
    const config = mergeObjects(base, options.config ?? {});
    await writeFile(join(sandbox.dir, "kubelet.yaml"), JSON.stringify(config, null, 2));
    node.kubelet = new KubeletProcess(sandbox, [
      "--config", join(sandbox.dir, "kubelet.yaml"),
      "--kubeconfig", kubeconfigPath,
      "--hostname-override", name,
      "--node-ip", sandbox.nodeIP ?? "",
      "--cni-conf-dir", sandbox.cniConfDir,
      // /run is the host's in a sandbox node: the daemon's socket goes in the node's private /var/lib/kubelet.
      "--cni-daemon-socket", "/var/lib/kubelet/deckhand-cni.sock",
      ...(options.flags ?? []),
    ], { compiled: options.compiled ?? false });
    if (options.start !== false) await node.kubelet.start();
    return node;
  }

  async teardown(): Promise<void> {
    const problems: string[] = [];
    for (const n of this.nodes.reverse()) await n.teardown().catch((e: unknown) => problems.push(String(e)));
    this.admin?.close();
    await this.cp?.close();
    await this.underlay.teardown().catch((e: unknown) => problems.push(String(e)));
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    if (problems.length) throw new Error(problems.join("\n"));
  }
}
