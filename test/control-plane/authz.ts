/**
 * Authorization: system:masters may do anything; node identities (`system:node:<name>` in `system:nodes`)
 * get what the Node authorizer, the system:node role and the NodeRestriction admission plugin allow them;
 * every authenticated user may use discovery and the self-review APIs (system:basic-user,
 * system:discovery); then RBAC: the rules of the ClusterRoles and Roles bound to the user, a group of theirs or
 * their service account (ClusterRoleBindings everywhere, RoleBindings in their namespace). Everything else is
 * denied. Deliberate difference: no aggregated ClusterRoles and no bootstrap roles beyond cluster-admin
 * (bound to system:masters, which is also let through directly).
 */
import type { Store } from "./store.ts";
import { arr, dig, str, type KubeObject } from "./types.ts";

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

export interface Attributes {
  user: UserInfo;
  verb: string;
  group: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  /** Non-resource requests: the path. */
  path?: string;
  /** For list/watch: the field selector's metadata.name, which narrows a node's request to one object. */
  fieldSelectorName?: string;
}

export interface Decision {
  allowed: boolean;
  reason: string;
}

export const MASTERS = "system:masters";
export const NODES = "system:nodes";
const NODE_PREFIX = "system:node:";

export function nodeNameOf(user: UserInfo): string | undefined {
  if (!user.groups.includes(NODES) || !user.username.startsWith(NODE_PREFIX)) return undefined;
  return user.username.slice(NODE_PREFIX.length);
}

const readVerbs = new Set(["get", "list", "watch"]);

function allow(reason = ""): Decision {
  return { allowed: true, reason };
}
function deny(reason = ""): Decision {
  return { allowed: false, reason };
}

/** `User "x" cannot get resource "pods" in API group "" in the namespace "y"` — RBAC's denial wording. */
export function denialMessage(a: Attributes): string {
  const res = a.subresource === "" ? a.resource : `${a.resource}/${a.subresource}`;
  const scope = a.namespace === "" ? "at the cluster scope" : `in the namespace "${a.namespace}"`;
  return `User "${a.user.username}" cannot ${a.verb} resource "${res}" in API group "${a.group}" ${scope}`;
}

export class Authorizer {
  private readonly store: Store;

  constructor(store: Store) {
    this.store = store;
  }

  authorize(a: Attributes): Decision {
    if (a.user.groups.includes(MASTERS)) return allow();
    if (a.path !== undefined) {
      // Non-resource URLs: discovery, version, health, openapi are readable by every authenticated user.
      if (a.verb === "get" && a.user.groups.includes("system:authenticated")) return allow();
      return this.rbac(a) ? allow() : deny();
    }
    if (
      a.verb === "create" &&
      ((a.group === "authorization.k8s.io" && (a.resource === "selfsubjectaccessreviews" || a.resource === "selfsubjectrulesreviews")) ||
        (a.group === "authentication.k8s.io" && a.resource === "selfsubjectreviews"))
    )
      return allow();
    const node = nodeNameOf(a.user);
    if (node !== undefined) {
      const d = this.authorizeNode(node, a);
      if (d.allowed || !this.rbac(a)) return d;
      return allow();
    }
    return this.rbac(a) ? allow() : deny();
  }

  /** Whether a ClusterRoleBinding, or a RoleBinding of the request's namespace, grants the request. */
  private rbac(a: Attributes): boolean {
    const bindings = [...this.store.list("rbac.authorization.k8s.io/clusterrolebindings")];
    if (a.namespace !== "") bindings.push(...this.store.list("rbac.authorization.k8s.io/rolebindings", a.namespace));
    for (const b of bindings) {
      if (!arr(dig(b, "subjects")).some((subj) => subjectMatches(subj, a.user))) continue;
      const kind = str(dig(b, "roleRef", "kind"));
      const name = str(dig(b, "roleRef", "name")) ?? "";
      const role = kind === "ClusterRole" ? this.store.get("rbac.authorization.k8s.io/clusterroles", undefined, name) : this.store.get("rbac.authorization.k8s.io/roles", b.metadata.namespace, name);
      if (role !== undefined && arr(dig(role, "rules")).some((r) => ruleAllows(r, a))) return true;
    }
    return false;
  }

  private podsOnNode(node: string, namespace?: string): KubeObject[] {
    return this.store.list("core/pods", namespace).filter((p) => dig(p, "spec", "nodeName") === node);
  }

  /** Whether a pod bound to `node` references the object (the Node authorizer's graph, computed on demand). */
  private referencedByNodePod(node: string, resource: string, namespace: string, name: string): boolean {
    for (const pod of this.podsOnNode(node, namespace)) {
      if (podReferences(pod, resource).has(name)) return true;
    }
    return false;
  }

  private authorizeNode(node: string, a: Attributes): Decision {
    const { verb, group, resource, subresource, namespace, name } = a;
    const relationship = () => deny(`no relationship found between node '${node}' and this object`);
    if (group === "") {
      switch (resource) {
        case "nodes":
          if (readVerbs.has(verb) && subresource === "") return allow();
          if (["create", "update", "patch", "delete"].includes(verb)) return allow(); // NodeRestriction narrows to its own Node
          return deny();
        case "pods":
          if (readVerbs.has(verb) && subresource === "") return allow();
          if ((verb === "update" || verb === "patch") && subresource === "status") return allow(); // NodeRestriction: own pods
          if (verb === "delete" && subresource === "") return allow(); // NodeRestriction: own pods
          if (verb === "create" && (subresource === "" || subresource === "eviction")) return allow(); // mirror pods / own evictions
          return deny();
        case "events":
          if (["create", "update", "patch"].includes(verb)) return allow();
          return deny();
        case "services":
        case "endpoints":
          return readVerbs.has(verb) ? allow() : deny();
        case "secrets":
        case "configmaps":
        case "persistentvolumeclaims": {
          if (verb === "get" && this.referencedByNodePod(node, resource, namespace, name)) return allow();
          if ((verb === "list" || verb === "watch") && a.fieldSelectorName !== undefined && this.referencedByNodePod(node, resource, namespace, a.fieldSelectorName))
            return allow();
          return relationship();
        }
        case "serviceaccounts":
          if (subresource === "token" && verb === "create") {
            return this.referencedByNodePod(node, "serviceaccounts", namespace, name) ? allow() : relationship();
          }
          if (subresource === "" && verb === "get") return this.referencedByNodePod(node, "serviceaccounts", namespace, name) ? allow() : relationship();
          return deny();
        default:
          return deny();
      }
    }
    if (group === "coordination.k8s.io" && resource === "leases") {
      if (namespace !== "kube-node-lease") return deny();
      if (verb === "create" || ((verb === "get" || verb === "update" || verb === "patch" || verb === "delete") && name === node)) return allow();
      return relationship();
    }
    if (group === "discovery.k8s.io" && resource === "endpointslices") return readVerbs.has(verb) ? allow() : deny();
    if (group === "events.k8s.io" && resource === "events") return ["create", "update", "patch"].includes(verb) ? allow() : deny();
    if (group === "authentication.k8s.io" && resource === "tokenreviews" && verb === "create") return allow();
    if (group === "authorization.k8s.io" && resource === "subjectaccessreviews" && verb === "create") return allow();
    return deny();
  }
}

function subjectMatches(subject: unknown, user: UserInfo): boolean {
  const kind = str(dig(subject, "kind"));
  const name = str(dig(subject, "name")) ?? "";
  if (kind === "User") return user.username === name;
  if (kind === "Group") return user.groups.includes(name);
  if (kind === "ServiceAccount") return user.username === `system:serviceaccount:${str(dig(subject, "namespace")) ?? ""}:${name}`;
  return false;
}

const strings = (v: unknown): string[] => arr(v).filter((x): x is string => typeof x === "string");

/** RBAC's rule matching (k8s.io/kubernetes/pkg/apis/rbac/v1 evaluation helpers). */
export function ruleAllows(rule: unknown, a: Attributes): boolean {
  const verbs = strings(dig(rule, "verbs"));
  if (!verbs.includes("*") && !verbs.includes(a.verb)) return false;
  if (a.path !== undefined) {
    return strings(dig(rule, "nonResourceURLs")).some((u) => u === "*" || u === a.path || (u.endsWith("*") && a.path?.startsWith(u.slice(0, -1))));
  }
  const groups = strings(dig(rule, "apiGroups"));
  if (!groups.includes("*") && !groups.includes(a.group)) return false;
  const resources = strings(dig(rule, "resources"));
  const combined = a.subresource === "" ? a.resource : `${a.resource}/${a.subresource}`;
  if (!resources.some((r) => r === "*" || r === combined || (a.subresource !== "" && r === `*/${a.subresource}`))) return false;
  const names = strings(dig(rule, "resourceNames"));
  return names.length === 0 || names.includes(a.name);
}

/** Names of the secrets/configmaps/serviceaccounts/pvcs a pod uses. */
export function podReferences(pod: KubeObject, resource: string): Set<string> {
  const out = new Set<string>();
  const spec = pod["spec"];
  if (resource === "serviceaccounts") {
    const sa = str(dig(spec, "serviceAccountName"));
    if (sa !== undefined && sa !== "") out.add(sa);
    return out;
  }
  const add = (v: unknown) => {
    if (typeof v === "string" && v !== "") out.add(v);
  };
  const containers = [...arr(dig(spec, "containers")), ...arr(dig(spec, "initContainers")), ...arr(dig(spec, "ephemeralContainers"))];
  for (const vol of arr(dig(spec, "volumes"))) {
    if (resource === "secrets") {
      add(dig(vol, "secret", "secretName"));
      for (const src of arr(dig(vol, "projected", "sources"))) add(dig(src, "secret", "name"));
      for (const k of ["azureFile", "cephfs", "cinder", "flexVolume", "rbd", "scaleIO", "storageos", "iscsi", "csi"]) add(dig(vol, k, "secretRef", "name"));
    } else if (resource === "configmaps") {
      add(dig(vol, "configMap", "name"));
      for (const src of arr(dig(vol, "projected", "sources"))) add(dig(src, "configMap", "name"));
    } else if (resource === "persistentvolumeclaims") add(dig(vol, "persistentVolumeClaim", "claimName"));
  }
  if (resource === "secrets") for (const s of arr(dig(spec, "imagePullSecrets"))) add(dig(s, "name"));
  for (const c of containers) {
    for (const e of arr(dig(c, "env"))) {
      if (resource === "secrets") add(dig(e, "valueFrom", "secretKeyRef", "name"));
      if (resource === "configmaps") add(dig(e, "valueFrom", "configMapKeyRef", "name"));
    }
    for (const e of arr(dig(c, "envFrom"))) {
      if (resource === "secrets") add(dig(e, "secretRef", "name"));
      if (resource === "configmaps") add(dig(e, "configMapRef", "name"));
    }
  }
  return out;
}

/**
 * NodeRestriction admission: what a node may write, given the object. Returns the denial message or
 * undefined when admitted.
 */
export function nodeRestriction(
  node: string,
  verb: string,
  resource: string,
  subresource: string,
  obj: KubeObject | undefined,
  old: KubeObject | undefined,
): string | undefined {
  switch (resource) {
    case "nodes": {
      const name = obj?.metadata.name ?? old?.metadata.name ?? "";
      if (name !== node) return `node "${node}" is not allowed to modify node "${name}"`;
      if (verb !== "create" && old !== undefined && obj !== undefined && subresource === "") {
        const oldTaints = JSON.stringify(dig(old, "spec", "taints") ?? []);
        const newTaints = JSON.stringify(dig(obj, "spec", "taints") ?? []);
        if (oldTaints !== newTaints) return `node "${node}" is not allowed to modify taints`;
      }
      if (obj !== undefined) {
        for (const k of Object.keys(obj.metadata.labels ?? {})) {
          const prefix = k.includes("/") ? (k.split("/")[0] ?? "") : "";
          const restricted = prefix === "node-restriction.kubernetes.io" || prefix.endsWith(".node-restriction.kubernetes.io");
          if (restricted && (old?.metadata.labels?.[k] ?? undefined) !== obj.metadata.labels?.[k])
            return `is not allowed to modify labels: ${k}`;
        }
      }
      return undefined;
    }
    case "pods": {
      const pod = old ?? obj;
      const bound = str(dig(pod, "spec", "nodeName"));
      if (verb === "create" && subresource === "") {
        const mirror = obj?.metadata.annotations?.["kubernetes.io/config.mirror"] !== undefined;
        if (!mirror) return `pod does not have "kubernetes.io/config.mirror" annotation, node "${node}" can only create mirror pods`;
        if (bound !== node) return `node "${node}" can only create pods with spec.nodeName set to itself`;
        return undefined;
      }
      if (subresource === "status" && bound !== node) return `node "${node}" can only update pod status for pods with spec.nodeName set to itself`;
      if (subresource === "eviction" && bound !== node) return `node "${node}" can only evict pods with spec.nodeName set to itself`;
      if (verb === "delete" && bound !== node) return `node "${node}" can only delete pods with spec.nodeName set to itself`;
      return undefined;
    }
    case "leases":
      if ((obj?.metadata.name ?? old?.metadata.name) !== node) return `node "${node}" is not allowed to modify lease "${obj?.metadata.name ?? ""}"`;
      return undefined;
    default:
      return undefined;
  }
}
