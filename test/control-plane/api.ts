/**
 * The REST semantics of kube-apiserver over the store: get, list (selectors, pagination, resourceVersion
 * semantics), watch (replay, initial events, filtered transitions), create/update/patch with optimistic
 * concurrency, status subresources, graceful pod deletion and finalizers, deletecollection, and the
 * subresources binding, eviction and serviceaccounts/token. Authorization and NodeRestriction are checked
 * here so that every caller — HTTP or in-process — goes through them.
 *
 * Synchronous: each call is one step of the single total order of writes.
 */
import { randomUUID } from "node:crypto";
import {
  ApiError,
  alreadyExists,
  badRequest,
  conflict,
  forbiddenError,
  gone,
  internalError,
  invalid,
  invalidValue,
  methodNotAllowed,
  notFound,
  OPTIMISTIC_LOCK_MESSAGE,
  successStatus,
  tooOldResourceVersion,
  type FieldError,
} from "./status.ts";
import { apiVersionOf, fieldGetter, type ResourceDescriptor, RESOURCES } from "./registry.ts";
import { objectKey, type Store, type StoreEvent } from "./store.ts";
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector, type FieldSelector, type LabelSelector } from "./selectors.ts";
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, parseJsonPatch, patchMetaFor } from "./patch.ts";
import { schemaErrors, semanticErrors, validateObjectMetaCreate, validateObjectMetaUpdate } from "./validation.ts";
import { HAS_GENERATION, HAS_STATUS, admitPodServiceAccount, applyDefaults, randomSuffix, resetStatusOnCreate } from "./strategies.ts";
import { denialMessage, nodeNameOf, nodeRestriction, type Authorizer, type Attributes, type UserInfo } from "./authz.ts";
import type { TokenSigner } from "./tokens.ts";
import { checkUnknownFields, type FieldValidation } from "./fields.ts";
import { allocateIP, allocatePort, cidrContains, parseCidr, type Cidr } from "./allocators.ts";
import { arr, deepClone, dig, isObject, jsonEqual, rfc3339, str, type JsonObject, type KubeObject } from "./types.ts";

export type { UserInfo };

export interface RequestContext {
  user: UserInfo;
}

export const ADMIN: RequestContext = { user: { username: "system:admin", groups: ["system:masters", "system:authenticated"] } };

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
}

export interface WatchOptions extends ListOptions {
  allowWatchBookmarks?: boolean;
  sendInitialEvents?: boolean;
}

export interface WriteOptions {
  dryRun?: boolean;
  fieldManager?: string;
  /** Strict, Warn (default) or Ignore: what unknown fields do. */
  fieldValidation?: FieldValidation;
  /** Filled with the warnings to send (unknown fields under Warn). */
  warnings?: string[];
}

export interface DeleteOptions extends WriteOptions {
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
  propagationPolicy?: string;
}

export type PatchType = "json" | "merge" | "strategic" | "apply";

export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchEvent {
  type: WatchEventType;
  object: KubeObject | JsonObject;
}

export interface WatchHandle {
  stop(): void;
}

export interface ApiOptions {
  store: Store;
  authorizer: Authorizer;
  tokens: TokenSigner;
  apiAudiences: string[];
  serviceCIDR: string;
  nodePortRange: readonly [number, number];
  /**
   * The shortest TokenRequest lifetime allowed: kube-apiserver's 10 minutes by default. Tests of token refresh
   * lower it (kube-apiserver has no such knob: a deliberate difference, opt-in).
   */
  minTokenExpirationSeconds?: number;
  now?: () => Date;
}

/** Result of a delete: the object (deleted, or still there with deletionTimestamp) or a Status. */
export interface DeleteResult {
  body: KubeObject | JsonObject;
  /** The HTTP status: 200 (kube-apiserver sends 202 only for OrphanDependents=false). */
  code: number;
}

interface ContinueToken {
  v: string;
  rv: number;
  start: string;
}

const deletionWaitingForKubelet = new Set(["Pod"]);

function toEventsV1(e: KubeObject): KubeObject {
  const out: KubeObject = { apiVersion: "events.k8s.io/v1", kind: "Event", metadata: e.metadata };
  const map: [string, string][] = [
    ["involvedObject", "regarding"],
    ["message", "note"],
    ["source", "deprecatedSource"],
    ["firstTimestamp", "deprecatedFirstTimestamp"],
    ["lastTimestamp", "deprecatedLastTimestamp"],
    ["count", "deprecatedCount"],
    ["reportingComponent", "reportingController"],
  ];
  for (const k of ["eventTime", "series", "reportingInstance", "action", "reason", "related", "type"]) if (e[k] !== undefined) out[k] = e[k];
  for (const [from, to] of map) if (e[from] !== undefined && e[from] !== "" && !(from === "count" && e[from] === 0)) out[to] = e[from];
  if (isObject(out["deprecatedSource"]) && Object.keys(out["deprecatedSource"]).length === 0) delete out["deprecatedSource"];
  return out;
}

function fromEventsV1(e: KubeObject): KubeObject {
  const out: KubeObject = { apiVersion: "v1", kind: "Event", metadata: e.metadata };
  const map: [string, string][] = [
    ["regarding", "involvedObject"],
    ["note", "message"],
    ["deprecatedSource", "source"],
    ["deprecatedFirstTimestamp", "firstTimestamp"],
    ["deprecatedLastTimestamp", "lastTimestamp"],
    ["deprecatedCount", "count"],
    ["reportingController", "reportingComponent"],
  ];
  for (const k of ["eventTime", "series", "reportingInstance", "action", "reason", "related", "type"]) if (e[k] !== undefined) out[k] = e[k];
  for (const [from, to] of map) if (e[from] !== undefined) out[to] = e[from];
  return out;
}

function parseContinue(token: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(token, "base64url").toString()) as ContinueToken;
    if (t.v !== "meta.k8s.io/v1" || typeof t.rv !== "number" || typeof t.start !== "string") throw new Error("bad");
    return t;
  } catch {
    throw badRequest(`continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)`);
  }
}

function makeContinue(rv: number, lastKey: string): string {
  return Buffer.from(JSON.stringify({ v: "meta.k8s.io/v1", rv, start: `${lastKey}\u0000` })).toString("base64url");
}

function parseRV(s: string, what = "resourceVersion"): number {
  if (!/^\d+$/.test(s)) throw badRequest(`invalid ${what}: ${s}`);
  return Number(s);
}

export class Api {
  readonly store: Store;
  private readonly authorizer: Authorizer;
  private readonly tokens: TokenSigner;
  readonly apiAudiences: string[];
  private readonly serviceCIDR: Cidr;
  private readonly serviceCIDRText: string;
  private readonly nodePortRange: readonly [number, number];
  private readonly minTokenExpirationSeconds: number;
  private readonly now: () => Date;
  private readonly externalCache = new WeakMap<KubeObject, KubeObject>();
  /** Authenticates a bearer token for TokenReview; installed by the server. */
  tokenAuthenticator: ((token: string, audiences: string[]) => { user: UserInfo; audiences: string[] } | undefined) | undefined;

  constructor(o: ApiOptions) {
    this.store = o.store;
    this.authorizer = o.authorizer;
    this.tokens = o.tokens;
    this.apiAudiences = o.apiAudiences;
    this.serviceCIDR = parseCidr(o.serviceCIDR);
    this.serviceCIDRText = o.serviceCIDR;
    this.nodePortRange = o.nodePortRange;
    this.minTokenExpirationSeconds = o.minTokenExpirationSeconds ?? 600;
    this.now = o.now ?? (() => new Date());
  }

  // -------------------------------------------------------------------------------------------------------
  // Conversion between the served version and storage
  // -------------------------------------------------------------------------------------------------------

  /** The stored object as `r`'s version serves it. */
  external(r: ResourceDescriptor, o: KubeObject): KubeObject {
    if (r.group !== "events.k8s.io") return o;
    let e = this.externalCache.get(o);
    if (e === undefined) {
      e = toEventsV1(o);
      this.externalCache.set(o, e);
    }
    return e;
  }

  private internal(r: ResourceDescriptor, o: KubeObject): KubeObject {
    if (r.group !== "events.k8s.io") return { ...o, apiVersion: apiVersionOf(r), kind: r.kind };
    return fromEventsV1(o);
  }

  // -------------------------------------------------------------------------------------------------------
  // Authorization
  // -------------------------------------------------------------------------------------------------------

  authorize(ctx: RequestContext, r: Pick<ResourceDescriptor, "group" | "plural">, verb: string, subresource: string, namespace: string, name: string, fieldSelectorName?: string): void {
    const a: Attributes = { user: ctx.user, verb, group: r.group, resource: r.plural, subresource, namespace, name };
    if (fieldSelectorName !== undefined) a.fieldSelectorName = fieldSelectorName;
    const d = this.authorizer.authorize(a);
    if (!d.allowed) {
      const msg = denialMessage(a) + (d.reason === "" ? "" : `: ${d.reason}`);
      throw forbiddenError(r.group, subresource === "" ? r.plural : `${r.plural}/${subresource}`, name, msg);
    }
  }

  private admitNode(ctx: RequestContext, r: ResourceDescriptor, verb: string, subresource: string, obj: KubeObject | undefined, old: KubeObject | undefined): void {
    const node = nodeNameOf(ctx.user);
    if (node === undefined || ctx.user.groups.includes("system:masters")) return;
    const why = nodeRestriction(node, verb, r.plural, subresource, obj, old);
    if (why !== undefined) throw forbiddenError(r.group, r.plural, obj?.metadata.name ?? old?.metadata.name ?? "", why);
  }

  // -------------------------------------------------------------------------------------------------------
  // Reads
  // -------------------------------------------------------------------------------------------------------

  private mustGet(r: ResourceDescriptor, namespace: string, name: string): KubeObject {
    const o = this.store.get(r.storage, r.namespaced ? namespace : undefined, name);
    if (o === undefined) throw notFound(r.group, r.plural, name);
    return o;
  }

  get(ctx: RequestContext, r: ResourceDescriptor, namespace: string, name: string, subresource = ""): KubeObject {
    this.authorize(ctx, r, "get", subresource, namespace, name);
    if (subresource !== "" && subresource !== "status") throw methodNotAllowed();
    return this.external(r, this.mustGet(r, namespace, name));
  }

  private selectors(r: ResourceDescriptor, o: ListOptions): { labels: LabelSelector; fields: FieldSelector; match: (obj: KubeObject) => boolean } {
    const labels = parseLabelSelector(o.labelSelector ?? "");
    const fields = parseFieldSelector(o.fieldSelector ?? "");
    const getters = fields.map((f) => {
      const g = fieldGetter(r, f.field);
      if (g === undefined) throw badRequest(`field label not supported: ${f.field}`);
      return g;
    });
    const match = (obj: KubeObject): boolean => {
      if (labels.length > 0 && !matchesLabels(labels, obj.metadata.labels)) return false;
      if (fields.length === 0) return true;
      return matchesFields(fields, (name) => {
        const i = fields.findIndex((f) => f.field === name);
        return getters[i]?.(obj);
      });
    };
    return { labels, fields, match };
  }

  private static fieldSelectorName(o: ListOptions): string | undefined {
    if (o.fieldSelector === undefined) return undefined;
    try {
      return parseFieldSelector(o.fieldSelector).find((f) => f.field === "metadata.name" && f.op === "=")?.value;
    } catch {
      return undefined;
    }
  }

  /** The objects of a storage as they were at `rv`, by undoing later changes. */
  private snapshotAt(storage: string, namespace: string | undefined, rv: number): KubeObject[] {
    const later = this.store.since(storage, rv);
    const map = new Map<string, KubeObject>();
    for (const o of this.store.list(storage, namespace)) map.set(objectKey(o.metadata.namespace, o.metadata.name ?? ""), o);
    for (let i = later.length - 1; i >= 0; i--) {
      const ev = later[i];
      if (ev === undefined) continue;
      const key = objectKey(ev.object.metadata.namespace, ev.object.metadata.name ?? "");
      if (namespace !== undefined && namespace !== "" && ev.object.metadata.namespace !== namespace) continue;
      if (ev.type === "ADDED") map.delete(key);
      else if (ev.prev !== undefined) map.set(key, ev.prev);
    }
    return [...map.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((e) => e[1]);
  }

  list(ctx: RequestContext, r: ResourceDescriptor, namespace: string, o: ListOptions = {}): ListResult {
    this.authorize(ctx, r, "list", "", namespace, "", Api.fieldSelectorName(o));
    const { labels, fields, match } = this.selectors(r, o);
    const ns = r.namespaced && namespace !== "" ? namespace : undefined;
    const current = this.store.currentRV;
    let atRV = current;
    let afterKey: string | undefined;
    let source: KubeObject[] | undefined;
    if (o.continue !== undefined && o.continue !== "") {
      if (o.resourceVersion !== undefined && o.resourceVersion !== "") throw badRequest("specifying resource version is not allowed when using continue");
      const t = parseContinue(o.continue);
      if (t.rv < this.store.oldestRV)
        throw gone(
          "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        );
      atRV = t.rv;
      afterKey = t.start.endsWith("\u0000") ? t.start.slice(0, -1) : t.start;
      if (atRV !== current) source = this.snapshotAt(r.storage, ns, atRV);
    } else if (o.resourceVersion !== undefined && o.resourceVersion !== "" && o.resourceVersion !== "0") {
      const rv = parseRV(o.resourceVersion);
      if (o.resourceVersionMatch === "Exact") {
        if (rv > current) throw this.tooLarge(rv);
        if (rv < this.store.oldestRV) throw tooOldResourceVersion(rv, this.store.oldestRV + 1);
        atRV = rv;
        if (rv !== current) source = this.snapshotAt(r.storage, ns, rv);
      } else if (rv > current) throw this.tooLarge(rv);
    } else if (o.resourceVersionMatch !== undefined && o.resourceVersionMatch !== "" && (o.resourceVersion ?? "") === "") {
      throw invalid("meta.k8s.io", "ListOptions", "", [
        { type: "FieldValueForbidden", field: "resourceVersionMatch", detail: "resourceVersionMatch is forbidden unless resourceVersion is provided" },
      ]);
    }
    let candidates = source ?? this.store.list(r.storage, ns, afterKey);
    if (source !== undefined && afterKey !== undefined) {
      const ak = afterKey;
      candidates = candidates.filter((c) => objectKey(c.metadata.namespace, c.metadata.name ?? "") > ak);
    }
    const limit = o.limit !== undefined && o.limit > 0 ? o.limit : undefined;
    const items: KubeObject[] = [];
    let i = 0;
    for (; i < candidates.length; i++) {
      const c = candidates[i];
      if (c === undefined || !match(c)) continue;
      if (limit !== undefined && items.length >= limit) break;
      items.push(this.external(r, c));
    }
    const res: ListResult = { items, resourceVersion: String(atRV) };
    if (limit !== undefined && i < candidates.length) {
      // More objects may match: hand out a continue token after the last returned key.
      let more = false;
      let remaining = 0;
      for (let j = i; j < candidates.length; j++) {
        const c = candidates[j];
        if (c !== undefined && match(c)) {
          more = true;
          remaining++;
          if (labels.length > 0 || fields.length > 0) break;
        }
      }
      const last = items[items.length - 1];
      if (more && last !== undefined) {
        res.continue = makeContinue(atRV, objectKey(last.metadata.namespace, last.metadata.name ?? ""));
        if (labels.length === 0 && fields.length === 0) res.remainingItemCount = remaining;
      }
    }
    return res;
  }

  private tooLarge(rv: number): ApiError {
    return new ApiError(504, "Timeout", `Timeout: Too large resource version: ${rv}, current: ${this.store.currentRV}`, {
      causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
      retryAfterSeconds: 1,
    });
  }

  /**
   * Starts a watch. Events are delivered synchronously to `sink` as they happen (initial and replayed
   * events before this returns). Throws 410 Gone when the resourceVersion is too old; the HTTP layer turns
   * that into an ERROR event as kube-apiserver does.
   */
  watch(ctx: RequestContext, r: ResourceDescriptor, namespace: string, o: WatchOptions, sink: (ev: WatchEvent) => void): WatchHandle {
    this.authorize(ctx, r, "watch", "", namespace, "", Api.fieldSelectorName(o));
    const { match } = this.selectors(r, o);
    const ns = r.namespaced && namespace !== "" ? namespace : undefined;
    const rvParam = o.resourceVersion ?? "";
    const sendInitial = o.sendInitialEvents === true;
    if (o.sendInitialEvents !== undefined && (o.resourceVersionMatch !== "NotOlderThan" || o.allowWatchBookmarks !== true)) {
      const errs: FieldError[] = [];
      if (o.resourceVersionMatch !== "NotOlderThan")
        errs.push({ type: "FieldValueForbidden", field: "resourceVersionMatch", detail: "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan" });
      if (o.allowWatchBookmarks !== true) errs.push({ type: "FieldValueForbidden", field: "allowWatchBookmarks", detail: "allowWatchBookmarks has to be enabled when sendInitialEvents is set" });
      throw invalid("meta.k8s.io", "ListOptions", "", errs);
    }
    const deliver = (ev: StoreEvent) => {
      if (ns !== undefined && ev.object.metadata.namespace !== ns) return;
      const cur = ev.type === "DELETED" ? false : match(ev.object);
      const prev = ev.prev !== undefined && match(ev.prev);
      if (ev.type === "DELETED") {
        if (prev) sink({ type: "DELETED", object: this.external(r, ev.object) });
        return;
      }
      if (cur && !prev) sink({ type: "ADDED", object: this.external(r, ev.object) });
      else if (cur && prev) sink({ type: "MODIFIED", object: this.external(r, ev.object) });
      else if (!cur && prev && ev.prev !== undefined) {
        const old: KubeObject = { ...ev.prev, metadata: { ...ev.prev.metadata, resourceVersion: String(ev.rv) } };
        sink({ type: "DELETED", object: this.external(r, old) });
      }
    };
    let replay: StoreEvent[] = [];
    const initial = rvParam === "" || rvParam === "0" || sendInitial;
    if (!initial) {
      const rv = parseRV(rvParam);
      if (rv > this.store.currentRV) throw this.tooLarge(rv);
      replay = this.store.since(r.storage, rv);
    }
    if (initial) {
      for (const obj of this.store.list(r.storage, ns)) if (match(obj)) sink({ type: "ADDED", object: this.external(r, obj) });
      if (sendInitial)
        sink({
          type: "BOOKMARK",
          object: {
            kind: r.kind,
            apiVersion: apiVersionOf(r),
            metadata: { resourceVersion: String(this.store.currentRV), annotations: { "k8s.io/initial-events-end": "true" } },
          },
        });
    }
    for (const ev of replay) deliver(ev);
    const unsubscribe = this.store.subscribe(r.storage, deliver);
    return { stop: unsubscribe };
  }

  /** A BOOKMARK event object for `r` at the current resourceVersion. */
  bookmark(r: ResourceDescriptor): WatchEvent {
    return { type: "BOOKMARK", object: { kind: r.kind, apiVersion: apiVersionOf(r), metadata: { resourceVersion: String(this.store.currentRV) } } };
  }

  // -------------------------------------------------------------------------------------------------------
  // Writes
  // -------------------------------------------------------------------------------------------------------

  private checkBody(r: ResourceDescriptor, body: unknown, opts?: WriteOptions): KubeObject {
    if (!isObject(body)) throw badRequest(`Object 'Kind' is missing in '${JSON.stringify(body)}'`);
    const kind = str(body["kind"]);
    const apiVersion = str(body["apiVersion"]);
    if (kind !== undefined && kind !== "" && kind !== r.kind)
      throw badRequest(`${kind} in version "${apiVersion ?? ""}" cannot be handled as a ${r.kind}: no kind "${kind}" is registered for version "${apiVersion ?? ""}" in scheme`);
    if (apiVersion !== undefined && apiVersion !== "" && apiVersion !== apiVersionOf(r))
      throw badRequest(`the API version in the data (${apiVersion}) does not match the expected API version (${apiVersionOf(r)})`);
    const meta = body["metadata"];
    if (meta !== undefined && meta !== null && !isObject(meta)) throw badRequest(`${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: json: cannot unmarshal ${typeof meta} into Go struct field ${r.kind}.metadata of type v1.ObjectMeta`);
    const o = deepClone(body) as KubeObject;
    if (opts !== undefined) {
      const warnings = checkUnknownFields(apiVersionOf(r), r.kind, o, opts.fieldValidation ?? "Warn");
      opts.warnings?.push(...warnings);
    }
    o.metadata = isObject(meta) ? (o.metadata ?? {}) : {};
    o.apiVersion = apiVersionOf(r);
    o.kind = r.kind;
    return o;
  }

  private validateOrThrow(r: ResourceDescriptor, o: KubeObject, old: KubeObject | undefined, subresource: string): void {
    const external = this.external(r, o);
    const errs: FieldError[] = [...schemaErrors(apiVersionOf(r), r.kind, external)];
    if (old === undefined) errs.push(...validateObjectMetaCreate(r.kind, o, r.namespaced));
    else errs.push(...validateObjectMetaUpdate(o, old));
    errs.push(...semanticErrors(r.kind, o, old, subresource));
    if (errs.length > 0) throw invalid(r.group, r.kind, o.metadata.name ?? "", errs);
  }

  private checkNamespace(r: ResourceDescriptor, namespace: string, o: KubeObject): void {
    if (!r.namespaced) {
      delete o.metadata.namespace;
      return;
    }
    const bodyNs = o.metadata.namespace ?? "";
    if (bodyNs !== "" && bodyNs !== namespace) throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
    o.metadata.namespace = namespace;
  }

  private namespaceMustBeActive(namespace: string): void {
    const ns = this.store.get("core/namespaces", undefined, namespace);
    if (ns === undefined) throw notFound("", "namespaces", namespace);
    if (ns.metadata.deletionTimestamp !== undefined || dig(ns, "status", "phase") === "Terminating")
      throw new ApiError(403, "Forbidden", `unable to create new content in namespace ${namespace} because it is being terminated`, {
        name: namespace,
        kind: "namespaces",
        causes: [{ reason: "NamespaceTerminating", message: `namespace ${namespace} is being terminated`, field: "metadata.namespace" }],
      });
  }

  create(ctx: RequestContext, r: ResourceDescriptor, namespace: string, body: unknown, opts: WriteOptions = {}): KubeObject {
    const o = this.internal(r, this.checkBody(r, body, opts));
    this.checkNamespace(r, namespace, o);
    this.authorize(ctx, r, "create", "", namespace, o.metadata.name ?? "");
    if (!r.verbs.includes("create")) throw methodNotAllowed();
    if (r.namespaced) this.namespaceMustBeActive(namespace);
    if ((o.metadata.resourceVersion ?? "") !== "") throw internalError("resourceVersion should not be set on objects to be created");
    const m = o.metadata;
    if ((m.name ?? "") === "" && (m.generateName ?? "") !== "") {
      for (let i = 0; i < 10; i++) {
        const candidate = `${m.generateName ?? ""}${randomSuffix()}`;
        if (this.store.get(r.storage, m.namespace, candidate) === undefined) {
          m.name = candidate;
          break;
        }
      }
    }
    m.uid = randomUUID();
    m.creationTimestamp = rfc3339(this.now());
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    delete m.resourceVersion;
    delete m.managedFields;
    if (HAS_GENERATION.has(r.kind)) m.generation = 1;
    else delete m.generation;
    resetStatusOnCreate(r.kind, o);
    applyDefaults(r.kind, o);
    this.admitNode(ctx, r, "create", "", o, undefined);
    this.admitCreate(r, o);
    this.validateOrThrow(r, o, undefined, "");
    if (this.store.get(r.storage, m.namespace, m.name ?? "") !== undefined) throw alreadyExists(r.group, r.plural, m.name ?? "");
    if (opts.dryRun === true) return this.external(r, o);
    return this.external(r, this.store.create(r.storage, o));
  }

  /** Admission on create: service accounts for pods, cluster IPs and node ports for services. */
  private admitCreate(r: ResourceDescriptor, o: KubeObject): void {
    if (r.kind === "Pod") {
      const spec = o["spec"] as Record<string, unknown>;
      const mirror = o.metadata.annotations?.["kubernetes.io/config.mirror"] !== undefined;
      if (mirror) return;
      if ((str(spec["serviceAccountName"]) ?? "") === "") spec["serviceAccountName"] = str(spec["serviceAccount"]) ?? "default";
      spec["serviceAccount"] = spec["serviceAccountName"];
      const saName = str(spec["serviceAccountName"]) ?? "default";
      const sa = this.store.get("core/serviceaccounts", o.metadata.namespace, saName);
      if (sa === undefined)
        throw forbiddenError("", "pods", o.metadata.name ?? "", `error looking up service account ${o.metadata.namespace ?? ""}/${saName}: serviceaccount "${saName}" not found`);
      admitPodServiceAccount(o, sa);
    }
    if (r.kind === "Service") this.allocateService(o, undefined);
  }

  private usedServiceIPs(except?: string): Set<string> {
    const used = new Set<string>();
    for (const s of this.store.list("core/services")) {
      if (s.metadata.uid === except) continue;
      for (const ip of arr(dig(s, "spec", "clusterIPs"))) if (typeof ip === "string") used.add(ip);
    }
    return used;
  }

  private usedNodePorts(except?: string): Set<number> {
    const used = new Set<number>();
    for (const s of this.store.list("core/services")) {
      if (s.metadata.uid === except) continue;
      for (const p of arr(dig(s, "spec", "ports"))) {
        const np = dig(p, "nodePort");
        if (typeof np === "number") used.add(np);
      }
    }
    return used;
  }

  private allocateService(o: KubeObject, old: KubeObject | undefined): void {
    const spec = o["spec"] as Record<string, unknown>;
    const type = str(spec["type"]) ?? "ClusterIP";
    if (type === "ExternalName") {
      delete spec["clusterIP"];
      delete spec["clusterIPs"];
      return;
    }
    const errs: FieldError[] = [];
    if (old === undefined) {
      const requested = str(spec["clusterIP"]) ?? str(arr(spec["clusterIPs"])[0]) ?? "";
      if (requested === "None") {
        spec["clusterIP"] = "None";
        spec["clusterIPs"] = ["None"];
      } else if (requested !== "") {
        if (!cidrContains(this.serviceCIDR, requested))
          errs.push(
            invalidValue(
              "spec.clusterIPs",
              [requested],
              `failed to allocate IP ${requested}: provided IP is not in the valid range. The range of valid IPs is ${this.serviceCIDRString()}`,
            ),
          );
        else if (this.usedServiceIPs().has(requested))
          errs.push(invalidValue("spec.clusterIPs", [requested], `failed to allocate IP ${requested}: provided IP is already allocated`));
        spec["clusterIP"] = requested;
        spec["clusterIPs"] = [requested];
      } else {
        const ip = allocateIP(this.serviceCIDR, this.usedServiceIPs());
        if (ip === undefined) throw internalError(`failed to allocate a serviceIP: range is full`);
        spec["clusterIP"] = ip;
        spec["clusterIPs"] = [ip];
      }
    } else {
      spec["clusterIP"] = dig(old, "spec", "clusterIP") ?? spec["clusterIP"];
      spec["clusterIPs"] = dig(old, "spec", "clusterIPs") ?? spec["clusterIPs"];
    }
    const needsNodePort = type === "NodePort" || type === "LoadBalancer";
    const used = this.usedNodePorts(old?.metadata.uid);
    const oldPorts = arr(dig(old, "spec", "ports"));
    arr(spec["ports"]).forEach((p, i) => {
      if (!isObject(p)) return;
      if (!needsNodePort) {
        delete p["nodePort"];
        return;
      }
      const np = p["nodePort"];
      if (typeof np === "number" && np !== 0) {
        const wasOurs = oldPorts.some((op) => dig(op, "nodePort") === np);
        if (np < this.nodePortRange[0] || np > this.nodePortRange[1])
          errs.push(
            invalidValue(
              `spec.ports[${i}].nodePort`,
              np,
              `provided port is not in the valid range. The range of valid ports is ${this.nodePortRange[0]}-${this.nodePortRange[1]}`,
            ),
          );
        else if (used.has(np) && !wasOurs) errs.push(invalidValue(`spec.ports[${i}].nodePort`, np, "provided port is already allocated"));
        used.add(np);
        return;
      }
      const keep = oldPorts.find((op) => dig(op, "port") === p["port"] && dig(op, "protocol") === p["protocol"]);
      const keepPort = dig(keep, "nodePort");
      const port = typeof keepPort === "number" ? keepPort : allocatePort(this.nodePortRange, used);
      if (port === undefined) throw internalError("failed to allocate a nodePort: range is full");
      used.add(port);
      p["nodePort"] = port;
    });
    if (errs.length > 0) throw invalid("", "Service", o.metadata.name ?? "", errs);
  }

  private serviceCIDRString(): string {
    return this.serviceCIDRText;
  }

  update(ctx: RequestContext, r: ResourceDescriptor, namespace: string, name: string, body: unknown, subresource = "", opts: WriteOptions = {}): KubeObject {
    const verb = "update";
    this.authorize(ctx, r, verb, subresource, namespace, name);
    if (!r.verbs.includes("update")) throw methodNotAllowed();
    const o = this.internal(r, this.checkBody(r, body, opts));
    if (r.namespaced) this.checkNamespace(r, namespace, o);
    if ((o.metadata.name ?? "") !== name)
      throw badRequest(`the name of the object (${o.metadata.name ?? ""}) does not match the name on the URL (${name})`);
    const old = this.store.get(r.storage, r.namespaced ? namespace : undefined, name);
    if (old === undefined) {
      if (r.allowCreateOnUpdate && subresource === "") {
        this.authorize(ctx, r, "create", "", namespace, name);
        const copy: KubeObject = { ...o, metadata: { ...o.metadata } };
        delete copy.metadata.resourceVersion;
        return this.create(ctx, r, namespace, this.external(r, copy), opts);
      }
      throw notFound(r.group, r.plural, name);
    }
    return this.applyUpdate(ctx, r, o, old, subresource, verb, opts);
  }

  private applyUpdate(ctx: RequestContext, r: ResourceDescriptor, o: KubeObject, old: KubeObject, subresource: string, verb: string, opts: WriteOptions): KubeObject {
    const name = old.metadata.name ?? "";
    const rv = o.metadata.resourceVersion ?? "";
    if (rv !== "" && rv !== old.metadata.resourceVersion) throw conflict(r.group, r.plural, name, OPTIMISTIC_LOCK_MESSAGE);
    if ((o.metadata.uid ?? "") !== "" && o.metadata.uid !== old.metadata.uid)
      throw conflict(r.group, r.plural, name, `Precondition failed: UID in precondition: ${o.metadata.uid ?? ""}, UID in object meta: ${old.metadata.uid ?? ""}`);
    let next: KubeObject;
    if (subresource === "status") {
      next = { ...deepClone(old), status: deepClone(o["status"]) };
      if (o["status"] === undefined) delete next["status"];
    } else if (subresource === "") {
      next = o;
      const m = next.metadata;
      m.uid = old.metadata.uid ?? "";
      m.creationTimestamp = old.metadata.creationTimestamp ?? "";
      if (old.metadata.deletionTimestamp !== undefined) m.deletionTimestamp = old.metadata.deletionTimestamp;
      else delete m.deletionTimestamp;
      if (old.metadata.deletionGracePeriodSeconds !== undefined) m.deletionGracePeriodSeconds = old.metadata.deletionGracePeriodSeconds;
      else delete m.deletionGracePeriodSeconds;
      delete m.managedFields;
      if (old.metadata.deletionTimestamp !== undefined) {
        // Finalizers may only be removed from an object being deleted.
        const added = (m.finalizers ?? []).filter((f) => !(old.metadata.finalizers ?? []).includes(f));
        if (added.length > 0)
          throw invalid(r.group, r.kind, name, [
            { type: "FieldValueForbidden", field: "metadata.finalizers", detail: `no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}` },
          ]);
      }
      if (HAS_STATUS.has(r.kind)) {
        if (old["status"] === undefined) delete next["status"];
        else next["status"] = old["status"];
      }
      if (r.kind === "Service") this.allocateService(next, old);
      if (r.kind === "Namespace") next["spec"] = old["spec"];
    } else throw methodNotAllowed();
    applyDefaults(r.kind, next);
    if (HAS_GENERATION.has(r.kind)) {
      const gen = old.metadata.generation ?? 1;
      const changed = subresource === "" && !jsonEqual(next["spec"] ?? withoutMeta(next), old["spec"] ?? withoutMeta(old));
      next.metadata.generation = changed ? gen + 1 : gen;
    } else delete next.metadata.generation;
    this.admitNode(ctx, r, verb, subresource, next, old);
    this.validateOrThrow(r, next, old, subresource);
    next.metadata.resourceVersion = old.metadata.resourceVersion ?? "";
    if (jsonEqual(next, old)) return this.external(r, old);
    if (opts.dryRun === true) return this.external(r, next);
    const m = next.metadata;
    if (m.deletionTimestamp !== undefined && (m.finalizers ?? []).length === 0 && m.deletionGracePeriodSeconds === 0) {
      const last = this.store.update(r.storage, next);
      this.store.delete(r.storage, m.namespace, m.name ?? "");
      return this.external(r, last);
    }
    return this.external(r, this.store.update(r.storage, next));
  }

  patch(
    ctx: RequestContext,
    r: ResourceDescriptor,
    namespace: string,
    name: string,
    type: PatchType,
    patchBody: unknown,
    subresource = "",
    opts: WriteOptions = {},
  ): KubeObject {
    this.authorize(ctx, r, "patch", subresource, namespace, name);
    if (!r.verbs.includes("patch")) throw methodNotAllowed();
    if (subresource !== "" && subresource !== "status") throw methodNotAllowed();
    const old = this.store.get(r.storage, r.namespaced ? namespace : undefined, name);
    if (old === undefined) throw notFound(r.group, r.plural, name);
    const current = this.external(r, old);
    let patched: unknown;
    switch (type) {
      case "json":
        patched = applyJsonPatch(current, parseJsonPatch(patchBody));
        break;
      case "merge":
        if (!isObject(patchBody)) throw badRequest("json: cannot unmarshal array into Go value of type map[string]interface {}");
        patched = applyMergePatch(current, patchBody);
        break;
      case "strategic":
        patched = applyStrategicMergePatch(current, patchBody, patchMetaFor(r.kind));
        break;
      case "apply":
        throw new ApiError(415, "UnsupportedMediaType", "the server does not support server-side apply (application/apply-patch+yaml)");
    }
    if (!isObject(patched)) throw badRequest("the patched object is not a JSON object");
    const pm = patched["metadata"];
    if (isObject(pm) && (pm["name"] ?? name) !== name)
      throw badRequest(`the name of the object (${String(pm["name"])}) does not match the name on the URL (${name})`);
    const o = this.internal(r, this.checkBody(r, patched, opts));
    if (r.namespaced) this.checkNamespace(r, namespace, o);
    o.metadata.name = name;
    return this.applyUpdate(ctx, r, o, old, subresource, "patch", opts);
  }

  delete(ctx: RequestContext, r: ResourceDescriptor, namespace: string, name: string, opts: DeleteOptions = {}): DeleteResult {
    this.authorize(ctx, r, "delete", "", namespace, name);
    if (!r.verbs.includes("delete")) throw methodNotAllowed();
    const old = this.mustGet(r, namespace, name);
    this.admitNode(ctx, r, "delete", "", undefined, old);
    const pre = opts.preconditions;
    if (pre?.uid !== undefined && pre.uid !== old.metadata.uid)
      throw conflict(r.group, r.plural, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid ?? ""}`);
    if (pre?.resourceVersion !== undefined && pre.resourceVersion !== old.metadata.resourceVersion)
      throw conflict(
        r.group,
        r.plural,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion ?? ""}`,
      );
    if (opts.gracePeriodSeconds !== undefined && opts.gracePeriodSeconds < 0)
      throw invalid("meta.k8s.io", "DeleteOptions", "", [{ type: "FieldValueInvalid", field: "gracePeriodSeconds", detail: `${opts.gracePeriodSeconds}: must be >= 0` }]);
    const now = this.now();
    let grace = 0;
    if (deletionWaitingForKubelet.has(r.kind)) {
      const phase = str(dig(old, "status", "phase"));
      const bound = (str(dig(old, "spec", "nodeName")) ?? "") !== "";
      const specGrace = dig(old, "spec", "terminationGracePeriodSeconds");
      grace = opts.gracePeriodSeconds ?? (typeof specGrace === "number" ? specGrace : 30);
      if (!bound || phase === "Succeeded" || phase === "Failed") grace = 0;
    }
    const finalizers = old.metadata.finalizers ?? [];
    // Deleted now: the object or a Success Status; still there (grace period, finalizers): the object. Always
    // 200, as kube-apiserver answers unless OrphanDependents=false.
    const returnObj = (o: KubeObject, pending = false): DeleteResult =>
      r.returnDeletedObject || pending ? { body: this.external(r, o), code: 200 } : { body: successStatus(statusDetails(r, o)), code: 200 };
    if (r.kind === "Namespace") {
      if (old.metadata.deletionTimestamp !== undefined) return returnObj(old, true);
      const next = deepClone(old);
      next.metadata.deletionTimestamp = rfc3339(now);
      next.metadata.deletionGracePeriodSeconds = 0;
      next["status"] = { ...(isObject(next["status"]) ? next["status"] : {}), phase: "Terminating" };
      if (opts.dryRun === true) return returnObj(next, true);
      return returnObj(this.store.update(r.storage, next), true);
    }
    if (grace > 0 || finalizers.length > 0) {
      const next = deepClone(old);
      const m = next.metadata;
      const existing = old.metadata.deletionGracePeriodSeconds;
      if (old.metadata.deletionTimestamp !== undefined && existing !== undefined && existing <= grace) {
        // Already being deleted with a shorter or equal grace period: nothing changes.
        if (finalizers.length > 0 || grace > 0) return returnObj(old, true);
      }
      m.deletionGracePeriodSeconds = grace;
      const at = new Date(now.getTime() + grace * 1000);
      if (old.metadata.deletionTimestamp === undefined || Date.parse(old.metadata.deletionTimestamp) > at.getTime()) m.deletionTimestamp = rfc3339(at);
      if (grace === 0 && finalizers.length === 0) {
        if (opts.dryRun === true) return returnObj(old);
        return returnObj(this.store.delete(r.storage, m.namespace, name) ?? old);
      }
      if (opts.dryRun === true) return returnObj(next, true);
      if (jsonEqual(next, old)) return returnObj(old, true);
      return returnObj(this.store.update(r.storage, next), true);
    }
    if (opts.dryRun === true) return returnObj(old);
    const last = this.store.delete(r.storage, r.namespaced ? namespace : undefined, name) ?? old;
    return returnObj(last);
  }

  deleteCollection(ctx: RequestContext, r: ResourceDescriptor, namespace: string, listOpts: ListOptions, opts: DeleteOptions = {}): ListResult {
    this.authorize(ctx, r, "deletecollection", "", namespace, "");
    if (!r.verbs.includes("deletecollection")) throw methodNotAllowed();
    const all = this.list(ADMIN, r, namespace, { ...listOpts, limit: 0 });
    const items: KubeObject[] = [];
    for (const it of all.items) {
      try {
        const res = this.delete(ADMIN, r, it.metadata.namespace ?? "", it.metadata.name ?? "", opts);
        if (isObject(res.body) && res.body["kind"] === r.kind) items.push(res.body as KubeObject);
        else items.push(it);
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 404)) throw e;
      }
    }
    return { items, resourceVersion: String(this.store.currentRV) };
  }

  // -------------------------------------------------------------------------------------------------------
  // Subresources and virtual resources
  // -------------------------------------------------------------------------------------------------------

  /** POST pods/{name}/binding: binds a pending pod to a node (the scheduler's write). */
  bind(ctx: RequestContext, namespace: string, name: string, body: unknown): JsonObject {
    const r = resource("", "pods");
    this.authorize(ctx, r, "create", "binding", namespace, name);
    const target = dig(body, "target");
    const node = str(dig(target, "name")) ?? "";
    if (node === "") throw invalid("", "Binding", name, [{ type: "FieldValueRequired", field: "target.name", detail: "" }]);
    const kind = str(dig(target, "kind")) ?? "";
    if (kind !== "" && kind !== "Node") throw invalid("", "Binding", name, [{ type: "FieldValueNotSupported", field: "target.kind", detail: `"${kind}": supported values: "Node"` }]);
    const old = this.mustGet(r, namespace, name);
    if (old.metadata.deletionTimestamp !== undefined) throw conflict("", "pods", name, "pod is being deleted, cannot be assigned to a host");
    const cur = str(dig(old, "spec", "nodeName")) ?? "";
    if (cur !== "") throw conflict("", "pods", name, `pod ${name} is already assigned to node "${cur}"`);
    const next = deepClone(old);
    (next["spec"] as Record<string, unknown>)["nodeName"] = node;
    const status = (isObject(next["status"]) ? next["status"] : {});
    const conds = arr(status["conditions"]).filter((c) => dig(c, "type") !== "PodScheduled");
    conds.push({ type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: rfc3339(this.now()) });
    status["conditions"] = conds;
    next["status"] = status;
    this.store.update(r.storage, next);
    return { ...successStatus({}), code: 201 };
  }

  /** POST pods/{name}/eviction: with no disruption budgets, deletes the pod with the eviction's options. */
  evict(ctx: RequestContext, namespace: string, name: string, body: unknown): JsonObject {
    const r = resource("", "pods");
    this.authorize(ctx, r, "create", "eviction", namespace, name);
    const old = this.mustGet(r, namespace, name);
    this.admitNode(ctx, r, "create", "eviction", undefined, old);
    const del = dig(body, "deleteOptions");
    const opts: DeleteOptions = {};
    const g = dig(del, "gracePeriodSeconds");
    if (typeof g === "number") opts.gracePeriodSeconds = g;
    const pre = dig(del, "preconditions");
    if (isObject(pre)) {
      const p: { uid?: string; resourceVersion?: string } = {};
      if (typeof pre["uid"] === "string") p.uid = pre["uid"];
      if (typeof pre["resourceVersion"] === "string") p.resourceVersion = pre["resourceVersion"];
      opts.preconditions = p;
    }
    this.delete(ADMIN, r, namespace, name, opts);
    return { ...successStatus({}), code: 201 };
  }

  /** POST serviceaccounts/{name}/token: a TokenRequest answered with a signed, bound JWT. */
  requestToken(ctx: RequestContext, namespace: string, name: string, body: unknown): KubeObject {
    const r = resource("", "serviceaccounts");
    this.authorize(ctx, r, "create", "token", namespace, name);
    const sa = this.mustGet(r, namespace, name);
    if (!isObject(body)) throw badRequest("TokenRequest body is required");
    const spec = isObject(body["spec"]) ? body["spec"] : {};
    const audiences = arr(spec["audiences"]).filter((a): a is string => typeof a === "string");
    const exp = spec["expirationSeconds"];
    const expirationSeconds = typeof exp === "number" ? exp : 3600;
    const errs: FieldError[] = [];
    const min = this.minTokenExpirationSeconds;
    if (expirationSeconds < min) errs.push(invalidValue("spec.expirationSeconds", expirationSeconds, min === 600 ? "may not specify a duration less than 10 minutes" : `may not specify a duration less than ${min} seconds`));
    if (expirationSeconds > 4294967296) errs.push(invalidValue("spec.expirationSeconds", expirationSeconds, "may not specify a duration larger than 2^32 seconds"));
    const ref = spec["boundObjectRef"];
    let pod: { name: string; uid: string } | undefined;
    let node: { name: string; uid: string } | undefined;
    if (isObject(ref)) {
      const kind = str(ref["kind"]) ?? "";
      const refName = str(ref["name"]) ?? "";
      const refUID = str(ref["uid"]);
      if (kind === "Pod") {
        const p = this.store.get("core/pods", namespace, refName);
        if (p === undefined) throw notFound("", "pods", refName);
        if (refUID !== undefined && refUID !== "" && refUID !== p.metadata.uid)
          throw conflict("", "pods", refName, `the UID in the bound object reference (${refUID}) does not match the UID in record. The object might have been deleted and then recreated`);
        if (p.metadata.deletionTimestamp !== undefined && Date.parse(p.metadata.deletionTimestamp) < this.now().getTime())
          throw badRequest(`cannot bind token to pod "${refName}" that is being deleted`);
        pod = { name: refName, uid: p.metadata.uid ?? "" };
        const nodeName = str(dig(p, "spec", "nodeName")) ?? "";
        const n = nodeName === "" ? undefined : this.store.get("core/nodes", undefined, nodeName);
        if (n !== undefined) node = { name: nodeName, uid: n.metadata.uid ?? "" };
        const requester = nodeNameOf(ctx.user);
        if (requester !== undefined && !ctx.user.groups.includes("system:masters") && nodeName !== requester)
          throw forbiddenError("", "serviceaccounts/token", name, `node requested token bound to a pod scheduled on a different node`);
        if (str(dig(p, "spec", "serviceAccountName")) !== name)
          throw badRequest(`cannot bind token for serviceaccount "${name}" to pod "${refName}" that uses a different serviceaccount`);
      } else if (kind === "Node") {
        const n = this.store.get("core/nodes", undefined, refName);
        if (n === undefined) throw notFound("", "nodes", refName);
        node = { name: refName, uid: n.metadata.uid ?? "" };
      } else if (kind !== "Secret") {
        errs.push({ type: "FieldValueNotSupported", field: "spec.boundObjectRef.kind", detail: `"${kind}": supported values: "Pod", "Secret", "Node"` });
      }
    } else if (nodeNameOf(ctx.user) !== undefined && !ctx.user.groups.includes("system:masters")) {
      throw forbiddenError("", "serviceaccounts/token", name, "node requested token not bound to a pod");
    }
    if (errs.length > 0) throw invalid("authentication.k8s.io", "TokenRequest", name, errs);
    const aud = audiences.length > 0 ? audiences : this.apiAudiences;
    const minted = this.tokens.mint({
      namespace,
      serviceAccount: { name, uid: sa.metadata.uid ?? "" },
      audiences: aud,
      expirationSeconds,
      ...(pod === undefined ? {} : { pod }),
      ...(node === undefined ? {} : { node }),
      now: this.now().getTime(),
    });
    const outSpec: Record<string, unknown> = { audiences: aud, expirationSeconds };
    if (isObject(ref)) outSpec["boundObjectRef"] = ref;
    else outSpec["boundObjectRef"] = null;
    return {
      kind: "TokenRequest",
      apiVersion: "authentication.k8s.io/v1",
      metadata: { name, namespace, creationTimestamp: null as unknown as string },
      spec: outSpec,
      status: { token: minted.token, expirationTimestamp: rfc3339(new Date(minted.claims.exp * 1000)) },
    };
  }

  tokenReview(ctx: RequestContext, body: unknown): KubeObject {
    const r = resource("authentication.k8s.io", "tokenreviews");
    this.authorize(ctx, r, "create", "", "", "");
    const token = str(dig(body, "spec", "token")) ?? "";
    const audiences = arr(dig(body, "spec", "audiences")).filter((a): a is string => typeof a === "string");
    const res = token === "" ? undefined : this.tokenAuthenticator?.(token, audiences.length > 0 ? audiences : this.apiAudiences);
    const status: Record<string, unknown> = res === undefined
      ? { authenticated: false, user: {}, error: "[invalid bearer token, service account token has been invalidated]" }
      : {
          authenticated: true,
          user: { username: res.user.username, ...(res.user.uid === undefined ? {} : { uid: res.user.uid }), groups: res.user.groups, ...(res.user.extra === undefined ? {} : { extra: res.user.extra }) },
          audiences: res.audiences,
        };
    return {
      kind: "TokenReview",
      apiVersion: "authentication.k8s.io/v1",
      metadata: { creationTimestamp: null as unknown as string },
      spec: isObject(dig(body, "spec")) ? (dig(body, "spec")) : {},
      status,
    };
  }

  subjectAccessReview(ctx: RequestContext, body: unknown, self: boolean): KubeObject {
    const r = resource("authorization.k8s.io", self ? "selfsubjectaccessreviews" : "subjectaccessreviews");
    this.authorize(ctx, r, "create", "", "", "");
    const spec = dig(body, "spec");
    const user: UserInfo = self
      ? ctx.user
      : { username: str(dig(spec, "user")) ?? "", groups: arr(dig(spec, "groups")).filter((g): g is string => typeof g === "string") };
    const ra = dig(spec, "resourceAttributes");
    const nra = dig(spec, "nonResourceAttributes");
    let d;
    if (isObject(ra)) {
      d = this.authorizer.authorize({
        user,
        verb: str(ra["verb"]) ?? "",
        group: str(ra["group"]) ?? "",
        resource: str(ra["resource"]) ?? "",
        subresource: str(ra["subresource"]) ?? "",
        namespace: str(ra["namespace"]) ?? "",
        name: str(ra["name"]) ?? "",
      });
    } else {
      d = this.authorizer.authorize({ user, verb: str(dig(nra, "verb")) ?? "", group: "", resource: "", subresource: "", namespace: "", name: "", path: str(dig(nra, "path")) ?? "" });
    }
    const status: Record<string, unknown> = { allowed: d.allowed };
    if (!d.allowed) status["denied"] = false;
    if (d.reason !== "") status["reason"] = d.reason;
    return {
      kind: self ? "SelfSubjectAccessReview" : "SubjectAccessReview",
      apiVersion: "authorization.k8s.io/v1",
      metadata: { creationTimestamp: null as unknown as string },
      spec: isObject(spec) ? spec : {},
      status,
    };
  }

  selfSubjectReview(ctx: RequestContext): KubeObject {
    const u = ctx.user;
    return {
      kind: "SelfSubjectReview",
      apiVersion: "authentication.k8s.io/v1",
      metadata: { creationTimestamp: null as unknown as string },
      status: { userInfo: { username: u.username, ...(u.uid === undefined ? {} : { uid: u.uid }), groups: u.groups, ...(u.extra === undefined ? {} : { extra: u.extra }) } },
    };
  }
}

function withoutMeta(o: KubeObject): Record<string, unknown> {
  const { metadata: _m, status: _s, ...rest } = o;
  return rest;
}

function statusDetails(r: ResourceDescriptor, o: KubeObject): { name: string; kind: string; uid: string; group?: string } {
  const d: { name: string; kind: string; uid: string; group?: string } = { name: o.metadata.name ?? "", kind: r.plural, uid: o.metadata.uid ?? "" };
  if (r.group !== "") d.group = r.group;
  return d;
}

export function resource(group: string, plural: string): ResourceDescriptor {
  const r = RESOURCES.find((x) => x.group === group && x.plural === plural);
  if (r === undefined) throw new Error(`unknown resource ${plural}.${group}`);
  return r;
}
