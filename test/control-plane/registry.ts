/**
 * Resource descriptors: what discovery advertises and what the REST layer needs to know of each resource.
 * Pure data.
 */
import { dig, str, type KubeObject } from "./types.ts";

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete" | "deletecollection";

export interface ResourceDescriptor {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  verbs: Verb[];
  shortNames?: string[];
  categories?: string[];
  subresources: string[];
  /** Where objects live: resources served under several groups share one storage (events). */
  storage: string;
  /** Selectable fields besides metadata.name and metadata.namespace. */
  fields: Readonly<Record<string, (o: KubeObject) => string | undefined>>;
  /** Whether the delete response is the object (true) or a Status (false). */
  returnDeletedObject: boolean;
  /** Whether an update of a missing object creates it. */
  allowCreateOnUpdate: boolean;
}

export function apiVersionOf(d: { group: string; version: string }): string {
  return d.group === "" ? d.version : `${d.group}/${d.version}`;
}

const ALL: Verb[] = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const NO_COLLECTION: Verb[] = ["create", "delete", "get", "list", "patch", "update", "watch"];

const s = (path: string[]) => (o: KubeObject) => {
  const v = dig(o, ...path);
  if (typeof v === "boolean" || typeof v === "number") return String(v);
  return str(v);
};

function d(p: Partial<ResourceDescriptor> & Pick<ResourceDescriptor, "group" | "version" | "kind" | "plural" | "namespaced">): ResourceDescriptor {
  return {
    singular: p.kind.toLowerCase(),
    verbs: ALL,
    subresources: [],
    storage: `${p.group === "" ? "core" : p.group}/${p.plural}`,
    fields: {},
    returnDeletedObject: false,
    allowCreateOnUpdate: false,
    ...p,
  };
}

export const RESOURCES: readonly ResourceDescriptor[] = [
  d({
    group: "",
    version: "v1",
    kind: "Namespace",
    plural: "namespaces",
    namespaced: false,
    verbs: NO_COLLECTION,
    shortNames: ["ns"],
    subresources: ["status", "finalize"],
    fields: { "status.phase": s(["status", "phase"]) },
    returnDeletedObject: true,
  }),
  d({
    group: "",
    version: "v1",
    kind: "Node",
    plural: "nodes",
    namespaced: false,
    shortNames: ["no"],
    subresources: ["status"],
    fields: { "spec.unschedulable": (o) => String(dig(o, "spec", "unschedulable") === true) },
    returnDeletedObject: true,
  }),
  d({
    group: "",
    version: "v1",
    kind: "Pod",
    plural: "pods",
    namespaced: true,
    shortNames: ["po"],
    categories: ["all"],
    subresources: ["status", "binding", "eviction", "ephemeralcontainers"],
    fields: {
      "spec.nodeName": s(["spec", "nodeName"]),
      "spec.restartPolicy": s(["spec", "restartPolicy"]),
      "spec.schedulerName": s(["spec", "schedulerName"]),
      "spec.serviceAccountName": s(["spec", "serviceAccountName"]),
      "spec.hostNetwork": (o) => String(dig(o, "spec", "hostNetwork") === true),
      "status.phase": s(["status", "phase"]),
      "status.podIP": s(["status", "podIP"]),
      "status.nominatedNodeName": s(["status", "nominatedNodeName"]),
    },
    returnDeletedObject: true,
  }),
  d({
    group: "",
    version: "v1",
    kind: "Service",
    plural: "services",
    namespaced: true,
    verbs: NO_COLLECTION,
    shortNames: ["svc"],
    categories: ["all"],
    subresources: ["status"],
    returnDeletedObject: true,
  }),
  d({ group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true, shortNames: ["cm"] }),
  d({
    group: "",
    version: "v1",
    kind: "Secret",
    plural: "secrets",
    namespaced: true,
    fields: { type: s(["type"]) },
  }),
  d({
    group: "",
    version: "v1",
    kind: "ServiceAccount",
    plural: "serviceaccounts",
    namespaced: true,
    shortNames: ["sa"],
    subresources: ["token"],
  }),
  d({
    group: "",
    version: "v1",
    kind: "Event",
    plural: "events",
    namespaced: true,
    shortNames: ["ev"],
    storage: "core/events",
    allowCreateOnUpdate: true,
    fields: {
      "involvedObject.kind": s(["involvedObject", "kind"]),
      "involvedObject.namespace": s(["involvedObject", "namespace"]),
      "involvedObject.name": s(["involvedObject", "name"]),
      "involvedObject.uid": s(["involvedObject", "uid"]),
      "involvedObject.apiVersion": s(["involvedObject", "apiVersion"]),
      "involvedObject.resourceVersion": s(["involvedObject", "resourceVersion"]),
      "involvedObject.fieldPath": s(["involvedObject", "fieldPath"]),
      reason: s(["reason"]),
      reportingComponent: s(["reportingComponent"]),
      source: s(["source", "component"]),
      type: s(["type"]),
    },
  }),
  d({
    group: "events.k8s.io",
    version: "v1",
    kind: "Event",
    plural: "events",
    namespaced: true,
    shortNames: ["ev"],
    storage: "core/events",
    allowCreateOnUpdate: true,
    fields: {
      "regarding.kind": s(["involvedObject", "kind"]),
      "regarding.namespace": s(["involvedObject", "namespace"]),
      "regarding.name": s(["involvedObject", "name"]),
      "regarding.uid": s(["involvedObject", "uid"]),
      reason: s(["reason"]),
      reportingController: s(["reportingComponent"]),
      type: s(["type"]),
    },
  }),
  d({
    group: "discovery.k8s.io",
    version: "v1",
    kind: "EndpointSlice",
    plural: "endpointslices",
    namespaced: true,
    allowCreateOnUpdate: false,
  }),
  d({
    group: "coordination.k8s.io",
    version: "v1",
    kind: "Lease",
    plural: "leases",
    namespaced: true,
    allowCreateOnUpdate: true,
  }),
  d({ group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRole", plural: "clusterroles", namespaced: false }),
  d({ group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRoleBinding", plural: "clusterrolebindings", namespaced: false }),
  d({ group: "rbac.authorization.k8s.io", version: "v1", kind: "Role", plural: "roles", namespaced: true }),
  d({ group: "rbac.authorization.k8s.io", version: "v1", kind: "RoleBinding", plural: "rolebindings", namespaced: true }),
  d({
    group: "authentication.k8s.io",
    version: "v1",
    kind: "TokenReview",
    plural: "tokenreviews",
    namespaced: false,
    verbs: ["create"],
  }),
  d({
    group: "authentication.k8s.io",
    version: "v1",
    kind: "SelfSubjectReview",
    plural: "selfsubjectreviews",
    namespaced: false,
    verbs: ["create"],
  }),
  d({
    group: "authorization.k8s.io",
    version: "v1",
    kind: "SubjectAccessReview",
    plural: "subjectaccessreviews",
    namespaced: false,
    verbs: ["create"],
  }),
  d({
    group: "authorization.k8s.io",
    version: "v1",
    kind: "SelfSubjectAccessReview",
    plural: "selfsubjectaccessreviews",
    namespaced: false,
    verbs: ["create"],
  }),
];

/** Only the create verb and no storage: the review APIs. */
export function isVirtual(r: ResourceDescriptor): boolean {
  return r.verbs.length === 1 && r.verbs[0] === "create";
}

export interface GroupVersion {
  group: string;
  version: string;
}

export function groupVersions(): GroupVersion[] {
  const seen = new Map<string, GroupVersion>();
  for (const r of RESOURCES) seen.set(apiVersionOf(r), { group: r.group, version: r.version });
  return [...seen.values()];
}

export function findResource(group: string, version: string, plural: string): ResourceDescriptor | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural);
}

export function descriptorForStorage(storage: string): ResourceDescriptor {
  const r = RESOURCES.find((x) => x.storage === storage && x.group === (storage.startsWith("core/") ? "" : storage.split("/")[0]));
  if (r === undefined) throw new Error(`no resource for storage ${storage}`);
  return r;
}

export function resourceByKind(kind: string, apiVersion: string): ResourceDescriptor | undefined {
  return RESOURCES.find((r) => r.kind === kind && apiVersionOf(r) === apiVersion);
}

/** Value of a selectable field, or undefined when the resource has no such field. */
export function fieldGetter(r: ResourceDescriptor, field: string): ((o: KubeObject) => string | undefined) | undefined {
  if (field === "metadata.name") return (o) => o.metadata.name;
  if (field === "metadata.namespace") return r.namespaced ? (o) => o.metadata.namespace : undefined;
  return r.fields[field];
}
