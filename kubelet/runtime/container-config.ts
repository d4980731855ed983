/**
 * Container spec → CRI ContainerConfig, as upstream's generateContainerConfig (pkg/kubelet/kuberuntime/
 * kuberuntime_container.go): metadata with the restart count as attempt, image, command and args with $(VAR)
 * expansion, env (value, fieldRef, resourceFieldRef), working dir, log path `<name>/<restartCount>.log`,
 * upstream's labels and annotations, and Linux resources (shares, CFS quota, memory limit, oom_score_adj by
 * QoS). Pure; a spec the kubelet cannot honour throws a ContainerConfigError naming the field (the pod then
 * shows CreateContainerConfigError for that container, as upstream).
 */
import type { V1Container, V1EnvVar, V1Pod } from "@kubernetes/client-node";
import { DeckhandError } from "../../src-shared/errors.ts";
import type { ContainerConfig, Input, KeyValue, Mount } from "../cri/types.ts";
import { containerHash } from "./container-hash.ts";
import {
  CONTAINER_HASH_ANNOTATION,
  CONTAINER_KIND_ANNOTATION,
  CONTAINER_NAME_LABEL,
  CONTAINER_PORTS_ANNOTATION,
  CONTAINER_PRESTOP_HANDLER_ANNOTATION,
  CONTAINER_RESTART_COUNT_ANNOTATION,
  POD_DELETION_GRACE_ANNOTATION,
  POD_NAMESPACE_LABEL,
  POD_NAME_LABEL,
  POD_TERMINATION_GRACE_ANNOTATION,
  POD_UID_LABEL,
  TERMINATION_MESSAGE_PATH_ANNOTATION,
  TERMINATION_MESSAGE_POLICY_ANNOTATION,
} from "./labels.ts";
import { namespaceOptions, podUid, seccompProfile, type NodeContext } from "./sandbox-config.ts";
import { milliCPUToQuota, milliCPUToShares, oomScoreAdj } from "../qos.ts";
import { containerResourceValue, podMetadataField } from "../downward-api.ts";
import { quantityAsFloat } from "../../src-shared/quantity.ts";
import type { RuntimeContainer } from "./types.ts";

export class ContainerConfigError extends DeckhandError {
  constructor(message: string) {
    super("InvalidArgument", message);
    this.name = "ContainerConfigError";
  }
}

/** What the pod's status contributes to env (downward API) at container start. */
export interface PodRuntimeFacts {
  podIPs: string[];
}

function fieldRefValue(pod: V1Pod, fieldPath: string, node: NodeContext, facts: PodRuntimeFacts): string {
  const metadata = podMetadataField(pod, fieldPath);
  if (metadata !== undefined) return metadata;
  switch (fieldPath) {
    case "spec.nodeName":
      return pod.spec?.nodeName ?? node.nodeName;
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "";
    case "status.hostIP":
      return node.hostIPs[0] ?? "";
    case "status.hostIPs":
      return node.hostIPs.join(",");
    case "status.podIP":
      return facts.podIPs[0] ?? "";
    case "status.podIPs":
      return facts.podIPs.join(",");
    default:
      throw new ContainerConfigError(`valueFrom.fieldRef.fieldPath: Unsupported value: "${fieldPath}"`);
  }
}

function resourceFieldValue(container: V1Container, resource: string, divisor: string | undefined, node: NodeContext): string {
  const value = containerResourceValue(container, resource, divisor, { memoryBytes: node.memoryCapacityBytes, cpuMilli: node.cpuCapacityMilli ?? 0 });
  if (value === undefined) throw new ContainerConfigError(`valueFrom.resourceFieldRef.resource: Unsupported value: "${resource}"`);
  return value;
}

/** Upstream's $(VAR) expansion: $$ escapes, unknown references stay as written. */
export function expandVars(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (whole === "$$") return "$";
    return name !== undefined && vars.has(name) ? (vars.get(name) ?? "") : whole;
  });
}

/**
 * The ConfigMaps and Secrets a container's env reads, as the kubelet's watches hold them (Secret values decoded):
 * a name absent from the map, or mapped to undefined, does not exist.
 */
export interface EnvSources {
  configMaps: ReadonlyMap<string, Readonly<Record<string, string>> | undefined>;
  secrets: ReadonlyMap<string, Readonly<Record<string, string>> | undefined>;
  /** The service link variables (objects/service-env.ts), under everything else. */
  services?: readonly KeyValue[];
}

export const NO_ENV_SOURCES: EnvSources = { configMaps: new Map(), secrets: new Map() };

/** Upstream's relaxed environment variable names (RelaxedEnvironmentVariableValidation, on since 1.32). */
export function isEnvVarName(name: string): boolean {
  return name.length > 0 && !name.includes("=") && /^[\x20-\x7e]+$/.test(name);
}

/** The names of the ConfigMaps and Secrets a container's env and envFrom reference. Pure. */
export function envReferences(container: V1Container): { configMaps: Set<string>; secrets: Set<string> } {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  for (const f of container.envFrom ?? []) {
    if (f.configMapRef?.name) configMaps.add(f.configMapRef.name);
    if (f.secretRef?.name) secrets.add(f.secretRef.name);
  }
  for (const e of container.env ?? []) {
    if (e.valueFrom?.configMapKeyRef?.name) configMaps.add(e.valueFrom.configMapKeyRef.name);
    if (e.valueFrom?.secretKeyRef?.name) secrets.add(e.valueFrom.secretKeyRef.name);
  }
  return { configMaps, secrets };
}

/**
 * The container's environment as upstream's makeEnvironmentVariables: the service links first, then `envFrom` (ConfigMaps and Secrets
 * with their `prefix`; keys that are no valid name skipped and reported in `warnings` as upstream's
 * InvalidEnvironmentVariableNames event), then `env` in order (value with $(VAR) expansion over everything so
 * far, fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef), a later name replacing an earlier one. A
 * missing object or key that is not optional throws a ContainerConfigError with upstream's message
 * (CreateContainerConfigError).
 */
export function containerEnv(pod: V1Pod, container: V1Container, node: NodeContext, facts: PodRuntimeFacts, sources: EnvSources = NO_ENV_SOURCES, warnings?: string[]): KeyValue[] {
  const ns = pod.metadata?.namespace ?? "";
  const vars = new Map<string, string>();
  for (const e of sources.services ?? []) vars.set(e.key, e.value);
  for (const f of container.envFrom ?? []) {
    const kind = f.configMapRef ? "configMap" : f.secretRef ? "secret" : undefined;
    if (kind === undefined) continue;
    const ref = (kind === "configMap" ? f.configMapRef : f.secretRef) as { name?: string; optional?: boolean };
    const name = ref.name ?? "";
    const data = (kind === "configMap" ? sources.configMaps : sources.secrets).get(name);
    if (data === undefined) {
      if (ref.optional === true) continue;
      throw new ContainerConfigError(`${kind === "configMap" ? "configmap" : "secret"} "${name}" not found`);
    }
    const invalid: string[] = [];
    for (const [k, v] of Object.entries(data)) {
      const key = `${f.prefix ?? ""}${k}`;
      if (!isEnvVarName(key)) {
        invalid.push(key);
        continue;
      }
      vars.set(key, v);
    }
    if (invalid.length > 0) warnings?.push(`Keys [${invalid.sort().join(", ")}] from the EnvFrom ${kind === "configMap" ? "configMap" : "secret"} ${ns}/${name} were skipped since they are considered invalid environment variable names.`);
  }
  (container.env ?? []).forEach((e: V1EnvVar, i) => {
    let value: string | undefined;
    const from = e.valueFrom;
    if (from) {
      if (from.fieldRef) value = fieldRefValue(pod, from.fieldRef.fieldPath, node, facts);
      else if (from.resourceFieldRef) value = resourceFieldValue(container, from.resourceFieldRef.resource, from.resourceFieldRef.divisor?.toString(), node);
      else if (from.configMapKeyRef || from.secretKeyRef) {
        const cm = from.configMapKeyRef !== undefined;
        const ref = (from.configMapKeyRef ?? from.secretKeyRef) as { name?: string; key: string; optional?: boolean };
        const name = ref.name ?? "";
        const data = (cm ? sources.configMaps : sources.secrets).get(name);
        if (data === undefined) {
          if (ref.optional === true) return;
          throw new ContainerConfigError(`${cm ? "configmap" : "secret"} "${name}" not found`);
        }
        value = data[ref.key];
        if (value === undefined) {
          if (ref.optional === true) return;
          throw new ContainerConfigError(`couldn't find key ${ref.key} in ${cm ? "ConfigMap" : "Secret"} ${ns}/${name}`);
        }
      } else throw new ContainerConfigError(`container ${container.name}: env[${i}].valueFrom: no source set (${e.name})`);
    } else value = expandVars(e.value ?? "", vars);
    vars.delete(e.name); // a redefinition takes the later place, as upstream's ordered list
    vars.set(e.name, value);
  });
  return [...vars].map(([key, value]) => ({ key, value }));
}

function quantityOf(map: Record<string, string | number> | undefined, key: string): number | undefined {
  const v = map?.[key];
  return v === undefined ? undefined : quantityAsFloat(v);
}

export type ContainerKind = RuntimeContainer["kind"];

export interface ContainerConfigInput {
  pod: V1Pod;
  container: V1Container;
  kind: ContainerKind;
  restartCount: number;
  /** The image reference to run (as pulled). */
  image: string;
  node: NodeContext;
  facts: PodRuntimeFacts;
  /** The CRI mounts of the container's volumeMounts (volumes/container-mounts.ts). */
  volumeMounts?: Input<Mount>[];
  /** The ConfigMaps and Secrets its env reads. */
  envSources?: EnvSources;
}

/** The container's effective runAsNonRoot and runAsUser (container's security context over the pod's). */
export function nonRootPolicy(pod: V1Pod, container: V1Container): { runAsNonRoot: boolean; runAsUser: number | undefined } {
  const sc = container.securityContext;
  const psc = pod.spec?.securityContext;
  return { runAsNonRoot: (sc?.runAsNonRoot ?? psc?.runAsNonRoot) === true, runAsUser: sc?.runAsUser ?? psc?.runAsUser };
}

/**
 * Upstream's verifyRunAsNonRoot: with runAsNonRoot, a container must not run as uid 0, whether the pod says so
 * or the image does; an image user given by name cannot be verified and is refused. `imageUser` is needed only
 * when the pod sets no runAsUser. Throws a ContainerConfigError (CreateContainerConfigError) with upstream's
 * messages.
 */
export function verifyRunAsNonRoot(pod: V1Pod, container: V1Container, imageUser: { uid: number } | { username: string } | undefined): void {
  const { runAsNonRoot, runAsUser } = nonRootPolicy(pod, container);
  if (!runAsNonRoot) return;
  const podName = `${pod.metadata?.name ?? ""}_${pod.metadata?.namespace ?? ""}(${pod.metadata?.uid ?? ""})`;
  if (runAsUser !== undefined) {
    if (runAsUser === 0) throw new ContainerConfigError(`container's runAsUser breaks non-root policy (pod: "${podName}", container: ${container.name})`);
    return;
  }
  if (imageUser && "uid" in imageUser && imageUser.uid === 0) throw new ContainerConfigError(`container has runAsNonRoot and image will run as root (pod: "${podName}", container: ${container.name})`);
  if (imageUser && "username" in imageUser) throw new ContainerConfigError(`container has runAsNonRoot and image has non-numeric user (${imageUser.username}), cannot verify user is non-root (pod: "${podName}", container: ${container.name})`);
}

export function containerConfig(input: ContainerConfigInput): Input<ContainerConfig> {
  const { pod, container, kind, restartCount, node, facts } = input;
  const uid = podUid(pod);
  const env = containerEnv(pod, container, node, facts, input.envSources);
  const vars = new Map(env.map((e) => [e.key, e.value]));
  const requests = container.resources?.requests as Record<string, string | number> | undefined;
  const limits = container.resources?.limits as Record<string, string | number> | undefined;
  const cpuRequest = quantityOf(requests, "cpu") ?? quantityOf(limits, "cpu");
  const cpuLimit = quantityOf(limits, "cpu");
  const memoryLimit = quantityOf(limits, "memory");
  const sc = container.securityContext;
  const psc = pod.spec?.securityContext;
  const runAsUser = sc?.runAsUser ?? psc?.runAsUser;
  const runAsGroup = sc?.runAsGroup ?? psc?.runAsGroup;
  const ports = (container.ports ?? []).map((p) => ({ name: p.name, containerPort: p.containerPort, protocol: p.protocol ?? "TCP" }));
  const grace = pod.spec?.terminationGracePeriodSeconds ?? 30;
  return {
    metadata: { name: container.name, attempt: restartCount },
    image: { image: input.image },
    command: (container.command ?? []).map((c) => expandVars(c, vars)),
    args: (container.args ?? []).map((a) => expandVars(a, vars)),
    working_dir: container.workingDir ?? "",
    envs: env,
    mounts: [...(input.volumeMounts ?? [])],
    log_path: `${container.name}/${restartCount}.log`,
    stdin: container.stdin ?? false,
    stdin_once: container.stdinOnce ?? false,
    tty: container.tty ?? false,
    labels: {
      [CONTAINER_NAME_LABEL]: container.name,
      [POD_NAME_LABEL]: pod.metadata?.name ?? "",
      [POD_NAMESPACE_LABEL]: pod.metadata?.namespace ?? "",
      [POD_UID_LABEL]: uid,
    },
    annotations: {
      [CONTAINER_HASH_ANNOTATION]: containerHash(container),
      [CONTAINER_RESTART_COUNT_ANNOTATION]: String(restartCount),
      [TERMINATION_MESSAGE_PATH_ANNOTATION]: container.terminationMessagePath ?? "/dev/termination-log",
      [TERMINATION_MESSAGE_POLICY_ANNOTATION]: container.terminationMessagePolicy ?? "File",
      [POD_TERMINATION_GRACE_ANNOTATION]: String(grace),
      ...(pod.metadata?.deletionGracePeriodSeconds !== undefined ? { [POD_DELETION_GRACE_ANNOTATION]: String(pod.metadata.deletionGracePeriodSeconds) } : {}),
      ...(ports.length > 0 ? { [CONTAINER_PORTS_ANNOTATION]: JSON.stringify(ports) } : {}),
      ...(container.lifecycle?.preStop ? { [CONTAINER_PRESTOP_HANDLER_ANNOTATION]: JSON.stringify(container.lifecycle.preStop) } : {}),
      [CONTAINER_KIND_ANNOTATION]: kind,
    },
    linux: {
      resources: {
        cpu_shares: milliCPUToShares(Math.round((cpuRequest ?? 0) * 1000)),
        ...(cpuLimit !== undefined && node.cpuCFSQuota
          ? { cpu_quota: milliCPUToQuota(Math.round(cpuLimit * 1000), node.cpuCFSQuotaPeriodUs), cpu_period: node.cpuCFSQuotaPeriodUs }
          : {}),
        ...(memoryLimit !== undefined ? { memory_limit_in_bytes: memoryLimit } : {}),
        oom_score_adj: oomScoreAdj(pod, container, node.memoryCapacityBytes),
      },
      security_context: {
        namespace_options: namespaceOptions(pod),
        privileged: sc?.privileged ?? false,
        readonly_rootfs: sc?.readOnlyRootFilesystem ?? false,
        ...(runAsUser !== undefined ? { run_as_user: { value: runAsUser } } : {}),
        ...(runAsGroup !== undefined ? { run_as_group: { value: runAsGroup } } : {}),
        ...(sc?.capabilities ? { capabilities: { add_capabilities: sc.capabilities.add ?? [], drop_capabilities: sc.capabilities.drop ?? [] } } : {}),
        // fsGroup joins the supplementary groups, so the container can use the volumes given to that group.
        supplemental_groups: [...(psc?.supplementalGroups ?? []), ...(psc?.fsGroup !== undefined && !(psc.supplementalGroups ?? []).includes(psc.fsGroup) ? [psc.fsGroup] : [])],
        no_new_privs: sc?.allowPrivilegeEscalation === false,
        seccomp: seccompProfile(pod, container),
      },
    },
  };
}
