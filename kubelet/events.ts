/**
 * Kubernetes Events as upstream's recorder writes them (core/v1, source component "kubelet" and the node as
 * host), aggregated as client-go does: the same object, reason and message within 10 minutes bump `count` and
 * `lastTimestamp` on the existing Event instead of creating another. Sending never blocks the caller: events
 * queue (bounded) and a failed send is dropped with a log line, as upstream drops them.
 */
import type { Logger } from "../src-shared/log.ts";
import { errorMessage } from "../src-shared/errors.ts";
import { isApiError, type KubeClient } from "../src-shared/kube/client.ts";

export interface ObjectReference {
  kind: string;
  namespace?: string;
  name: string;
  uid?: string;
  apiVersion?: string;
  resourceVersion?: string;
  /** e.g. `spec.containers{web}` for container events. */
  fieldPath?: string;
}

export type EventType = "Normal" | "Warning";

export interface EventRecorder {
  event(object: ObjectReference, type: EventType, reason: string, message: string): void;
}

interface Sent {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: string;
  at: number;
}

const MAX_QUEUE = 1000;
const AGGREGATION_WINDOW_MS = 10 * 60_000;

export class ApiEventRecorder implements EventRecorder {
  private readonly client: KubeClient;
  private readonly host: string;
  private readonly log: Logger | undefined;
  private readonly queue: (() => Promise<void>)[] = [];
  private readonly sent = new Map<string, Sent>();
  private draining: Promise<void> | undefined;
  private closed = false;

  constructor(options: { client: KubeClient; nodeName: string; logger?: Logger }) {
    this.client = options.client;
    this.host = options.nodeName;
    this.log = options.logger?.child({ component: "events" });
  }

  event(object: ObjectReference, type: EventType, reason: string, message: string): void {
    if (this.closed) return;
    if (this.queue.length >= MAX_QUEUE) {
      this.log?.warn({ reason }, "event queue full; dropping event");
      return;
    }
    const at = Date.now();
    this.queue.push(() => this.send(object, type, reason, message, at));
    this.draining ??= this.drain();
  }

  private async drain(): Promise<void> {
    for (let job = this.queue.shift(); job; job = this.queue.shift()) {
      try {
        await job();
      } catch (err) {
        this.log?.debug({ err: errorMessage(err) }, "event dropped");
      }
    }
    // Cleared in the same turn the queue was found empty, so an event queued after this starts a new drain.
    this.draining = undefined;
  }

  private async send(object: ObjectReference, type: EventType, reason: string, message: string, at: number): Promise<void> {
    const namespace = object.namespace || "default";
    const key = [object.kind, namespace, object.name, object.uid ?? "", object.fieldPath ?? "", type, reason, message].join("\u0000");
    const now = new Date(at).toISOString().replace(/\.\d+Z$/, "Z");
    const previous = this.sent.get(key);
    if (previous && at - previous.at < AGGREGATION_WINDOW_MS) {
      previous.count++;
      previous.at = at;
      try {
        await this.client.patch({ group: "", version: "v1", resource: "events", namespace: previous.namespace, name: previous.name }, "merge", {
          count: previous.count,
          lastTimestamp: now,
        });
        return;
      } catch (err) {
        if (!isApiError(err, 404)) throw err;
        this.sent.delete(key); // it expired in the API: create anew
      }
    }
    const name = `${object.name}.${(BigInt(at) * 1_000_000n + BigInt(process.hrtime()[1] % 1_000_000)).toString(16)}`;
    await this.client.create({ group: "", version: "v1", resource: "events", namespace }, {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace },
      involvedObject: object,
      reason,
      message,
      type,
      source: { component: "kubelet", host: this.host },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      reportingComponent: "kubelet",
      reportingInstance: this.host,
    });
    this.sent.set(key, { name, namespace, count: 1, firstTimestamp: now, at });
    if (this.sent.size > 4096) for (const [k, v] of this.sent) if (at - v.at > AGGREGATION_WINDOW_MS) this.sent.delete(k);
  }

  /** Sends what is queued, then refuses more. */
  async close(): Promise<void> {
    this.closed = true;
    await this.draining;
  }
}

/** For code paths without an API (standalone mode, unit tests): events go to the log only. */
export class LogEventRecorder implements EventRecorder {
  private readonly log: Logger;
  constructor(log: Logger) {
    this.log = log;
  }
  event(object: ObjectReference, type: EventType, reason: string, message: string): void {
    this.log.info({ object: `${object.kind}/${object.namespace ?? ""}/${object.name}`, type, reason }, message);
  }
}

export function podRef(pod: { metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string } }, fieldPath?: string): ObjectReference {
  return {
    kind: "Pod",
    apiVersion: "v1",
    name: pod.metadata?.name ?? "",
    namespace: pod.metadata?.namespace ?? "",
    uid: pod.metadata?.uid ?? "",
    ...(fieldPath ? { fieldPath } : {}),
  };
}

/** Upstream refers to its Node in events with the node name as uid, in no namespace. */
export function nodeRef(nodeName: string): ObjectReference {
  return { kind: "Node", apiVersion: "v1", name: nodeName, uid: nodeName };
}

/**
 * Upstream's node condition events: a condition whose status changed is announced as
 * `Node <name> status is now: Node<Reason>` (KubeletReady → NodeReady, KubeletHasSufficientMemory →
 * NodeHasSufficientMemory...). Pure: which events to record for a status change.
 */
export function nodeConditionEvents(
  nodeName: string,
  previous: readonly { type: string; status: string; reason?: string }[] | undefined,
  next: readonly { type: string; status: string; reason?: string }[],
): { reason: string; message: string }[] {
  const out: { reason: string; message: string }[] = [];
  for (const c of next) {
    const before = previous?.find((p) => p.type === c.type);
    if (before && before.status === c.status) continue;
    const reason = (c.reason ?? "").replace(/^Kubelet/, "Node");
    if (reason) out.push({ reason, message: `Node ${nodeName} status is now: ${reason}` });
  }
  return out;
}
