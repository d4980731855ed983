/**
 * The CNI configuration writer, as kubenet did it: once the control plane has assigned this Node its
 * `spec.podCIDR(s)`, write containerd's conflist for deckhand-bridge with host-local ranges from it, chained
 * with the reference `portmap` plugin for hostPorts (as kubenet chained it): containerd hands it the sandbox's
 * port mappings through the `portMappings` capability, and it DNATs the node's addresses to the pod (its
 * chains CNI-HOSTPORT-* and one CNI-DN-* per pod, removed at DEL). Until
 * then there is no conflist, so the runtime reports NetworkReady=false and the kubelet keeps the Node
 * NotReady; `status()` gives the reason to show. Run by the kubelet.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../src-shared/log.ts";
import { formatCidr, networkOf, parseCidr } from "./ip.ts";
import { nodeName, podCidrsOf, watchForever, type NodeLike, type WatchNodes } from "./nodes.ts";
import { DEFAULT_BRIDGE } from "./config.ts";

export const CONFLIST_FILE = "10-deckhand.conflist";
export const NETWORK_NAME = "deckhand";

export interface ConflistOptions {
  bridge?: string;
  mtu?: number;
  hairpinMode?: boolean;
  /** The CNI daemon's socket (deckhand-bridge's default when omitted). */
  daemonSocket?: string;
  /** host-local's dataDir (its default when omitted). */
  dataDir?: string;
}

/** The conflist for these pod CIDRs (one host-local range set per CIDR: dual stack gets one of each). */
export function buildConflist(podCidrs: readonly string[], options: ConflistOptions = {}): Record<string, unknown> {
  const ranges = podCidrs.map((text) => {
    const cidr = parseCidr(text);
    if (!cidr) throw new Error(`podCIDR ${JSON.stringify(text)} is not a CIDR`);
    return [{ subnet: formatCidr({ ip: networkOf(cidr), prefix: cidr.prefix }) }];
  });
  return {
    cniVersion: "1.0.0",
    cniVersions: ["1.0.0", "1.1.0"],
    name: NETWORK_NAME,
    plugins: [
      {
        type: "deckhand-bridge",
        bridge: options.bridge ?? DEFAULT_BRIDGE,
        isGateway: true,
        isDefaultGateway: true,
        ipMasq: false,
        hairpinMode: options.hairpinMode ?? true,
        ...(options.mtu ? { mtu: options.mtu } : {}),
        ...(options.daemonSocket ? { daemonSocket: options.daemonSocket } : {}),
        ipam: { type: "host-local", ranges, ...(options.dataDir ? { dataDir: options.dataDir } : {}) },
      },
      // hostPort: the runtime passes CRI's port mappings as runtimeConfig.portMappings; snat masquerades
      // traffic to a hostPort from the node itself (and hairpin) so the reply comes back through the node.
      { type: "portmap", capabilities: { portMappings: true }, snat: true },
    ],
  };
}

export interface CniConfigStatus {
  ready: boolean;
  /** CamelCase, for a Node condition's reason. */
  reason: string;
  message: string;
}

export interface CniConfigWriterOptions extends ConflistOptions {
  nodeName: string;
  /** containerd's CNI conf_dir. */
  confDir: string;
  watchNodes: WatchNodes;
  log: Logger;
}

export class CniConfigWriter {
  private readonly options: CniConfigWriterOptions;
  private readonly log: Logger;
  private controller: AbortController | undefined;
  private running: Promise<void> | undefined;
  private written: string | undefined;
  private writing: Promise<void> = Promise.resolve();
  private current: CniConfigStatus;
  private readonly listeners: ((s: CniConfigStatus) => void)[] = [];

  constructor(options: CniConfigWriterOptions) {
    this.options = options;
    this.log = options.log.child({ component: "cni-config" });
    this.current = { ready: false, reason: "NoPodCIDR", message: `waiting for the control plane to assign spec.podCIDR to Node ${options.nodeName}` };
  }

  get path(): string {
    return join(this.options.confDir, CONFLIST_FILE);
  }

  status(): CniConfigStatus {
    return this.current;
  }

  /** Called on every status change (the kubelet can update the Node condition at once). */
  onStatus(listener: (s: CniConfigStatus) => void): void {
    this.listeners.push(listener);
  }

  start(signal: AbortSignal): Promise<void> {
    const controller = new AbortController();
    this.controller = controller;
    signal.addEventListener("abort", () => controller.abort(), { once: true });
    this.running = watchForever(
      this.options.watchNodes,
      controller.signal,
      (nodes) => this.onNodes(nodes),
      (err, retryInMs) => this.log.warn({ err: String(err), retryInMs }, "watching Nodes failed"),
    );
    return Promise.resolve();
  }

  private onNodes(nodes: readonly NodeLike[]): void {
    const me = nodes.find((n) => nodeName(n) === this.options.nodeName);
    const cidrs = me ? podCidrsOf(me) : [];
    if (cidrs.length === 0) return; // still waiting (or the Node is not registered yet)
    let text: string;
    try {
      text = `${JSON.stringify(buildConflist(cidrs, this.options), null, 2)}\n`;
    } catch (err) {
      this.setStatus({ ready: false, reason: "InvalidPodCIDR", message: String(err) });
      return;
    }
    if (text === this.written) return;
    this.writing = this.writing.then(() => this.write(text, cidrs));
  }

  private async write(text: string, cidrs: readonly string[]): Promise<void> {
    try {
      await mkdir(this.options.confDir, { recursive: true });
      const existing = await readFile(this.path, "utf8").catch(() => undefined);
      if (existing !== text) {
        // Atomically: containerd watches the folder and must never read half a file.
        await writeFile(`${this.path}.tmp`, text, { mode: 0o644 });
        await rename(`${this.path}.tmp`, this.path);
        this.log.info({ path: this.path, podCIDRs: cidrs }, "wrote the CNI configuration");
      }
      this.written = text;
      this.setStatus({ ready: true, reason: "CNIConfigWritten", message: `pod CIDR ${cidrs.join(",")} configured for deckhand-bridge` });
    } catch (err) {
      this.setStatus({ ready: false, reason: "CNIConfigWriteFailed", message: `cannot write ${this.path}: ${String(err)}` });
      this.log.error({ err: String(err) }, "writing the CNI configuration failed");
    }
  }

  private setStatus(s: CniConfigStatus): void {
    const changed = s.ready !== this.current.ready || s.reason !== this.current.reason || s.message !== this.current.message;
    this.current = s;
    if (changed) for (const l of this.listeners) l(s);
  }

  async close(): Promise<void> {
    this.controller?.abort();
    await this.running;
    await this.writing;
  }
}
