/**
 * What the kubelet knows of a pod from the container runtime, in its own words (upstream's kubecontainer
 * PodStatus): built from CRI by the runtime manager, read by the pod status computation, the PLEG and the
 * sync logic. Times are milliseconds since the epoch (CRI's nanoseconds divided down).
 */

export type ContainerState = "created" | "running" | "exited" | "unknown";

/** One container as the runtime reports it (one attempt: a restart is a new container). */
export interface RuntimeContainer {
  /** CRI container id. */
  id: string;
  /** The pod spec's container name (label io.kubernetes.container.name). */
  name: string;
  /** CRI metadata.attempt: the restart count this container was created for. */
  attempt: number;
  state: ContainerState;
  /** The image the spec asked for (as resolved when created). */
  image: string;
  /** What the runtime ran: `sha256:...` image id (CRI image_ref). */
  imageRef: string;
  /** Hash of the container spec it was created from (annotation io.kubernetes.container.hash). */
  hash: string;
  createdAt: number;
  /** 0 when not started. */
  startedAt: number;
  /** 0 when not finished. */
  finishedAt: number;
  exitCode: number;
  /** The runtime's reason for the exit (OOMKilled, Error, Completed...), empty when running. */
  reason: string;
  message: string;
  /** Which kind of container in the pod spec it came from (annotation set at creation). */
  kind: "init" | "regular" | "sidecar" | "ephemeral";
}

export interface RuntimeSandbox {
  id: string;
  /** CRI metadata.attempt. */
  attempt: number;
  state: "ready" | "notready";
  createdAt: number;
  /** Pod IPs the network plugin gave it (primary first); empty for host-network pods or when not ready. */
  ips: string[];
}

/** Everything the runtime holds for one pod uid. */
export interface PodRuntimeStatus {
  uid: string;
  name: string;
  namespace: string;
  /** Newest first. */
  sandboxes: RuntimeSandbox[];
  /** Newest first (by createdAt); all attempts, exited ones included until garbage collected. */
  containers: RuntimeContainer[];
}

/** The newest container of a given name, or undefined. */
export function latestContainer(status: PodRuntimeStatus, name: string): RuntimeContainer | undefined {
  return status.containers.find((c) => c.name === name);
}
