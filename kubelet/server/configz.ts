/**
 * `/configz`: the running configuration as upstream's configz shows it, `{"kubeletconfig": {...}}` with the
 * v1beta1 field names and durations as Go writes them ("1m0s"): the fields deckhand implements, walked through
 * the file schema (config/decode.ts) so every duration is rendered as one.
 */
import { isObject, type Field, type ObjectSpec } from "../../src-shared/config-decode.ts";
import { formatMs } from "../../src-shared/go-duration.ts";
import { SCHEMA } from "../config/decode.ts";
import type { KubeletConfiguration } from "../config/types.ts";

function render(value: unknown, field: Field): unknown {
  const spec = field.spec;
  if (typeof spec === "object" && spec.kind === "object") return isObject(value) ? renderObject(value, spec) : value;
  if ((spec === "duration" || spec === "durationOrNanos") && typeof value === "number") return formatMs(value);
  if (spec === "durationMap" && isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, typeof v === "number" ? formatMs(v) : v]));
  return value;
}

function renderObject(o: Record<string, unknown>, spec: ObjectSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, field] of Object.entries(spec.fields)) {
    if (field.use !== "supported" || !(k in o)) continue;
    out[k] = render(o[k], field);
  }
  return out;
}

export function configz(config: KubeletConfiguration): { kubeletconfig: Record<string, unknown> } {
  return { kubeletconfig: renderObject(config as unknown as Record<string, unknown>, SCHEMA) };
}
