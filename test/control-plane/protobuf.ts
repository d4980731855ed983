/**
 * Just enough of the Kubernetes protobuf encoding to read the few request bodies kubectl sends as protobuf
 * (`auth whoami`, `auth can-i`, and typed clients' reviews): the `k8s\0` runtime.Unknown envelope and the
 * review specs, decoded into their JSON shapes. Pure.
 */
import { ApiError, badRequest } from "./status.ts";

type Fields = Map<number, (Buffer | bigint)[]>;

function readVarint(b: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= b.length) throw badRequest("truncated protobuf varint");
    const byte = b[pos++] ?? 0;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
}

export function decodeFields(b: Buffer): Fields {
  const out: Fields = new Map();
  let pos = 0;
  while (pos < b.length) {
    const [tag, p1] = readVarint(b, pos);
    pos = p1;
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    let value: Buffer | bigint;
    if (wire === 0) {
      [value, pos] = readVarint(b, pos);
    } else if (wire === 2) {
      const [len, p2] = readVarint(b, pos);
      value = b.subarray(p2, p2 + Number(len));
      pos = p2 + Number(len);
    } else if (wire === 1) {
      value = b.subarray(pos, pos + 8);
      pos += 8;
    } else if (wire === 5) {
      value = b.subarray(pos, pos + 4);
      pos += 4;
    } else throw badRequest(`unsupported protobuf wire type ${wire}`);
    const list = out.get(field) ?? [];
    list.push(value);
    out.set(field, list);
  }
  return out;
}

function s(f: Fields, n: number): string | undefined {
  const v = f.get(n)?.[0];
  return Buffer.isBuffer(v) ? v.toString("utf8") : undefined;
}

function strings(f: Fields, n: number): string[] {
  return (f.get(n) ?? []).filter((v): v is Buffer => Buffer.isBuffer(v)).map((v) => v.toString("utf8"));
}

function msg(f: Fields, n: number): Fields | undefined {
  const v = f.get(n)?.[0];
  return Buffer.isBuffer(v) ? decodeFields(v) : undefined;
}

function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function resourceAttributes(f: Fields | undefined): Record<string, unknown> | undefined {
  if (f === undefined) return undefined;
  return defined({ namespace: s(f, 1), verb: s(f, 2), group: s(f, 3), version: s(f, 4), resource: s(f, 5), subresource: s(f, 6), name: s(f, 7) });
}

function nonResourceAttributes(f: Fields | undefined): Record<string, unknown> | undefined {
  if (f === undefined) return undefined;
  return defined({ path: s(f, 1), verb: s(f, 2) });
}

// ---------------------------------------------------------------------------------------------------------
// Schema-driven decoding of the built-in kinds kubectl's typed clients send as protobuf (the field numbers
// of k8s.io/api generated.proto).
// ---------------------------------------------------------------------------------------------------------

type FieldType = "string" | "bytes" | "int" | "bool" | "time" | "intOrString" | "mapString" | "mapBytes" | { msg: string };
interface FieldSpec {
  name: string;
  type: FieldType;
  repeated?: boolean;
}
type MessageSpec = Record<number, FieldSpec>;

const f = (name: string, type: FieldType, repeated = false): FieldSpec => ({ name, type, repeated });

const SCHEMAS: Record<string, MessageSpec> = {
  ObjectMeta: {
    1: f("name", "string"),
    2: f("generateName", "string"),
    3: f("namespace", "string"),
    5: f("uid", "string"),
    6: f("resourceVersion", "string"),
    7: f("generation", "int"),
    8: f("creationTimestamp", "time"),
    9: f("deletionTimestamp", "time"),
    10: f("deletionGracePeriodSeconds", "int"),
    11: f("labels", "mapString"),
    12: f("annotations", "mapString"),
    13: f("ownerReferences", { msg: "OwnerReference" }, true),
    14: f("finalizers", "string", true),
  },
  OwnerReference: { 1: f("kind", "string"), 3: f("name", "string"), 4: f("uid", "string"), 5: f("apiVersion", "string"), 6: f("controller", "bool"), 7: f("blockOwnerDeletion", "bool") },
  ObjectReference: {
    1: f("kind", "string"),
    2: f("namespace", "string"),
    3: f("name", "string"),
    4: f("uid", "string"),
    5: f("apiVersion", "string"),
    6: f("resourceVersion", "string"),
    7: f("fieldPath", "string"),
  },
  LocalObjectReference: { 1: f("name", "string") },
  Namespace: { 1: f("metadata", { msg: "ObjectMeta" }), 2: f("spec", { msg: "NamespaceSpec" }) },
  NamespaceSpec: { 1: f("finalizers", "string", true) },
  ConfigMap: { 1: f("metadata", { msg: "ObjectMeta" }), 2: f("data", "mapString"), 3: f("binaryData", "mapBytes"), 4: f("immutable", "bool") },
  Secret: { 1: f("metadata", { msg: "ObjectMeta" }), 2: f("data", "mapBytes"), 3: f("type", "string"), 4: f("stringData", "mapString"), 5: f("immutable", "bool") },
  ServiceAccount: {
    1: f("metadata", { msg: "ObjectMeta" }),
    2: f("secrets", { msg: "ObjectReference" }, true),
    3: f("imagePullSecrets", { msg: "LocalObjectReference" }, true),
    4: f("automountServiceAccountToken", "bool"),
  },
  Service: { 1: f("metadata", { msg: "ObjectMeta" }), 2: f("spec", { msg: "ServiceSpec" }) },
  ServiceSpec: {
    1: f("ports", { msg: "ServicePort" }, true),
    2: f("selector", "mapString"),
    3: f("clusterIP", "string"),
    4: f("type", "string"),
    5: f("externalIPs", "string", true),
    7: f("sessionAffinity", "string"),
    10: f("externalName", "string"),
    11: f("externalTrafficPolicy", "string"),
    13: f("publishNotReadyAddresses", "bool"),
    18: f("clusterIPs", "string", true),
  },
  ServicePort: { 1: f("name", "string"), 2: f("protocol", "string"), 3: f("port", "int"), 4: f("targetPort", "intOrString"), 5: f("nodePort", "int"), 6: f("appProtocol", "string") },
  TokenRequest: { 1: f("metadata", { msg: "ObjectMeta" }), 2: f("spec", { msg: "TokenRequestSpec" }) },
  TokenRequestSpec: { 1: f("audiences", "string", true), 3: f("boundObjectRef", { msg: "BoundObjectReference" }), 4: f("expirationSeconds", "int") },
  BoundObjectReference: { 1: f("kind", "string"), 2: f("apiVersion", "string"), 3: f("name", "string"), 4: f("uid", "string") },
  Eviction: { 1: f("metadata", { msg: "ObjectMeta" }), 2: f("deleteOptions", { msg: "DeleteOptions" }) },
  DeleteOptions: { 1: f("gracePeriodSeconds", "int"), 2: f("preconditions", { msg: "Preconditions" }), 4: f("propagationPolicy", "string"), 5: f("dryRun", "string", true) },
  Preconditions: { 1: f("uid", "string"), 2: f("resourceVersion", "string") },
};

function toInt(v: Buffer | bigint): number {
  if (typeof v === "bigint") return Number(BigInt.asIntN(64, v));
  return 0;
}

function decodeValue(t: FieldType, v: Buffer | bigint): unknown {
  switch (t) {
    case "string":
      return Buffer.isBuffer(v) ? v.toString("utf8") : "";
    case "bytes":
      return Buffer.isBuffer(v) ? v.toString("base64") : "";
    case "int":
      return toInt(v);
    case "bool":
      return typeof v === "bigint" ? v !== 0n : false;
    case "time": {
      if (!Buffer.isBuffer(v)) return null;
      const tf = decodeFields(v);
      const secs = tf.get(1)?.[0];
      if (secs === undefined) return null;
      return new Date(toInt(secs) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
    }
    case "intOrString": {
      if (!Buffer.isBuffer(v)) return 0;
      const io = decodeFields(v);
      const type = io.get(1)?.[0];
      if (type !== undefined && toInt(type) === 1) return s(io, 3) ?? "";
      const iv = io.get(2)?.[0];
      return iv === undefined ? 0 : toInt(iv);
    }
    default:
      if (typeof t === "object") return Buffer.isBuffer(v) ? decodeMessage(t.msg, v) : {};
      return undefined;
  }
}

export function decodeMessage(type: string, b: Buffer): Record<string, unknown> {
  const spec = SCHEMAS[type];
  if (spec === undefined) throw badRequest(`no protobuf schema for ${type}`);
  const fields = decodeFields(b);
  const out: Record<string, unknown> = {};
  for (const [num, values] of fields) {
    const fs = spec[num];
    if (fs === undefined) continue;
    if (fs.type === "mapString" || fs.type === "mapBytes") {
      const m: Record<string, string> = {};
      for (const entry of values) {
        if (!Buffer.isBuffer(entry)) continue;
        const ef = decodeFields(entry);
        const k = s(ef, 1) ?? "";
        const val = ef.get(2)?.[0];
        m[k] = fs.type === "mapString" ? (Buffer.isBuffer(val) ? val.toString("utf8") : "") : Buffer.isBuffer(val) ? val.toString("base64") : "";
      }
      out[fs.name] = m;
    } else if (fs.repeated === true) {
      out[fs.name] = values.map((v) => decodeValue(fs.type, v));
    } else {
      const last = values[values.length - 1];
      if (last !== undefined) out[fs.name] = decodeValue(fs.type, last);
    }
  }
  // Go's JSON encoding omits the zero values the protobuf carries (the fields are omitempty).
  for (const [k, v] of Object.entries(out)) {
    const empty = v === "" || v === false || v === 0 || v === null || (Array.isArray(v) && v.length === 0) || (typeof v === "object" && v !== null && Object.keys(v).length === 0);
    if (empty) delete out[k];
  }
  return out;
}

export const PROTOBUF_MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** Decodes a `k8s\0`-enveloped body of the kinds this server reads from protobuf into JSON. */
export function decodeProtobufBody(body: Buffer): Record<string, unknown> {
  if (!body.subarray(0, 4).equals(PROTOBUF_MAGIC)) throw badRequest("protobuf body without the k8s envelope");
  const unknown = decodeFields(body.subarray(4));
  const typeMeta = msg(unknown, 1);
  const apiVersion = typeMeta === undefined ? "" : (s(typeMeta, 1) ?? "");
  const kind = typeMeta === undefined ? "" : (s(typeMeta, 2) ?? "");
  const rawV = unknown.get(2)?.[0];
  const raw = decodeFields(Buffer.isBuffer(rawV) ? rawV : Buffer.alloc(0));
  const spec = msg(raw, 2);
  const out: Record<string, unknown> = { apiVersion, kind, metadata: {} };
  switch (kind) {
    case "SelfSubjectReview":
      return out;
    case "SelfSubjectAccessReview":
      out["spec"] = defined({
        resourceAttributes: resourceAttributes(spec === undefined ? undefined : msg(spec, 1)),
        nonResourceAttributes: nonResourceAttributes(spec === undefined ? undefined : msg(spec, 2)),
      });
      return out;
    case "SubjectAccessReview":
      out["spec"] =
        spec === undefined
          ? {}
          : defined({
              resourceAttributes: resourceAttributes(msg(spec, 1)),
              nonResourceAttributes: nonResourceAttributes(msg(spec, 2)),
              user: s(spec, 3),
              groups: strings(spec, 4),
              uid: s(spec, 6),
            });
      return out;
    case "TokenReview":
      out["spec"] = spec === undefined ? {} : defined({ token: s(spec, 1), audiences: strings(spec, 2) });
      return out;
    default: {
      if (SCHEMAS[kind] === undefined)
        throw new ApiError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json (protobuf is not supported for ${kind || "this kind"})`);
      const rawBuf = Buffer.isBuffer(rawV) ? rawV : Buffer.alloc(0);
      return { apiVersion, kind, ...decodeMessage(kind, rawBuf) };
    }
  }
}
