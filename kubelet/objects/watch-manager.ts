/**
 * ConfigMaps and Secrets the node's pods reference, kept by one watch per object (upstream's watch-based
 * configmap/secret managers, pkg/kubelet/util/manager/watch_based_manager.go): the node authorizer lets a node
 * read only the objects its pods reference, by name, so each object gets a list+watch with a
 * `metadata.name` field selector, started when the first pod referencing it registers and stopped when the
 * last one goes. A change is handed to `onChange` (the kubelet wakes the pods that use the object, whose next
 * sync rewrites their volumes).
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "../../src-shared/log.ts";
import { DeckhandError } from "../../src-shared/errors.ts";
import type { KubeClient } from "../../src-shared/kube/client.ts";
import { Informer } from "../../src-shared/kube/informer.ts";

export type ObjectKind = "configmaps" | "secrets";

interface Watch {
  informer: Informer<KubernetesObject>;
  pods: Set<string>;
}

export interface WatchManagerOptions {
  client: KubeClient;
  kind: ObjectKind;
  logger: Logger;
  /** How long a read waits for a new watch's first list; default 10 s. */
  syncTimeoutMs?: number;
}

export class ObjectWatchManager<T extends KubernetesObject> {
  private readonly o: WatchManagerOptions;
  private readonly log: Logger;
  private readonly watches = new Map<string, Watch>();
  /** Keys each pod references. */
  private readonly byPod = new Map<string, Set<string>>();
  private readonly listeners: ((namespace: string, name: string, pods: ReadonlySet<string>) => void)[] = [];
  private signal: AbortSignal | undefined;

  constructor(options: WatchManagerOptions) {
    this.o = options;
    this.log = options.logger.child({ component: `${options.kind}-manager` });
  }

  start(signal: AbortSignal): void {
    this.signal = signal;
  }

  onChange(listener: (namespace: string, name: string, pods: ReadonlySet<string>) => void): void {
    this.listeners.push(listener);
  }

  /** The objects `uid` references now (namespace/name keys); watches start and stop accordingly. */
  register(uid: string, namespace: string, names: Iterable<string>): void {
    const keys = new Set([...names].map((n) => `${namespace}/${n}`));
    const before = this.byPod.get(uid) ?? new Set<string>();
    for (const k of keys) if (!before.has(k)) this.watch(k).pods.add(uid);
    for (const k of before) if (!keys.has(k)) this.release(k, uid);
    if (keys.size === 0) this.byPod.delete(uid);
    else this.byPod.set(uid, keys);
  }

  unregister(uid: string): void {
    this.register(uid, "", []);
  }

  private watch(key: string): Watch {
    const existing = this.watches.get(key);
    if (existing) return existing;
    const [namespace, name] = key.split("/") as [string, string];
    const informer = new Informer<KubernetesObject>({
      client: this.o.client,
      resource: { group: "", version: "v1", resource: this.o.kind, namespace },
      fieldSelector: `metadata.name=${name}`,
      logger: this.log,
      backoff: { initialMs: 500, maxMs: 5000 },
    });
    const w: Watch = { informer, pods: new Set() };
    const changed = (): void => {
      for (const l of this.listeners) l(namespace, name, w.pods);
    };
    // An immutable object never changes again: its watch stops and the cache keeps it, as upstream's objectCache
    // stops the reflector (a node with many pods on immutable objects holds that many fewer watches).
    const seen = (object: KubernetesObject): void => {
      changed();
      if ((object as { immutable?: boolean }).immutable !== true) return;
      this.log.debug({ object: key }, "object is immutable; its watch stops");
      void informer.close();
    };
    informer.on({ added: seen, updated: (_previous, object) => seen(object), deleted: changed });
    if (this.signal) informer.start(this.signal);
    this.watches.set(key, w);
    return w;
  }

  private release(key: string, uid: string): void {
    const w = this.watches.get(key);
    if (!w) return;
    w.pods.delete(uid);
    if (w.pods.size > 0) return;
    this.watches.delete(key);
    void w.informer.close();
  }

  /**
   * The object as its watch has it (undefined: it does not exist). A pod must have registered it. Waits for a
   * new watch's first list, and fails after the timeout as upstream ("failed to sync ... cache").
   */
  async get(namespace: string, name: string, signal?: AbortSignal): Promise<T | undefined> {
    const key = `${namespace}/${name}`;
    const w = this.watches.get(key);
    if (!w) throw new DeckhandError("FailedPrecondition", `${this.o.kind} ${JSON.stringify(key)} is not registered by any pod`);
    if (!w.informer.synced) {
      const timeout = AbortSignal.timeout(this.o.syncTimeoutMs ?? 10_000);
      const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
      try {
        await w.informer.waitForSync(both);
      } catch (err) {
        if (signal?.aborted) throw new DeckhandError("Cancelled", "cancelled", { cause: err });
        throw new DeckhandError("Unavailable", `failed to sync ${this.o.kind === "configmaps" ? "configmap" : "secret"} cache: timed out waiting for the condition`, { cause: err });
      }
    }
    return w.informer.get(key) as T | undefined;
  }

  async close(): Promise<void> {
    const all = [...this.watches.values()];
    this.watches.clear();
    this.byPod.clear();
    await Promise.all(all.map((w) => w.informer.close()));
  }
}
