/**
 * Per-kind create/update behaviour of kube-apiserver's registries: defaulting (SetDefaults_*), status reset
 * on create, and which kinds keep a metadata.generation. Pure functions that mutate the object handed in.
 */
import { randomBytes } from "node:crypto";
import { arr, dig, isObject, str, type KubeObject } from "./types.ts";

/** Kinds with a status subresource: a main-resource update keeps the old status, a status update only status. */
export const HAS_STATUS = new Set(["Pod", "Node", "Service", "Namespace"]);

/** Kinds whose metadata.generation counts spec changes. */
export const HAS_GENERATION = new Set(["Pod", "EndpointSlice"]);

const nameChars = "bcdfghjklmnpqrstvwxz2456789";

/** The 5-character suffix generateName appends (utilrand.String). */
export function randomSuffix(n = 5): string {
  const b = randomBytes(n);
  let s = "";
  for (let i = 0; i < n; i++) s += nameChars[(b[i] ?? 0) % nameChars.length] ?? "b";
  return s;
}

function obj(o: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = o[key];
  if (isObject(v)) return v;
  const n: Record<string, unknown> = {};
  o[key] = n;
  return n;
}

function setDefault(o: Record<string, unknown>, key: string, v: unknown): void {
  if (o[key] === undefined || o[key] === null || o[key] === "") o[key] = v;
}

function defaultContainer(c: Record<string, unknown>): void {
  const image = str(c["image"]) ?? "";
  const lastPart = image.split("/").pop() ?? "";
  const hasTag = lastPart.includes(":") || image.includes("@");
  const latest = !hasTag || lastPart.endsWith(":latest");
  setDefault(c, "imagePullPolicy", latest ? "Always" : "IfNotPresent");
  setDefault(c, "terminationMessagePath", "/dev/termination-log");
  setDefault(c, "terminationMessagePolicy", "File");
  if (!isObject(c["resources"])) c["resources"] = {};
  for (const p of arr(c["ports"])) if (isObject(p)) setDefault(p, "protocol", "TCP");
  for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
    const pr = c[probe];
    if (!isObject(pr)) continue;
    setDefault(pr, "timeoutSeconds", 1);
    setDefault(pr, "periodSeconds", 10);
    setDefault(pr, "successThreshold", 1);
    setDefault(pr, "failureThreshold", 3);
    const http = pr["httpGet"];
    if (isObject(http)) {
      setDefault(http, "path", "/");
      setDefault(http, "scheme", "HTTP");
    }
  }
}

function quantityIsSet(v: unknown): boolean {
  return typeof v === "string" || typeof v === "number";
}

/** qos.GetPodQOS, reduced to the cases that decide the class. */
export function podQOS(spec: unknown): string {
  const containers = [...arr(dig(spec, "containers")), ...arr(dig(spec, "initContainers"))];
  let any = false;
  let guaranteed = true;
  for (const c of containers) {
    const req = dig(c, "resources", "requests");
    const lim = dig(c, "resources", "limits");
    for (const r of ["cpu", "memory"]) {
      const rq = isObject(req) ? req[r] : undefined;
      const lm = isObject(lim) ? lim[r] : undefined;
      if (quantityIsSet(rq) || quantityIsSet(lm)) any = true;
      if (!quantityIsSet(lm) || (quantityIsSet(rq) && String(rq) !== String(lm))) guaranteed = false;
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

export function defaultPod(pod: KubeObject): void {
  const spec = obj(pod, "spec");
  setDefault(spec, "restartPolicy", "Always");
  setDefault(spec, "dnsPolicy", "ClusterFirst");
  setDefault(spec, "terminationGracePeriodSeconds", 30);
  setDefault(spec, "schedulerName", "default-scheduler");
  if (!isObject(spec["securityContext"])) spec["securityContext"] = {};
  if (spec["enableServiceLinks"] === undefined) spec["enableServiceLinks"] = true;
  if (spec["priority"] === undefined) spec["priority"] = 0;
  setDefault(spec, "preemptionPolicy", "PreemptLowerPriority");
  for (const key of ["containers", "initContainers"]) for (const c of arr(spec[key])) if (isObject(c)) defaultContainer(c);
  for (const v of arr(spec["volumes"])) {
    if (!isObject(v)) continue;
    for (const src of ["secret", "configMap", "projected", "downwardAPI"]) {
      const s = v[src];
      if (isObject(s)) setDefault(s, "defaultMode", 420);
    }
  }
  // DefaultTolerationSeconds admission.
  const tolerations = arr(spec["tolerations"]).filter(isObject);
  for (const key of ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]) {
    if (!tolerations.some((t) => t["key"] === key && (t["effect"] === "NoExecute" || t["effect"] === undefined)))
      tolerations.push({ key, operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 });
  }
  spec["tolerations"] = tolerations;
}

/** The projected service account volume the ServiceAccount admission plugin adds. */
export function serviceAccountVolume(name: string): Record<string, unknown> {
  return {
    name,
    projected: {
      defaultMode: 420,
      sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
        { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
        { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
      ],
    },
  };
}

export const SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";

/** ServiceAccount admission: default the account and mount its token unless automount is off. */
export function admitPodServiceAccount(pod: KubeObject, sa: KubeObject | undefined): void {
  const spec = obj(pod, "spec");
  const automountPod = spec["automountServiceAccountToken"];
  const automountSA = sa?.["automountServiceAccountToken"];
  const automount = automountPod === false ? false : automountPod === true ? true : automountSA !== false;
  if (!automount) return;
  const containers = [...arr(spec["containers"]), ...arr(spec["initContainers"])].filter(isObject);
  if (containers.some((c) => arr(c["volumeMounts"]).some((m) => dig(m, "mountPath") === SA_MOUNT_PATH))) return;
  const volName = `kube-api-access-${randomSuffix(5)}`;
  spec["volumes"] = [...arr(spec["volumes"]), serviceAccountVolume(volName)];
  for (const c of containers) c["volumeMounts"] = [...arr(c["volumeMounts"]), { name: volName, readOnly: true, mountPath: SA_MOUNT_PATH }];
}

export function defaultService(svc: KubeObject): void {
  const spec = obj(svc, "spec");
  setDefault(spec, "type", "ClusterIP");
  setDefault(spec, "sessionAffinity", "None");
  const type = spec["type"];
  if (type !== "ExternalName") {
    setDefault(spec, "internalTrafficPolicy", "Cluster");
    if (!Array.isArray(spec["ipFamilies"])) spec["ipFamilies"] = ["IPv4"];
    setDefault(spec, "ipFamilyPolicy", "SingleStack");
  }
  if (type === "NodePort" || type === "LoadBalancer") setDefault(spec, "externalTrafficPolicy", "Cluster");
  for (const p of arr(spec["ports"])) {
    if (!isObject(p)) continue;
    setDefault(p, "protocol", "TCP");
    if (p["targetPort"] === undefined || p["targetPort"] === 0 || p["targetPort"] === "") p["targetPort"] = p["port"];
  }
  if (!isObject(svc["status"])) svc["status"] = { loadBalancer: {} };
}

export function defaultSecret(s: KubeObject): void {
  setDefault(s, "type", "Opaque");
  const sd = s["stringData"];
  if (isObject(sd)) {
    const data = obj(s, "data");
    for (const [k, v] of Object.entries(sd)) data[k] = Buffer.from(String(v)).toString("base64");
    delete s["stringData"];
  }
}

export function defaultNamespace(ns: KubeObject): void {
  const spec = obj(ns, "spec");
  if (!Array.isArray(spec["finalizers"])) spec["finalizers"] = ["kubernetes"];
  ns["status"] = { phase: "Active" };
  const labels = { ...(ns.metadata.labels ?? {}) };
  labels["kubernetes.io/metadata.name"] = ns.metadata.name ?? "";
  ns.metadata.labels = labels;
}

export function defaultNode(node: KubeObject): void {
  if (!isObject(node["spec"])) node["spec"] = {};
  const status = obj(node, "status");
  if (isObject(status["capacity"]) && !isObject(status["allocatable"])) status["allocatable"] = { ...status["capacity"] };
}

export function defaultEndpointSlice(es: KubeObject): void {
  for (const p of arr(es["ports"])) if (isObject(p)) setDefault(p, "protocol", "TCP");
}

/** Defaults applied on create and on every update (SetObjectDefaults). */
export function applyDefaults(kind: string, o: KubeObject): void {
  switch (kind) {
    case "Pod":
      defaultPod(o);
      break;
    case "Service":
      defaultService(o);
      break;
    case "Secret":
      defaultSecret(o);
      break;
    case "Node":
      defaultNode(o);
      break;
    case "EndpointSlice":
      defaultEndpointSlice(o);
      break;
    default:
      break;
  }
}

/** Status an object starts with regardless of what the client sent (PrepareForCreate). */
export function resetStatusOnCreate(kind: string, o: KubeObject): void {
  if (kind === "Pod") o["status"] = { phase: "Pending", qosClass: podQOS(o["spec"]) };
  if (kind === "Namespace") defaultNamespace(o);
}
