/**
 * The three patch types kube-apiserver accepts. Pure.
 * - JSON patch (RFC 6902) and JSON merge patch (RFC 7386).
 * - Strategic merge patch with the patch metadata of the Go types (patchStrategy/patchMergeKey tags):
 *   lists with a merge key merge element-wise, primitive lists with strategy merge union, every other list is
 *   replaced (atomic) — exactly as on a real cluster, where e.g. status.containerStatuses and node taints are
 *   atomic. Directives: `$patch` (replace/delete/merge), `$retainKeys`, `$setElementOrder/<list>`,
 *   `$deleteFromPrimitiveList/<list>`.
 */
import { ApiError, badRequest } from "./status.ts";
import { isObject, jsonEqual, deepClone } from "./types.ts";

function unprocessable(message: string): ApiError {
  return new ApiError(422, "Invalid", message);
}

// ---------------------------------------------------------------------------------------------------------
// JSON patch
// ---------------------------------------------------------------------------------------------------------

export interface JsonPatchOp {
  op: string;
  path: string;
  value?: unknown;
  from?: string;
}

function parsePointer(p: string): string[] {
  if (p === "") return [];
  if (!p.startsWith("/")) throw unprocessable(`add operation does not apply: doc is missing path: "${p}": missing value`);
  return p
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function missing(op: string, path: string): ApiError {
  return unprocessable(`${op} operation does not apply: doc is missing path: "${path}": missing value`);
}

function parentOf(doc: unknown, tokens: string[], op: string, path: string): unknown {
  let cur = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) {
      const i = Number(t);
      if (!/^\d+$/.test(t) || i >= cur.length) throw missing(op, path);
      cur = cur[i];
    } else if (isObject(cur)) {
      if (!Object.hasOwn(cur, t)) throw missing(op, path);
      cur = cur[t];
    } else throw missing(op, path);
  }
  return cur;
}

function getAt(doc: unknown, path: string, op: string): unknown {
  const tokens = parsePointer(path);
  if (tokens.length === 0) return doc;
  const parent = parentOf(doc, tokens, op, path);
  const last = tokens[tokens.length - 1] ?? "";
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (!/^\d+$/.test(last) || i >= parent.length) throw missing(op, path);
    return parent[i];
  }
  if (isObject(parent) && Object.hasOwn(parent, last)) return parent[last];
  throw missing(op, path);
}

function removeAt(doc: unknown, path: string, op: string): unknown {
  const tokens = parsePointer(path);
  const parent = parentOf(doc, tokens, op, path);
  const last = tokens[tokens.length - 1] ?? "";
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (!/^\d+$/.test(last) || i >= parent.length) throw missing(op, path);
    return parent.splice(i, 1)[0];
  }
  if (isObject(parent) && Object.hasOwn(parent, last)) {
    const v = parent[last];
    delete parent[last];
    return v;
  }
  throw missing(op, path);
}

function addAt(doc: unknown, path: string, value: unknown, op: string, replace: boolean): unknown {
  const tokens = parsePointer(path);
  if (tokens.length === 0) return value;
  const parent = parentOf(doc, tokens, op, path);
  const last = tokens[tokens.length - 1] ?? "";
  if (Array.isArray(parent)) {
    if (replace) {
      const i = Number(last);
      if (!/^\d+$/.test(last) || i >= parent.length) throw missing(op, path);
      parent[i] = value;
    } else if (last === "-") parent.push(value);
    else {
      const i = Number(last);
      if (!/^\d+$/.test(last) || i > parent.length) throw unprocessable(`add operation does not apply: doc is missing path: "${path}": missing value`);
      parent.splice(i, 0, value);
    }
  } else if (isObject(parent)) {
    if (replace && !Object.hasOwn(parent, last)) throw missing(op, path);
    parent[last] = value;
  } else throw missing(op, path);
  return doc;
}

/** Parses a JSON patch body; a malformed one is 400 as on kube-apiserver. */
export function parseJsonPatch(body: unknown): JsonPatchOp[] {
  if (!Array.isArray(body)) throw badRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch");
  return body.map((o) => {
    if (!isObject(o) || typeof o["op"] !== "string") throw badRequest("Unexpected kind: <nil>");
    return o as unknown as JsonPatchOp;
  });
}

/** Applies RFC 6902 operations to a copy of `doc`; a failing operation is 422. */
export function applyJsonPatch(doc: unknown, ops: JsonPatchOp[]): unknown {
  let out = deepClone(doc);
  for (const o of ops) {
    if (typeof o.path !== "string") throw badRequest(`Unexpected kind: missing path`);
    switch (o.op) {
      case "add":
        out = addAt(out, o.path, deepClone(o.value), "add", false);
        break;
      case "remove":
        removeAt(out, o.path, "remove");
        break;
      case "replace":
        out = addAt(out, o.path, deepClone(o.value), "replace", true);
        break;
      case "move": {
        const v = removeAt(out, o.from ?? "", "move");
        out = addAt(out, o.path, v, "move", false);
        break;
      }
      case "copy": {
        const v = getAt(out, o.from ?? "", "copy");
        out = addAt(out, o.path, deepClone(v), "copy", false);
        break;
      }
      case "test": {
        const v = getAt(out, o.path, "test");
        if (!jsonEqual(v, o.value)) throw unprocessable(`testing value ${o.path} failed: test failed`);
        break;
      }
      default:
        throw badRequest(`Unexpected kind: ${o.op}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// JSON merge patch
// ---------------------------------------------------------------------------------------------------------

export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return deepClone(patch);
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Strategic merge patch
// ---------------------------------------------------------------------------------------------------------

/** Patch metadata of one node of a type: what the Go struct tags say. */
export interface PatchMeta {
  /** Struct fields. */
  fields?: Record<string, PatchMeta>;
  /** For lists: the element type. For maps of structs: the value type. */
  items?: PatchMeta;
  /** Map (not struct) whose values are `items`. */
  isMap?: boolean;
  /** patchStrategy: merge (list merge), replace, retainKeys. */
  strategy?: "merge" | "replace" | "retainKeys" | "merge,retainKeys";
  patchMergeKey?: string;
}

const m = (mergeKey: string, items?: PatchMeta, retainKeys = false): PatchMeta => ({
  strategy: retainKeys ? "merge,retainKeys" : "merge",
  patchMergeKey: mergeKey,
  ...(items === undefined ? {} : { items }),
});
const primitiveSet: PatchMeta = { strategy: "merge" };

const objectMeta: PatchMeta = {
  fields: {
    finalizers: primitiveSet,
    ownerReferences: m("uid"),
  },
};

const container: PatchMeta = {
  fields: {
    ports: m("containerPort"),
    env: m("name"),
    volumeMounts: m("mountPath"),
    volumeDevices: m("devicePath"),
  },
};

const podSpec: PatchMeta = {
  fields: {
    volumes: m("name", undefined, true),
    initContainers: m("name", container),
    containers: m("name", container),
    ephemeralContainers: m("name", container),
    imagePullSecrets: m("name"),
    hostAliases: m("ip"),
    topologySpreadConstraints: m("topologyKey"),
    schedulingGates: m("name"),
    resourceClaims: m("name", undefined, true),
  },
};

const podStatus: PatchMeta = {
  fields: {
    conditions: m("type"),
    podIPs: m("ip"),
    hostIPs: m("ip"),
    resourceClaimStatuses: m("name", undefined, true),
  },
};

const podTemplate: PatchMeta = { fields: { metadata: objectMeta, spec: podSpec } };

/** Patch metadata per kind; kinds not listed merge maps and replace lists (as for CRDs without schema). */
export const PATCH_META: Readonly<Record<string, PatchMeta>> = {
  Pod: { fields: { metadata: objectMeta, spec: podSpec, status: podStatus } },
  Node: {
    fields: {
      metadata: objectMeta,
      spec: { fields: { podCIDRs: primitiveSet } },
      status: { fields: { conditions: m("type"), addresses: m("type") } },
    },
  },
  Service: {
    fields: {
      metadata: objectMeta,
      spec: { fields: { ports: m("port") } },
      status: { fields: { conditions: m("type") } },
    },
  },
  Namespace: { fields: { metadata: objectMeta, status: { fields: { conditions: m("type") } } } },
  ServiceAccount: { fields: { metadata: objectMeta, secrets: m("name") } },
  PodTemplate: { fields: { metadata: objectMeta, template: podTemplate } },
};

export function patchMetaFor(kind: string): PatchMeta {
  return PATCH_META[kind] ?? { fields: { metadata: objectMeta } };
}

const directivePrefixOrder = "$setElementOrder/";
const directivePrefixDelete = "$deleteFromPrimitiveList/";

function child(meta: PatchMeta | undefined, key: string): PatchMeta | undefined {
  if (meta === undefined) return undefined;
  if (meta.isMap) return meta.items;
  return meta.fields?.[key];
}

/** Applies a strategic merge patch to a copy of `original` using the patch metadata of its kind. */
export function applyStrategicMergePatch(original: unknown, patch: unknown, meta: PatchMeta | undefined): unknown {
  if (!isObject(patch)) throw badRequest("unable to find api field in struct Unknown for the json field \"patch\"");
  const base = isObject(original) ? deepClone(original) : {};
  const r = mergeMap(base, patch, meta);
  return r === undefined ? {} : r;
}

function mergeMap(orig: Record<string, unknown>, patch: Record<string, unknown>, meta: PatchMeta | undefined): Record<string, unknown> | undefined {
  const directive = patch["$patch"];
  if (directive !== undefined) {
    if (directive === "replace") {
      const out = deepClone(patch);
      delete out["$patch"];
      return stripDirectives(out) as Record<string, unknown>;
    }
    if (directive === "delete") return undefined;
    if (directive !== "merge") throw badRequest(`Unknown patch type: ${JSON.stringify(directive)} in map: ${JSON.stringify(patch)}`);
  }
  const out = orig;
  const retain = patch["$retainKeys"];
  for (const [k, v] of Object.entries(patch)) {
    if (k === "$patch" || k === "$retainKeys" || k.startsWith(directivePrefixOrder)) continue;
    if (k.startsWith(directivePrefixDelete)) {
      const field = k.slice(directivePrefixDelete.length);
      if (!Array.isArray(v)) throw badRequest("Invalid patch format for primitive list: " + JSON.stringify(v));
      const cur = out[field];
      if (Array.isArray(cur)) out[field] = cur.filter((x) => !v.some((d) => jsonEqual(d, x)));
      continue;
    }
    const cm = child(meta, k);
    if (v === null) {
      delete out[k];
      continue;
    }
    const cur = out[k];
    if (isObject(v)) {
      if (isObject(cur)) {
        const merged = mergeMap(cur, v, cm);
        if (merged === undefined) delete out[k];
        else out[k] = merged;
      } else {
        const merged = mergeMap({}, v, cm);
        if (merged === undefined) delete out[k];
        else out[k] = merged;
      }
      continue;
    }
    if (Array.isArray(v)) {
      const order = patch[directivePrefixOrder + k];
      out[k] = mergeList(Array.isArray(cur) ? cur : [], v, cm, Array.isArray(order) ? order : undefined);
      continue;
    }
    out[k] = v;
  }
  // A $setElementOrder without the list itself only reorders.
  for (const [k, v] of Object.entries(patch)) {
    if (!k.startsWith(directivePrefixOrder)) continue;
    const field = k.slice(directivePrefixOrder.length);
    if (Object.hasOwn(patch, field) || !Array.isArray(v)) continue;
    const cur = out[field];
    if (Array.isArray(cur)) out[field] = reorder(cur, v, child(meta, field)?.patchMergeKey);
  }
  if (retain !== undefined) {
    if (!Array.isArray(retain)) throw badRequest("invalid patch format for retainKeys: " + JSON.stringify(retain));
    const keep = new Set(retain.filter((x): x is string => typeof x === "string"));
    for (const k of Object.keys(out)) if (!keep.has(k)) delete out[k];
  }
  return out;
}

function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.filter((x) => !(isObject(x) && x["$patch"] !== undefined && Object.keys(x).length === 1)).map(stripDirectives);
  if (!isObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k.startsWith("$")) continue;
    out[k] = stripDirectives(x);
  }
  return out;
}

function keyOf(v: unknown, key: string): unknown {
  return isObject(v) ? v[key] : undefined;
}

function reorder(list: unknown[], order: unknown[], mergeKey: string | undefined): unknown[] {
  const pos = (x: unknown): number => {
    const id = mergeKey === undefined ? x : isObject(x) ? x[mergeKey] : undefined;
    const i = order.findIndex((o) => jsonEqual(mergeKey === undefined ? o : keyOf(o, mergeKey), id));
    return i;
  };
  const inOrder = list.filter((x) => pos(x) >= 0).sort((a, b) => pos(a) - pos(b));
  const rest = list.filter((x) => pos(x) < 0);
  return [...inOrder, ...rest];
}

function mergeList(orig: unknown[], patch: unknown[], meta: PatchMeta | undefined, order: unknown[] | undefined): unknown[] {
  const strategy = meta?.strategy ?? "";
  if (!strategy.includes("merge")) return stripDirectives(patch) as unknown[];
  const mergeKey = meta?.patchMergeKey;
  if (mergeKey === undefined) {
    // Primitive list with strategy merge: union, keeping the original's order.
    if (patch.some((x) => isObject(x))) {
      if (patch.some((x) => isObject(x) && x["$patch"] === "replace")) return patch.filter((x) => !isObject(x));
      throw badRequest("Invalid patch format for primitive list");
    }
    const out = [...orig];
    for (const x of patch) if (!out.some((o) => jsonEqual(o, x))) out.push(x);
    return order === undefined ? out : reorder(out, order, undefined);
  }
  if (patch.some((x) => isObject(x) && x["$patch"] === "replace")) {
    return stripDirectives(patch.filter((x) => !(isObject(x) && x["$patch"] === "replace"))) as unknown[];
  }
  let out = orig.map((x) => deepClone(x));
  for (const p of patch) {
    if (!isObject(p)) throw badRequest(`mergeKey "${mergeKey}" not found in list element: ${JSON.stringify(p)}`);
    const id = p[mergeKey];
    if (id === undefined) {
      if (p["$patch"] === "delete") continue;
      throw new ApiError(422, "Invalid", `map: ${JSON.stringify(p)} does not contain declared merge key: ${mergeKey}`);
    }
    const idx = out.findIndex((o) => jsonEqual(keyOf(o, mergeKey), id));
    if (p["$patch"] === "delete") {
      out = out.filter((o) => !jsonEqual(keyOf(o, mergeKey), id));
      continue;
    }
    if (idx >= 0) {
      const cur = out[idx];
      const merged = mergeMap(isObject(cur) ? cur : {}, p, meta?.items);
      if (merged === undefined) out.splice(idx, 1);
      else out[idx] = merged;
    } else {
      const merged = mergeMap({}, p, meta?.items);
      if (merged !== undefined) out.push(merged);
    }
  }
  return order === undefined ? out : reorder(out, order, mergeKey);
}

// ---------------------------------------------------------------------------------------------------------
// Two-way strategic merge patch (what kubectl and the kubelet compute), used by tests and controllers.
// ---------------------------------------------------------------------------------------------------------

/** The strategic merge patch that turns `from` into `to` (lists with merge keys diffed element-wise). */
export function createTwoWayMergePatch(from: unknown, to: unknown, meta: PatchMeta | undefined): Record<string, unknown> {
  const out = diffMap(isObject(from) ? from : {}, isObject(to) ? to : {}, meta);
  return out ?? {};
}

function diffMap(a: Record<string, unknown>, b: Record<string, unknown>, meta: PatchMeta | undefined): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(a)) if (!Object.hasOwn(b, k)) out[k] = null;
  for (const [k, bv] of Object.entries(b)) {
    const av = a[k];
    if (jsonEqual(av, bv)) continue;
    const cm = child(meta, k);
    if (isObject(av) && isObject(bv)) {
      const d = diffMap(av, bv, cm);
      if (d !== undefined) out[k] = d;
    } else if (Array.isArray(av) && Array.isArray(bv) && cm?.patchMergeKey !== undefined && (cm.strategy ?? "").includes("merge")) {
      const key = cm.patchMergeKey;
      const items: unknown[] = [];
      for (const x of av) if (!bv.some((y) => jsonEqual(keyOf(y, key), keyOf(x, key)))) items.push({ [key]: keyOf(x, key), $patch: "delete" });
      for (const y of bv) {
        const x: unknown = av.find((x2) => jsonEqual(keyOf(x2, key), keyOf(y, key)));
        if (x === undefined) items.push(y);
        else if (!jsonEqual(x, y) && isObject(x) && isObject(y)) items.push({ ...diffMap(x, y, cm.items), [key]: keyOf(y, key) });
      }
      out[`$setElementOrder/${k}`] = bv.map((y) => ({ [key]: keyOf(y, key) }));
      if (items.length > 0) out[k] = items;
    } else out[k] = bv;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}
