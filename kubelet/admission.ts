/**
 * Pod admission, the resource part of upstream's predicate admit handler (pkg/kubelet/lifecycle/predicate.go):
 * a pod whose requests do not fit the node's allocatable beside the pods already admitted is rejected, never
 * run, and fails with reason `OutOf<resource>` and upstream's message. Pure.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { podRequests } from "./cm/pod-resources.ts";

export interface Allocatable {
  cpuMilli: number;
  memoryBytes: number;
  pods: number;
}

export type AdmitResult = { admit: true } | { admit: false; reason: string; message: string };

/** Whether `pod` fits beside `admitted` (the active pods already running or accepted on this node). */
export function admitPod(pod: V1Pod, admitted: readonly V1Pod[], allocatable: Allocatable): AdmitResult {
  let used;
  try {
    used = admitted.reduce(
      (acc, p) => {
        const r = podRequests(p);
        return { cpuMilli: acc.cpuMilli + r.cpuMilli, memoryBytes: acc.memoryBytes + r.memoryBytes };
      },
      { cpuMilli: 0, memoryBytes: 0 },
    );
  } catch {
    used = { cpuMilli: 0, memoryBytes: 0 };
  }
  let want;
  try {
    want = podRequests(pod);
  } catch (err) {
    return { admit: false, reason: "UnexpectedAdmissionError", message: `Pod was rejected: ${err instanceof Error ? err.message : String(err)}` };
  }
  const checks: [string, number, number, number][] = [
    ["pods", 1, admitted.length, allocatable.pods],
    ["cpu", want.cpuMilli, used.cpuMilli, allocatable.cpuMilli],
    ["memory", want.memoryBytes, used.memoryBytes, allocatable.memoryBytes],
  ];
  for (const [name, requested, inUse, capacity] of checks) {
    if (requested > 0 && inUse + requested > capacity) {
      return {
        admit: false,
        reason: `OutOf${name}`,
        message: `Pod was rejected: Node didn't have enough resource: ${name}, requested: ${requested}, used: ${inUse}, capacity: ${capacity}`,
      };
    }
  }
  return { admit: true };
}

/** The node's pressure conditions, from the eviction manager. */
export type PressureCondition = "MemoryPressure" | "DiskPressure" | "PIDPressure";

/** upstream's TolerationsTolerateTaint for one NoSchedule taint without a value. */
function toleratesNoSchedule(pod: V1Pod, key: string): boolean {
  return (pod.spec?.tolerations ?? []).some((t) => {
    if (t.effect && t.effect !== "NoSchedule") return false;
    if (!t.key) return t.operator === "Exists";
    if (t.key !== key) return false;
    return t.operator === "Exists" || (t.value ?? "") === "";
  });
}

/**
 * The eviction manager's Admit (pkg/kubelet/eviction/eviction_manager.go): under memory pressure alone a
 * best-effort pod is refused unless it tolerates the memory-pressure taint; under any other pressure every pod
 * is; critical pods always pass. Reason `Evicted`, message "The node had condition: [DiskPressure]. ".
 */
export function admitUnderPressure(pod: V1Pod, conditions: readonly PressureCondition[], critical: boolean, bestEffort: boolean): AdmitResult {
  if (conditions.length === 0 || critical) return { admit: true };
  if (conditions.length === 1 && conditions[0] === "MemoryPressure") {
    if (!bestEffort || toleratesNoSchedule(pod, "node.kubernetes.io/memory-pressure")) return { admit: true };
  }
  return { admit: false, reason: "Evicted", message: `The node had condition: [${conditions.join(" ")}]. ` };
}

// ---------------------------------------------------------------------------------------------------------
// Supported fields
// ---------------------------------------------------------------------------------------------------------
//
// Upstream's kubelet implements the whole PodSpec, so it has no admission check of this kind: a pod it cannot
// run fails later, with a field-specific reason. Deckhand does not implement every field yet, and a pod that
// silently runs without its probes, hooks or volumes looks fine and is not. So every field the kubelet must
// act on and does not is refused here, naming the field. Fields that are the scheduler's or the API server's
// business are never refused. As features land, their fields leave these lists.

/** Deckhand's reason (upstream has none: its kubelet implements every field). */
export const UNSUPPORTED_POD_FIELD = "UnsupportedPodField";
/** Deckhand's reason for a field this kubelet does not know at all (newer than it): run, with a warning. */
export const UNKNOWN_POD_FIELD = "UnknownPodField";

export interface AdmitWarning {
  reason: string;
  message: string;
}

export type SupportResult = { admit: true; warnings: AdmitWarning[] } | { admit: false; reason: string; message: string };

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
/** Set in the Go sense: JSON null, false-less omission and empty collections count as absent. */
const isSet = (v: unknown): boolean =>
  v !== undefined && v !== null && v !== "" && !(Array.isArray(v) && v.length === 0) && !(isObj(v) && Object.keys(v).length === 0);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const show = (v: unknown): string => JSON.stringify(v);

/** PodSpec fields that are fully the scheduler's or the API server's, or that the kubelet implements. */
const POD_SPEC_FIELDS = new Set([
  // Implemented by the kubelet (sandbox and container configs, pod sync, status, images, admission).
  "containers", "initContainers", "restartPolicy", "terminationGracePeriodSeconds", "activeDeadlineSeconds",
  "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "hostname", "dnsConfig", "imagePullSecrets",
  "readinessGates", "overhead", "serviceAccountName", "serviceAccount",
  // The scheduler's and the API server's (the kubelet only reads some of them, e.g. priority for criticality).
  "nodeName", "nodeSelector", "affinity", "tolerations", "topologySpreadConstraints", "schedulerName",
  "priority", "priorityClassName", "preemptionPolicy", "schedulingGates", "automountServiceAccountToken",
  // Checked value by value below.
  "dnsPolicy", "os", "hostUsers", "runtimeClassName", "setHostnameAsFQDN", "securityContext", "volumes",
  "ephemeralContainers", "hostAliases", "resourceClaims", "resources", "hostnameOverride",
  // The service link variables, and the FQDN line of the kubelet's /etc/hosts.
  "enableServiceLinks", "subdomain",
]);
/** Fields refused whenever set. */
const POD_SPEC_REFUSED = ["ephemeralContainers", "resourceClaims", "resources", "hostnameOverride", "runtimeClassName"];

const CONTAINER_FIELDS = new Set([
  "name", "image", "imagePullPolicy", "command", "args", "workingDir", "env", "ports", "resources", "stdin",
  "stdinOnce", "tty", "securityContext", "terminationMessagePath", "terminationMessagePolicy", "restartPolicy",
  "envFrom", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
  "resizePolicy", "restartPolicyRules",
]);
const CONTAINER_REFUSED = ["volumeDevices", "restartPolicyRules"];
/**
 * Lifecycle fields run by kubelet/lifecycle/ (postStart, preStop; a tcpSocket handler fails at run time as
 * upstream's); the others are refused.
 */
const LIFECYCLE_FIELDS = new Set(["postStart", "preStop", "stopSignal"]);
const LIFECYCLE_REFUSED = ["stopSignal"];

/** PodSecurityContext fields passed to CRI; the others are checked below. */
const POD_SECURITY_FIELDS = new Set(["runAsUser", "runAsGroup", "supplementalGroups", "sysctls", "runAsNonRoot", "fsGroup", "fsGroupChangePolicy",
  "seLinuxOptions", "seLinuxChangePolicy", "seccompProfile", "appArmorProfile", "windowsOptions", "supplementalGroupsPolicy"]);
const POD_SECURITY_REFUSED = ["seLinuxOptions", "seLinuxChangePolicy", "appArmorProfile", "windowsOptions"];
const SECURITY_FIELDS = new Set(["runAsUser", "runAsGroup", "privileged", "readOnlyRootFilesystem", "capabilities", "allowPrivilegeEscalation",
  "runAsNonRoot", "seLinuxOptions", "seccompProfile", "appArmorProfile", "windowsOptions", "procMount"]);
const SECURITY_REFUSED = ["seLinuxOptions", "appArmorProfile", "windowsOptions"];

/**
 * Resources the container config turns into cgroup limits, and ephemeral-storage, whose limits the eviction
 * manager enforces; ephemeral-storage requests are the scheduler's (and rank pods under disk pressure).
 */
const LIMITED_RESOURCES = new Set(["cpu", "memory", "ephemeral-storage"]);
const REQUESTED_RESOURCES = new Set(["cpu", "memory", "ephemeral-storage"]);

/** Volume sources the volume manager implements (volumes/layout.ts); any other is refused. */
const VOLUME_PLUGINS = new Set(["emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected"]);
/** Projected sources the volume manager implements. */
const PROJECTIONS = new Set(["configMap", "secret", "downwardAPI", "serviceAccountToken"]);

function volumeFindings(v: unknown, path: string, out: Finding[]): void {
  if (!isObj(v)) return;
  // An empty source object (`emptyDir: {}`) selects its plugin too.
  const types = Object.keys(v).filter((k) => k !== "name" && (isSet(v[k]) || isObj(v[k])));
  for (const t of types) {
    if (!VOLUME_PLUGINS.has(t)) {
      out.push({ path: `${path}.${t}`, value: v["name"] });
      continue;
    }
    const src = v[t];
    // HugePages-backed emptyDirs are not set up.
    if (t === "emptyDir" && isObj(src) && isSet(src["medium"]) && src["medium"] !== "Memory") out.push({ path: `${path}.emptyDir.medium`, value: src["medium"] });
    if (t === "projected" && isObj(src)) {
      list(src["sources"]).forEach((p, i) => {
        if (!isObj(p)) return;
        // clusterTrustBundle (and podCertificate) projections need signers the kubelet does not read yet.
        for (const k of Object.keys(p)) if (isSet(p[k]) && !PROJECTIONS.has(k)) out.push({ path: `${path}.projected.sources[${i}].${k}` });
      });
    }
  }
}

interface Finding {
  path: string;
  value?: unknown;
}

function securityContextFindings(sc: unknown, path: string, pod: boolean, out: Finding[], unknown: string[]): void {
  if (!isObj(sc)) return;
  const known = pod ? POD_SECURITY_FIELDS : SECURITY_FIELDS;
  for (const k of Object.keys(sc)) if (!known.has(k) && isSet(sc[k])) unknown.push(`${path}.${k}`);
  for (const k of pod ? POD_SECURITY_REFUSED : SECURITY_REFUSED) if (isSet(sc[k])) out.push({ path: `${path}.${k}` });
  // runAsNonRoot is verified before each container start (runtime/container-config.ts verifyRunAsNonRoot).
  // RuntimeDefault and Unconfined go to CRI as they are (runtime/sandbox-config.ts seccompProfile); a
  // Localhost profile needs the kubelet's seccomp root, not served yet.
  const seccomp = sc["seccompProfile"];
  if (isObj(seccomp) && isSet(seccomp["type"]) && seccomp["type"] !== "Unconfined" && seccomp["type"] !== "RuntimeDefault") out.push({ path: `${path}.seccompProfile.type`, value: seccomp["type"] });
  if (pod && isSet(sc["supplementalGroupsPolicy"]) && sc["supplementalGroupsPolicy"] !== "Merge") out.push({ path: `${path}.supplementalGroupsPolicy`, value: sc["supplementalGroupsPolicy"] });
  if (!pod && isSet(sc["procMount"]) && sc["procMount"] !== "Default") out.push({ path: `${path}.procMount`, value: sc["procMount"] });
}

function containerFindings(pod: Obj, c: Obj, path: string, out: Finding[], unknown: string[]): void {
  for (const k of Object.keys(c)) if (!CONTAINER_FIELDS.has(k) && isSet(c[k])) unknown.push(`${path}.${k}`);
  for (const k of CONTAINER_REFUSED) if (isSet(c[k])) out.push({ path: `${path}.${k}` });
  // A sidecar is an init container with restartPolicy Always; on app containers the field is another feature.
  if (isSet(c["restartPolicy"]) && !(path.startsWith("spec.initContainers[") && c["restartPolicy"] === "Always")) out.push({ path: `${path}.restartPolicy`, value: c["restartPolicy"] });
  list(c["resizePolicy"]).forEach((r, i) => {
    // NotRequired is what an absent policy means: nothing to act on until a resize, which is not supported.
    if (isObj(r) && isSet(r["restartPolicy"]) && r["restartPolicy"] !== "NotRequired") out.push({ path: `${path}.resizePolicy[${i}].restartPolicy`, value: r["restartPolicy"] });
  });
  const lifecycle = c["lifecycle"];
  if (isObj(lifecycle)) {
    for (const k of Object.keys(lifecycle)) if (!LIFECYCLE_FIELDS.has(k) && isSet(lifecycle[k])) unknown.push(`${path}.lifecycle.${k}`);
    // The stop signal needs CRI's stop_signal, which containerd 1.6 does not know.
    for (const k of LIFECYCLE_REFUSED) if (isSet(lifecycle[k])) out.push({ path: `${path}.lifecycle.${k}`, value: lifecycle[k] });
  }
  list(c["env"]).forEach((e, i) => {
    const from = isObj(e) ? e["valueFrom"] : undefined;
    if (!isObj(from)) return;
    // fileKeyRef (env from a file of a volume) is not read yet.
    for (const k of Object.keys(from)) if (isSet(from[k]) && !["fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef"].includes(k)) out.push({ path: `${path}.env[${i}].valueFrom.${k}` });
    const rf = from["resourceFieldRef"];
    // The container config reads the resources of the container itself only.
    if (isObj(rf) && isSet(rf["containerName"]) && rf["containerName"] !== c["name"]) out.push({ path: `${path}.env[${i}].valueFrom.resourceFieldRef.containerName`, value: rf["containerName"] });
  });
  const resources = c["resources"];
  if (isObj(resources)) {
    if (isSet(resources["claims"])) out.push({ path: `${path}.resources.claims` });
    for (const [kind, allowed] of [["limits", LIMITED_RESOURCES], ["requests", REQUESTED_RESOURCES]] as const) {
      const m = resources[kind];
      if (isObj(m)) for (const name of Object.keys(m)) if (!allowed.has(name)) out.push({ path: `${path}.resources.${kind}[${show(name)}]` });
    }
  }
  securityContextFindings(c["securityContext"], `${path}.securityContext`, false, out, unknown);
  list(c["volumeMounts"]).forEach((m, i) => {
    // Recursive read-only mounts need a runtime newer than containerd 1.6.
    if (isObj(m) && isSet(m["recursiveReadOnly"]) && m["recursiveReadOnly"] !== "Disabled") out.push({ path: `${path}.volumeMounts[${i}].recursiveReadOnly`, value: m["recursiveReadOnly"] });
  });
}

/**
 * Whether this kubelet implements every field of `pod` that a kubelet must act on. A refusal names every
 * offending field (path, and value where a value is what is unsupported) in one message; an admitted pod may
 * carry warnings, each to become one Warning event. Pure.
 */
export function checkSupported(pod: V1Pod): SupportResult {
  const p = pod as unknown as Obj;
  const spec = isObj(p["spec"]) ? p["spec"] : {};
  const out: Finding[] = [];
  const unknown: string[] = [];
  const warnings: AdmitWarning[] = [];

  for (const k of Object.keys(spec)) if (!POD_SPEC_FIELDS.has(k) && isSet(spec[k])) unknown.push(`spec.${k}`);
  for (const k of POD_SPEC_REFUSED) if (isSet(spec[k])) out.push({ path: `spec.${k}`, ...(typeof spec[k] === "string" ? { value: spec[k] } : {}) });
  const dnsPolicy = spec["dnsPolicy"];
  if (isSet(dnsPolicy) && !["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"].includes(dnsPolicy as string)) out.push({ path: "spec.dnsPolicy", value: dnsPolicy });
  const os = spec["os"];
  if (isObj(os) && isSet(os["name"]) && os["name"] !== "linux") out.push({ path: "spec.os.name", value: os["name"] });
  // User namespaces (hostUsers: false) are not set up.
  if (spec["hostUsers"] === false) out.push({ path: "spec.hostUsers", value: false });
  if (spec["setHostnameAsFQDN"] === true) out.push({ path: "spec.setHostnameAsFQDN", value: true });
  securityContextFindings(spec["securityContext"], "spec.securityContext", true, out, unknown);

  list(spec["volumes"]).forEach((v, i) => volumeFindings(v, `spec.volumes[${i}]`, out));
  for (const kind of ["initContainers", "containers"] as const) {
    list(spec[kind]).forEach((c, i) => {
      if (isObj(c)) containerFindings(p, c, `spec.${kind}[${i}]`, out, unknown);
    });
  }
  // The legacy AppArmor annotations upstream still honours.
  for (const [key, value] of Object.entries(pod.metadata?.annotations ?? {})) {
    if (key.startsWith("container.apparmor.security.beta.kubernetes.io/") && value !== "unconfined") out.push({ path: `metadata.annotations[${show(key)}]`, value });
  }

  if (out.length > 0) {
    const fields = out.map((f) => (f.value === undefined ? f.path : `${f.path}=${show(f.value)}`));
    const message =
      fields.length === 1 ? `Pod field ${fields[0] ?? ""} is not supported by this kubelet yet` : `Pod fields ${fields.join(", ")} are not supported by this kubelet yet`;
    return { admit: false, reason: UNSUPPORTED_POD_FIELD, message };
  }
  if (unknown.length > 0) {
    warnings.push({ reason: UNKNOWN_POD_FIELD, message: `Pod field${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} ${unknown.length > 1 ? "are" : "is"} unknown to this kubelet and ignored` });
  }
  return { admit: true, warnings };
}
