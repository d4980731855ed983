/**
 * Static pods from the manifest folder (staticPodPath), as upstream's file source: every `fileCheckFrequency`
 * (20 s) and whenever the folder changes, each manifest (YAML or JSON, one Pod per file, dot-files ignored)
 * becomes a pod named `<name>-<nodeName>` in its namespace (default "default"), bound to this node, whose uid
 * is a hash of its content, the node and the file (so an edited manifest is a new pod), annotated with
 * `kubernetes.io/config.source: file` and `config.hash`. A bad manifest is logged and skipped, never fatal.
 */
import { createHash } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { parseConfigDocument } from "../../src-shared/config-decode.ts";
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import { systemClock } from "../../src-shared/clock.ts";
import { Wakeup } from "../../src-shared/loop.ts";
import { CONFIG_HASH_ANNOTATION, CONFIG_SOURCE_ANNOTATION } from "../runtime/labels.ts";
import { defaultPullPolicy } from "../images/image-manager.ts";

export interface StaticPodHandler {
  updated(pod: V1Pod): void;
  removed(pod: V1Pod): void;
  /** After the first scan has delivered every manifest (the source's first full list). */
  synced?(): void;
}

/** Defaults the API server would apply to a pod it stores; static pods never pass through it. */
export function applyPodDefaults(pod: V1Pod): V1Pod {
  const spec = pod.spec;
  if (!spec) return pod;
  spec.restartPolicy ??= "Always";
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= "ClusterFirst";
  spec.schedulerName ??= "default-scheduler";
  spec.enableServiceLinks ??= true;
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    c.imagePullPolicy ??= c.image ? defaultPullPolicy(c.image) : "IfNotPresent";
    c.terminationMessagePath ??= "/dev/termination-log";
    c.terminationMessagePolicy ??= "File";
    for (const p of c.ports ?? []) p.protocol ??= "TCP";
  }
  return pod;
}

/** Turns a manifest's text into the pod the kubelet runs; throws with the file and field at fault. */
export function staticPodFromManifest(text: string, file: string, nodeName: string): V1Pod {
  // YAML as upstream reads manifests (sigs.k8s.io/yaml's YAML 1.1 into JSON): the one parser of config files.
  const parsed = parseConfigDocument(text);
  if ("problem" in parsed) throw new Error(`${file}: not YAML or JSON: ${parsed.problem.detail}`);
  const pod = parsed.doc as V1Pod | null;
  if (!pod || typeof pod !== "object" || Array.isArray(pod)) throw new Error(`${file}: empty manifest`);
  if (pod.kind !== "Pod") throw new Error(`${file}: kind: expected "Pod", got ${JSON.stringify(pod.kind)}`);
  if (pod.apiVersion !== "v1") throw new Error(`${file}: apiVersion: expected "v1", got ${JSON.stringify(pod.apiVersion)}`);
  if (!pod.metadata?.name) throw new Error(`${file}: metadata.name: Required value`);
  if (!pod.spec?.containers?.length) throw new Error(`${file}: spec.containers: Required value`);
  const hasher = createHash("md5");
  hasher.update(JSON.stringify(pod));
  hasher.update(`host:${nodeName}`);
  hasher.update(`file:${file}`);
  const uid = hasher.digest("hex");
  pod.metadata.namespace ||= "default";
  pod.metadata.name = `${pod.metadata.name}-${nodeName}`;
  pod.metadata.uid = uid;
  pod.metadata.annotations = { ...(pod.metadata.annotations ?? {}), [CONFIG_SOURCE_ANNOTATION]: "file", [CONFIG_HASH_ANNOTATION]: uid, "kubernetes.io/config.seen": new Date().toISOString() };
  pod.spec.nodeName = nodeName;
  return applyPodDefaults(pod);
}

export class StaticPodSource {
  private readonly path: string;
  private readonly nodeName: string;
  private readonly periodMs: number;
  private readonly log: Logger;
  private readonly handlers: StaticPodHandler[] = [];
  /** file → pod */
  private pods = new Map<string, V1Pod>();
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;
  private watcher: FSWatcher | undefined;
  private readonly wakeup = new Wakeup();
  synced = false;

  constructor(options: { path: string; nodeName: string; periodMs?: number; logger: Logger }) {
    this.path = options.path;
    this.nodeName = options.nodeName;
    this.periodMs = options.periodMs ?? 20_000;
    this.log = options.logger.child({ component: "static-pods", path: options.path });
  }

  on(handler: StaticPodHandler): void {
    this.handlers.push(handler);
  }

  has(uid: string): boolean {
    for (const p of this.pods.values()) if (p.metadata?.uid === uid) return true;
    return false;
  }

  start(signal: AbortSignal): void {
    signal.addEventListener("abort", () => this.stop.abort(), { once: true });
    try {
      this.watcher = watch(this.path, () => this.wakeup.wake());
      this.watcher.on("error", () => undefined);
    } catch {
      // The folder may not exist yet: the periodic scan finds it later.
    }
    this.loop ??= this.run();
  }

  async close(): Promise<void> {
    this.stop.abort();
    this.watcher?.close();
    await this.loop;
  }

  /** One scan of the folder; delivers what changed. */
  async scan(): Promise<void> {
    const next = new Map<string, V1Pod>();
    let files: string[] = [];
    try {
      files = (await readdir(this.path)).filter((f) => !f.startsWith(".")).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.log.warn({ err: errorMessage(err) }, "cannot read the static pod folder");
    }
    for (const f of files) {
      const file = join(this.path, f);
      try {
        const text = await readFile(file, "utf8");
        next.set(file, staticPodFromManifest(text, file, this.nodeName));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EISDIR") continue;
        this.log.error({ err: errorMessage(err) }, "skipping a static pod manifest");
      }
    }
    const before = this.pods;
    this.pods = next;
    for (const [file, pod] of before) {
      const now = next.get(file);
      if (!now || now.metadata?.uid !== pod.metadata?.uid) for (const h of this.handlers) h.removed(pod);
    }
    for (const [file, pod] of next) {
      const was = before.get(file);
      if (!was || was.metadata?.uid !== pod.metadata?.uid) for (const h of this.handlers) h.updated(pod);
    }
    if (!this.synced) {
      this.synced = true;
      for (const h of this.handlers) h.synced?.();
    }
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    while (!signal.aborted) {
      try {
        await this.scan();
      } catch (err) {
        this.log.error({ err: errorMessage(err) }, "static pod scan failed; will retry");
      }
      await this.wakeup.wait(this.periodMs, signal);
      // Let a burst of file events settle into one scan.
      await systemClock.sleep(100, signal).catch(() => undefined);
    }
  }
}
