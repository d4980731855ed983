/**
 * Unknown-field handling as kube-apiserver does it (fieldValidation): the server's decoder drops JSON fields
 * the Go types do not have. With fieldValidation=Strict (kubectl's default) that is a 400 naming each field;
 * with Warn (the default for other clients) the fields are dropped and a Warning header names them; with
 * Ignore they are dropped silently. The known fields come from the model metadata of
 * @kubernetes/client-node (generated from the same OpenAPI).
 */
import * as k8s from "@kubernetes/client-node";
import { badRequest } from "./status.ts";
import { isObject } from "./types.ts";

interface Attribute {
  baseName: string;
  type: string;
}

const MODEL_FOR_KIND: Record<string, string> = {
  "v1/Pod": "V1Pod",
  "v1/Node": "V1Node",
  "v1/Service": "V1Service",
  "v1/Namespace": "V1Namespace",
  "v1/ConfigMap": "V1ConfigMap",
  "v1/Secret": "V1Secret",
  "v1/ServiceAccount": "V1ServiceAccount",
  "v1/Event": "CoreV1Event",
  "events.k8s.io/v1/Event": "EventsV1Event",
  "discovery.k8s.io/v1/EndpointSlice": "V1EndpointSlice",
  "coordination.k8s.io/v1/Lease": "V1Lease",
};

const models = k8s as unknown as Record<string, unknown>;
const cache = new Map<string, Map<string, string> | undefined>();

function attributes(model: string): Map<string, string> | undefined {
  if (cache.has(model)) return cache.get(model);
  const cls = models[model];
  let out: Map<string, string> | undefined;
  if (typeof cls === "function" && "getAttributeTypeMap" in cls && typeof cls.getAttributeTypeMap === "function") {
    const list = (cls.getAttributeTypeMap as () => Attribute[])();
    out = new Map(list.map((a) => [a.baseName, a.type]));
  }
  cache.set(model, out);
  return out;
}

function walk(type: string, v: unknown, path: string, found: string[], prune: boolean): void {
  if (v === null || v === undefined) return;
  const arrayOf = /^Array<(.+)>$/.exec(type);
  if (arrayOf !== null) {
    if (Array.isArray(v)) v.forEach((x, i) => walk(arrayOf[1] ?? "", x, `${path}[${i}]`, found, prune));
    return;
  }
  const mapOf = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (mapOf !== null) {
    if (isObject(v)) for (const [k, x] of Object.entries(v)) walk(mapOf[1] ?? "", x, `${path}[${k}]`, found, prune);
    return;
  }
  const attrs = attributes(type);
  if (attrs === undefined || !isObject(v)) return;
  for (const k of Object.keys(v)) {
    const t = attrs.get(k);
    const p = path === "" ? k : `${path}.${k}`;
    if (t === undefined) {
      found.push(p);
      if (prune) delete v[k];
    } else walk(t, v[k], p, found, prune);
  }
}

/** Unknown fields of `obj` (served as apiVersion/kind), e.g. `spec.containers[0].imagex`; prunes them when asked. */
export function unknownFields(apiVersion: string, kind: string, obj: Record<string, unknown>, prune: boolean): string[] {
  const model = MODEL_FOR_KIND[`${apiVersion}/${kind}`];
  if (model === undefined) return [];
  const found: string[] = [];
  walk(model, obj, "", found, prune);
  return found;
}

export type FieldValidation = "Strict" | "Warn" | "Ignore";

export function parseFieldValidation(v: string | null | undefined): FieldValidation {
  if (v === null || v === undefined || v === "" || v === "Warn") return "Warn";
  if (v === "Strict" || v === "Ignore") return v;
  throw badRequest(`fieldValidation parameter unsupported: ${v}`);
}

/**
 * Applies the fieldValidation directive: Strict throws 400 `strict decoding error: unknown field ...`;
 * Warn and Ignore drop the fields; Warn returns the warnings to send.
 */
export function checkUnknownFields(apiVersion: string, kind: string, obj: Record<string, unknown>, mode: FieldValidation): string[] {
  const found = unknownFields(apiVersion, kind, obj, mode !== "Strict");
  if (found.length === 0) return [];
  if (mode === "Strict") {
    const version = apiVersion.split("/").pop() ?? apiVersion;
    throw badRequest(`${kind} in version "${version}" cannot be handled as a ${kind}: strict decoding error: ${found.map((f) => `unknown field "${f}"`).join(", ")}`);
  }
  return mode === "Warn" ? found.map((f) => `unknown field "${f}"`) : [];
}
