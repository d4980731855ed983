/**
 * Label and field selectors with the grammar of k8s.io/apimachinery/pkg/labels and /fields. Pure.
 */
import { badRequest, type ApiError } from "./status.ts";

export type LabelOp = "=" | "!=" | "in" | "notin" | "exists" | "!" | "gt" | "lt";

export interface LabelRequirement {
  key: string;
  op: LabelOp;
  values: string[];
}

export type LabelSelector = LabelRequirement[];

const qualifiedNameRe = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const prefixRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const valueRe = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function validKey(key: string): string | undefined {
  const parts = key.split("/");
  if (parts.length > 2) return "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  const name = parts.length === 2 ? (parts[1] ?? "") : (parts[0] ?? "");
  if (parts.length === 2) {
    const prefix = parts[0] ?? "";
    if (prefix === "" || prefix.length > 253 || !prefixRe.test(prefix)) return "prefix part must be a lowercase RFC 1123 subdomain";
  }
  if (name === "" || name.length > 63 || !qualifiedNameRe.test(name))
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

function validValue(v: string): boolean {
  return v.length <= 63 && valueRe.test(v);
}

function labelError(msg: string): ApiError {
  return badRequest(`unable to parse requirement: ${msg}`);
}

/** Splits on commas that are not inside parentheses. */
function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** Parses a label selector string (`a=b,c!=d,e in (x,y),!f,g`); throws ApiError 400 on bad syntax. */
export function parseLabelSelector(input: string): LabelSelector {
  const s = input.trim();
  if (s === "") return [];
  const reqs: LabelRequirement[] = [];
  for (const rawPart of splitTopLevel(s)) {
    const part = rawPart.trim();
    if (part === "") throw badRequest(`found '', expected: identifier`);
    let m: RegExpMatchArray | null;
    let req: LabelRequirement;
    if ((m = /^!\s*([^\s=!<>(),]+)$/.exec(part))) {
      req = { key: m[1] ?? "", op: "!", values: [] };
    } else if ((m = /^([^\s=!<>(),]+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(part))) {
      const values = (m[3] ?? "").split(",").map((v) => v.trim());
      if (values.length === 1 && values[0] === "") throw labelError(`for 'in', 'notin' operators, values set can't be empty`);
      req = { key: m[1] ?? "", op: m[2] === "in" ? "in" : "notin", values };
    } else if ((m = /^([^\s=!<>(),]+)\s*(==|=|!=|>|<)\s*([^\s=!<>(),]*)$/.exec(part))) {
      const op = m[2];
      const value = m[3] ?? "";
      if (op === ">" || op === "<") {
        if (!/^-?\d+$/.test(value)) throw labelError(`for 'Gt', 'Lt' operators, the value must be an integer`);
        req = { key: m[1] ?? "", op: op === ">" ? "gt" : "lt", values: [value] };
      } else req = { key: m[1] ?? "", op: op === "!=" ? "!=" : "=", values: [value] };
    } else if ((m = /^([^\s=!<>(),]+)$/.exec(part))) {
      req = { key: m[1] ?? "", op: "exists", values: [] };
    } else {
      throw badRequest(`unable to parse requirement: found '${part}', expected: ',', '!=', '==', '=', 'in', 'notin'`);
    }
    const keyErr = validKey(req.key);
    if (keyErr !== undefined) throw labelError(`values[0][${req.key}]: Invalid value: "${req.key}": ${keyErr}`);
    if (req.op !== "gt" && req.op !== "lt")
      for (const v of req.values)
        if (!validValue(v))
          throw labelError(
            `values[0][${req.key}]: Invalid value: "${v}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
          );
    reqs.push(req);
  }
  return reqs;
}

export function matchesLabels(sel: LabelSelector, labels: Readonly<Record<string, string>> | undefined): boolean {
  for (const r of sel) {
    const has = labels !== undefined && Object.hasOwn(labels, r.key);
    const v = has ? labels[r.key] : undefined;
    switch (r.op) {
      case "=":
        if (!has || v !== r.values[0]) return false;
        break;
      case "!=":
        if (has && v === r.values[0]) return false;
        break;
      case "in":
        if (!has || !r.values.includes(v ?? "")) return false;
        break;
      case "notin":
        if (has && r.values.includes(v ?? "")) return false;
        break;
      case "exists":
        if (!has) return false;
        break;
      case "!":
        if (has) return false;
        break;
      case "gt":
      case "lt": {
        if (!has || !/^-?\d+$/.test(v ?? "")) return false;
        const n = Number(v);
        const lim = Number(r.values[0]);
        if (r.op === "gt" ? !(n > lim) : !(n < lim)) return false;
        break;
      }
    }
  }
  return true;
}

/** The structured selector of a Service/Deployment (`matchLabels` + `matchExpressions`) as requirements. */
export function labelSelectorFromObject(sel: unknown): LabelSelector {
  const out: LabelSelector = [];
  if (typeof sel !== "object" || sel === null) return out;
  const o = sel as { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
  for (const [k, v] of Object.entries(o.matchLabels ?? {})) out.push({ key: k, op: "=", values: [v] });
  for (const e of o.matchExpressions ?? []) {
    const op: LabelOp = e.operator === "In" ? "in" : e.operator === "NotIn" ? "notin" : e.operator === "Exists" ? "exists" : "!";
    out.push({ key: e.key, op, values: e.values ?? [] });
  }
  return out;
}

/** A Service's `spec.selector` map as requirements; an empty map selects nothing for endpoints. */
export function labelSelectorFromMap(m: Readonly<Record<string, string>>): LabelSelector {
  return Object.entries(m).map(([key, v]) => ({ key, op: "=" as const, values: [v] }));
}

export function formatLabelSelector(sel: LabelSelector): string {
  return sel
    .map((r) => {
      switch (r.op) {
        case "=":
          return `${r.key}=${r.values[0] ?? ""}`;
        case "!=":
          return `${r.key}!=${r.values[0] ?? ""}`;
        case "in":
          return `${r.key} in (${r.values.join(",")})`;
        case "notin":
          return `${r.key} notin (${r.values.join(",")})`;
        case "exists":
          return r.key;
        case "!":
          return `!${r.key}`;
        case "gt":
          return `${r.key}>${r.values[0] ?? ""}`;
        case "lt":
          return `${r.key}<${r.values[0] ?? ""}`;
      }
    })
    .join(",");
}

export interface FieldRequirement {
  field: string;
  op: "=" | "!=";
  value: string;
}

export type FieldSelector = FieldRequirement[];

/** Splits on an unescaped separator, keeping escapes for a later pass. */
function splitUnescaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] ?? "";
    if (ch === "\\" && i + 1 < s.length) {
      cur += ch + (s[i + 1] ?? "");
      i++;
    } else if (ch === sep) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

function unescapeFieldValue(v: string): string {
  let out = "";
  for (let i = 0; i < v.length; i++) {
    const ch = v[i] ?? "";
    if (ch === "\\") {
      const next = v[i + 1];
      if (next === undefined || !"\\,=".includes(next)) throw badRequest(`invalid field selector: invalid escape sequence: \\${next ?? ""}`);
      out += next;
      i++;
    } else if (ch === "=" || ch === ",") {
      throw badRequest(`invalid field selector: unescaped ${ch} in value`);
    } else out += ch;
  }
  return out;
}

/** Parses `a=b,c!=d,e==f`. Field names are checked by the caller against the resource's selectable fields. */
export function parseFieldSelector(input: string): FieldSelector {
  const s = input.trim();
  if (s === "") return [];
  const out: FieldSelector = [];
  for (const part of splitUnescaped(s, ",")) {
    const m = /^([^=!]+?)\s*(==|!=|=)(.*)$/s.exec(part);
    if (!m) throw badRequest(`invalid selector: '${s}'; can't understand '${part}'`);
    out.push({ field: (m[1] ?? "").trim(), op: m[2] === "!=" ? "!=" : "=", value: unescapeFieldValue(m[3] ?? "") });
  }
  return out;
}

export function matchesFields(sel: FieldSelector, fields: (name: string) => string | undefined): boolean {
  for (const r of sel) {
    const v = fields(r.field) ?? "";
    if (r.op === "=" ? v !== r.value : v === r.value) return false;
  }
  return true;
}
