/**
 * The kubelet: wires its parts and owns their lifetime. Each part keeps its own state behind a small
 * interface (upstream's split, without its god object):
 *
 *   pod sources (API watch, static pods) ─▶ pod manager + admission ─▶ pod workers ─▶ pod sync ─▶ runtime manager ─▶ CRI
 *                                                                          ▲             │ reads          │
 *                                                                          │        pod cache ◀── PLEG (relist every 1 s)
 *                                                                          └── prober (one worker per container and probe kind; results wake the pod worker)
 *   status manager (pods/status)   node status manager + lease (Node, heartbeats)   events
 *
 * One owner per pod fact: the pod manager holds what the sources want and what admission refused, the pod
 * worker the pod's lifecycle (state, start time, terminal reason, cancellation); the status manager, pod
 * sync, the prober, the runtime manager and the pod cache keep their own per-pod state, and `forget(uid)`
 * reaches them all once a pod is gone for good.
 *
 * Housekeeping every 2 s (after the sources synced) stops the probes of pods without a worker, removes what the
 * runtime runs that no pod source wants, and mirror pods whose static pod is gone.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../src-shared/log.ts";
import { PeriodicLoop } from "../src-shared/loop.ts";
import { errorMessage } from "../src-shared/errors.ts";
import type { KubeClient } from "../src-shared/kube/client.ts";
import { Informer } from "../src-shared/kube/informer.ts";
import { CriClient } from "./cri/client.ts";
import { ApiEventRecorder, LogEventRecorder, type EventRecorder } from "./events.ts";
import { ImageManager } from "./images/image-manager.ts";
import { PodCgroupManager } from "./cm/pod-cgroups.ts";
import { Cgroupfs } from "./cm/cgroupfs.ts";
import { QosCgroupManager, type ReservedCgroup } from "./cm/qos-cgroups.ts";
import { RuntimeManager } from "./runtime/runtime-manager.ts";
import type { NodeContext } from "./runtime/sandbox-config.ts";
import { DiskTerminationMessageFiles } from "./lifecycle/termination-files.ts";
import { Pleg } from "./pleg.ts";
import { PodCache } from "./runtime/pod-cache.ts";
import { ContainerGC } from "./runtime/container-gc.ts";
import { PodWorkers } from "./pod-workers.ts";
import { PodSync } from "./pod-sync.ts";
import { ProberManager } from "./prober/manager.ts";
import { StatusManager, type PodKey } from "./status/status-manager.ts";
import { podStatusEqual, statusPatch, toPodStatus, type PodStatus } from "./status/pod-status.ts";
import { podsDifferSemantically, readinessGatesChanged } from "./pod-helpers.ts";
import { NodeLease } from "./node/lease.ts";
import { NodeStatusManager, type NodeStatusSource } from "./node/node-status-manager.ts";
import { StaticPodSource } from "./pods/static-pods.ts";
import { MirrorPods } from "./pods/mirror-pods.ts";
import { InitialBatch, PodManager, type PodStateOwner } from "./pods/pod-manager.ts";
import { CONFIG_MIRROR_ANNOTATION } from "./runtime/labels.ts";
import { admitPod, admitUnderPressure, checkSupported, type Allocatable } from "./admission.ts";
import { NodePressure, type NodePressureSettings } from "./eviction/node-pressure.ts";
import { ImageGC, type ImageGCPolicy, type FsUsage } from "./images/image-gc.ts";
import { isCriticalPod, qosClass } from "./qos.ts";
import type { PressureFlags } from "./node/node-status.ts";
import { nodeRef, podRef } from "./events.ts";
import { ContainerLogManager, type LogRotationPolicy } from "./logs/container-log-manager.ts";
import { VolumeManager, type VolumeSources } from "./volumes/volume-manager.ts";
import { SystemMounter, type Mounter } from "./volumes/mounter.ts";
import { containerVolumeMounts } from "./volumes/container-mounts.ts";
import { etcHostsMount } from "./volumes/etc-hosts.ts";
import { serviceEnv } from "./objects/service-env.ts";
import type { V1Service } from "@kubernetes/client-node";
import { DeckhandError } from "../src-shared/errors.ts";
import { ApiVolumeSources, StandaloneVolumeSources, envSourcesOf } from "./objects/api-sources.ts";

export interface KubeletDeps {
  nodeName: string;
  client: KubeClient | undefined;
  /** Where events go (rate-limited by eventRecordQPS/eventBurst); `client` when not given. */
  eventClient?: KubeClient;
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
  /** --root-dir: pod folders (their volumes, termination message files) go under `<rootDir>/pods`. */
  rootDir: string;
  /** The node's CPU capacity in millicores (downwardAPI volumes' default for cpu limits). */
  cpuCapacityMilli?: () => number;
  /** How volumes mount their tmpfs (tests may pass a fake); the system's `mount` by default. */
  mounter?: Mounter;
  /** The node's allocatable, for admission; undefined admits every pod. */
  allocatable?: () => Allocatable | undefined;
  /**
   * What the node allocatable cgroup (`kubepods`) carries (node/node-status.ts nodeAllocatableAbsolute); with it
   * the kubelet manages the QoS cgroups (cm/qos-cgroups.ts), without it only the pod cgroups.
   */
  nodeAllocatableCgroup?: () => Readonly<Record<string, string>>;
  /** enforceNodeAllocatable's system-reserved / kube-reserved cgroups (cm/qos-cgroups.ts reservedCgroups). */
  reservedCgroups?: readonly ReservedCgroup[];
  /** Container log rotation (containerLogMaxSize, ...); none when undefined. */
  logRotation?: LogRotationPolicy;
  /** The node's status computation (see node/node-status.ts), built by main with the machine facts. */
  nodeStatus: (deps: { cri: CriClient; pleg: Pleg; events: EventRecorder; pressure: () => PressureFlags }) => NodeStatusSource<unknown>;
  /** Node-pressure eviction (eviction/); none when undefined. */
  eviction?: NodePressureSettings;
  /** Image garbage collection (images/image-gc.ts); none when undefined. */
  imageGC?: { policy: ImageGCPolicy; imageFs: () => Promise<FsUsage | undefined> };
  logger: Logger;
}

export class Kubelet {
  private readonly d: KubeletDeps;
  private readonly log: Logger;
  readonly cri: CriClient;
  readonly events: EventRecorder;
  readonly runtime: RuntimeManager;
  /** kubepods (node allocatable), kubepods/burstable and kubepods/besteffort. */
  readonly qosCgroups: QosCgroupManager | undefined;
  readonly pleg: Pleg;
  /** What the runtime holds per pod, filled by the PLEG's relist. */
  readonly podCache = new PodCache();
  readonly containerGC: ContainerGC;
  readonly imageGC: ImageGC | undefined;
  /** The eviction manager, its figures and memory watch; the node's pressure conditions. */
  readonly nodePressure: NodePressure | undefined;
  readonly containerLogs: ContainerLogManager | undefined;
  readonly statusManager: StatusManager<PodStatus>;
  readonly podManager = new PodManager();
  readonly podWorkers: PodWorkers;
  readonly podSync: PodSync;
  /** Liveness, readiness and startup probes: their results wake the pod workers and feed the pod sync. */
  readonly prober: ProberManager;
  /** Pod volumes: set up before the containers start, torn down after; orphaned pod folders cleaned. */
  readonly volumes: VolumeManager;
  private readonly mounter: Mounter;
  private readonly volumeSources: VolumeSources & { start?(signal: AbortSignal): void; close?(): Promise<void> };
  readonly lease: NodeLease | undefined;
  readonly nodeStatus: NodeStatusManager<unknown> | undefined;
  /** Resolves once the Node is registered and every pod source has delivered its first full list. */
  readonly ready: Promise<void>;
  private readyResolve: () => void = () => undefined;
  private readonly podInformer: Informer<V1Pod> | undefined;
  /** Every Service, for the service link variables (upstream's serviceLister). */
  private readonly serviceInformer: Informer<V1Service> | undefined;
  private readonly staticPods: StaticPodSource | undefined;
  private readonly mirrors: MirrorPods | undefined;
  /** Each source's first full list, admitted in creation order once it is complete. */
  private readonly apiBatch = new InitialBatch();
  private readonly staticBatch = new InitialBatch();
  private readonly staticSynced: Promise<void>;
  private staticSyncedResolve: () => void = () => undefined;
  /** Every component keeping per-pod state, told by `forget(uid)`. */
  private readonly podStateOwners: PodStateOwner[];
  private readonly housekeeping: PeriodicLoop;
  private readonly stop = new AbortController();

  constructor(deps: KubeletDeps) {
    this.d = deps;
    this.log = deps.logger.child({ component: "kubelet" });
    const logger = deps.logger;
    this.ready = new Promise((resolve) => (this.readyResolve = resolve));
    this.staticSynced = new Promise((resolve) => (this.staticSyncedResolve = resolve));
    this.cri = new CriClient({ endpoint: deps.criEndpoint, timeoutMs: deps.runtimeRequestTimeoutMs, logger });
    const eventClient = deps.eventClient ?? deps.client;
    this.events = eventClient ? new ApiEventRecorder({ client: eventClient, nodeName: deps.nodeName, logger }) : new LogEventRecorder(logger);
    this.mounter = deps.mounter ?? new SystemMounter();
    this.volumeSources = deps.client
      ? new ApiVolumeSources({ client: deps.client, logger, wake: (uid) => this.podWorkers.wake(uid) })
      : new StandaloneVolumeSources();
    this.volumes = new VolumeManager({
      rootDir: deps.rootDir,
      sources: this.volumeSources,
      mounter: this.mounter,
      node: () => ({ memoryCapacityBytes: this.d.node.memoryCapacityBytes, cpuCapacityMilli: deps.cpuCapacityMilli?.() ?? 0 }),
      logger,
    });
    const cgroupfs = new Cgroupfs({ logger });
    const nodeAllocatableCgroup = deps.nodeAllocatableCgroup;
    this.qosCgroups = nodeAllocatableCgroup
      ? new QosCgroupManager({
          cgroupRoot: deps.node.cgroupRoot,
          fs: cgroupfs,
          nodeAllocatable: nodeAllocatableCgroup,
          activePods: () => this.activePods(),
          ...(deps.reservedCgroups ? { reserved: deps.reservedCgroups } : {}),
          nodeName: deps.nodeName,
          events: this.events,
          logger,
        })
      : undefined;
    this.runtime = new RuntimeManager({
      containerMounts: async (pod, container, env, podIPs) => {
        const uid = pod.metadata?.uid ?? "";
        const mounts = await containerVolumeMounts(container, this.volumes.volumesOf(pod), env, (p) => this.volumes.pinSubPath(uid, p));
        const hosts = await etcHostsMount(deps.rootDir, pod, container, podIPs, this.d.node.clusterDomain);
        return hosts ? [...mounts, hosts] : mounts;
      },
      envSources: async (pod, refs, signal) => ({
        ...(await envSourcesOf(this.volumeSources, pod.metadata?.namespace ?? "", refs, signal)),
        services: await this.serviceEnv(pod, signal),
      }),
      runtime: this.cri,
      images: new ImageManager({ images: this.cri, logger }),
      cgroups: new PodCgroupManager({ cgroupRoot: deps.node.cgroupRoot, fs: cgroupfs, ...(this.qosCgroups ? { qos: this.qosCgroups } : {}) }),
      events: this.events,
      node: () => this.d.node,
      logger,
      crashLoopMaxMs: deps.crashLoopMaxMs,
      ...(deps.rootDir ? { terminationFiles: new DiskTerminationMessageFiles({ rootDir: deps.rootDir, logger }) } : {}),
    });
    this.pleg = new Pleg({ runtime: this.cri, cache: this.podCache, logger });
    this.containerGC = new ContainerGC({
      runtime: this.cri,
      isPodDeleted: (uid) => this.podContentMayGo(uid),
      allSourcesReady: () => this.sourcesReady(),
      isPodTerminated: (uid) => {
        const state = this.podWorkers.state(uid);
        return state ? state.kind === "terminated" : this.sourcesReady() && !this.podManager.has(uid);
      },
      logger,
    });
    if (deps.imageGC) {
      this.imageGC = new ImageGC({
        runtime: this.cri,
        ...deps.imageGC,
        onFailure: (message) => this.events.event(nodeRef(deps.nodeName), "Warning", "ImageGCFailed", message),
        logger,
      });
    }
    if (deps.eviction) this.nodePressure = this.newNodePressure(deps.eviction);
    if (deps.logRotation) this.containerLogs = new ContainerLogManager({ runtime: this.cri, policy: deps.logRotation, logger, podLogsDir: deps.node.podLogsDir });
    this.statusManager = new StatusManager<PodStatus>({
      client: deps.client as KubeClient, // only started with a client
      logger,
      equal: podStatusEqual,
      patch: (key, previous, next) => statusPatch(key.uid, previous, next),
    });
    if (deps.client && deps.staticPodPath) this.mirrors = new MirrorPods({ client: deps.client, nodeName: deps.nodeName, logger, nodeUid: () => this.nodeStatus?.uid, onMirror: (uid) => this.podWorkers.wake(uid) });
    this.prober = new ProberManager({ runtime: this.cri, recorder: this.events, logger, hostIP: () => this.d.node.hostIPs[0] ?? "" });
    this.podSync = new PodSync({
      client: deps.client,
      runtime: this.runtime,
      prober: this.prober,
      volumes: this.volumes,
      cache: this.podCache,
      status: this.statusManager,
      events: this.events,
      logger,
      hostIPs: () => this.d.node.hostIPs,
      memoryCapacityBytes: () => this.d.node.memoryCapacityBytes,
      apiKey: (pod) => this.apiKey(pod),
    });
    this.podWorkers = new PodWorkers({ syncer: this.podSync, logger, resyncIntervalMs: deps.syncFrequencyMs, onPodFinished: (uid) => this.forget(uid) });
    this.podStateOwners = [this.podManager, this.statusManager, this.podSync, this.runtime, this.prober, this.volumes, { forgetPod: (uid) => this.podCache.delete(uid) }];
    if (deps.client) {
      this.lease = new NodeLease({ client: deps.client, nodeName: deps.nodeName, durationSeconds: deps.leaseDurationSeconds, logger, nodeUid: () => this.nodeStatus?.uid });
      this.nodeStatus = new NodeStatusManager({
        client: deps.client,
        nodeName: deps.nodeName,
        source: deps.nodeStatus({ cri: this.cri, pleg: this.pleg, events: this.events, pressure: () => this.pressureFlags() }),
        logger,
        updateFrequencyMs: deps.nodeStatusUpdateFrequencyMs,
        reportFrequencyMs: deps.nodeStatusReportFrequencyMs,
      });
      this.serviceInformer = new Informer<V1Service>({ client: deps.client, resource: { group: "", version: "v1", resource: "services" }, logger });
      this.podInformer = new Informer<V1Pod>({ client: deps.client, resource: { group: "", version: "v1", resource: "pods" }, fieldSelector: `spec.nodeName=${deps.nodeName}`, logger });
    }
    if (deps.staticPodPath) this.staticPods = new StaticPodSource({ path: deps.staticPodPath, nodeName: deps.nodeName, periodMs: deps.fileCheckFrequencyMs, logger });
    this.housekeeping = new PeriodicLoop({ name: "housekeeping", intervalMs: 2000, run: () => this.runHousekeeping(), logger: this.log });
  }

  /** The eviction manager's side of the kubelet (upstream's evictionManager wiring in NewMainKubelet). */
  private newNodePressure(settings: NodePressureSettings): NodePressure {
    const writableLayers = async (): Promise<Map<string, { bytes: number; inodes: number }>> => {
      const { stats } = await this.cri.runtime("ListContainerStats", { filter: null }, { signal: this.stop.signal });
      return new Map(stats.map((s) => [s.attributes?.id ?? "", { bytes: Number(s.writable_layer?.used_bytes?.value ?? 0), inodes: Number(s.writable_layer?.inodes_used?.value ?? 0) }]));
    };
    return new NodePressure({ ...settings, stats: { writableLayers, ...settings.stats } }, {
      activePods: () => this.podManager.pods().filter((p) => p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed" && this.podWorkers.isActive(p.metadata?.uid ?? "")),
      evictor: {
        evict: (pod, gracePeriodSeconds, status) => this.podWorkers.terminate(pod.metadata?.uid ?? "", { phase: "Failed", ...status }, gracePeriodSeconds),
        // Upstream's podResourcesAreReclaimed: containers stopped and volumes gone (a memory emptyDir's pages are
        // freed only when its tmpfs is unmounted).
        isCleanedUp: (uid) => {
          const state = this.podWorkers.state(uid);
          return (state === undefined || state.kind === "terminated") && this.volumes.isTornDown(uid);
        },
      },
      reclaimer: {
        deleteAllUnusedContainers: (signal) => this.containerGC.deleteAllUnusedContainers(signal),
        deleteUnusedImages: async (signal) => this.imageGC?.deleteUnusedImages(signal),
      },
      events: {
        node: (type, reason, message) => this.events.event(nodeRef(this.d.nodeName), type, reason, message),
        pod: (pod, type, reason, message) => this.events.event(podRef(pod), type, reason, message),
      },
      containerNames: (uid) => new Map(this.podCache.get(uid).status.containers.map((c) => [c.id, c.name])),
      onConditions: () => this.nodeStatus?.poke(),
      logger: this.d.logger,
    });
  }

  /** The node's pressure conditions for its status (all false without an eviction manager). */
  pressureFlags(): PressureFlags {
    const c = this.nodePressure?.nodeConditions() ?? [];
    return { memory: c.includes("MemoryPressure"), disk: c.includes("DiskPressure"), pid: c.includes("PIDPressure") };
  }

  /**
   * The pod's service link variables. Upstream refuses to build an environment before the Services have been
   * listed once (a container started before would miss them): the wait is bounded, then the container waits
   * with CreateContainerConfigError.
   */
  private async serviceEnv(pod: V1Pod, signal?: AbortSignal): Promise<{ key: string; value: string }[]> {
    const informer = this.serviceInformer;
    if (!informer) return [];
    if (!informer.synced) {
      const timeout = AbortSignal.timeout(10_000);
      await informer.waitForSync(signal ? AbortSignal.any([signal, timeout]) : timeout).catch((err: unknown) => {
        if (signal?.aborted) throw err;
        throw new DeckhandError("Unavailable", "services have not yet been read at least once, cannot construct envvars", { cause: err });
      });
    }
    return serviceEnv(informer.list(), pod.metadata?.namespace ?? "", pod.spec?.enableServiceLinks !== false);
  }

  /** The pod is gone for good (removed from its sources and from the node): every per-pod state goes. */
  forget(uid: string): void {
    for (const owner of this.podStateOwners) owner.forgetPod(uid);
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
    if (this.podManager.isRejected(uid)) return;
    if (this.podWorkers.state(uid) === undefined && !this.podManager.has(uid) && !this.admit(pod)) return;
    const previous = this.podManager.get(uid);
    this.podManager.set(pod);
    // What the API holds is the base of the next status patch, and a status someone else changed is resent.
    if (pod.status && !this.staticPods?.has(uid)) this.statusManager.reconcile(uid, uid, toPodStatus(pod.status));
    // As upstream's pod config: an update that changes only the status (our own patches' echoes, above all)
    // is reconciled, not synced, unless the pod's readiness gates depend on it.
    if (previous && !podsDifferSemantically(previous, pod) && !readinessGatesChanged(previous, pod)) this.podWorkers.refresh(pod);
    else this.podWorkers.update(pod);
  }

  /** Upstream's canAdmitPod for a pod seen for the first time; a refused pod fails with the reason. */
  private admit(pod: V1Pod): boolean {
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed" || pod.metadata?.deletionTimestamp) return true;
    // Fields this kubelet does not implement come first: such a pod must not count against resources.
    const supported = checkSupported(pod);
    if (!supported.admit) return this.refuse(pod, supported);
    for (const w of supported.warnings) this.events.event(podRef(pod), "Warning", w.reason, w.message);
    // The eviction manager's admit handler comes first among upstream's.
    const pressure = admitUnderPressure(pod, this.nodePressure?.nodeConditions() ?? [], isCriticalPod(pod), qosClass(pod) === "BestEffort");
    if (!pressure.admit) return this.refuse(pod, pressure);
    const allocatable = this.d.allocatable?.();
    if (!allocatable) return true;
    const result = admitPod(pod, this.activePods(), allocatable);
    if (result.admit) return true;
    return this.refuse(pod, result);
  }

  /** Upstream's activePods: admitted, not finished, and not yet terminated by their worker. */
  private activePods(): V1Pod[] {
    return this.podManager.pods().filter((p) => p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed" && this.podWorkers.isActive(p.metadata?.uid ?? ""));
  }

  /** A refused pod fails with the reason in its status and a Warning event, and is never run. */
  private refuse(pod: V1Pod, result: { reason: string; message: string }): false {
    const { reason, message } = result;
    const uid = pod.metadata?.uid ?? "";
    this.podManager.reject(uid);
    this.log.warn({ pod: `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`, reason }, message);
    this.events.event(podRef(pod), "Warning", reason, message);
    const key = this.apiKey(pod);
    // Keep what the API has (other components' conditions): only phase, reason and message change.
    if (key) this.statusManager.setStatus(uid, key, { ...toPodStatus(pod.status ?? {}), phase: "Failed", reason, message });
    return false;
  }

  private podRemoved(pod: V1Pod): void {
    if (pod.metadata?.annotations?.[CONFIG_MIRROR_ANNOTATION] !== undefined) {
      this.mirrors?.forget(pod);
      return;
    }
    const uid = pod.metadata?.uid ?? "";
    this.podManager.delete(uid);
    // A refused pod never had a worker: nothing to stop, its state goes now.
    if (this.podManager.isRejected(uid)) this.forget(uid);
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
    // The QoS cgroups exist (with node allocatable) before any pod cgroup is made below them.
    await this.qosCgroups?.start(s);
    this.pleg.onEvent((e) => this.podWorkers.wake(e.uid));
    this.pleg.start(s);
    this.podWorkers.start(s);
    this.prober.start(s);
    this.prober.onUpdate((u) => this.podWorkers.wake(u.podUid));
    this.containerGC.start(s);
    this.imageGC?.start(s);
    this.nodePressure?.start(s);
    this.containerLogs?.start(s);
    this.volumeSources.start?.(s);
    this.serviceInformer?.start(s);
    if (this.d.client) {
      this.statusManager.start(s);
      this.nodeStatus?.start(s);
      this.lease?.start(s);
      this.mirrors?.start(s);
    }
    const informer = this.podInformer;
    if (informer) {
      informer.on({
        added: (p) => {
          if (!this.apiBatch.hold(p)) this.podUpdated(p);
        },
        updated: (o, p) => {
          // The cache is keyed by name: after a relist, a pod deleted and recreated under the same name (a
          // StatefulSet's) arrives as an update with another uid. The old one must go.
          if (o.metadata?.uid !== p.metadata?.uid && !this.apiBatch.drop(o.metadata?.uid ?? "")) this.podRemoved(o);
          if (!this.apiBatch.hold(p)) this.podUpdated(p);
        },
        deleted: (p) => {
          if (!this.apiBatch.drop(p.metadata?.uid ?? "")) this.podRemoved(p);
        },
      });
      informer.start(s);
      void informer.waitForSync(s).then(
        () => {
          for (const p of this.apiBatch.release()) this.podUpdated(p);
        },
        () => undefined,
      );
    }
    if (this.staticPods) {
      this.staticPods.on({
        updated: (p) => {
          if (!this.staticBatch.hold(p)) this.staticPodUpdated(p);
        },
        removed: (p) => {
          if (this.staticBatch.drop(p.metadata?.uid ?? "")) return;
          this.podRemoved(p);
          void this.mirrors?.remove(p);
        },
        synced: () => {
          for (const p of this.staticBatch.release()) this.staticPodUpdated(p);
          this.staticSyncedResolve();
        },
      });
      this.staticPods.start(s);
    } else this.staticSyncedResolve();
    void Promise.all([this.nodeStatus?.registered, informer?.waitForSync(s), this.staticSynced]).then(
      () => this.readyResolve(),
      () => undefined, // stopped before: never ready
    );
    this.housekeeping.start(s);
  }

  private staticPodUpdated(pod: V1Pod): void {
    this.podUpdated(pod);
    void this.mirrors?.ensure(pod);
  }

  /**
   * Upstream's ShouldPodContentBeRemoved: a pod deleted (or gone from its source) whose worker has terminated
   * it, or, once every source has synced, a pod the kubelet does not know at all. A finished pod still in its
   * source keeps its dead containers (and their logs).
   */
  private podContentMayGo(uid: string): boolean {
    const state = this.podWorkers.state(uid);
    if (state) return state.kind === "terminated" && state.reason !== "Terminal";
    return !this.podManager.has(uid) && this.sourcesReady();
  }

  /** Whether every pod source has delivered its first full state (before that, nothing is an orphan). */
  private sourcesReady(): boolean {
    return (this.podInformer?.synced ?? true) && (this.staticPods?.synced ?? true) && !this.apiBatch.open && !this.staticBatch.open;
  }

  /** Kills and removes pods the runtime runs that no source wants (deleted while we were down, or leftovers). */
  private async cleanupOrphans(): Promise<void> {
    if (!this.pleg.hasRelisted) return;
    const known = new Set(this.podWorkers.uids());
    const orphans = [...this.pleg.runtimePods()].filter(([uid]) => !known.has(uid) && !this.podManager.has(uid));
    // In parallel, each on its own: one that fails must not hold back the others. Grace 1 s, as upstream kills
    // runtime pods it has no spec for.
    await Promise.all(
      orphans.map(async ([uid, pod]) => {
        try {
          this.log.info({ pod: `${pod.namespace}/${pod.name}`, podUID: uid }, "removing a pod no source wants");
          const status = await this.runtime.podStatus(uid, this.stop.signal);
          await this.runtime.killPodContainers(undefined, status, 1, this.stop.signal);
          await this.runtime.removePod(uid, pod.namespace, pod.name, this.stop.signal);
          await this.volumes.removePod(uid, this.stop.signal);
          this.forget(uid);
        } catch (err) {
          this.log.warn({ podUID: uid, err: errorMessage(err) }, "could not remove an orphaned pod; will retry");
        }
      }),
    );
  }

  /**
   * Upstream's cleanupOrphanedPodDirs: pod folders (and their volumes) of pods no source wants and the runtime
   * no longer runs, e.g. pods deleted while the kubelet was down.
   */
  private async cleanupOrphanedPodDirs(): Promise<void> {
    if (!this.pleg.hasRelisted) return;
    const keep = new Set([...this.podWorkers.uids(), ...this.podManager.pods().map((p) => p.metadata?.uid ?? ""), ...[...this.pleg.runtimePods()].map(([uid]) => uid)]);
    await this.volumes.cleanupOrphans(keep, this.stop.signal);
  }

  private async runHousekeeping(): Promise<void> {
    if (!this.sourcesReady()) return;
    this.prober.cleanupPods(new Set(this.podWorkers.uids()));
    this.runtime.gcBackOffs();
    await this.cleanupOrphans();
    await this.cleanupOrphanedPodDirs();
    await this.mirrors?.deleteOrphans();
  }

  /**
   * Stops the kubelet; pods keep running in the runtime (a restarted kubelet adopts them). Every part is told
   * to stop at once (the start signal aborts: work under way is cancelled), then each is drained in this order,
   * one after the other: the pod sources (no new work), housekeeping, the pod workers, the prober (its probes
   * under way end), the PLEG, the container GC, the log rotation, the status manager (its pending statuses sent once more), the
   * node status and the Lease, the event recorder (queued events sent), and the CRI connection last. A step that fails is logged and the next runs;
   * the failures are thrown together at the end.
   */
  async close(): Promise<void> {
    this.stop.abort();
    const steps: ShutdownStep[] = [
      ["pod informer", this.podInformer && (() => this.podInformer?.close())],
      ["static pod source", this.staticPods && (() => this.staticPods?.close())],
      ["housekeeping", () => this.housekeeping.close()],
      ["QoS cgroups", this.qosCgroups && (() => this.qosCgroups?.close())],
      ["pod workers", () => this.podWorkers.close()],
      ["prober", () => this.prober.close()],
      ["PLEG", () => this.pleg.close()],
      ["eviction manager", this.nodePressure && (() => this.nodePressure?.close())],
      ["container GC", () => this.containerGC.close()],
      ["image GC", this.imageGC && (() => this.imageGC?.close())],
      ["container log rotation", this.containerLogs && (() => this.containerLogs?.close())],
      ["mirror pods", this.mirrors && (() => this.mirrors?.close())],
      ["volume sources", this.volumeSources.close && (() => this.volumeSources.close?.())],
      ["mount helper", this.mounter.close && (() => this.mounter.close?.())],
      ["service informer", this.serviceInformer && (() => this.serviceInformer?.close())],
      ["status manager", () => this.statusManager.close()],
      ["node status", this.nodeStatus && (() => this.nodeStatus?.close())],
      ["node lease", this.lease && (() => this.lease?.close())],
      ["events", this.events instanceof ApiEventRecorder ? () => (this.events as ApiEventRecorder).close() : undefined],
      ["container runtime connection", () => this.cri.close()],
    ];
    await shutdownInOrder(steps, this.log);
  }
}

/** One step of a shutdown: its name for the log, and what to run (undefined: a part this kubelet does not have). */
export type ShutdownStep = [name: string, run: (() => Promise<void> | void) | undefined];

/**
 * Runs the steps one after the other; a step that fails is logged and the next still runs; the failures are
 * thrown together at the end (an AggregateError naming each step), so none is swallowed.
 */
export async function shutdownInOrder(steps: readonly ShutdownStep[], log: Logger): Promise<void> {
  const failures: Error[] = [];
  for (const [name, run] of steps) {
    if (!run) continue;
    try {
      await run();
    } catch (err) {
      log.error({ step: name, err: errorMessage(err) }, "shutdown step failed");
      failures.push(new Error(`${name}: ${errorMessage(err)}`, { cause: err }));
    }
  }
  if (failures.length > 0) throw new AggregateError(failures, `kubelet shutdown: ${failures.length} step(s) failed`);
}
