/**
 * A RuntimeManager on the in-memory FakeRuntime with a FakeClock, recorded events and in-memory pod cgroups:
 * what the unit tests of the runtime manager, the PLEG and the container GC start from.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../src-shared/log.ts";
import type { EventRecorder, EventType, ObjectReference } from "../../kubelet/events.ts";
import { ImageManager } from "../../kubelet/images/image-manager.ts";
import type { PodCgroups } from "../../kubelet/cm/pod-cgroups.ts";
import type { PodResourceConfig } from "../../kubelet/cm/pod-resources.ts";
import type { QOSClass } from "../../kubelet/qos.ts";
import { RuntimeManager, type SyncPodResult } from "../../kubelet/runtime/runtime-manager.ts";
import type { NodeContext } from "../../kubelet/runtime/sandbox-config.ts";
import type { TerminationMessageFiles } from "../../kubelet/lifecycle/termination-files.ts";
import type { Input, Mount } from "../../kubelet/cri/types.ts";
import { FakeClock } from "./fake-clock.ts";
import { FakeRuntime } from "./fake-runtime.ts";

export const TEST_IMAGE = "busybox:1";

export interface RecordedEvent {
  type: EventType;
  reason: string;
  message: string;
  fieldPath: string | undefined;
}

/** Pod cgroups kept in a map: which pods have one, with what limits. */
export class FakePodCgroups implements PodCgroups {
  readonly pods = new Map<string, { qos: QOSClass; resources: PodResourceConfig }>();

  ensure(uid: string, qos: QOSClass, resources: PodResourceConfig): Promise<string> {
    this.pods.set(uid, { qos, resources });
    return Promise.resolve(`/kubepods/pod${uid}`);
  }

  remove(uid: string): Promise<void> {
    this.pods.delete(uid);
    return Promise.resolve();
  }
}

export function testNode(): NodeContext {
  return {
    nodeName: "node-a",
    cgroupRoot: "/",
    // Never created: removePod only removes a pod's folder below it, which no unit test writes.
    podLogsDir: join(tmpdir(), `deckhand-unit-pod-logs-${process.pid}`),
    clusterDNS: ["10.96.0.10"],
    clusterDomain: "cluster.local",
    hostDNS: { servers: ["192.0.2.53"], searches: [], options: [] },
    hostIPs: ["192.0.2.10"],
    memoryCapacityBytes: 4 * 1024 ** 3,
    cpuCFSQuota: true,
    cpuCFSQuotaPeriodUs: 100_000,
  };
}

/** A pod as the API would hand it to the kubelet (uid from the name). */
export function testPod(name: string, spec: Partial<NonNullable<V1Pod["spec"]>> = {}): V1Pod {
  return {
    metadata: { name, namespace: "default", uid: `uid-${name}` },
    spec: { containers: [{ name: "app", image: TEST_IMAGE }], terminationGracePeriodSeconds: 5, ...spec },
  };
}

/** Termination message files kept in memory: the mounts handed out and the pods removed. */
export class FakeTerminationFiles implements TerminationMessageFiles {
  readonly created: { uid: string; container: string; hostPath: string }[] = [];
  readonly removed: string[] = [];

  create(uid: string, container: V1Container): Promise<Input<Mount> | undefined> {
    const hostPath = `/fake-kubelet-root/pods/${uid}/containers/${container.name}/${this.created.length.toString(16).padStart(8, "0")}`;
    this.created.push({ uid, container: container.name, hostPath });
    return Promise.resolve({ host_path: hostPath, container_path: container.terminationMessagePath ?? "/dev/termination-log" });
  }

  removePod(uid: string): Promise<void> {
    this.removed.push(uid);
    return Promise.resolve();
  }
}

export function runtimeFixture(options: { images?: string[]; crashLoopMaxMs?: number } = {}) {
  const clock = new FakeClock();
  const fake = new FakeRuntime({ clock, images: options.images ?? [TEST_IMAGE] });
  const events: RecordedEvent[] = [];
  const recorder: EventRecorder = {
    event: (object: ObjectReference, type: EventType, reason: string, message: string) => events.push({ type, reason, message, fieldPath: object.fieldPath }),
  };
  const cgroups = new FakePodCgroups();
  const logger = silentLogger();
  const images = new ImageManager({ images: fake, logger, clock });
  const node = testNode();
  const terminationFiles = new FakeTerminationFiles();
  const manager = new RuntimeManager({ runtime: fake, images, cgroups, events: recorder, node: () => node, logger, clock, terminationFiles, ...(options.crashLoopMaxMs ? { crashLoopMaxMs: options.crashLoopMaxMs } : {}) });
  /** One sync as the pod worker runs it: read the pod's state, then act on it. */
  const sync = async (pod: V1Pod, signal?: AbortSignal): Promise<SyncPodResult> => manager.syncPod(pod, await manager.podStatus(pod.metadata?.uid ?? ""), () => Promise.resolve([]), {}, signal);
  /** The pod's containers in the runtime by name (newest attempt), with their state. */
  const containersOf = (pod: V1Pod) => fake.containers().filter((c) => c.labels["io.kubernetes.pod.uid"] === pod.metadata?.uid);
  const latest = (pod: V1Pod, name: string) =>
    containersOf(pod)
      .filter((c) => c.metadata?.name === name)
      .sort((a, b) => (b.metadata?.attempt ?? 0) - (a.metadata?.attempt ?? 0))[0];
  return { clock, fake, events, cgroups, images, manager, node, logger, sync, containersOf, latest, terminationFiles };
}
