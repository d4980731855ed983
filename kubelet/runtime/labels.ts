/**
 * The labels and annotations upstream's kubelet puts on sandboxes and containers
 * (pkg/kubelet/kuberuntime/labels.go, pkg/kubelet/types/labels.go), so crictl, log collectors and our own
 * restart recovery recognise the pods we run.
 */
import type { V1Container, V1LifecycleHandler, V1Pod } from "@kubernetes/client-node";
export const POD_NAME_LABEL = "io.kubernetes.pod.name";
export const POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace";
export const POD_UID_LABEL = "io.kubernetes.pod.uid";
export const CONTAINER_NAME_LABEL = "io.kubernetes.container.name";
/** Sandboxes only: upstream marks every kubelet-managed sandbox with this label set to "podsandbox". */
export const CONTAINER_TYPE_LABEL = "io.kubernetes.container.type";
export const KUBELET_MANAGED_LABEL = "io.kubernetes.container.managed";

export const CONTAINER_HASH_ANNOTATION = "io.kubernetes.container.hash";
export const CONTAINER_RESTART_COUNT_ANNOTATION = "io.kubernetes.container.restartCount";
export const TERMINATION_MESSAGE_PATH_ANNOTATION = "io.kubernetes.container.terminationMessagePath";
export const TERMINATION_MESSAGE_POLICY_ANNOTATION = "io.kubernetes.container.terminationMessagePolicy";
export const POD_DELETION_GRACE_ANNOTATION = "io.kubernetes.pod.deletionGracePeriod";
export const POD_TERMINATION_GRACE_ANNOTATION = "io.kubernetes.pod.terminationGracePeriod";
export const CONTAINER_PORTS_ANNOTATION = "io.kubernetes.container.ports";
/** The container's preStop handler as JSON, so a container whose pod spec is gone still runs it when killed. */
export const CONTAINER_PRESTOP_HANDLER_ANNOTATION = "io.kubernetes.container.preStopHandler";
/** Ours: which list of the pod spec the container came from, so recovery needs no spec to tell init from app. */
export const CONTAINER_KIND_ANNOTATION = "deckhand.io/container-kind";

/** Upstream's source annotation: "api", "file", "http"; mirror pods carry the mirror annotation. */
export const CONFIG_SOURCE_ANNOTATION = "kubernetes.io/config.source";
export const CONFIG_MIRROR_ANNOTATION = "kubernetes.io/config.mirror";
export const CONFIG_HASH_ANNOTATION = "kubernetes.io/config.hash";

/**
 * upstream's restoreSpecsFromContainerLabels: what a kill needs of a pod and container the kubelet has no spec
 * for (an orphan), from the labels and annotations the container was created with: names, uid, grace periods,
 * the preStop handler. Pure; an annotation that does not parse is left out.
 */
export function specsFromContainerLabels(labels: Readonly<Record<string, string>>, annotations: Readonly<Record<string, string>>): { pod: V1Pod; container: V1Container } {
  const int = (v: string | undefined): number | undefined => (v !== undefined && /^-?\d+$/.test(v) ? Number(v) : undefined);
  const deletion = int(annotations[POD_DELETION_GRACE_ANNOTATION]);
  const grace = int(annotations[POD_TERMINATION_GRACE_ANNOTATION]);
  let preStop: V1LifecycleHandler | undefined;
  const raw = annotations[CONTAINER_PRESTOP_HANDLER_ANNOTATION];
  if (raw !== undefined) {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (parsed !== null && typeof parsed === "object") preStop = parsed;
    } catch {
      preStop = undefined;
    }
  }
  const terminationMessagePath = annotations[TERMINATION_MESSAGE_PATH_ANNOTATION];
  return {
    pod: {
      metadata: { name: labels[POD_NAME_LABEL] ?? "", namespace: labels[POD_NAMESPACE_LABEL] ?? "", uid: labels[POD_UID_LABEL] ?? "", ...(deletion === undefined ? {} : { deletionGracePeriodSeconds: deletion }) },
      spec: { containers: [], ...(grace === undefined ? {} : { terminationGracePeriodSeconds: grace }) },
    },
    container: {
      name: labels[CONTAINER_NAME_LABEL] ?? "",
      ...(terminationMessagePath === undefined ? {} : { terminationMessagePath }),
      ...(preStop ? { lifecycle: { preStop } } : {}),
    },
  };
}
