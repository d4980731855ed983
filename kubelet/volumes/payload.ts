/**
 * What the API-data volumes hold, as files: configMap, secret, downwardAPI and projected (upstream's
 * MakePayload of each plugin, pkg/volume/{configmap,secret,downwardapi,projected}). `items` pick keys and give
 * them paths and modes, `defaultMode` covers the rest, `optional` turns a missing object or key into nothing.
 * Pure: the objects, the token and the pod's facts come in; a volume that cannot be made throws a VolumeError
 * with upstream's message (the pod then waits with FailedMount).
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { DeckhandError } from "../../src-shared/errors.ts";
import { containerResourceValue, podMetadataField } from "../downward-api.ts";

/** One file of a volume: its bytes and mode, by path relative to the volume. */
export interface FileProjection {
  data: Buffer;
  mode: number;
}
export type Payload = Map<string, FileProjection>;

/** The default file mode of configMap, secret, downwardAPI and projected volumes (0644). */
export const DEFAULT_MODE = 0o644;

/** A volume that cannot be set up (missing object or key, bad path, failed check): FailedMount. */
export class VolumeError extends DeckhandError {
  constructor(code: "NotFound" | "InvalidArgument" | "FailedPrecondition" | "Unavailable" | "Internal", message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.name = "VolumeError";
  }
}

export interface KeyToPath {
  key: string;
  path: string;
  mode?: number | undefined;
}

/** The data of a ConfigMap or Secret, already decoded to bytes (Secret data and ConfigMap binaryData are base64). */
export interface ApiData {
  data: Map<string, Buffer>;
}

export function configMapData(cm: { data?: Record<string, string> | undefined; binaryData?: Record<string, string> | undefined }): ApiData {
  const data = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(cm.data ?? {})) data.set(k, Buffer.from(v, "utf8"));
  for (const [k, v] of Object.entries(cm.binaryData ?? {})) data.set(k, Buffer.from(v, "base64"));
  return { data };
}

export function secretData(secret: { data?: Record<string, string> | undefined; stringData?: Record<string, string> | undefined }): ApiData {
  const data = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(secret.data ?? {})) data.set(k, Buffer.from(v, "base64"));
  return { data };
}

/**
 * A volume file path as upstream's validation allows: relative, no `..` element, not empty. Throws otherwise
 * (the API server refuses such paths; a kubelet must not trust that).
 */
export function checkPath(path: string, field: string): void {
  if (path === "") throw new VolumeError("InvalidArgument", `${field}: Invalid value: "": must not be empty`);
  if (path.startsWith("/")) throw new VolumeError("InvalidArgument", `${field}: Invalid value: ${JSON.stringify(path)}: must be a relative path`);
  if (path.split("/").some((p) => p === "..")) throw new VolumeError("InvalidArgument", `${field}: Invalid value: ${JSON.stringify(path)}: must not contain '..'`);
  if (path.startsWith("..")) throw new VolumeError("InvalidArgument", `${field}: Invalid value: ${JSON.stringify(path)}: must not start with '..'`);
}

function add(payload: Payload, path: string, file: FileProjection, field: string): void {
  checkPath(path, field);
  payload.set(path.replace(/\/+$/, ""), file);
}

/**
 * configMap/secret content (upstream's MakePayload): every key when `items` is empty, else only those listed,
 * a listed key the object lacks being an error unless the source is optional. `object` undefined: the object
 * does not exist (an error unless optional, then an empty volume).
 */
export function keysPayload(
  kind: "configmap" | "secret",
  name: string,
  object: ApiData | undefined,
  items: readonly KeyToPath[] | undefined,
  defaultMode: number | undefined,
  optional: boolean,
  field: string,
  into: Payload = new Map(),
): Payload {
  const mode = defaultMode ?? DEFAULT_MODE;
  if (object === undefined) {
    if (optional) return into;
    throw new VolumeError("NotFound", `${kind} ${JSON.stringify(name)} not found`);
  }
  if (!items || items.length === 0) {
    for (const [k, v] of object.data) add(into, k, { data: v, mode }, `${field}.${k}`);
    return into;
  }
  items.forEach((item, i) => {
    const v = object.data.get(item.key);
    if (v === undefined) {
      if (optional) return;
      throw new VolumeError("NotFound", `${kind === "configmap" ? "configmap" : "secret"} references non-existent ${kind === "configmap" ? "config " : "secret "}key: ${item.key}`);
    }
    add(into, item.path, { data: v, mode: item.mode ?? mode }, `${field}.items[${i}].path`);
  });
  return into;
}

/** Upstream's fieldpath.FormatMap: `key="value"` lines sorted by key, values quoted as Go's %q. */
export function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {})
    .sort()
    .map((k) => `${k}=${goQuote(m?.[k] ?? "")}`)
    .join("\n");
}

/** Go's strconv.Quote for the common cases (JSON escaping agrees with it for printable text). */
function goQuote(s: string): string {
  return JSON.stringify(s).replace(/\\u007f/g, "\\x7f");
}

export interface DownwardItem {
  path: string;
  fieldRef?: { fieldPath: string } | undefined;
  resourceFieldRef?: { containerName?: string | undefined; resource: string; divisor?: string | number | undefined } | undefined;
  mode?: number | undefined;
}

/** A downwardAPI fieldRef for volumes: the pod's metadata (whole label/annotation maps too). */
export function volumeFieldValue(pod: V1Pod, fieldPath: string): string {
  const one = podMetadataField(pod, fieldPath);
  if (one !== undefined) return one;
  if (fieldPath === "metadata.labels") return formatMap(pod.metadata?.labels);
  if (fieldPath === "metadata.annotations") return formatMap(pod.metadata?.annotations);
  throw new VolumeError("InvalidArgument", `fieldRef.fieldPath: Unsupported value: ${JSON.stringify(fieldPath)}: supported values: "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"`);
}

/** A resourceFieldRef of a volume: the named container's request or limit (limits default to the node's capacity). */
export function volumeResourceValue(pod: V1Pod, ref: NonNullable<DownwardItem["resourceFieldRef"]>, node: { memoryCapacityBytes: number; cpuCapacityMilli: number }): string {
  const name = ref.containerName ?? "";
  const all: V1Container[] = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  const c = all.find((x) => x.name === name);
  if (!c) throw new VolumeError("InvalidArgument", `resourceFieldRef.containerName: Invalid value: ${JSON.stringify(name)}: container not found in the pod`);
  const value = containerResourceValue(c, ref.resource, ref.divisor, { memoryBytes: node.memoryCapacityBytes, cpuMilli: node.cpuCapacityMilli });
  if (value === undefined) throw new VolumeError("InvalidArgument", `resourceFieldRef.resource: Unsupported value: ${JSON.stringify(ref.resource)}`);
  return value;
}

export function downwardPayload(pod: V1Pod, items: readonly DownwardItem[], defaultMode: number | undefined, node: { memoryCapacityBytes: number; cpuCapacityMilli: number }, field: string, into: Payload = new Map()): Payload {
  const mode = defaultMode ?? DEFAULT_MODE;
  items.forEach((item, i) => {
    let text: string;
    if (item.fieldRef) text = volumeFieldValue(pod, item.fieldRef.fieldPath);
    else if (item.resourceFieldRef) text = volumeResourceValue(pod, item.resourceFieldRef, node);
    else throw new VolumeError("InvalidArgument", `${field}.items[${i}]: one of fieldRef or resourceFieldRef is required`);
    add(into, item.path, { data: Buffer.from(text, "utf8"), mode: item.mode ?? mode }, `${field}.items[${i}].path`);
  });
  return into;
}

/** A stable digest of a payload, to tell whether what is on disk must be written again. */
export function payloadKey(payload: Payload): string {
  return [...payload.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([p, f]) => `${p}\0${f.mode}\0${f.data.toString("base64")}`)
    .join("\n");
}
