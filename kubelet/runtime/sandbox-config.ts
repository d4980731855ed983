/**
 * Pod → CRI PodSandboxConfig, as upstream's generatePodSandboxConfig (pkg/kubelet/kuberuntime/
 * kuberuntime_sandbox.go) builds it: metadata with the attempt, hostname, log directory, DNS, host port
 * mappings, labels and annotations, and the Linux part (cgroup parent under kubepods/<qos>, namespace modes,
 * sysctls, pod security context). Pure.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { DeckhandError } from "../../src-shared/errors.ts";
import type { DNSConfig, Input, NamespaceOption, PodSandboxConfig, PortMapping } from "../cri/types.ts";
import { POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL, CONTAINER_TYPE_LABEL, KUBELET_MANAGED_LABEL } from "./labels.ts";
import { podCgroupPath } from "../cm/pod-cgroups.ts";
import { qosClass } from "../qos.ts";

/** What the node contributes to every pod's configuration. */
export interface NodeContext {
  nodeName: string;
  /** The kubelet's cgroupRoot ("/" upstream by default). */
  cgroupRoot: string;
  podLogsDir: string;
  clusterDNS: string[];
  clusterDomain: string;
  /** The node's own resolver configuration (parsed resolvConf), for dnsPolicy Default and as the search base. */
  hostDNS: { servers: string[]; searches: string[]; options: string[] };
  hostIPs: string[];
  memoryCapacityBytes: number;
  /** The node's CPU capacity (what a downward API cpu limit the container does not set stands for). */
  cpuCapacityMilli?: number;
  cpuCFSQuota: boolean;
  cpuCFSQuotaPeriodUs: number;
  /** podPidsLimit: pids.max of every pod cgroup when > 0. */
  podPidsLimit?: number;
}

export function podFullName(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
}

export function podUid(pod: V1Pod): string {
  const uid = pod.metadata?.uid;
  if (!uid) throw new DeckhandError("InvalidArgument", `pod ${podFullName(pod)}: metadata.uid is empty`);
  return uid;
}

/**
 * Upstream's getSeccompProfile with seccompDefault off: the container's profile, else the pod's, else
 * Unconfined, always sent explicitly. Localhost profiles are refused at admission (kubelet/admission.ts) until
 * the seccomp root is served.
 */
export function seccompProfile(pod: V1Pod, container?: V1Container): { profile_type: "RuntimeDefault" | "Unconfined" } {
  const type = container?.securityContext?.seccompProfile?.type ?? pod.spec?.securityContext?.seccompProfile?.type;
  return { profile_type: type === "RuntimeDefault" ? "RuntimeDefault" : "Unconfined" };
}

/** `/var/log/pods/<namespace>_<name>_<uid>` (upstream BuildPodLogsDirectory). */
export function podLogDirectory(podLogsDir: string, pod: V1Pod): string {
  return `${podLogsDir.replace(/\/$/, "")}/${pod.metadata?.namespace ?? ""}_${pod.metadata?.name ?? ""}_${podUid(pod)}`;
}

/** Upstream's namespace modes: host namespaces when asked, PID per container unless shareProcessNamespace. */
export function namespaceOptions(pod: V1Pod): Input<NamespaceOption> {
  const spec = pod.spec;
  return {
    network: spec?.hostNetwork ? "NODE" : "POD",
    pid: spec?.hostPID ? "NODE" : spec?.shareProcessNamespace ? "POD" : "CONTAINER",
    ipc: spec?.hostIPC ? "NODE" : "POD",
  };
}

/** DNS as upstream's pkg/kubelet/network/dns GetPodDNS decides it from dnsPolicy and dnsConfig. */
export function podDNSConfig(pod: V1Pod, node: NodeContext): Input<DNSConfig> | undefined {
  const spec = pod.spec;
  let policy = spec?.dnsPolicy ?? "ClusterFirst";
  if (policy === "ClusterFirst" && spec?.hostNetwork) policy = "Default";
  if ((policy === "ClusterFirst" || policy === "ClusterFirstWithHostNet") && node.clusterDNS.length === 0) policy = "Default";
  let servers: string[] = [];
  let searches: string[] = [];
  let options: string[] = [];
  if (policy === "ClusterFirst" || policy === "ClusterFirstWithHostNet") {
    const ns = pod.metadata?.namespace ?? "default";
    const domain = node.clusterDomain;
    servers = [...node.clusterDNS];
    searches = domain ? [`${ns}.svc.${domain}`, `svc.${domain}`, domain, ...node.hostDNS.searches] : [...node.hostDNS.searches];
    options = ["ndots:5"];
  } else if (policy === "Default") {
    servers = [...node.hostDNS.servers];
    searches = [...node.hostDNS.searches];
    options = [...node.hostDNS.options];
  } else if (policy !== "None") {
    throw new DeckhandError("InvalidArgument", `pod ${podFullName(pod)}: spec.dnsPolicy: Unsupported value: "${policy}"`);
  }
  const extra = spec?.dnsConfig;
  if (extra) {
    servers = [...new Set([...servers, ...(extra.nameservers ?? [])])];
    searches = [...new Set([...searches, ...(extra.searches ?? [])])];
    const byName = new Map(options.map((o) => [o.split(":")[0] ?? o, o]));
    for (const o of extra.options ?? []) byName.set(o.name ?? "", o.value === undefined ? (o.name ?? "") : `${o.name ?? ""}:${o.value}`);
    options = [...byName.values()];
  }
  // Upstream's limits: 3 name servers, 32 search domains.
  return { servers: servers.slice(0, 3), searches: searches.slice(0, 32), options };
}

function portMappings(pod: V1Pod): Input<PortMapping>[] {
  const mappings: Input<PortMapping>[] = [];
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    for (const p of c.ports ?? []) {
      if (!p.hostPort) continue;
      const protocol = (p.protocol ?? "TCP") as "TCP" | "UDP" | "SCTP";
      mappings.push({ protocol, container_port: p.containerPort, host_port: p.hostPort, host_ip: p.hostIP ?? "" });
    }
  }
  return mappings;
}

/** The hostname a pod sees: spec.hostname, else the pod name, cut to 63 characters as upstream. */
export function podHostname(pod: V1Pod): string {
  const name = pod.spec?.hostname ?? pod.metadata?.name ?? "";
  return name.slice(0, 63).replace(/[-.]+$/, "");
}

export function sandboxConfig(pod: V1Pod, attempt: number, node: NodeContext): Input<PodSandboxConfig> {
  const uid = podUid(pod);
  const name = pod.metadata?.name ?? "";
  const namespace = pod.metadata?.namespace ?? "";
  const psc = pod.spec?.securityContext;
  const sysctls: Record<string, string> = {};
  for (const s of psc?.sysctls ?? []) sysctls[s.name] = s.value;
  const dns = podDNSConfig(pod, node);
  return {
    metadata: { name, namespace, uid, attempt },
    hostname: pod.spec?.hostNetwork ? "" : podHostname(pod),
    log_directory: podLogDirectory(node.podLogsDir, pod),
    ...(dns ? { dns_config: dns } : {}),
    port_mappings: portMappings(pod),
    labels: {
      ...(pod.metadata?.labels ?? {}),
      [POD_NAME_LABEL]: name,
      [POD_NAMESPACE_LABEL]: namespace,
      [POD_UID_LABEL]: uid,
      [CONTAINER_TYPE_LABEL]: "podsandbox",
      [KUBELET_MANAGED_LABEL]: "true",
    },
    annotations: { ...(pod.metadata?.annotations ?? {}) },
    linux: {
      cgroup_parent: podCgroupPath(node.cgroupRoot, qosClass(pod), uid),
      sysctls,
      security_context: {
        namespace_options: namespaceOptions(pod),
        privileged: [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].some((c) => c.securityContext?.privileged === true),
        ...(psc?.runAsUser !== undefined ? { run_as_user: { value: psc.runAsUser } } : {}),
        ...(psc?.runAsGroup !== undefined ? { run_as_group: { value: psc.runAsGroup } } : {}),
        supplemental_groups: psc?.supplementalGroups ?? [],
        seccomp: seccompProfile(pod),
      },
    },
  };
}
