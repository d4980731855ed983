/**
 * Write validation in two layers, as kube-apiserver has them:
 * 1. Schema: the object against the published Kubernetes OpenAPI schemas (compiled validators shipped by the
 *    kubernetes-models package). A wrong JSON type or malformed timestamp/integer is what the real server's
 *    decoder rejects with 400 ("cannot be handled as a Pod"); a missing required field or a value outside an
 *    enum is 422 Invalid naming the field.
 * 2. Semantics: hand-written checks of the rules of pkg/apis/core/validation that matter to node agents
 *    (names, immutability, pod spec updates, status transitions, IPs and CIDRs, lease durations).
 */
import { createRequire } from "node:module";
import { isIP } from "node:net";
import { badRequest, invalidValue, notSupported, required, forbidden, duplicate, type ApiError, type FieldError } from "./status.ts";
import { arr, dig, isObject, jsonEqual, str, type KubeObject } from "./types.ts";
import { parseLabelSelector } from "./selectors.ts";

interface AjvError {
  instancePath: string;
  keyword: string;
  params: { missingProperty?: string; allowedValues?: unknown[]; type?: string; format?: string };
}
type CompiledValidator = ((data: unknown) => boolean) & { errors?: AjvError[] | null };

const SCHEMA_MODULE: Record<string, string> = {
  "v1/Pod": "IoK8sApiCoreV1Pod",
  "rbac.authorization.k8s.io/v1/ClusterRole": "IoK8sApiRbacV1ClusterRole",
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": "IoK8sApiRbacV1ClusterRoleBinding",
  "rbac.authorization.k8s.io/v1/Role": "IoK8sApiRbacV1Role",
  "rbac.authorization.k8s.io/v1/RoleBinding": "IoK8sApiRbacV1RoleBinding",
  "v1/Node": "IoK8sApiCoreV1Node",
  "v1/Service": "IoK8sApiCoreV1Service",
  "v1/Namespace": "IoK8sApiCoreV1Namespace",
  "v1/ConfigMap": "IoK8sApiCoreV1ConfigMap",
  "v1/Secret": "IoK8sApiCoreV1Secret",
  "v1/ServiceAccount": "IoK8sApiCoreV1ServiceAccount",
  "v1/Event": "IoK8sApiCoreV1Event",
  "events.k8s.io/v1/Event": "IoK8sApiEventsV1Event",
  "discovery.k8s.io/v1/EndpointSlice": "IoK8sApiDiscoveryV1EndpointSlice",
  "coordination.k8s.io/v1/Lease": "IoK8sApiCoordinationV1Lease",
  "v1/Binding": "IoK8sApiCoreV1Binding",
  "policy/v1/Eviction": "IoK8sApiPolicyV1Eviction",
  "authentication.k8s.io/v1/TokenRequest": "IoK8sApiAuthenticationV1TokenRequest",
  "authentication.k8s.io/v1/TokenReview": "IoK8sApiAuthenticationV1TokenReview",
  "authorization.k8s.io/v1/SubjectAccessReview": "IoK8sApiAuthorizationV1SubjectAccessReview",
  "authorization.k8s.io/v1/SelfSubjectAccessReview": "IoK8sApiAuthorizationV1SelfSubjectAccessReview",
};

const validators = new Map<string, Promise<CompiledValidator | undefined>>();
const loaded = new Map<string, CompiledValidator | undefined>();
const require = createRequire(import.meta.url);

/** Loads the compiled schema validators once (ESM modules, so asynchronously) before the server serves. */
export async function loadSchemas(): Promise<void> {
  await Promise.all(
    Object.entries(SCHEMA_MODULE).map(async ([key, mod]) => {
      let p = validators.get(key);
      if (p === undefined) {
        p = import(`kubernetes-models/_schemas/${mod}`).then(
          (m: { validate?: CompiledValidator }) => m.validate,
          () => undefined,
        );
        validators.set(key, p);
      }
      loaded.set(key, await p);
    }),
  );
}

/** Whether kubernetes-models is resolvable from here (it is a dependency of the project). */
export function schemasAvailable(): boolean {
  try {
    require.resolve("kubernetes-models/package.json");
    return true;
  } catch {
    return false;
  }
}

/** `/status/containerStatuses/0/ready` → `status.containerStatuses[0].ready`. */
export function fieldPath(instancePath: string, extra?: string): string {
  const parts = instancePath.split("/").slice(1);
  if (extra !== undefined) parts.push(extra);
  let out = "";
  for (const p0 of parts) {
    const p = p0.replace(/~1/g, "/").replace(/~0/g, "~");
    if (/^\d+$/.test(p)) out += `[${p}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(p)) out += out === "" ? p : `.${p}`;
    else out += `[${p}]`;
  }
  return out;
}

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "object") return "object";
  return typeof v;
}

function valueAt(obj: unknown, instancePath: string): unknown {
  let cur = obj;
  for (const p of instancePath.split("/").slice(1)) {
    const k = p.replace(/~1/g, "/").replace(/~0/g, "~");
    cur = Array.isArray(cur) ? cur[Number(k)] : isObject(cur) ? cur[k] : undefined;
  }
  return cur;
}

/**
 * Checks `obj` against its kind's OpenAPI schema. Throws 400 (decode-style) for type errors; returns field
 * errors for required and enum violations.
 */
export function schemaErrors(apiVersion: string, kind: string, obj: KubeObject): FieldError[] {
  const v = loaded.get(`${apiVersion}/${kind}`);
  if (v === undefined) return [];
  if (v(obj)) return [];
  const out: FieldError[] = [];
  for (const e of v.errors ?? []) {
    if (e.keyword === "type" || e.keyword === "format") {
      const at = valueAt(obj, e.instancePath);
      const want = e.keyword === "type" ? (e.params.type ?? "") : (e.params.format ?? "");
      const field = fieldPath(e.instancePath);
      const detail =
        e.params.format === "date-time"
          ? `parsing time ${JSON.stringify(at)} as "2006-01-02T15:04:05Z07:00": cannot parse ${JSON.stringify(at)} as "2006"`
          : `json: cannot unmarshal ${jsonType(at)} into Go struct field ${kind}.${field} of type ${want === "integer" ? "int32" : want}`;
      throw badRequest(`${kind} in version "${apiVersion.split("/").pop() ?? ""}" cannot be handled as a ${kind}: ${detail}`);
    }
    if (e.keyword === "required") {
      const missing = e.params.missingProperty ?? "";
      if (e.instancePath === "" && (missing === "apiVersion" || missing === "kind")) continue;
      out.push(required(fieldPath(e.instancePath, missing)));
    } else if (e.keyword === "enum") {
      out.push(notSupported(fieldPath(e.instancePath), valueAt(obj, e.instancePath), (e.params.allowedValues ?? []).map(String)));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Semantic checks
// ---------------------------------------------------------------------------------------------------------

const dns1123LabelRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123SubdomainRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const dns1035LabelRe = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const configKeyRe = /^[-._a-zA-Z0-9]+$/;

export function dnsSubdomainErrors(field: string, v: string): FieldError[] {
  if (v.length > 253) return [invalidValue(field, v, "must be no more than 253 characters")];
  if (!dns1123SubdomainRe.test(v))
    return [
      invalidValue(
        field,
        v,
        `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
      ),
    ];
  return [];
}

export function dnsLabelErrors(field: string, v: string): FieldError[] {
  if (v.length > 63) return [invalidValue(field, v, "must be no more than 63 characters")];
  if (!dns1123LabelRe.test(v))
    return [
      invalidValue(
        field,
        v,
        `a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
      ),
    ];
  return [];
}

function dns1035Errors(field: string, v: string): FieldError[] {
  if (v.length > 63) return [invalidValue(field, v, "must be no more than 63 characters")];
  if (!dns1035LabelRe.test(v))
    return [
      invalidValue(
        field,
        v,
        `a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`,
      ),
    ];
  return [];
}

export type NameRule = "subdomain" | "label" | "dns1035" | "path";

/** Which name rule each kind's validation applies. */
export const NAME_RULES: Readonly<Record<string, NameRule>> = {
  Namespace: "label",
  Service: "dns1035",
  Event: "path",
};

function nameErrors(kind: string, name: string): FieldError[] {
  const rule = NAME_RULES[kind] ?? "subdomain";
  const f = "metadata.name";
  switch (rule) {
    case "label":
      return dnsLabelErrors(f, name);
    case "dns1035":
      return dns1035Errors(f, name);
    case "path":
      if (name === "." || name === ".." || name.includes("/") || name.includes("%"))
        return [invalidValue(f, name, `may not contain '/' or '%' and may not be '.' or '..'`)];
      return [];
    case "subdomain":
      return dnsSubdomainErrors(f, name);
  }
}

function labelsErrors(field: string, labels: unknown): FieldError[] {
  if (labels === undefined || labels === null) return [];
  if (!isObject(labels)) return [invalidValue(field, labels, "must be a map of strings")];
  const out: FieldError[] = [];
  for (const [k, v] of Object.entries(labels)) {
    try {
      parseLabelSelector(`${k}=${typeof v === "string" ? v : ""}`);
    } catch (e) {
      out.push(invalidValue(`${field}`, k, (e as ApiError).message.replace(/^unable to parse requirement: /, "")));
    }
  }
  return out;
}

/** ObjectMeta checks on create. */
export function validateObjectMetaCreate(kind: string, o: KubeObject, namespaced: boolean): FieldError[] {
  const out: FieldError[] = [];
  const name = o.metadata.name ?? "";
  if (name === "") out.push(required("metadata.name", "name or generateName is required"));
  else out.push(...nameErrors(kind, name));
  if (namespaced && (o.metadata.namespace ?? "") === "") out.push(required("metadata.namespace"));
  if (!namespaced && (o.metadata.namespace ?? "") !== "") out.push(forbidden("metadata.namespace", "not allowed on this type"));
  out.push(...labelsErrors("metadata.labels", o.metadata.labels));
  for (const [i, f] of (o.metadata.finalizers ?? []).entries()) {
    if (typeof f !== "string" || f === "") out.push(invalidValue(`metadata.finalizers[${i}]`, f, "name part must be non-empty"));
  }
  return out;
}

/** ObjectMeta checks on update: identity is immutable. */
export function validateObjectMetaUpdate(o: KubeObject, old: KubeObject): FieldError[] {
  const out: FieldError[] = [];
  for (const f of ["name", "namespace", "uid", "creationTimestamp"] as const) {
    if ((o.metadata[f] ?? "") !== (old.metadata[f] ?? "")) out.push(invalidValue(`metadata.${f}`, o.metadata[f] ?? "", "field is immutable"));
  }
  out.push(...labelsErrors("metadata.labels", o.metadata.labels));
  return out;
}

function ipErrors(field: string, v: unknown): FieldError[] {
  if (typeof v !== "string" || isIP(v) === 0) return [invalidValue(field, v, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")];
  return [];
}

export function isCIDR(v: string): boolean {
  const [ip, bits, extra] = v.split("/");
  if (ip === undefined || bits === undefined || extra !== undefined || !/^\d{1,3}$/.test(bits)) return false;
  const fam = isIP(ip);
  return fam !== 0 && Number(bits) <= (fam === 4 ? 32 : 128);
}

function cidrErrors(field: string, v: unknown): FieldError[] {
  if (typeof v !== "string" || !isCIDR(v)) return [invalidValue(field, v, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")];
  return [];
}

const terminalPhases = new Set(["Succeeded", "Failed"]);

function validatePodSpec(spec: unknown): FieldError[] {
  const out: FieldError[] = [];
  const containers = arr(dig(spec, "containers"));
  if (containers.length === 0) out.push(required("spec.containers"));
  const names = new Set<string>();
  const check = (list: unknown[], field: string) => {
    list.forEach((c, i) => {
      const f = `${field}[${i}]`;
      const name = str(dig(c, "name")) ?? "";
      if (name === "") out.push(required(`${f}.name`));
      else {
        out.push(...dnsLabelErrors(`${f}.name`, name));
        if (names.has(name)) out.push(duplicate(`${f}.name`, name));
        names.add(name);
      }
      if ((str(dig(c, "image")) ?? "").trim() === "") out.push(required(`${f}.image`));
      arr(dig(c, "ports")).forEach((p, j) => {
        const port = dig(p, "containerPort");
        if (typeof port !== "number" || port < 1 || port > 65535)
          out.push(invalidValue(`${f}.ports[${j}].containerPort`, port, "must be between 1 and 65535, inclusive"));
      });
    });
  };
  check(arr(dig(spec, "initContainers")), "spec.initContainers");
  check(containers, "spec.containers");
  const vols = new Set<string>();
  arr(dig(spec, "volumes")).forEach((v, i) => {
    const n = str(dig(v, "name")) ?? "";
    if (n === "") out.push(required(`spec.volumes[${i}].name`));
    else if (vols.has(n)) out.push(duplicate(`spec.volumes[${i}].name`, n));
    vols.add(n);
  });
  return out;
}

function podSpecMutable(spec: unknown): unknown {
  if (!isObject(spec)) return spec;
  const s = structuredClone(spec);
  for (const key of ["containers", "initContainers"]) {
    const list = s[key];
    if (Array.isArray(list)) for (const c of list) if (isObject(c)) delete c["image"];
  }
  delete s["activeDeadlineSeconds"];
  delete s["tolerations"];
  delete s["terminationGracePeriodSeconds"];
  return s;
}

function validatePodStatus(status: unknown, oldStatus: unknown): FieldError[] {
  const out: FieldError[] = [];
  const podIP = str(dig(status, "podIP"));
  const podIPs = arr(dig(status, "podIPs"));
  const seen = new Set<string>();
  podIPs.forEach((p, i) => {
    const ip = dig(p, "ip");
    out.push(...ipErrors(`status.podIPs[${i}].ip`, ip));
    if (typeof ip === "string") {
      if (seen.has(ip)) out.push(duplicate(`status.podIPs[${i}].ip`, ip));
      seen.add(ip);
    }
  });
  if (podIPs.length > 0 && podIP !== undefined && podIP !== "" && str(dig(podIPs[0], "ip")) !== podIP)
    out.push(invalidValue("status.podIPs[0].ip", dig(podIPs[0], "ip"), "must match status.podIP"));
  if (podIP !== undefined && podIP !== "") out.push(...ipErrors("status.podIP", podIP));
  const hostIP = str(dig(status, "hostIP"));
  if (hostIP !== undefined && hostIP !== "") out.push(...ipErrors("status.hostIP", hostIP));
  arr(dig(status, "hostIPs")).forEach((p, i) => out.push(...ipErrors(`status.hostIPs[${i}].ip`, dig(p, "ip"))));
  const oldPhase = str(dig(oldStatus, "phase"));
  const phase = str(dig(status, "phase"));
  if (oldPhase !== undefined && terminalPhases.has(oldPhase) && phase !== oldPhase)
    out.push(forbidden("status.phase", `may not transition from ${oldPhase} to ${phase ?? ""}`));
  const condTypes = new Set<string>();
  arr(dig(status, "conditions")).forEach((c, i) => {
    const t = str(dig(c, "type")) ?? "";
    if (condTypes.has(t)) out.push(duplicate(`status.conditions[${i}].type`, t));
    condTypes.add(t);
  });
  for (const list of ["containerStatuses", "initContainerStatuses"]) {
    arr(dig(status, list)).forEach((c, i) => {
      const rc = dig(c, "restartCount");
      if (typeof rc === "number" && rc < 0) out.push(invalidValue(`status.${list}[${i}].restartCount`, rc, "must be greater than or equal to 0"));
      const state = dig(c, "state");
      if (isObject(state) && Object.keys(state).filter((k) => state[k] !== undefined && state[k] !== null).length > 1)
        out.push(forbidden(`status.${list}[${i}].state`, "may not specify more than 1 container state"));
    });
  }
  return out;
}

function validateTaints(field: string, taints: unknown[]): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  taints.forEach((t, i) => {
    const key = str(dig(t, "key")) ?? "";
    const effect = str(dig(t, "effect")) ?? "";
    if (key === "") out.push(required(`${field}[${i}].key`));
    if (!["NoSchedule", "PreferNoSchedule", "NoExecute"].includes(effect))
      out.push(notSupported(`${field}[${i}].effect`, effect, ["NoExecute", "NoSchedule", "PreferNoSchedule"]));
    const id = `${key}:${effect}`;
    if (seen.has(id)) out.push(duplicate(`${field}[${i}]`, `${key}=${str(dig(t, "value")) ?? ""}:${effect}`));
    seen.add(id);
  });
  return out;
}

function validateServiceSpec(spec: unknown): FieldError[] {
  const out: FieldError[] = [];
  const type = str(dig(spec, "type")) ?? "ClusterIP";
  const ports = arr(dig(spec, "ports"));
  const headless = str(dig(spec, "clusterIP")) === "None";
  if (ports.length === 0 && type !== "ExternalName" && !headless) out.push(required("spec.ports"));
  const names = new Set<string>();
  ports.forEach((p, i) => {
    const f = `spec.ports[${i}]`;
    const name = str(dig(p, "name")) ?? "";
    if (ports.length > 1 && name === "") out.push(required(`${f}.name`));
    if (name !== "") {
      out.push(...dnsLabelErrors(`${f}.name`, name));
      if (names.has(name)) out.push(duplicate(`${f}.name`, name));
      names.add(name);
    }
    const port = dig(p, "port");
    if (typeof port !== "number" || port < 1 || port > 65535) out.push(invalidValue(`${f}.port`, port, "must be between 1 and 65535, inclusive"));
    const proto = str(dig(p, "protocol")) ?? "TCP";
    if (!["TCP", "UDP", "SCTP"].includes(proto)) out.push(notSupported(`${f}.protocol`, proto, ["SCTP", "TCP", "UDP"]));
    const np = dig(p, "nodePort");
    if (np !== undefined && np !== 0 && type === "ClusterIP") out.push(forbidden(`${f}.nodePort`, "may not be used when `type` is 'ClusterIP'"));
  });
  if (!["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].includes(type))
    out.push(notSupported("spec.type", type, ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]));
  const sel = dig(spec, "selector");
  if (sel !== undefined) out.push(...labelsErrors("spec.selector", sel));
  return out;
}

/** Kind-specific semantic validation of a create (old undefined) or update. */
export function semanticErrors(kind: string, o: KubeObject, old: KubeObject | undefined, subresource: string): FieldError[] {
  const out: FieldError[] = [];
  switch (kind) {
    case "Pod": {
      if (old === undefined) out.push(...validatePodSpec(o["spec"]));
      else if (subresource === "") {
        if (!jsonEqual(podSpecMutable(o["spec"]), podSpecMutable(old["spec"])))
          out.push(
            forbidden(
              "spec",
              "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            ),
          );
      }
      if (old !== undefined && subresource === "status") out.push(...validatePodStatus(o["status"], old["status"]));
      break;
    }
    case "Node": {
      const cidrs = arr(dig(o, "spec", "podCIDRs"));
      cidrs.forEach((c, i) => out.push(...cidrErrors(`spec.podCIDRs[${i}]`, c)));
      const cidr = str(dig(o, "spec", "podCIDR"));
      if (cidr !== undefined && cidr !== "") out.push(...cidrErrors("spec.podCIDR", cidr));
      if (old !== undefined) {
        const oldCidrs = arr(dig(old, "spec", "podCIDRs"));
        if (oldCidrs.length > 0 && !jsonEqual(oldCidrs, cidrs))
          out.push(forbidden("spec.podCIDRs", "node updates may not change podCIDR except from \"\" to valid"));
        const oldPid = str(dig(old, "spec", "providerID")) ?? "";
        if (oldPid !== "" && oldPid !== (str(dig(o, "spec", "providerID")) ?? ""))
          out.push(forbidden("spec.providerID", "node updates may not change providerID except from \"\" to valid"));
      }
      out.push(...validateTaints("spec.taints", arr(dig(o, "spec", "taints"))));
      arr(dig(o, "status", "addresses")).forEach((a, i) => {
        if ((str(dig(a, "address")) ?? "") === "") out.push(required(`status.addresses[${i}].address`));
      });
      break;
    }
    case "Service":
      out.push(...validateServiceSpec(o["spec"]));
      if (old !== undefined) {
        const oldIP = str(dig(old, "spec", "clusterIP")) ?? "";
        const newIP = str(dig(o, "spec", "clusterIP")) ?? "";
        if (oldIP !== "" && newIP !== oldIP) out.push(invalidValue("spec.clusterIPs[0]", newIP, "may not change once set"));
      }
      break;
    case "Lease": {
      const d = dig(o, "spec", "leaseDurationSeconds");
      if (typeof d === "number" && d <= 0) out.push(invalidValue("spec.leaseDurationSeconds", d, "must be greater than 0"));
      const t = dig(o, "spec", "leaseTransitions");
      if (typeof t === "number" && t < 0) out.push(invalidValue("spec.leaseTransitions", t, "must be greater than or equal to 0"));
      break;
    }
    case "ConfigMap":
    case "Secret":
      for (const field of ["data", "binaryData", "stringData"]) {
        const m = o[field];
        if (!isObject(m)) continue;
        for (const k of Object.keys(m)) {
          if (!configKeyRe.test(k)) out.push(invalidValue(`${field}[${k}]`, k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
        }
      }
      if (kind === "ConfigMap" && old !== undefined && old["immutable"] === true && !jsonEqual(o["data"], old["data"]))
        out.push(forbidden("data", "field is immutable when `immutable` is set"));
      break;
    case "EndpointSlice": {
      const type = str(o["addressType"]) ?? "";
      arr(o["endpoints"]).forEach((e, i) => {
        const addrs = arr(dig(e, "addresses"));
        if (addrs.length === 0) out.push(required(`endpoints[${i}].addresses`, "must contain at least 1 address"));
        addrs.forEach((a, j) => {
          if (type === "IPv4" && isIP(String(a)) !== 4) out.push(invalidValue(`endpoints[${i}].addresses[${j}]`, a, "must be a valid IPv4 address"));
          if (type === "IPv6" && isIP(String(a)) !== 6) out.push(invalidValue(`endpoints[${i}].addresses[${j}]`, a, "must be a valid IPv6 address"));
        });
      });
      if (old !== undefined && str(old["addressType"]) !== type) out.push(invalidValue("addressType", type, "field is immutable"));
      break;
    }
    case "Event": {
      const ns = o.metadata.namespace ?? "";
      const ions = str(dig(o, "involvedObject", "namespace")) ?? "";
      if (ions !== "" && ions !== ns) out.push(invalidValue("involvedObject.namespace", ions, "does not match event.namespace"));
      break;
    }
    default:
      break;
  }
  return out;
}
