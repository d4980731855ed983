/**
 * The kubelet: wires its parts and owns their lifetime. Each part keeps its own state behind a small
 * interface (upstream's split, without its god object):
 *
 *   pod sources (API watch, static pods) ─▶ pod workers ─▶ pod sync ─▶ runtime manager ─▶ CRI
 *                                              ▲                          │
 *                                 PLEG (relist every 1 s) ◀───────────────┘
 *   status manager (pods/status)   node status manager + lease (Node, heartbeats)   events
 *
 * Housekeeping every 2 s removes what the runtime runs that no pod source wants (after the sources synced).
 */
import type { V1Pod } from "@kubernetes/client-node";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../src-shared/log.ts";
import { errorMessage } from "../src-shared/errors.ts";
import type { KubeClient } from "../src-shared/kube/client.ts";
import { Informer } from "../src-shared/kube/informer.ts";
import { CriClient } from "./cri/client.ts";
import { ApiEventRecorder, LogEventRecorder, type EventRecorder } from "./events.ts";
import { ImageManager } from "./images/image-manager.ts";
import { PodCgroupManager } from "./cm/pod-cgroups.ts";
import { RuntimeManager } from "./runtime/runtime-manager.ts";
import type { NodeContext } from "./runtime/sandbox-config.ts";
import { Pleg } from "./pleg.ts";
import { PodWorkers } from "./pod-workers.ts";
import { PodSync } from "./pod-sync.ts";
import { StatusManager, type PodKey } from "./status/status-manager.ts";
import { podStatusEqual, statusPatch, toPodStatus, type PodStatus } from "./status/pod-status.ts";
import { NodeLease } from "./node/lease.ts";
import { NodeStatusManager, type NodeStatusSource } from "./node/node-status-manager.ts";
import { StaticPodSource } from "./pods/static-pods.ts";
import { MirrorPods } from "./pods/mirror-pods.ts";
import { CONFIG_MIRROR_ANNOTATION } from "./runtime/labels.ts";
import { admitPod, checkSupported, type Allocatable } from "./admission.ts";
import { nodeRef, podRef } from "./events.ts";

export interface KubeletDeps {
  nodeName: string;
  client: KubeClient | undefined;
  criEndpoint: string;
  runtimeRequestTimeoutMs: number;
  node: NodeContext;
  staticPodPath: string | undefined;
  fileCheckFrequencyMs: number;
  leaseDurationSeconds: number;
  nodeStatusUpdateFrequencyMs: number;
  nodeStatusReportFrequencyMs: number;
  syncFrequencyMs: number;
  crashLoopMaxMs: number;
  /** The node's allocatable, for admission; undefined admits every pod. */
  allocatable?: () => Allocatable | undefined;
  /** The node's status computation (see node/node-status.ts), built by main with the machine facts. */
  nodeStatus: (deps: { cri: CriClient; pleg: Pleg; events: EventRecorder }) => NodeStatusSource<unknown>;
  logger: Logger;
}

export class Kubelet {
  private readonly d: KubeletDeps;
  private readonly log: Logger;
  readonly cri: CriClient;
  readonly events: EventRecorder;
  readonly runtime: RuntimeManager;
  readonly pleg: Pleg;
  readonly statusManager: StatusManager<PodStatus>;
  readonly podWorkers: PodWorkers;
  readonly podSync: PodSync;
  readonly lease: NodeLease | undefined;
  readonly nodeStatus: NodeStatusManager<unknown> | undefined;
  private readonly podInformer: Informer<V1Pod> | undefined;
  private readonly staticPods: StaticPodSource | undefined;
  private readonly mirrors: MirrorPods | undefined;
  private readonly stop = new AbortController();
  private housekeeping: Promise<void> | undefined;
  /** Desired pods by uid, from every source. */
  private readonly desired = new Map<string, V1Pod>();
  /** Pods admission refused: they are never run. */
  private readonly rejected = new Set<string>();
  /** Resolves once the node is registered and every pod source has synced (sd_notify READY=1). */
  readonly ready: Promise<void>;
  private readyResolve: (() => void) | undefined;

  constructor(deps: KubeletDeps) {
    this.d = deps;
    this.log = deps.logger.child({ component: "kubelet" });
    this.ready = new Promise((resolve) => (this.readyResolve = resolve));
    const logger = deps.logger;
    this.cri = new CriClient({ endpoint: deps.criEndpoint, timeoutMs: deps.runtimeRequestTimeoutMs, logger });
    this.events = deps.client ? new ApiEventRecorder({ client: deps.client, nodeName: deps.nodeName, logger }) : new LogEventRecorder(logger);
    this.runtime = new RuntimeManager({
      cri: this.cri,
      images: new ImageManager({ cri: this.cri, logger }),
      cgroups: new PodCgroupManager({ cgroupRoot: deps.node.cgroupRoot, logger }),
      events: this.events,
      node: () => this.d.node,
      logger,
      crashLoopMaxMs: deps.crashLoopMaxMs,
    });
    this.pleg = new Pleg({ cri: this.cri, logger });
    this.statusManager = new StatusManager<PodStatus>({
      client: deps.client as KubeClient, // only started with a client
      logger,
      equal: podStatusEqual,
      patch: (key, previous, next) => statusPatch(key.uid, previous, next),
    });
    if (deps.client && deps.staticPodPath) this.mirrors = new MirrorPods({ client: deps.client, nodeName: deps.nodeName, logger, nodeUid: () => this.nodeStatus?.uid, onMirror: (uid) => this.podWorkers.wake(uid) });
    this.podSync = new PodSync({
      client: deps.client,
      runtime: this.runtime,
      status: this.statusManager,
      events: this.events,
      logger,
      hostIPs: () => this.d.node.hostIPs,
      memoryCapacityBytes: () => this.d.node.memoryCapacityBytes,
      apiKey: (pod) => this.apiKey(pod),
    });
    this.podWorkers = new PodWorkers({ syncer: this.podSync, logger, resyncIntervalMs: deps.syncFrequencyMs });
    if (deps.client) {
      this.lease = new NodeLease({ client: deps.client, nodeName: deps.nodeName, durationSeconds: deps.leaseDurationSeconds, logger, nodeUid: () => this.nodeStatus?.uid });
      this.nodeStatus = new NodeStatusManager({
        client: deps.client,
        nodeName: deps.nodeName,
        source: deps.nodeStatus({ cri: this.cri, pleg: this.pleg, events: this.events }),
        logger,
        updateFrequencyMs: deps.nodeStatusUpdateFrequencyMs,
        reportFrequencyMs: deps.nodeStatusReportFrequencyMs,
      });
      this.podInformer = new Informer<V1Pod>({ client: deps.client, resource: { group: "", version: "v1", resource: "pods" }, fieldSelector: `spec.nodeName=${deps.nodeName}`, logger });
    }
    if (deps.staticPodPath) this.staticPods = new StaticPodSource({ path: deps.staticPodPath, nodeName: deps.nodeName, periodMs: deps.fileCheckFrequencyMs, logger });
  }

  /** Where a pod's status goes: the API pod itself, or a static pod's mirror pod once it exists. */
  private apiKey(pod: V1Pod): PodKey | undefined {
    const uid = pod.metadata?.uid ?? "";
    if (this.staticPods?.has(uid)) return this.mirrors?.key(pod);
    return { namespace: pod.metadata?.namespace ?? "", name: pod.metadata?.name ?? "", uid };
  }

  private podUpdated(pod: V1Pod): void {
    // A mirror pod is the API's image of one of our static pods: it is not a pod to run.
    if (pod.metadata?.annotations?.[CONFIG_MIRROR_ANNOTATION] !== undefined) {
      this.mirrors?.observe(pod);
      return;
    }
    const uid = pod.metadata?.uid ?? "";
    if (this.rejected.has(uid)) return;
    if (this.podWorkers.state(uid) === undefined && !this.admit(pod)) return;
    this.desired.set(uid, pod);
    // What the API holds is the base of the next status patch, and a status someone else changed is resent.
    if (pod.status && !this.staticPods?.has(uid)) this.statusManager.reconcile(uid, uid, toPodStatus(pod.status));
    this.podWorkers.update(pod);
  }

  /** Upstream's canAdmitPod for a pod seen for the first time; a refused pod fails with the reason. */
  private admit(pod: V1Pod): boolean {
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed" || pod.metadata?.deletionTimestamp) return true;
    // Fields this kubelet does not implement come first: such a pod must not count against resources.
    const supported = checkSupported(pod);
    if (!supported.admit) return this.refuse(pod, supported);
    for (const w of supported.warnings) this.events.event(podRef(pod), "Warning", w.reason, w.message);
    const allocatable = this.d.allocatable?.();
    if (!allocatable) return true;
    const active = [...this.desired.values()].filter((p) => p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed" && this.podWorkers.state(p.metadata?.uid ?? "") === "syncing");
    const result = admitPod(pod, active, allocatable);
    if (result.admit) return true;
    return this.refuse(pod, result);
  }

  private refuse(pod: V1Pod, result: { reason: string; message: string }): false {
    const uid = pod.metadata?.uid ?? "";
    this.rejected.add(uid);
    this.log.warn({ pod: `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`, reason: result.reason }, result.message);
    this.events.event(podRef(pod), "Warning", result.reason, result.message);
    const key = this.apiKey(pod);
    // Keep what the API has (other components' conditions): only phase, reason and message change.
    if (key) this.statusManager.setStatus(uid, key, { ...toPodStatus(pod.status ?? {}), phase: "Failed", reason: result.reason, message: result.message });
    return false;
  }

  private podRemoved(pod: V1Pod): void {
    if (pod.metadata?.annotations?.[CONFIG_MIRROR_ANNOTATION] !== undefined) {
      this.mirrors?.forget(pod);
      return;
    }
    const uid = pod.metadata?.uid ?? "";
    this.desired.delete(uid);
    if (this.rejected.delete(uid)) this.statusManager.forget(uid);
    this.podWorkers.remove(uid, pod.metadata?.deletionGracePeriodSeconds);
  }

  async start(signal: AbortSignal): Promise<void> {
    signal.addEventListener("abort", () => this.stop.abort(), { once: true });
    const s = this.stop.signal;
    this.cri.start(s);
    const version = await this.cri.runtime("Version", {}, { signal: s, timeoutMs: 30_000 }).catch((err: unknown) => {
      this.log.warn({ err: errorMessage(err) }, "container runtime not answering yet");
      return undefined;
    });
    if (version) this.log.info({ runtime: `${version.runtime_name} ${version.runtime_version}`, api: version.runtime_api_version }, "container runtime");
    this.events.event(nodeRef(this.d.nodeName), "Normal", "Starting", "Starting kubelet.");
    this.pleg.onEvent((e) => this.podWorkers.wake(e.uid));
    this.pleg.start(s);
    this.podWorkers.start(s);
    if (this.d.client) {
      this.statusManager.start(s);
      this.nodeStatus?.start(s);
      this.lease?.start(s);
      this.podInformer?.on({
        added: (p) => this.podUpdated(p),
        updated: (o, p) => {
          // The cache is keyed by name: after a relist, a pod deleted and recreated under the same name (a
          // StatefulSet's) arrives as an update with another uid. The old one must go.
          if (o.metadata?.uid !== p.metadata?.uid) this.podRemoved(o);
          this.podUpdated(p);
        },
        deleted: (p) => this.podRemoved(p),
      });
      this.podInformer?.start(s);
    }
    if (this.staticPods) {
      this.staticPods.on({ updated: (p) => {
        this.podUpdated(p);
        void this.mirrors?.ensure(p);
      }, removed: (p) => {
        this.podRemoved(p);
        void this.mirrors?.remove(p);
      } });
      this.staticPods.start(s);
    }
    this.housekeeping = this.runHousekeeping();
    void this.whenReady(s).then(() => this.readyResolve?.(), () => undefined);
  }

  private async whenReady(signal: AbortSignal): Promise<void> {
    await Promise.race([this.nodeStatus?.registered, new Promise((_, reject) => signal.addEventListener("abort", reject, { once: true }))]);
    await this.podInformer?.waitForSync(signal);
    while (!this.sourcesReady()) await sleep(100, undefined, { signal });
  }

  /** Whether every pod source has delivered its first full state (before that, nothing is an orphan). */
  private sourcesReady(): boolean {
    return (this.podInformer?.synced ?? true) && (this.staticPods?.synced ?? true);
  }

  /** Kills and removes pods the runtime runs that no source wants (deleted while we were down, or leftovers). */
  private async cleanupOrphans(): Promise<void> {
    if (!this.sourcesReady() || !this.pleg.hasRelisted) return;
    const known = new Set(this.podWorkers.uids());
    const orphans = [...this.pleg.runtimePods()].filter(([uid]) => !known.has(uid) && !this.desired.has(uid));
    // In parallel, each on its own: one that fails must not hold back the others. Grace 1 s, as upstream kills
    // runtime pods it has no spec for.
    await Promise.all(
      orphans.map(async ([uid, pod]) => {
        try {
          this.log.info({ pod: `${pod.namespace}/${pod.name}`, podUID: uid }, "removing a pod no source wants");
          const status = await this.runtime.podStatus(uid, this.stop.signal);
          await this.runtime.killPodContainers(undefined, status, 1, this.stop.signal);
          await this.runtime.removePod(uid, pod.namespace, pod.name, this.stop.signal);
        } catch (err) {
          this.log.warn({ podUID: uid, err: errorMessage(err) }, "could not remove an orphaned pod; will retry");
        }
      }),
    );
  }

  private async runHousekeeping(): Promise<void> {
    while (!this.stop.signal.aborted) {
      try {
        await this.cleanupOrphans();
      } catch (err) {
        if (this.stop.signal.aborted) break;
        this.log.warn({ err: errorMessage(err) }, "housekeeping failed");
      }
      await sleep(2000, undefined, { signal: this.stop.signal }).catch(() => undefined);
    }
  }

  /** Stops every loop; pods keep running in the runtime (a restarted kubelet adopts them). */
  async close(): Promise<void> {
    this.stop.abort();
    await Promise.allSettled([
      this.housekeeping,
      this.podInformer?.close(),
      this.staticPods?.close(),
      this.podWorkers.close(),
      this.pleg.close(),
      this.statusManager.close(),
      this.nodeStatus?.close(),
      this.lease?.close(),
    ]);
    if (this.events instanceof ApiEventRecorder) await this.events.close();
    this.cri.close();
  }
}
