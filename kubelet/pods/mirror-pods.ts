/**
 * Mirror pods: the API's read-only image of each static pod (same name, namespace and spec, annotated
 * `kubernetes.io/config.mirror: <static pod hash>`, owned by the Node), so kubectl shows static pods and their
 * status. A mirror pod deleted by someone, or left from an older manifest, is recreated; one whose static pod
 * is gone is deleted (upstream's mirror_client.go and the kubelet's mirror pod handling), including one left
 * from a manifest removed while the kubelet was down, once the pod sources have synced (upstream's
 * HandlePodCleanups deleting orphaned mirror pods).
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import { isApiError, type KubeClient } from "../../src-shared/kube/client.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import { CONFIG_HASH_ANNOTATION, CONFIG_MIRROR_ANNOTATION } from "../runtime/labels.ts";
import type { PodKey } from "../status/status-manager.ts";

function keyOf(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
}

export class MirrorPods {
  private readonly client: KubeClient;
  private readonly nodeName: string;
  private readonly log: Logger;
  private readonly nodeUid: () => string | undefined;
  /** Told when a static pod's mirror is known, so its status (which goes there) is sent without waiting. */
  private readonly onMirror: (staticUid: string) => void;
  /** ns/name → the static pod we keep a mirror for. */
  private readonly statics = new Map<string, V1Pod>();
  /** ns/name → the mirror pod's uid in the API. */
  private readonly mirrors = new Map<string, { uid: string; hash: string }>();
  /** ns/name → every mirror pod the pod watch shows on this node (orphans included). */
  private readonly observed = new Map<string, V1Pod>();
  private readonly clock: Clock;
  /** Stops the retries of failed creations: the kubelet's signal, or close(). */
  private readonly stopped = new AbortController();
  private readonly retries = new Set<Promise<void>>();

  constructor(options: { client: KubeClient; nodeName: string; logger: Logger; nodeUid: () => string | undefined; onMirror?: (staticUid: string) => void; clock?: Clock }) {
    this.client = options.client;
    this.clock = options.clock ?? systemClock;
    this.onMirror = options.onMirror ?? (() => undefined);
    this.nodeName = options.nodeName;
    this.log = options.logger.child({ component: "mirror-pods" });
    this.nodeUid = options.nodeUid;
  }

  start(signal: AbortSignal): void {
    if (signal.aborted) this.stopped.abort();
    else signal.addEventListener("abort", () => this.stopped.abort(), { once: true });
  }

  /** Stops retrying and waits for the retries under way. */
  async close(): Promise<void> {
    this.stopped.abort();
    await Promise.allSettled([...this.retries]);
  }

  /** Where the static pod's status goes: its mirror pod, once it exists. */
  key(staticPod: V1Pod): PodKey | undefined {
    const m = this.mirrors.get(keyOf(staticPod));
    if (!m || m.hash !== staticPod.metadata?.uid) return undefined;
    return { namespace: staticPod.metadata?.namespace ?? "", name: staticPod.metadata?.name ?? "", uid: m.uid };
  }

  private ref(pod: V1Pod): { group: string; version: string; resource: string; namespace: string; name?: string } {
    return { group: "", version: "v1", resource: "pods", namespace: pod.metadata?.namespace ?? "default", name: pod.metadata?.name ?? "" };
  }

  /** Creates the mirror pod, or replaces one made from another version of the manifest. */
  async ensure(staticPod: V1Pod): Promise<void> {
    const k = keyOf(staticPod);
    this.statics.set(k, staticPod);
    const hash = staticPod.metadata?.uid ?? "";
    try {
      const existing = await this.client.get<V1Pod>(this.ref(staticPod)).catch((err: unknown) => {
        if (isApiError(err, 404)) return undefined;
        throw err;
      });
      if (existing && existing.metadata?.annotations?.[CONFIG_MIRROR_ANNOTATION] === hash && !existing.metadata.deletionTimestamp) {
        this.mirrors.set(k, { uid: existing.metadata.uid ?? "", hash });
        this.onMirror(hash);
        return;
      }
      if (existing) {
        await this.client.delete(this.ref(staticPod), { gracePeriodSeconds: 0, preconditions: { uid: existing.metadata?.uid ?? "" } }).catch((err: unknown) => {
          if (!isApiError(err, 404) && !isApiError(err, 409)) throw err;
        });
      }
      // As upstream's mirror client: no mirror pod until the Node exists, so it is always owned by it.
      const nodeUid = this.nodeUid();
      if (!nodeUid) throw new Error("the node is not registered yet");
      const { uid: _uid, resourceVersion: _rv, ...meta } = staticPod.metadata ?? {};
      const created = await this.client.create<V1Pod>({ group: "", version: "v1", resource: "pods", namespace: staticPod.metadata?.namespace ?? "default" }, {
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          ...meta,
          annotations: { ...(meta.annotations ?? {}), [CONFIG_MIRROR_ANNOTATION]: hash, [CONFIG_HASH_ANNOTATION]: hash },
          ownerReferences: [{ apiVersion: "v1", kind: "Node", name: this.nodeName, uid: nodeUid, controller: true }],
        },
        spec: staticPod.spec,
      });
      this.mirrors.set(k, { uid: created.metadata?.uid ?? "", hash });
      this.log.info({ pod: k }, "created mirror pod");
      this.onMirror(hash);
    } catch (err) {
      if (this.stopped.signal.aborted) return;
      this.log.warn({ pod: k, err: errorMessage(err) }, "unable to create the mirror pod; will retry");
      const retry = this.clock
        .sleep(1000, this.stopped.signal)
        .then(() => (this.statics.get(k) === staticPod ? this.ensure(staticPod) : undefined), () => undefined)
        .finally(() => this.retries.delete(retry));
      this.retries.add(retry);
    }
  }

  /** The static pod is gone: so goes its mirror. */
  async remove(staticPod: V1Pod): Promise<void> {
    const k = keyOf(staticPod);
    if (this.statics.get(k)?.metadata?.uid === staticPod.metadata?.uid) this.statics.delete(k);
    const m = this.mirrors.get(k);
    if (!m || m.hash !== staticPod.metadata?.uid) return;
    this.mirrors.delete(k);
    await this.client.delete(this.ref(staticPod), { gracePeriodSeconds: 0, preconditions: { uid: m.uid } }).catch((err: unknown) => {
      if (!isApiError(err, 404) && !isApiError(err, 409)) this.log.warn({ pod: k, err: errorMessage(err) }, "unable to delete the mirror pod");
    });
  }

  /** A mirror pod seen in the API (pod watch). */
  observe(mirror: V1Pod): void {
    const k = keyOf(mirror);
    this.observed.set(k, mirror);
    const hash = mirror.metadata?.annotations?.[CONFIG_MIRROR_ANNOTATION] ?? "";
    const s = this.statics.get(k);
    if (mirror.metadata?.deletionTimestamp) {
      // Deleting a mirror pod does not stop a static pod: finish the deletion, then it is recreated.
      void this.client.delete(this.ref(mirror), { gracePeriodSeconds: 0, preconditions: { uid: mirror.metadata.uid ?? "" } }).catch(() => undefined);
      return;
    }
    if (s && s.metadata?.uid === hash && this.mirrors.get(k)?.uid !== mirror.metadata?.uid) {
      this.mirrors.set(k, { uid: mirror.metadata?.uid ?? "", hash });
      this.onMirror(hash);
    }
  }

  /** A mirror pod vanished from the API: recreate it while its static pod exists. */
  forget(mirror: V1Pod): void {
    const k = keyOf(mirror);
    if (this.observed.get(k)?.metadata?.uid === mirror.metadata?.uid) this.observed.delete(k);
    const m = this.mirrors.get(k);
    if (m && m.uid === mirror.metadata?.uid) this.mirrors.delete(k);
    const s = this.statics.get(k);
    if (s) void this.ensure(s);
  }

  /** Mirror pods in the API whose static pod does not exist. Meaningful only once every source has synced. */
  orphans(): V1Pod[] {
    return [...this.observed.entries()].filter(([k]) => !this.statics.has(k)).map(([, m]) => m);
  }

  /** Deletes the orphaned mirror pods (each with its uid as precondition: a newer one of that name stays). */
  async deleteOrphans(): Promise<number> {
    let deleted = 0;
    for (const mirror of this.orphans()) {
      const k = keyOf(mirror);
      try {
        await this.client.delete(this.ref(mirror), { gracePeriodSeconds: 0, preconditions: { uid: mirror.metadata?.uid ?? "" } });
        this.log.info({ pod: k }, "deleted an orphaned mirror pod");
        deleted++;
      } catch (err) {
        if (!isApiError(err, 404) && !isApiError(err, 409)) {
          this.log.warn({ pod: k, err: errorMessage(err) }, "unable to delete an orphaned mirror pod; will retry");
          continue;
        }
      }
      if (this.observed.get(k) === mirror) this.observed.delete(k);
    }
    return deleted;
  }
}
