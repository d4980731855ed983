/**
 * The one strict decoder of component configuration files (KubeletConfiguration, KubeProxyConfiguration), as
 * upstream decodes both: sigs.k8s.io/yaml turns YAML into JSON with go-yaml v2's YAML 1.1 resolution (so
 * `yes`/`no`/`on`/`off`/`y`/`n` are booleans, for every field: a string field given `on` is a type error, as
 * the JSON decoder upstream reports), a document starting with "{" is JSON; then the strict decoder refuses
 * duplicate fields, unknown fields (case-sensitive, named by their full path) and values of the wrong JSON type.
 *
 * Deliberate difference: upstream falls back to lenient decoding (with a log line) when strict decoding of a
 * v1beta1 KubeletConfiguration or v1alpha1 KubeProxyConfiguration fails; we keep the strict errors, so that no
 * field is silently ignored.
 *
 * A component describes its file with a schema (`obj`, `S`, `IGN`, `INERT`): which fields exist, their JSON
 * types, and whether it implements them ("supported"), accepts and ignores them ("ignored"), or accepts only
 * their "off" value ("inert"). Every problem carries a stable `reason`; a failed decode throws (or returns)
 * problems the component renders with its own origin (file or flag).
 */
import yaml from "js-yaml";
import { DeckhandError, errorMessage } from "./errors.ts";
import { nsToMs, parseGoDuration } from "./go-duration.ts";

/**
 * Why a value was refused: stable, for code; the detail is for people. Unsupported: a wrong apiVersion/kind or
 * a value deckhand does not implement; Invalid: a wrong type, or a value a field's own check refuses.
 */
export type ProblemReason =
  | "Syntax"
  | "DuplicateField"
  | "NotAnObject"
  | "Required"
  | "Unsupported"
  | "UnknownField"
  | "Invalid";

/** One problem: the field path it concerns ("" for the file as a whole) and what is wrong, value included. */
export interface Problem {
  path: string;
  detail: string;
  reason?: ProblemReason;
  /** The value at fault, when there is one. */
  value?: unknown;
  /** Other fields the problem comes from (to say which file or flag set them when `path` was defaulted). */
  related?: string[];
}

export type Json = Record<string, unknown>;
export type Milliseconds = number;

export function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Go's zero value (or an object of them): what "not set" means for optional fields. */
export function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === "" || v === false || v === 0) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (isObject(v)) return Object.values(v).every(isEmpty);
  return false;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/** A value as upstream's field errors print it. */
export function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (v === null || v === undefined) return "null";
  return JSON.stringify(v);
}

/** field.Invalid's text. */
export function invalid(value: unknown, detail: string): string {
  return `Invalid value: ${show(value)}: ${detail}`;
}

/** field.NotSupported's text. */
export function unsupported(value: unknown, allowed: readonly string[]): string {
  return `Unsupported value: ${show(value)}: supported values: ${allowed.map((a) => JSON.stringify(a)).join(", ")}`;
}

// ---------------------------------------------------------------------------------------------------------
// Schemas

/** `any`: an opaque subtree (accepted as it is, nothing below it checked). */
export type LeafKind =
  | "any"
  | "bool"
  | "int32"
  | "int64"
  | "uint32"
  | "float"
  | "string"
  | "duration"
  | "durationOrNanos"
  | "quantity"
  | "strings"
  | "int32s"
  | "stringMap"
  | "boolMap"
  | "durationMap"
  | "quantityMap"
  | "stringsMap";

export interface ObjectSpec {
  kind: "object";
  fields: Readonly<Record<string, Field>>;
}

export interface ListSpec {
  kind: "list";
  item: ObjectSpec;
}

export type Spec = LeafKind | ObjectSpec | ListSpec;

/**
 * supported: decoded into the configuration. ignored: accepted and type-checked, no effect in deckhand.
 * inert: upstream feature deckhand lacks; only its "off" value is accepted.
 */
export type Use = "supported" | "ignored" | { inert: (v: unknown) => boolean; only: string };

export interface Field {
  spec: Spec;
  use: Use;
  /** A problem with the decoded value (a full "Invalid value: …" / "Unsupported value: …" text). */
  check?: (v: unknown) => string | undefined;
  /** Whether an ignored field's value is upstream's default (then it is not listed in ignoredFields). */
  isDefault?: (v: unknown) => boolean;
}

export const S = (spec: Spec, check?: (v: unknown) => string | undefined): Field => (check ? { spec, use: "supported", check } : { spec, use: "supported" });
export const IGN = (spec: Spec, dflt?: unknown, check?: (v: unknown) => string | undefined): Field => {
  const f: Field = { spec, use: "ignored" };
  if (typeof dflt === "function") f.isDefault = dflt as (v: unknown) => boolean;
  else if (dflt !== undefined) f.isDefault = (v) => deepEqual(v, dflt);
  if (check) f.check = check;
  return f;
};
export const INERT = (spec: Spec, allowed: readonly unknown[], only: string): Field => ({
  spec,
  use: { inert: (v) => allowed.some((a) => deepEqual(a, v)) || isEmpty(v), only },
});
export const obj = (fields: Record<string, Field>): ObjectSpec => ({ kind: "object", fields });

export const enumCheck =
  (allowed: readonly string[]) =>
  (v: unknown): string | undefined =>
    typeof v === "string" && v !== "" && !allowed.includes(v) ? unsupported(v, allowed) : undefined;


// ---------------------------------------------------------------------------------------------------------
// Strict decoding

export interface DecodeState {
  problems: Problem[];
  ignored: string[];
  /** Paths of the supported values the document set. */
  set: Set<string>;
}

const BAD = Symbol("bad");

/** How an entry of a map appears in a path: `evictionHard[memory.available]`. */
function entryPath(path: string, key: string): string {
  return `${path}[${key}]`;
}

function decodeDuration(v: unknown, path: string, st: DecodeState): Milliseconds | typeof BAD {
  if (typeof v !== "string") {
    st.problems.push({ path, detail: invalid(v, 'must be a duration string with a unit, e.g. "10s", "1m30s", "100ms"') });
    return BAD;
  }
  const d = parseGoDuration(v);
  if (!d.ok) {
    st.problems.push({ path, detail: invalid(v, d.error) });
    return BAD;
  }
  return nsToMs(d.ns);
}

function decodeMap(v: unknown, path: string, st: DecodeState, entry: (value: unknown, path: string) => unknown): Json | typeof BAD {
  if (!isObject(v)) {
    st.problems.push({ path, detail: invalid(v, "must be a map") });
    return BAD;
  }
  const out: Json = {};
  let ok = true;
  for (const [k, value] of Object.entries(v)) {
    const r = entry(value, entryPath(path, k));
    if (r === BAD) ok = false;
    else out[k] = r;
  }
  return ok ? out : BAD;
}

function decodeValue(v: unknown, spec: Spec, path: string, st: DecodeState, store: boolean): unknown {
  const bad = (detail: string): typeof BAD => {
    st.problems.push({ path, detail: invalid(v, detail), reason: "Invalid", value: v });
    return BAD;
  };
  /** A value (or map entry) decoder from a conversion that answers BAD, reporting `detail` at the value's path. */
  const convert =
    (f: (x: unknown) => unknown, detail: string) =>
    (x: unknown, p: string): unknown => {
      const r = f(x);
      if (r === BAD) st.problems.push({ path: p, detail: invalid(x, detail), reason: "Invalid", value: x });
      return r;
    };
  if (typeof spec !== "string") {
    if (spec.kind === "object") {
      if (!isObject(v)) return bad("must be an object");
      return decodeObject(v, spec, path, st, store);
    }
    if (!Array.isArray(v)) return bad("must be a list");
    const items: unknown[] = [];
    v.forEach((item: unknown, i) => {
      const p = `${path}[${i}]`;
      if (!isObject(item)) st.problems.push({ path: p, detail: invalid(item, "must be an object"), reason: "Invalid", value: item });
      else items.push(decodeObject(item, spec.item, p, st, store));
    });
    return items;
  }
  switch (spec) {
    case "any":
      return v;
    case "bool":
      return typeof v === "boolean" ? v : bad("must be a boolean (true or false)");
    case "int32":
      if (typeof v !== "number" || !Number.isInteger(v)) return bad("must be an integer");
      return v < -2147483648 || v > 2147483647 ? bad("must fit in a 32-bit integer") : v;
    case "uint32":
      if (typeof v !== "number" || !Number.isInteger(v)) return bad("must be an integer");
      return v < 0 || v > 4294967295 ? bad("must be a non-negative 32-bit integer") : v;
    case "int64":
      return typeof v === "number" && Number.isSafeInteger(v) ? v : bad("must be an integer");
    case "float":
      return typeof v === "number" && Number.isFinite(v) ? v : bad("must be a number");
    case "string":
      return typeof v === "string" ? v : bad("must be a string (quote it in YAML)");
    case "duration":
      return decodeDuration(v, path, st);
    case "durationOrNanos":
      if (typeof v === "number") return Number.isSafeInteger(v) ? v / 1e6 : bad("must be a duration string or an integer number of nanoseconds");
      return decodeDuration(v, path, st);
    case "quantity":
      return convert(quantityText, "must be a quantity")(v, path);
    case "strings":
      return convert(stringList, "must be a list of strings")(v, path);
    case "int32s":
      if (!Array.isArray(v) || !v.every((x) => typeof x === "number" && Number.isInteger(x))) return bad("must be a list of integers");
      return [...(v as number[])];
    case "stringMap":
      return decodeMap(v, path, st, convert((x) => (typeof x === "string" ? x : BAD), "must be a string (quote it in YAML)"));
    case "quantityMap":
      return decodeMap(v, path, st, convert(quantityText, "must be a quantity"));
    case "boolMap":
      return decodeMap(v, path, st, convert((x) => (typeof x === "boolean" ? x : BAD), "must be a boolean (true or false)"));
    case "durationMap":
      return decodeMap(v, path, st, (x, p) => decodeDuration(x, p, st));
    case "stringsMap":
      return decodeMap(v, path, st, convert(stringList, "must be a list of strings"));
  }
}

/** A quantity as text: YAML's bare numbers (`cpu: 1`) become their text. */
function quantityText(x: unknown): unknown {
  return typeof x === "string" ? x : typeof x === "number" ? String(x) : BAD;
}

function stringList(x: unknown): unknown {
  return Array.isArray(x) && x.every((s) => typeof s === "string") ? [...x] : BAD;
}

export function decodeObject(raw: Json, spec: ObjectSpec, path: string, st: DecodeState, store: boolean): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(raw)) {
    const p = path === "" ? key : `${path}.${key}`;
    const field = Object.hasOwn(spec.fields, key) ? spec.fields[key] : undefined;
    if (!field) {
      st.problems.push({ path: "", detail: `unknown field ${JSON.stringify(p)}`, reason: "UnknownField", value });
      continue;
    }
    if (value === null || value === undefined) continue; // null: not set
    const use = field.use;
    const keep = store && use === "supported";
    const decoded = decodeValue(value, field.spec, p, st, keep);
    if (decoded === BAD) continue;
    const problem = field.check?.(decoded);
    if (problem) {
      st.problems.push({ path: p, detail: problem, reason: "Invalid", value: decoded });
      continue;
    }
    if (use === "supported") {
      if (keep) {
        out[key] = decoded;
        st.set.add(p);
      }
    } else if (use === "ignored") {
      if (store && !isEmpty(decoded) && !field.isDefault?.(decoded)) st.ignored.push(p);
    } else if (!use.inert(decoded)) {
      st.problems.push({ path: p, detail: `Unsupported value: ${show(decoded)}: deckhand supports only ${use.only}`, reason: "Unsupported", value: decoded });
    }
  }
  return out;
}


// ---------------------------------------------------------------------------------------------------------
// The document

/** YAML 1.1 booleans (y/yes/on/true and n/no/off/false, as go-yaml v2 resolves them), and merge keys. */
const YAML11_TRUE = new Set(["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"]);
const YAML11_FALSE = new Set(["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"]);
const YAML_SCHEMA = yaml.CORE_SCHEMA.extend({
  implicit: [
    new yaml.Type("tag:yaml.org,2002:bool", {
      kind: "scalar",
      resolve: (data: unknown) => typeof data === "string" && (YAML11_TRUE.has(data) || YAML11_FALSE.has(data)),
      construct: (data: unknown) => typeof data === "string" && YAML11_TRUE.has(data),
      predicate: (o: object) => typeof o === "boolean",
    }),
    new yaml.Type("tag:yaml.org,2002:merge", { kind: "scalar", resolve: (data: unknown) => data === "<<" || data === null }),
  ],
});

/** A YAML parser error as a problem: a duplicate key named (strict decoding refuses those), else the reason and where. */
function yamlProblem(err: unknown, text: string): Problem {
  if (!(err instanceof yaml.YAMLException)) return { path: "", detail: `invalid YAML: ${errorMessage(err)}`, reason: "Syntax" };
  const e = err as yaml.YAMLException & { reason?: string; mark?: { line: number; column: number; position: number } };
  const where = e.mark ? ` (line ${e.mark.line + 1}, column ${e.mark.column + 1})` : "";
  if (e.reason === "duplicated mapping key" && e.mark) {
    const key = /^\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([^:\s]+))/.exec(text.slice(e.mark.position));
    const name = key?.[1] ?? key?.[2] ?? key?.[3];
    return { path: "", detail: `duplicate field ${JSON.stringify(name ?? "?")}${where}`, reason: "DuplicateField", value: name };
  }
  return { path: "", detail: `invalid YAML: ${e.reason ?? e.message}${where}`, reason: "Syntax" };
}

/**
 * sigs.k8s.io/yaml's YAMLToJSON, strict: the document of a YAML or JSON text (a text starting with "{" is
 * JSON), or the problem that it has none (syntax, duplicate field, empty file).
 */
export function parseConfigDocument(raw: string): { doc: unknown } | { problem: Problem } {
  const text = raw.replace(/^\uFEFF/, "");
  const trimmed = text.trim();
  if (trimmed === "") return { problem: { path: "", detail: "the file is empty", reason: "Syntax" } };
  if (trimmed.startsWith("{")) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      return { problem: { path: "", detail: `invalid JSON: ${errorMessage(err)}`, reason: "Syntax" } };
    }
    // Strict decoding refuses duplicate fields; JSON.parse keeps the last silently, the YAML parser notices.
    try {
      yaml.load(text, { schema: yaml.JSON_SCHEMA });
    } catch (err) {
      const problem = yamlProblem(err, text);
      if (problem.reason === "DuplicateField") return { problem };
    }
    return { doc };
  }
  try {
    return { doc: yaml.load(text, { schema: YAML_SCHEMA }) };
  } catch (err) {
    return { problem: yamlProblem(err, text) };
  }
}

/**
 * The strict decoding of a whole file: the document (YAML or JSON), its apiVersion and kind, then every field
 * against `schema`. `fatal` problems (syntax, wrong kind) stop everything else; `problems` are the fields'.
 * `fields` holds the supported fields' decoded values (without apiVersion and kind), `ignoredFields` the
 * paths of ignored fields set to a non-default value, `set` the paths of the supported values present.
 */
export interface DecodedDocument {
  fields: Json;
  ignoredFields: string[];
  fatal: Problem[];
  problems: Problem[];
  set: Set<string>;
}

export function decodeConfigDocument(text: string, type: { apiVersion: string; kind: string; schema: ObjectSpec }): DecodedDocument {
  const st: DecodeState = { problems: [], ignored: [], set: new Set() };
  const result = (fields: Json, fatal: Problem[]): DecodedDocument => ({ fields, ignoredFields: st.ignored, fatal, problems: st.problems, set: st.set });
  const parsed = parseConfigDocument(text);
  if ("problem" in parsed) return result({}, [parsed.problem]);
  const doc = parsed.doc;
  if (!isObject(doc)) return result({}, [{ path: "", detail: `must hold a ${type.kind} object, got ${show(doc)}`, reason: "NotAnObject", value: doc }]);
  const fatal = typeMetaProblems(doc, type.apiVersion, type.kind);
  if (fatal.length > 0) return result({}, fatal);
  const fields = decodeObject(doc, type.schema, "", st, true);
  delete fields["apiVersion"];
  delete fields["kind"];
  st.set.delete("apiVersion");
  st.set.delete("kind");
  return result(fields, []);
}

/** The apiVersion and kind a document must have (upstream's scheme refuses any other). */
export function typeMetaProblems(doc: Json, apiVersion: string, kind: string): Problem[] {
  const out: Problem[] = [];
  for (const [field, want] of [["apiVersion", apiVersion], ["kind", kind]] as const) {
    const got = doc[field];
    if (got === want) continue;
    out.push(
      got === undefined || got === null
        ? { path: field, detail: `Required value: must be ${JSON.stringify(want)}`, reason: "Required" }
        : { path: field, detail: unsupported(got, [want]), reason: "Unsupported", value: got },
    );
  }
  return out;
}

/** "<head>: <one problem>" or "<head>: N errors:" and one problem a line. */
export function listMessage(head: string, lines: readonly string[]): string {
  if (lines.length === 1) return `${head}: ${lines[0] ?? ""}`;
  return `${head}: ${lines.length} errors:\n${lines.map((l) => `  - ${l}`).join("\n")}`;
}

/** The error a component throws for a configuration it refuses: `details.errors` (lines) and `details.problems`. */
export function configError(message: string, lines: readonly string[], problems: readonly Problem[] = []): DeckhandError {
  return new DeckhandError("InvalidConfig", message, { details: { errors: [...lines], problems: [...problems] } });
}
