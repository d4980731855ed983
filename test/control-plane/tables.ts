/**
 * meta.k8s.io/v1 Table responses with the columns and cell logic of kube-apiserver's printers
 * (pkg/printers/internalversion), so `kubectl get` prints what it prints against a real cluster.
 * The server always fills the wide (priority 1) columns; kubectl shows them with -o wide. Pure.
 */
import { apiVersionOf, type ResourceDescriptor } from "./registry.ts";
import { arr, dig, isObject, str, type JsonObject, type KubeObject } from "./types.ts";

export interface Column {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

const col = (name: string, priority = 0, format = "", type = "string"): Column => ({ name, type, format, description: name, priority });

/** duration.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    return dy === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

function since(ts: unknown, now: number): string {
  if (typeof ts !== "string" || ts === "") return "<unknown>";
  return humanDuration(now - Date.parse(ts));
}

function podRow(p: KubeObject, now: number): unknown[] {
  const spec = p["spec"];
  const status = p["status"];
  const containers = arr(dig(spec, "containers"));
  const initContainers = arr(dig(spec, "initContainers"));
  let restarts = 0;
  let lastRestart = 0;
  let ready = 0;
  let reason = str(dig(status, "phase")) ?? "";
  if ((str(dig(status, "reason")) ?? "") !== "") reason = str(dig(status, "reason")) ?? "";
  const conds = arr(dig(status, "conditions"));
  if (conds.some((c) => dig(c, "type") === "PodScheduled" && dig(c, "reason") === "SchedulingGated")) reason = "SchedulingGated";
  const noteRestart = (c: unknown) => {
    restarts += Number(dig(c, "restartCount") ?? 0);
    const fin = str(dig(c, "lastState", "terminated", "finishedAt"));
    if (fin !== undefined) lastRestart = Math.max(lastRestart, Date.parse(fin));
  };
  let initializing = false;
  const initStatuses = arr(dig(status, "initContainerStatuses"));
  for (let i = 0; i < initStatuses.length; i++) {
    const c = initStatuses[i];
    noteRestart(c);
    const spec0 = initContainers.find((x) => dig(x, "name") === dig(c, "name"));
    if (dig(spec0, "restartPolicy") === "Always") {
      if (dig(c, "started") === true) continue;
    }
    const term = dig(c, "state", "terminated");
    const waiting = dig(c, "state", "waiting");
    if (isObject(term) && Number(term["exitCode"] ?? 0) === 0) continue;
    if (isObject(term)) {
      const r = str(term["reason"]) ?? "";
      if (r === "") reason = Number(term["signal"] ?? 0) !== 0 ? `Init:Signal:${Number(term["signal"])}` : `Init:ExitCode:${Number(term["exitCode"] ?? 0)}`;
      else reason = `Init:${r}`;
    } else if (isObject(waiting) && (str(waiting["reason"]) ?? "") !== "" && waiting["reason"] !== "PodInitializing") {
      reason = `Init:${str(waiting["reason"]) ?? ""}`;
    } else reason = `Init:${i}/${initContainers.length}`;
    initializing = true;
    break;
  }
  const initializedTrue = conds.some((c) => dig(c, "type") === "Initialized" && dig(c, "status") === "True");
  if (!initializing || initializedTrue) {
    restarts = 0;
    lastRestart = 0;
    for (const c of initStatuses) {
      const spec0 = initContainers.find((x) => dig(x, "name") === dig(c, "name"));
      if (dig(spec0, "restartPolicy") === "Always") noteRestart(c);
    }
    let hasRunning = false;
    const statuses = arr(dig(status, "containerStatuses"));
    for (let i = statuses.length - 1; i >= 0; i--) {
      const c = statuses[i];
      noteRestart(c);
      const waiting = dig(c, "state", "waiting");
      const term = dig(c, "state", "terminated");
      if (isObject(waiting) && (str(waiting["reason"]) ?? "") !== "") reason = str(waiting["reason"]) ?? "";
      else if (isObject(term) && (str(term["reason"]) ?? "") !== "") reason = str(term["reason"]) ?? "";
      else if (isObject(term))
        reason = Number(term["signal"] ?? 0) !== 0 ? `Signal:${Number(term["signal"])}` : `ExitCode:${Number(term["exitCode"] ?? 0)}`;
      else if (dig(c, "ready") === true && isObject(dig(c, "state", "running"))) {
        hasRunning = true;
        ready++;
      }
    }
    if (reason === "Completed" && hasRunning) reason = conds.some((c) => dig(c, "type") === "Ready" && dig(c, "status") === "True") ? "Running" : "NotReady";
  }
  const phase = str(dig(status, "phase"));
  if (p.metadata.deletionTimestamp !== undefined && dig(status, "reason") === "NodeLost") reason = "Unknown";
  else if (p.metadata.deletionTimestamp !== undefined && phase !== "Succeeded" && phase !== "Failed") reason = "Terminating";
  const restartsStr = restarts !== 0 && lastRestart > 0 ? `${restarts} (${humanDuration(now - lastRestart)} ago)` : String(restarts);
  const podIPs = arr(dig(status, "podIPs"));
  const podIP = str(dig(podIPs[0], "ip")) ?? "";
  const gates = arr(dig(spec, "readinessGates"));
  let gatesStr = "<none>";
  if (gates.length > 0) {
    const trueCount = gates.filter((g) => conds.some((c) => dig(c, "type") === dig(g, "conditionType") && dig(c, "status") === "True")).length;
    gatesStr = `${trueCount}/${gates.length}`;
  }
  return [
    p.metadata.name ?? "",
    `${ready}/${containers.length}`,
    reason,
    restartsStr,
    since(p.metadata.creationTimestamp, now),
    podIP === "" ? "<none>" : podIP,
    (str(dig(spec, "nodeName")) ?? "") === "" ? "<none>" : (str(dig(spec, "nodeName")) ?? ""),
    (str(dig(status, "nominatedNodeName")) ?? "") === "" ? "<none>" : (str(dig(status, "nominatedNodeName")) ?? ""),
    gatesStr,
  ];
}

function nodeRow(n: KubeObject, now: number): unknown[] {
  const conds = arr(dig(n, "status", "conditions"));
  const ready = conds.find((c) => dig(c, "type") === "Ready");
  const statuses: string[] = [];
  if (ready === undefined) statuses.push("Unknown");
  else statuses.push(dig(ready, "status") === "True" ? "Ready" : dig(ready, "status") === "False" ? "NotReady" : "Unknown");
  if (dig(n, "spec", "unschedulable") === true) statuses.push("SchedulingDisabled");
  const roles = new Set<string>();
  for (const [k, v] of Object.entries(n.metadata.labels ?? {})) {
    if (k.startsWith("node-role.kubernetes.io/")) roles.add(k.slice("node-role.kubernetes.io/".length));
    else if (k === "kubernetes.io/role" && v !== "") roles.add(v);
  }
  const addr = (t: string) => str(dig(arr(dig(n, "status", "addresses")).find((a) => dig(a, "type") === t), "address")) ?? "<none>";
  const info = dig(n, "status", "nodeInfo");
  const infoStr = (k: string) => {
    const v = str(dig(info, k)) ?? "";
    return v === "" ? "<unknown>" : v;
  };
  return [
    n.metadata.name ?? "",
    statuses.join(","),
    roles.size === 0 ? "<none>" : [...roles].sort().join(","),
    since(n.metadata.creationTimestamp, now),
    str(dig(info, "kubeletVersion")) ?? "",
    addr("InternalIP"),
    addr("ExternalIP"),
    infoStr("osImage"),
    infoStr("kernelVersion"),
    infoStr("containerRuntimeVersion"),
  ];
}

function serviceRow(s: KubeObject, now: number): unknown[] {
  const spec = s["spec"];
  const type = str(dig(spec, "type")) ?? "ClusterIP";
  let clusterIP = str(dig(spec, "clusterIP")) ?? "";
  if (clusterIP === "") clusterIP = "<none>";
  const externalIPs = arr(dig(spec, "externalIPs")).map(String);
  let external = "<none>";
  if (type === "ExternalName") external = str(dig(spec, "externalName")) ?? "<none>";
  else if (type === "LoadBalancer") {
    const ing = arr(dig(s, "status", "loadBalancer", "ingress")).map((i) => str(dig(i, "ip")) ?? str(dig(i, "hostname")) ?? "");
    const all = [...ing, ...externalIPs].filter((x) => x !== "");
    external = all.length > 0 ? all.join(",") : "<pending>";
  } else if (externalIPs.length > 0) external = externalIPs.join(",");
  const ports = arr(dig(spec, "ports")).map((p) => {
    const np = dig(p, "nodePort");
    const proto = str(dig(p, "protocol")) ?? "TCP";
    return typeof np === "number" && np !== 0 ? `${String(dig(p, "port"))}:${np}/${proto}` : `${String(dig(p, "port"))}/${proto}`;
  });
  const sel = dig(spec, "selector");
  const selStr = isObject(sel) && Object.keys(sel).length > 0 ? Object.entries(sel).sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([k, v]) => `${k}=${String(v)}`).join(",") : "<none>";
  return [s.metadata.name ?? "", type, clusterIP, external, ports.length > 0 ? ports.join(",") : "<none>", since(s.metadata.creationTimestamp, now), selStr];
}

function endpointSliceRow(e: KubeObject, now: number): unknown[] {
  const ports = arr(e["ports"]).map((p) => (typeof dig(p, "port") === "number" ? String(dig(p, "port")) : ""));
  const portStr = ports.length === 0 ? "<unset>" : ports.every((p) => p === "") ? "<unset>" : ports.filter((p) => p !== "").join(",");
  const addrs = arr(e["endpoints"]).flatMap((ep) => arr(dig(ep, "addresses")).map(String));
  let epStr = "<unset>";
  if (addrs.length > 0) epStr = addrs.length > 3 ? `${addrs.slice(0, 3).join(",")} + ${addrs.length - 3} more...` : addrs.join(",");
  return [e.metadata.name ?? "", str(e["addressType"]) ?? "", portStr, epStr, since(e.metadata.creationTimestamp, now)];
}

function eventRow(e0: KubeObject, now: number): unknown[] {
  // Serves core/v1 and events.k8s.io/v1 alike: read either field name.
  const e = e0 as Record<string, unknown>;
  const pick = (a: string, b: string): unknown => e[a] ?? e[b];
  const first = str(pick("firstTimestamp", "deprecatedFirstTimestamp")) ?? str(e["eventTime"]);
  const last = str(pick("lastTimestamp", "deprecatedLastTimestamp")) ?? str(dig(e, "series", "lastObservedTime")) ?? str(e["eventTime"]) ?? first;
  const io = pick("involvedObject", "regarding");
  const kind = (str(dig(io, "kind")) ?? "").toLowerCase();
  const src = pick("source", "deprecatedSource");
  const source = [str(dig(src, "component")) ?? str(pick("reportingComponent", "reportingController")) ?? "", str(dig(src, "host")) ?? ""].filter((x) => x !== "").join(", ");
  const cnt = pick("count", "deprecatedCount");
  const count = typeof cnt === "number" ? cnt : typeof dig(e, "series", "count") === "number" ? (dig(e, "series", "count") as number) : 1;
  return [
    since(last, now),
    str(e["type"]) ?? "",
    str(e["reason"]) ?? "",
    `${kind}/${str(dig(io, "name")) ?? ""}`,
    str(dig(io, "fieldPath")) ?? "",
    source,
    (str(pick("message", "note")) ?? "").trim(),
    since(first, now),
    count,
    e0.metadata.name ?? "",
  ];
}

interface Printer {
  columns: Column[];
  row: (o: KubeObject, now: number) => unknown[];
}

const PRINTERS: Record<string, Printer> = {
  Pod: {
    columns: [col("Name", 0, "name"), col("Ready"), col("Status"), col("Restarts"), col("Age"), col("IP", 1), col("Node", 1), col("Nominated Node", 1), col("Readiness Gates", 1)],
    row: podRow,
  },
  Node: {
    columns: [
      col("Name", 0, "name"),
      col("Status"),
      col("Roles"),
      col("Age"),
      col("Version"),
      col("Internal-IP", 1),
      col("External-IP", 1),
      col("OS-Image", 1),
      col("Kernel-Version", 1),
      col("Container-Runtime", 1),
    ],
    row: nodeRow,
  },
  Service: {
    columns: [col("Name", 0, "name"), col("Type"), col("Cluster-IP"), col("External-IP"), col("Port(s)"), col("Age"), col("Selector", 1)],
    row: serviceRow,
  },
  Namespace: {
    columns: [col("Name", 0, "name"), col("Status"), col("Age")],
    row: (n, now) => [n.metadata.name ?? "", str(dig(n, "status", "phase")) ?? "", since(n.metadata.creationTimestamp, now)],
  },
  ConfigMap: {
    columns: [col("Name", 0, "name"), col("Data", 0, "", "integer"), col("Age")],
    row: (c, now) => [
      c.metadata.name ?? "",
      Object.keys(isObject(c["data"]) ? c["data"] : {}).length + Object.keys(isObject(c["binaryData"]) ? c["binaryData"] : {}).length,
      since(c.metadata.creationTimestamp, now),
    ],
  },
  Secret: {
    columns: [col("Name", 0, "name"), col("Type"), col("Data", 0, "", "integer"), col("Age")],
    row: (s, now) => [s.metadata.name ?? "", str(s["type"]) ?? "", Object.keys(isObject(s["data"]) ? s["data"] : {}).length, since(s.metadata.creationTimestamp, now)],
  },
  ServiceAccount: {
    columns: [col("Name", 0, "name"), col("Secrets", 0, "", "integer"), col("Age")],
    row: (s, now) => [s.metadata.name ?? "", arr(s["secrets"]).length, since(s.metadata.creationTimestamp, now)],
  },
  EndpointSlice: {
    columns: [col("Name", 0, "name"), col("AddressType"), col("Ports"), col("Endpoints"), col("Age")],
    row: endpointSliceRow,
  },
  Event: {
    columns: [
      col("Last Seen"),
      col("Type"),
      col("Reason"),
      col("Object"),
      col("Subobject", 1),
      col("Source", 1),
      col("Message"),
      col("First Seen", 1),
      col("Count", 1, "", "integer"),
      col("Name", 1, "name"),
    ],
    row: eventRow,
  },
  Lease: {
    columns: [col("Name", 0, "name"), col("Holder"), col("Age")],
    row: (l, now) => [l.metadata.name ?? "", str(dig(l, "spec", "holderIdentity")) ?? "", since(l.metadata.creationTimestamp, now)],
  },
};

const DEFAULT_PRINTER: Printer = {
  columns: [col("Name", 0, "name"), { name: "Created At", type: "date", format: "", description: "CreationTimestamp", priority: 0 }],
  row: (o) => [o.metadata.name ?? "", o.metadata.creationTimestamp ?? ""],
};

export type IncludeObject = "None" | "Metadata" | "Object";

/** The Table of `objects` (served as `r` — core events are converted by the caller first). */
export function toTable(
  r: ResourceDescriptor,
  objects: readonly KubeObject[],
  listMeta: JsonObject,
  include: IncludeObject = "Metadata",
  now: number = Date.now(),
): JsonObject {
  const p = PRINTERS[r.kind] ?? DEFAULT_PRINTER;
  const rows = objects.map((o) => {
    const cells = p.row(o, now);
    let object: unknown = null;
    if (include === "Object") object = o;
    else if (include === "Metadata") object = { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata };
    return { cells, object };
  });
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: listMeta,
    columnDefinitions: p.columns as unknown as JsonObject[],
    rows: rows as unknown as JsonObject[],
  };
}

export function tableApiVersion(r: ResourceDescriptor): string {
  return apiVersionOf(r);
}
