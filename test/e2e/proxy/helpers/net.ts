/**
 * A private network for the kube-proxy end-to-end tests, made of network namespaces only (nothing is
 * connected to the host, no namespace has a default route, so no packet can leave the machine):
 *
 *   outside (dh-XXXX-o) 192.168.50.2 ──veth── 192.168.50.1 node (dh-XXXX-n) ── bridge dh-XXXX-br 10.244.0.1/24
 *                                                                              ├── pod namespaces 10.244.0.x
 *
 * Every namespace has a folder /tmp/<name> with owner.pid, as the harness's sandboxes do, so a concurrent
 * run's stale-sandbox sweep leaves it alone and the leak check catches anything left behind. Backends are
 * test/e2e/proxy/helpers/backend.ts processes inside pod namespaces; clients run probe.ts inside theirs.
 * Teardown kills the processes this harness started (by PID) and removes every namespace and folder.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { run, type RunOptions, type RunResult } from "../../../../src-shared/exec.ts";
import { SANDBOX_PREFIX, writeOwnerFile } from "../../../harness/leaks.ts";

export const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
export const NODE_BIN = join(ROOT, "node_modules/.bin/node");
const BACKEND = join(ROOT, "test/e2e/proxy/helpers/backend.ts");
const PROBE = join(ROOT, "test/e2e/proxy/helpers/probe.ts");

export const POD_CIDR = "10.244.0.0/16";
export const SERVICE_CIDR = "10.96.0.0/16";
export const EXTERNAL_CIDR = "172.16.0.0/24";
export const NODE_BRIDGE_IP = "10.244.0.1";
export const NODE_IP = "192.168.50.1";
export const OUTSIDE_IP = "192.168.50.2";

export interface ProbeResult {
  counts: Record<string, number>;
  sources: Record<string, number>;
  errors: Record<string, number>;
  ms: number;
}

export class TestNet {
  readonly id = randomBytes(2).toString("hex");
  readonly node = `${SANDBOX_PREFIX}${this.id}-n`;
  readonly outside = `${SANDBOX_PREFIX}${this.id}-o`;
  readonly bridge = `${SANDBOX_PREFIX}${this.id}-br`;
  private readonly namespaces: string[] = [];
  private readonly processes: ChildProcess[] = [];
  private pods = 0;

  /** Runs a command inside a namespace of this net. */
  exec(ns: string, file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return run("nsenter", [`--net=/run/netns/${ns}`, "--", file, ...args], options);
  }

  private async addNamespace(name: string): Promise<void> {
    const dir = join("/tmp", name);
    await mkdir(dir, { recursive: true });
    await writeOwnerFile(dir);
    this.namespaces.push(name);
    await run("ip", ["netns", "add", name]);
    await run("ip", ["-n", name, "link", "set", "lo", "up"]);
  }

  async create(): Promise<void> {
    await this.addNamespace(this.node);
    await this.addNamespace(this.outside);
    const n = (args: string[]): Promise<RunResult> => run("ip", ["-n", this.node, ...args]);
    await n(["link", "add", this.bridge, "type", "bridge"]);
    await n(["addr", "add", `${NODE_BRIDGE_IP}/24`, "dev", this.bridge]);
    await n(["link", "set", this.bridge, "up"]);
    // Node-originated traffic to Service VIPs needs a route before nat OUTPUT sees it (runtime-facts.md).
    // Routed back out of the bridge they came in on, they would make the node send ICMP redirects, which eat
    // the per-host ICMP rate limit that REJECT's port-unreachable answers need: no redirects here.
    for (const dst of [SERVICE_CIDR, EXTERNAL_CIDR]) await n(["route", "add", dst, "dev", this.bridge]);
    for (const dev of ["all", "default", this.bridge]) await this.exec(this.node, "sysctl", ["-q", "-w", `net.ipv4.conf.${dev}.send_redirects=0`]);
    const vo = `${SANDBOX_PREFIX}${this.id}-vo`;
    await n(["link", "add", vo, "type", "veth", "peer", "name", "eth0", "netns", this.outside]);
    await n(["addr", "add", `${NODE_IP}/24`, "dev", vo]);
    await n(["link", "set", vo, "up"]);
    const o = (args: string[]): Promise<RunResult> => run("ip", ["-n", this.outside, ...args]);
    await o(["addr", "add", `${OUTSIDE_IP}/24`, "dev", "eth0"]);
    await o(["link", "set", "eth0", "up"]);
    // An off-cluster client routes the Service, pod and external-IP ranges through the node.
    for (const dst of [SERVICE_CIDR, "10.244.0.0/24", EXTERNAL_CIDR]) await o(["route", "add", dst, "via", NODE_IP]);
    await this.exec(this.node, "sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
    await this.exec(this.node, "sysctl", ["-q", "-w", "net.bridge.bridge-nf-call-iptables=1"]);
  }

  /** A pod namespace on the bridge with `ip`; returns its namespace name. */
  async addPod(ip: string): Promise<string> {
    const idx = ++this.pods;
    const ns = `${SANDBOX_PREFIX}${this.id}-p${idx}`;
    await this.addNamespace(ns);
    const veth = `${SANDBOX_PREFIX}${this.id}-v${idx}`;
    await run("ip", ["-n", this.node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    await run("ip", ["-n", this.node, "link", "set", veth, "master", this.bridge]);
    await run("ip", ["-n", this.node, "link", "set", veth, "type", "bridge_slave", "hairpin", "on"]);
    await run("ip", ["-n", this.node, "link", "set", veth, "up"]);
    await run("ip", ["-n", ns, "addr", "add", `${ip}/24`, "dev", "eth0"]);
    await run("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    for (const dst of [SERVICE_CIDR, "192.168.50.0/24", EXTERNAL_CIDR]) await run("ip", ["-n", ns, "route", "add", dst, "via", NODE_BRIDGE_IP]);
    return ns;
  }

  /** Starts backend.ts in a pod namespace (HTTP 8080, UDP 9000) and waits until it listens. */
  async startBackend(ns: string, name: string): Promise<ChildProcess> {
    const child = spawn("nsenter", [`--net=/run/netns/${ns}`, "--", NODE_BIN, BACKEND, "--name", name, "--http", "8080", "--udp", "9000"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    this.processes.push(child);
    await new Promise<void>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout });
      const timer = setTimeout(() => reject(new Error(`backend ${name} did not start`)), 10_000);
      rl.on("line", (l) => {
        if (l === "ready") {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code) => reject(new Error(`backend ${name} exited with ${code}`)));
    });
    return child;
  }

  /** Keeps track of a process started elsewhere so teardown kills it. */
  adopt(child: ChildProcess): void {
    this.processes.push(child);
  }

  async probe(ns: string, args: readonly string[]): Promise<ProbeResult> {
    const r = await this.exec(ns, NODE_BIN, [PROBE, ...args], { timeoutMs: 120_000 });
    return JSON.parse(r.stdout) as ProbeResult;
  }

  async connect(ns: string, host: string, port: number, timeoutMs = 2000): Promise<{ result: string; ms: number }> {
    const r = await this.exec(ns, NODE_BIN, [PROBE, "connect", host, String(port), String(timeoutMs)], { timeoutMs: 30_000 });
    return JSON.parse(r.stdout) as { result: string; ms: number };
  }

  async get(ns: string, url: string): Promise<{ status: number; body: string }> {
    const r = await this.exec(ns, NODE_BIN, [PROBE, "get", url], { timeoutMs: 30_000 });
    return JSON.parse(r.stdout) as { status: number; body: string };
  }

  /** `iptables-save` of the node namespace. */
  async iptablesSave(table?: string): Promise<string> {
    return (await this.exec(this.node, "iptables-save", table ? ["-t", table] : [])).stdout;
  }

  async teardown(): Promise<void> {
    const problems: string[] = [];
    for (const p of this.processes.splice(0)) {
      if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) continue;
      const exited = new Promise<void>((r) => p.once("exit", () => r()));
      p.kill("SIGKILL");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
    for (const ns of this.namespaces.splice(0).reverse()) {
      await run("ip", ["netns", "del", ns], { allowFailure: true }).catch((e: unknown) => problems.push(String(e)));
      await rm(join("/tmp", ns), { recursive: true, force: true }).catch((e: unknown) => problems.push(String(e)));
    }
    if (problems.length > 0) throw new Error(`teardown problems:\n${problems.join("\n")}`);
  }
}
