/**
 * Where the proxier's inputs come from. The proxier only implements `ProxyEventHandler` (upstream's
 * ServiceHandler + EndpointSliceHandler + NodeHandler): add/update/delete of Services, EndpointSlices and its
 * own Node, plus "synced" once each initial list has been delivered. Anything that produces those events can
 * drive it:
 *
 *  - `WatchEventDispatcher` turns Kubernetes watch events (ADDED/MODIFIED/DELETED + object) into handler calls,
 *    remembering the previous object for updates. The API-server source (src-shared/kube informers: list +
 *    watch per resource, relist on 410) feeds one event per watch event into it, and `synced(kind)` after
 *    each initial list. See `main.ts` (`apiSource`) for the seam.
 *  - `StreamSource` reads the same events as newline-delimited JSON from a stream (stdin with
 *    `--watch-events-from=-`): the test harness and the demo drive a real kube-proxy process that way.
 */
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import type { V1EndpointSlice, V1Node, V1Service } from "@kubernetes/client-node";
import type { Logger } from "../src-shared/log.ts";

export interface ProxyEventHandler {
  onServiceAdd(service: V1Service): void;
  onServiceUpdate(oldService: V1Service, service: V1Service): void;
  onServiceDelete(service: V1Service): void;
  onServicesSynced(): void;
  onEndpointSliceAdd(slice: V1EndpointSlice): void;
  onEndpointSliceUpdate(oldSlice: V1EndpointSlice, slice: V1EndpointSlice): void;
  onEndpointSliceDelete(slice: V1EndpointSlice): void;
  onEndpointSlicesSynced(): void;
  onNodeAdd(node: V1Node): void;
  onNodeUpdate(oldNode: V1Node, node: V1Node): void;
  onNodeDelete(node: V1Node): void;
  onNodeSynced(): void;
}

/** Something that delivers events to a handler until closed. */
export interface ProxySource {
  start(handler: ProxyEventHandler, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export type ResourceKind = "Service" | "EndpointSlice" | "Node";
export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

/** One line of the NDJSON feed: a watch event, or a "SYNCED" marker for a kind. */
export type FeedEvent =
  | { type: WatchEventType; object: (V1Service | V1EndpointSlice | V1Node) & { kind?: string } }
  | { type: "SYNCED"; kind: ResourceKind };

function objectKey(obj: { metadata?: { namespace?: string; name?: string } }): string {
  return `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}

/** Watch events → handler calls, with the last known object of each key as the "old" one. */
export class WatchEventDispatcher {
  private readonly handler: ProxyEventHandler;
  private readonly known: Record<ResourceKind, Map<string, unknown>> = { Service: new Map(), EndpointSlice: new Map(), Node: new Map() };

  constructor(handler: ProxyEventHandler) {
    this.handler = handler;
  }

  event(kind: ResourceKind, type: WatchEventType, object: V1Service | V1EndpointSlice | V1Node): void {
    const key = objectKey(object);
    const store = this.known[kind];
    const old = store.get(key);
    if (type === "DELETED") {
      store.delete(key);
      const last = old ?? object;
      if (kind === "Service") this.handler.onServiceDelete(last);
      else if (kind === "EndpointSlice") this.handler.onEndpointSliceDelete(last as V1EndpointSlice);
      else this.handler.onNodeDelete(last);
      return;
    }
    store.set(key, object);
    if (old === undefined) {
      if (kind === "Service") this.handler.onServiceAdd(object as V1Service);
      else if (kind === "EndpointSlice") this.handler.onEndpointSliceAdd(object as V1EndpointSlice);
      else this.handler.onNodeAdd(object as V1Node);
    } else if (kind === "Service") this.handler.onServiceUpdate(old as V1Service, object as V1Service);
    else if (kind === "EndpointSlice") this.handler.onEndpointSliceUpdate(old as V1EndpointSlice, object as V1EndpointSlice);
    else this.handler.onNodeUpdate(old as V1Node, object as V1Node);
  }

  /**
   * A relist (after a 410 Gone) replaces the whole set of a kind: objects missing from it are deleted, the
   * others arrive as updates, then the kind is marked synced.
   */
  replace(kind: ResourceKind, objects: readonly (V1Service | V1EndpointSlice | V1Node)[]): void {
    const keep = new Set(objects.map(objectKey));
    for (const [key, obj] of [...this.known[kind]]) if (!keep.has(key)) this.event(kind, "DELETED", obj as V1Service);
    for (const o of objects) this.event(kind, "MODIFIED", o);
    this.synced(kind);
  }

  synced(kind: ResourceKind): void {
    if (kind === "Service") this.handler.onServicesSynced();
    else if (kind === "EndpointSlice") this.handler.onEndpointSlicesSynced();
    else this.handler.onNodeSynced();
  }
}

function isKind(k: unknown): k is ResourceKind {
  return k === "Service" || k === "EndpointSlice" || k === "Node";
}

/**
 * Reads FeedEvents, one JSON object per line, from a stream. Objects name their kind in `object.kind`.
 * A malformed line is logged and skipped. End of stream leaves the proxier running with what it has.
 */
export class StreamSource implements ProxySource {
  private readonly input: Readable;
  private readonly log: Logger;
  private rl: ReturnType<typeof createInterface> | undefined;

  constructor(input: Readable, log: Logger) {
    this.input = input;
    this.log = log;
  }

  start(handler: ProxyEventHandler, signal: AbortSignal): Promise<void> {
    const dispatcher = new WatchEventDispatcher(handler);
    const rl = createInterface({ input: this.input, crlfDelay: Infinity });
    this.rl = rl;
    rl.on("line", (line) => {
      if (line.trim() === "") return;
      try {
        const ev = JSON.parse(line) as FeedEvent;
        if (ev.type === "SYNCED") {
          if (!isKind(ev.kind)) throw new Error(`unknown kind ${JSON.stringify(ev.kind)}`);
          dispatcher.synced(ev.kind);
          return;
        }
        const kind = ev.object.kind;
        if (!isKind(kind)) throw new Error(`object of unknown kind ${JSON.stringify(kind)}`);
        if (ev.type !== "ADDED" && ev.type !== "MODIFIED" && ev.type !== "DELETED") throw new Error(`unknown event type ${JSON.stringify(ev.type)}`);
        dispatcher.event(kind, ev.type, ev.object);
      } catch (err) {
        this.log.warn({ err, line: line.slice(0, 200) }, "ignoring a malformed watch event");
      }
    });
    rl.on("close", () => this.log.info("watch event stream ended; keeping the current state"));
    signal.addEventListener("abort", () => rl.close(), { once: true });
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.rl?.close();
    return Promise.resolve();
  }
}
