/**
 * `kubelet`: the command systemd runs (bin/kubelet). Reads the configuration (flags and the
 * KubeletConfiguration file; any problem is reported and the process exits non-zero before doing anything),
 * gathers the machine's facts, and runs the kubelet with the node-side network components (the CNI conflist
 * writer and the pod-route controller) until SIGTERM.
 */
import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import type { V1Node } from "@kubernetes/client-node";
import { createLogger, type Logger } from "../src-shared/log.ts";
import { DeckhandError, errorMessage } from "../src-shared/errors.ts";
import { KubeClient } from "../src-shared/kube/client.ts";
import { Informer } from "../src-shared/kube/informer.ts";
import { SdNotifier } from "../src-shared/sd-notify.ts";
import { loadKubeletConfig, usage, type KubeletConfig } from "./config/kubelet-config.ts";
import { DEFAULT_IMAGE_FS, readFsInfo, type MachineInfo } from "../cadvisor/machine.ts";
import { MachineFacts } from "../cadvisor/machine-facts.ts";
import { parseThresholdConfig } from "./eviction/thresholds.ts";
import { Kubelet } from "./kubelet.ts";
import { reservedCgroups } from "./cm/qos-cgroups.ts";
import { readRlimit } from "../cadvisor/node-facts.ts";
import { startServers } from "./server/wiring.ts";
import { statsHost } from "./server/stats-host.ts";
import { StatsCollector } from "../cadvisor/collector.ts";
import { FsStatsCollector } from "../cadvisor/fs-collector.ts";
import type { CriServices } from "./cri/services.ts";
import type { PodLifecycleEventGenerator } from "./pleg.ts";
import type { NodeStatusSource } from "./node/node-status-manager.ts";
import {
  KUBELET_VERSION,
  imagesFromCri,
  initialNode,
  heldNodeStatus,
  nodeAllocatableAbsolute,
  nodeResources,
  nodeStatus,
  nodeStatusChanged,
  nodeStatusPatch,
  type NodeStatus,
  type NodeStatusConfig,
  type NodeStatusInput,
  type PressureFlags,
  type RuntimeFacts,
} from "./node/node-status.ts";
import { CniConfigWriter } from "../cni/conflist.ts";
import { CniDaemon } from "../cni/daemon.ts";
import { IpRouteTable, PodRouteController } from "../cni/routes.ts";
import type { WatchNodes } from "../cni/nodes.ts";
import type { NodeContext } from "./runtime/sandbox-config.ts";
import { nodeConditionEvents, nodeRef, type EventRecorder } from "./events.ts";
import { milliValue, quantityValue } from "../src-shared/quantity.ts";

/** The node's addresses when --node-ip is not given: its first global IPv4 (and IPv6) outside bridges and veths. */
export function detectNodeIPs(): string[] {
  const ips: string[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (name === "lo" || /^(cni|veth|docker|br-|kube)/.test(name)) continue;
    for (const a of addrs ?? []) {
      if (a.internal || a.address.startsWith("fe80:")) continue;
      if (!ips.some((ip) => ip.includes(":") === a.address.includes(":"))) ips.push(a.address);
    }
  }
  return ips;
}

/** nameserver/search/options of a resolv.conf; an unreadable file gives nothing (upstream warns and goes on). */
export function parseResolvConf(text: string): NodeContext["hostDNS"] {
  const dns: NodeContext["hostDNS"] = { servers: [], searches: [], options: [] };
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    const [key, ...rest] = line.split(/\s+/);
    if (key === "nameserver" && rest[0]) dns.servers.push(rest[0]);
    else if (key === "search") dns.searches = rest;
    else if (key === "options") dns.options.push(...rest);
  }
  return dns;
}

/** The part of the kubelet's configuration the Node's status and allocatable depend on. */
function nodeStatusConfig(config: KubeletConfig, nodeIPs: string[]): NodeStatusConfig {
  return {
    hostname: config.hostname,
    nodeIPs,
    maxPods: config.maxPods,
    podsPerCore: config.podsPerCore,
    systemReserved: config.systemReserved,
    kubeReserved: config.kubeReserved,
    evictionHard: config.evictionHard,
    kubeletPort: config.port,
    nodeStatusMaxImages: config.nodeStatusMaxImages,
    localStorageCapacityIsolation: config.localStorageCapacityIsolation,
  };
}

/** The Node's status from the machine, the runtime and the PLEG: the pure setters of node/node-status.ts. */
function nodeStatusSource(
  config: KubeletConfig,
  machine: () => MachineInfo,
  nodeIPs: string[],
  cri: CriServices,
  pleg: PodLifecycleEventGenerator,
  events: EventRecorder,
  pressure: () => PressureFlags,
  apiNode: () => V1Node | undefined,
): NodeStatusSource<NodeStatus> {
  const runtime: RuntimeFacts = { name: "containerd" };
  const input = async (): Promise<NodeStatusInput> => {
    try {
      const status = await cri.runtime("Status", {}, { timeoutMs: 5000 });
      runtime.conditions = (status.status?.conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message }));
      if (runtime.conditions.some((c) => c.type === "RuntimeReady" && c.status)) runtime.lastReadyAt = Date.now();
      if (runtime.version === undefined) {
        const v = await cri.runtime("Version", {}, { timeoutMs: 5000 });
        runtime.name = v.runtime_name;
        runtime.version = v.runtime_version;
      }
    } catch {
      // The runtime is down: the last conditions stand, and lastReadyAt ages into "container runtime is down".
    }
    const images = await cri.image("ListImages", {}, { timeoutMs: 5000 }).then((r) => imagesFromCri(r.images), () => []);
    return {
      config: nodeStatusConfig(config, nodeIPs),
      machine: machine(),
      runtime,
      pleg: { lastRelistAt: pleg.hasRelisted ? Date.now() - pleg.healthy().lastSeenMs : undefined },
      images,
      now: Date.now(),
      pressure: pressure(),
    };
  };
  return {
    initialNode: async () =>
      initialNode({
        ...(await input()),
        registration: {
          nodeName: config.hostname,
          nodeLabels: config.nodeLabels,
          registerWithTaints: config.registerWithTaints,
          ...(config.providerID ? { providerID: config.providerID } : {}),
        },
      }),
    status: async (previous) => {
      const next = nodeStatus(await input(), previous);
      for (const e of nodeConditionEvents(config.hostname, previous?.conditions, next.conditions ?? [])) events.event(nodeRef(config.hostname), "Normal", e.reason, e.message);
      return next;
    },
    changed: (previous, next) => nodeStatusChanged(previous, next),
    patch: (previous, next) => nodeStatusPatch(previous, next),
    held: (sent, node) => heldNodeStatus(sent, node ?? apiNode()),
  };
}

/** A WatchNodes (cni/nodes.ts) over one shared informer of every Node; each call's handler goes with it. */
function watchNodesWith(informer: Informer<V1Node>): WatchNodes {
  return async (signal, onNodes) => {
    const deliver = (): void => onNodes(informer.list());
    const handler = { added: deliver, updated: deliver, deleted: deliver };
    informer.on(handler);
    try {
      await informer.waitForSync(signal);
      deliver();
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    } finally {
      informer.off(handler);
    }
  };
}

/** `onReady` is called once the node is registered and the pod sources have synced (systemd's READY=1). */
export async function runKubelet(config: KubeletConfig, log: Logger, signal: AbortSignal, onReady?: () => void): Promise<void> {
  for (const field of config.ignoredFields) log.warn({ field }, "configuration field accepted but not acted on by deckhand");
  const nodeIPs = config.nodeIP.length > 0 ? config.nodeIP : detectNodeIPs();
  // kubeAPIQPS 0 means client-go's default (5 per second, as upstream passes it through); eventRecordQPS 0 means
  // no limit (its documented meaning). Events go through their own client and limit, as upstream's.
  const client = config.kubeconfig
    ? KubeClient.fromFile(config.kubeconfig, {
        userAgent: `kubelet/${KUBELET_VERSION} (linux/${process.arch === "x64" ? "amd64" : process.arch}) deckhand`,
        qps: config.kubeAPIQPS === 0 ? 5 : config.kubeAPIQPS,
        burst: config.kubeAPIBurst,
      })
    : undefined;
  const eventClient = client?.withRateLimit(config.eventRecordQPS > 0 ? { qps: config.eventRecordQPS, burst: config.eventBurst } : {});
  // The machine's facts: one copy for the Node's capacity, allocatable and the stats (cadvisor/machine-facts.ts).
  const machineFacts = new MachineFacts({ rootFs: config.rootDir, intervalMs: config.nodeStatusUpdateFrequency, log });
  const machine = (): MachineInfo => machineFacts.get();
  await machineFacts.load();
  let hostDNS: NodeContext["hostDNS"] = { servers: [], searches: [], options: [] };
  try {
    hostDNS = parseResolvConf(readFileSync(config.resolvConf, "utf8"));
  } catch (err) {
    log.warn({ resolvConf: config.resolvConf, err: errorMessage(err) }, "cannot read resolvConf; pods with dnsPolicy Default get no name servers");
  }
  const nodeContext: NodeContext = {
    nodeName: config.hostname,
    cgroupRoot: config.cgroupRoot,
    podLogsDir: config.podLogsDir,
    clusterDNS: config.clusterDNS,
    clusterDomain: config.clusterDomain,
    hostDNS,
    hostIPs: nodeIPs,
    memoryCapacityBytes: machine().memoryCapacity,
    cpuCapacityMilli: machine().numCores * 1000,
    cpuCFSQuota: config.cpuCFSQuota,
    cpuCFSQuotaPeriodUs: Math.round(config.cpuCFSQuotaPeriod * 1000),
    podPidsLimit: config.podPidsLimit,
  };
  // The PID capacity node allocatable's pid comes from (upstream's pidlimit: min(pid_max, threads-max)).
  const maxPID = readRlimit().maxpid;
  if (maxPID === undefined) log.warn("cannot read the node's PID limit; kubepods gets no pids.max");
  /** Every Node, watched (the CNI config and routes; the node status manager reads its own Node from it). */
  let nodes: Informer<V1Node> | undefined;
  const kubelet = new Kubelet({
    nodeName: config.hostname,
    client,
    criEndpoint: config.containerRuntimeEndpoint,
    runtimeRequestTimeoutMs: config.runtimeRequestTimeout,
    node: nodeContext,
    staticPodPath: config.staticPodPath || undefined,
    fileCheckFrequencyMs: config.fileCheckFrequency,
    leaseDurationSeconds: config.nodeLeaseDurationSeconds,
    nodeStatusUpdateFrequencyMs: config.nodeStatusUpdateFrequency,
    nodeStatusReportFrequencyMs: config.nodeStatusReportFrequency,
    syncFrequencyMs: config.syncFrequency,
    ...(eventClient ? { eventClient } : {}),
    crashLoopMaxMs: config.crashLoopBackOff.maxContainerRestartPeriod,
    logRotation: {
      maxSizeBytes: quantityValue(config.containerLogMaxSize),
      maxFiles: config.containerLogMaxFiles,
      workers: config.containerLogMaxWorkers,
      intervalMs: config.containerLogMonitorInterval,
    },
    rootDir: config.rootDir,
    cpuCapacityMilli: () => machine().numCores * 1000,
    nodeStatus: ({ cri, pleg, events, pressure }) => nodeStatusSource(config, machine, nodeIPs, cri, pleg, events, pressure, () => nodes?.list().find((n) => n.metadata?.name === config.hostname)),
    eviction: {
      thresholds: parseThresholdConfig(config),
      pressureTransitionPeriodMs: config.evictionPressureTransitionPeriod,
      maxPodGracePeriodSeconds: config.evictionMaxPodGracePeriod,
      localStorageCapacityIsolation: config.localStorageCapacityIsolation,
      stats: {
        cgroupRoot: config.cgroupRoot,
        rootDir: config.rootDir,
        imageFsDir: DEFAULT_IMAGE_FS,
        podLogsDir: config.podLogsDir,
        memoryCapacityBytes: () => machine().memoryCapacity,
        allocatableMemoryBytes: () => quantityValue(nodeAllocatableAbsolute(machine(), nodeStatusConfig(config, nodeIPs))["memory"] ?? "0"),
      },
    },
    imageGC: {
      policy: {
        highThresholdPercent: config.imageGCHighThresholdPercent,
        lowThresholdPercent: config.imageGCLowThresholdPercent,
        minAgeMs: config.imageMinimumGCAge,
        maxAgeMs: config.imageMaximumGCAge,
      },
      imageFs: () => readFsInfo(DEFAULT_IMAGE_FS).then((i) => ({ capacityBytes: i.capacityBytes, availableBytes: i.availableBytes }), () => undefined),
    },
    allocatable: () => {
      const { allocatable } = nodeResources(machine(), nodeStatusConfig(config, nodeIPs));
      return { cpuMilli: milliValue(allocatable["cpu"] ?? "0"), memoryBytes: quantityValue(allocatable["memory"] ?? "0"), pods: quantityValue(allocatable["pods"] ?? "0") };
    },
    nodeAllocatableCgroup: () =>
      nodeAllocatableAbsolute(machine(), nodeStatusConfig(config, nodeIPs), { enforce: config.enforceNodeAllocatable.includes("pods"), ...(maxPID === undefined ? {} : { maxPID }) }),
    reservedCgroups: reservedCgroups(config),
    logger: log,
  });
  // Filesystem figures change; refresh them at the status pace.
  machineFacts.start(signal);
  const closers: (() => Promise<void>)[] = [() => machineFacts.close()];
  if (config.cniDaemonSocket) {
    // The fast path of every CNI call: containerd's deckhand-bridge forwards to it (cni/daemon.ts).
    const daemon = new CniDaemon({ log, socketPath: config.cniDaemonSocket });
    await daemon.start(signal);
    closers.push(() => daemon.close());
  }
  if (client) {
    const informer = new Informer<V1Node>({ client, resource: { group: "", version: "v1", resource: "nodes" }, logger: log });
    nodes = informer;
    informer.start(signal);
    const watchNodes = watchNodesWith(informer);
    const cniWriter = new CniConfigWriter({ nodeName: config.hostname, confDir: config.cniConfDir, watchNodes, log, ...(config.cniDaemonSocket ? { daemonSocket: config.cniDaemonSocket } : {}) });
    cniWriter.onStatus(() => kubelet.nodeStatus?.poke());
    const routes = new PodRouteController({ nodeName: config.hostname, watchNodes, table: new IpRouteTable(), log });
    void cniWriter.start(signal);
    void routes.start(signal);
    closers.push(() => cniWriter.close(), () => routes.close(), () => informer.close());
  }
  await kubelet.start(signal);
  // Resource statistics (cgroups, every 10 s) for /stats/summary, /metrics/resource and /metrics/cadvisor.
  const stats = new StatsCollector({ cgroupRoot: config.cgroupRoot, log });
  stats.start(signal);
  // Filesystem figures (CRI writable layers and image fs, du of logs and volumes) every volumeStatsAggPeriod.
  const fsStats = new FsStatsCollector({ runtime: kubelet.cri, rootDir: config.rootDir, podLogsDir: config.podLogsDir, intervalMs: config.volumeStatsAggPeriod, log });
  fsStats.start(signal);
  closers.push(() => stats.close(), () => fsStats.close());
  // One source of the latest node and pod statistics: the stats routes and the kubelet's own readers (eviction).
  const statsProvider = statsHost(kubelet, config.hostname, config.cgroupRoot, stats, machine, fsStats);
  // The kubelet API (:10250) and the health server (:10248); a server that cannot start stops the kubelet.
  try {
    const servers = await startServers(config, kubelet, client, log, signal, statsProvider);
    closers.unshift(() => servers.close());
  } catch (err) {
    await kubelet.close().catch(() => undefined);
    for (const c of closers) await c();
    client?.close();
    throw err;
  }
  log.info({ node: config.hostname, nodeIPs, version: KUBELET_VERSION }, "kubelet started");
  void kubelet.ready.then(() => {
    log.info({ node: config.hostname }, "kubelet ready: node registered, pod sources synced");
    onReady?.();
  });
  await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  // The kubelet reports every failed shutdown step; the network components still stop before it is thrown.
  const closed = await kubelet.close().then(() => undefined, (err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  for (const c of closers) await c();
  client?.close();
  eventClient?.close();
  if (closed) throw closed;
}

async function main(): Promise<void> {
  let config: KubeletConfig | "help";
  try {
    config = loadKubeletConfig(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`kubelet: ${err instanceof DeckhandError ? err.message : errorMessage(err)}\n`);
    process.exit(1);
  }
  if (config === "help") {
    process.stdout.write(usage());
    return;
  }
  const log = createLogger({ level: config.logLevel, name: "kubelet" });
  const stop = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => stop.abort());
  // Under systemd (Type=notify): READY=1 when ready, STOPPING=1 as soon as SIGTERM aborts, watchdog pings.
  const notifier = new SdNotifier({ logger: log });
  notifier.start(stop.signal);
  try {
    await runKubelet(config, log, stop.signal, () => notifier.ready());
  } catch (err) {
    log.fatal({ err: errorMessage(err) }, "kubelet failed");
    process.exitCode = 1;
  } finally {
    await notifier.close();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, "/"))) await main();
