/**
 * An in-memory container runtime for unit tests, as upstream's fake_runtime_service.go / fake_image_service.go:
 * sandboxes, containers and images kept in maps, with the states, timestamps, labels and annotations the
 * configs it receives give them, label-selector filters, and containerd 1.6's answers where the CRI leaves room
 * (NotFound from StopContainer/ContainerStatus/PodSandboxStatus of an unknown id; RemoveContainer and
 * RemovePodSandbox idempotent; CreateContainer refused without sandbox_config, in a sandbox that is not ready,
 * or for an image not present; container names reserved per pod, container name and attempt, whatever the
 * sandbox; StopContainer a no-op on a container that is not running or unknown, so a created one stays
 * created; nothing started in a sandbox that is not ready; a sandbox's network torn down only by
 * StopPodSandbox, and RemovePodSandbox of a not-ready sandbox whose network is still up refused, as
 * containerd 1.6's "sandbox network namespace ... is not fully closed").
 * Tests drive it with `exitContainer`, `setSandboxNotReady`, `failNext` and `holdPulls`, and check what the
 * kubelet asked through `calls`.
 */
import type { Clock } from "../../src-shared/clock.ts";
import { systemClock } from "../../src-shared/clock.ts";
import { CriError } from "../../kubelet/cri/errors.ts";
import type { CriCallOptions, ImageService, RuntimeService } from "../../kubelet/cri/services.ts";
import type {
  Container,
  ContainerState,
  ContainerStatus,
  Mount,
  Image,
  ImageServiceMethods,
  Input,
  Int64,
  PodSandbox,
  PodSandboxConfig,
  PodSandboxState,
  RuntimeServiceMethods,
} from "../../kubelet/cri/types.ts";

type RuntimeMethod = keyof RuntimeServiceMethods;
type ImageMethod = keyof ImageServiceMethods;
export type FakeMethod = RuntimeMethod | ImageMethod;

export interface FakeCall {
  method: FakeMethod;
  request: unknown;
}

interface FakeSandbox {
  id: string;
  config: Input<PodSandboxConfig>;
  state: PodSandboxState;
  createdAt: Int64;
  ip: string;
  /** The pod network namespace exists (with its CNI allocation): only StopPodSandbox tears it down. */
  netnsOpen: boolean;
}

interface FakeContainer {
  id: string;
  sandboxId: string;
  name: string;
  attempt: number;
  image: string;
  imageRef: string;
  state: ContainerState;
  createdAt: Int64;
  startedAt: Int64;
  finishedAt: Int64;
  exitCode: number;
  reason: string;
  message: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  logPath: string;
  mounts: Mount[];
}

/** What an ExecSync in a container answers (set by the test with onExec; exit 0 and no output otherwise). */
export type FakeExec = (containerId: string, cmd: string[], signal: AbortSignal | undefined) => { exit_code: number; stdout?: string; stderr?: string } | Promise<{ exit_code: number; stdout?: string; stderr?: string }>;

interface FakeImage {
  id: string;
  tags: string[];
  size: number;
}

export interface FakeRuntimeOptions {
  /** Timestamps come from it (a FakeClock in tests of back-off); the system clock otherwise. */
  clock?: Clock;
  /** Images present from the start. */
  images?: string[];
}

function labelsMatch(labels: Record<string, string>, selector: Readonly<Record<string, string>> | undefined): boolean {
  return Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);
}

function strings(m: Readonly<Record<string, string>> | undefined): Record<string, string> {
  return { ...(m ?? {}) };
}

export class FakeRuntime implements RuntimeService, ImageService {
  /** Every call, in order. */
  readonly calls: FakeCall[] = [];
  /** Exit code of a container stopped by StopContainer (SIGKILL'd by default). */
  stopExitCode = 137;
  private readonly clock: Clock;
  private readonly sandboxMap = new Map<string, FakeSandbox>();
  private readonly containerMap = new Map<string, FakeContainer>();
  private readonly imageMap = new Map<string, FakeImage>();
  private readonly failures = new Map<FakeMethod, Error[]>();
  private held: Promise<void> | undefined;
  private seq = 0;
  private exec: FakeExec = () => ({ exit_code: 0 });
  private ipSeq = 1;

  constructor(options: FakeRuntimeOptions = {}) {
    this.clock = options.clock ?? systemClock;
    for (const image of options.images ?? []) this.addImage(image);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Test controls

  /** The next call of `method` fails with `err` (queued: call it twice for two failures). */
  failNext(method: FakeMethod, err: Error): void {
    const queue = this.failures.get(method) ?? [];
    queue.push(err);
    this.failures.set(method, queue);
  }

  /** Calls of one method, in order. */
  callsOf(method: FakeMethod): unknown[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.request);
  }

  clearCalls(): void {
    this.calls.length = 0;
  }

  /** Makes an image present (as if pulled or imported); returns its id. */
  addImage(ref: string, size = 1_000_000): string {
    const existing = this.findImage(ref);
    if (existing) return existing.id;
    const id = `sha256:${(++this.seq).toString(16).padStart(64, "0")}`;
    this.imageMap.set(id, { id, tags: [ref], size });
    return id;
  }

  /** How ExecSync answers from now on (the command runs "in" the container: a running one only). */
  onExec(handler: FakeExec): void {
    this.exec = handler;
  }

  /** The container's process exits now. */
  exitContainer(id: string, exitCode: number, reason?: string): void {
    const c = this.mustContainer(id, "exitContainer");
    c.state = "CONTAINER_EXITED";
    c.exitCode = exitCode;
    c.reason = reason ?? (exitCode === 0 ? "Completed" : "Error");
    c.finishedAt = this.nowNs();
  }

  /** The sandbox's pause process dies: not ready, but its network stays up until StopPodSandbox. */
  setSandboxNotReady(id: string): void {
    this.mustSandbox(id, "setSandboxNotReady").state = "SANDBOX_NOTREADY";
  }

  /** PullImage calls wait from now on until the returned function is called (or their signal aborts). */
  holdPulls(): () => void {
    let release!: () => void;
    this.held = new Promise<void>((resolve) => (release = resolve));
    return () => {
      this.held = undefined;
      release();
    };
  }

  /** What the runtime holds, for assertions. */
  sandboxes(): PodSandbox[] {
    return [...this.sandboxMap.values()].map((s) => this.sandboxView(s));
  }

  containers(): Container[] {
    return [...this.containerMap.values()].map((c) => this.containerView(c));
  }

  containerStatus(id: string): ContainerStatus {
    return this.statusView(this.mustContainer(id, "containerStatus"));
  }

  // ---------------------------------------------------------------------------------------------------------
  // The services

  runtime<M extends RuntimeMethod>(method: M, request: RuntimeServiceMethods[M][0], options: CriCallOptions = {}): Promise<RuntimeServiceMethods[M][1]> {
    if (method === "ExecSync") {
      return this.dispatch(method, request, options, () => this.execSync(request as RuntimeServiceMethods["ExecSync"][0], options.signal)) as Promise<RuntimeServiceMethods[M][1]>;
    }
    return this.dispatch(method, request, options, () => this.runtimeCall(method, request)) as Promise<RuntimeServiceMethods[M][1]>;
  }

  image<M extends ImageMethod>(method: M, request: ImageServiceMethods[M][0], options: CriCallOptions = {}): Promise<ImageServiceMethods[M][1]> {
    if (method === "PullImage") {
      return this.dispatch(method, request, options, () => this.pull(request as ImageServiceMethods["PullImage"][0], options.signal)) as Promise<ImageServiceMethods[M][1]>;
    }
    return this.dispatch(method, request, options, () => this.imageCall(method, request)) as Promise<ImageServiceMethods[M][1]>;
  }

  private async dispatch(method: FakeMethod, request: unknown, options: CriCallOptions, run: () => unknown): Promise<unknown> {
    this.calls.push({ method, request });
    // Answer asynchronously, as a real runtime does.
    await Promise.resolve();
    if (options.signal?.aborted) throw new CriError("Cancelled", method, "context canceled");
    const injected = this.failures.get(method)?.shift();
    if (injected) throw injected;
    return run();
  }

  private runtimeCall(method: RuntimeMethod, request: unknown): unknown {
    switch (method) {
      case "Version":
        return { version: "0.1.0", runtime_name: "fake", runtime_version: "0.1.0", runtime_api_version: "v1" };
      case "Status":
        return {
          status: { conditions: [{ type: "RuntimeReady", status: true, reason: "", message: "" }, { type: "NetworkReady", status: true, reason: "", message: "" }] },
          info: {},
          runtime_handlers: [],
          features: null,
        };
      case "RunPodSandbox":
        return this.runPodSandbox(request as RuntimeServiceMethods["RunPodSandbox"][0]);
      case "StopPodSandbox": {
        const id = (request as RuntimeServiceMethods["StopPodSandbox"][0]).pod_sandbox_id ?? "";
        this.stopSandbox(this.mustSandbox(id, method));
        return {};
      }
      case "RemovePodSandbox": {
        const id = (request as RuntimeServiceMethods["RemovePodSandbox"][0]).pod_sandbox_id ?? "";
        const s = this.sandboxMap.get(id);
        if (!s) return {};
        // containerd 1.6 forcibly stops a ready sandbox only; a not-ready one must have been stopped.
        if (s.state === "SANDBOX_READY") this.stopSandbox(s);
        if (s.netnsOpen) throw new CriError("Unknown", method, `sandbox network namespace "/var/run/netns/cni-${id}" is not fully closed`);
        for (const c of [...this.containerMap.values()]) if (c.sandboxId === id) this.containerMap.delete(c.id);
        this.sandboxMap.delete(id);
        return {};
      }
      case "PodSandboxStatus": {
        const s = this.mustSandbox((request as RuntimeServiceMethods["PodSandboxStatus"][0]).pod_sandbox_id ?? "", method);
        const view = this.sandboxView(s);
        const nsOptions = s.config.linux?.security_context?.namespace_options;
        return {
          status: {
            ...view,
            network: { ip: s.netnsOpen ? s.ip : "", additional_ips: [] },
            linux: { namespaces: { options: { network: nsOptions?.network ?? "POD", pid: nsOptions?.pid ?? "CONTAINER", ipc: nsOptions?.ipc ?? "POD", target_id: "", userns_options: null } } },
          },
          info: {},
          containers_statuses: [],
          timestamp: "0",
        };
      }
      case "ListPodSandbox": {
        const f = (request as RuntimeServiceMethods["ListPodSandbox"][0]).filter;
        const items = [...this.sandboxMap.values()]
          .filter((s) => (!f?.id || s.id === f.id) && (!f?.state || s.state === f.state.state) && labelsMatch(strings(s.config.labels), f?.label_selector))
          .map((s) => this.sandboxView(s));
        return { items };
      }
      case "CreateContainer":
        return this.createContainer(request as RuntimeServiceMethods["CreateContainer"][0]);
      case "StartContainer": {
        const c = this.mustContainer((request as RuntimeServiceMethods["StartContainer"][0]).container_id ?? "", method);
        if (c.state !== "CONTAINER_CREATED") throw new CriError("FailedPrecondition", method, `container ${c.id} is not in created state`);
        // containerd 1.6 starts nothing in a sandbox whose pause process is gone (a plain error: gRPC Unknown).
        if (this.sandboxMap.get(c.sandboxId)?.state !== "SANDBOX_READY") throw new CriError("Unknown", method, `sandbox container "${c.sandboxId}" is not running`);
        c.state = "CONTAINER_RUNNING";
        c.startedAt = this.nowNs();
        return {};
      }
      case "StopContainer": {
        this.stop(this.mustContainer((request as RuntimeServiceMethods["StopContainer"][0]).container_id ?? "", method));
        return {};
      }
      case "RemoveContainer": {
        const id = (request as RuntimeServiceMethods["RemoveContainer"][0]).container_id ?? "";
        const c = this.containerMap.get(id);
        if (c) this.stop(c);
        this.containerMap.delete(id);
        return {};
      }
      case "ListContainers": {
        const f = (request as RuntimeServiceMethods["ListContainers"][0]).filter;
        const containers = [...this.containerMap.values()]
          .filter((c) => (!f?.id || c.id === f.id) && (!f?.pod_sandbox_id || c.sandboxId === f.pod_sandbox_id) && (!f?.state || c.state === f.state.state) && labelsMatch(c.labels, f?.label_selector))
          .map((c) => this.containerView(c));
        return { containers };
      }
      case "ContainerStatus":
        return { status: this.statusView(this.mustContainer((request as RuntimeServiceMethods["ContainerStatus"][0]).container_id ?? "", method)), info: {} };
      default:
        throw new CriError("Unimplemented", method, "not implemented by the fake runtime");
    }
  }

  private imageCall(method: ImageMethod, request: unknown): unknown {
    switch (method) {
      case "ListImages":
        return { images: [...this.imageMap.values()].map((i) => this.imageView(i)) };
      case "ImageStatus": {
        const i = this.findImage((request as ImageServiceMethods["ImageStatus"][0]).image?.image ?? "");
        return { image: i ? this.imageView(i) : null, info: {} };
      }
      case "RemoveImage": {
        const i = this.findImage((request as ImageServiceMethods["RemoveImage"][0]).image?.image ?? "");
        if (i) this.imageMap.delete(i.id);
        return {};
      }
      case "ImageFsInfo":
        return { image_filesystems: [], container_filesystems: [] };
      default:
        throw new CriError("Unimplemented", method, "not implemented by the fake runtime");
    }
  }

  private async pull(request: ImageServiceMethods["PullImage"][0], signal: AbortSignal | undefined): Promise<unknown> {
    const ref = request.image?.image ?? "";
    if (this.held) {
      const held = this.held;
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => reject(new CriError("Cancelled", "PullImage", "context canceled"));
        if (signal?.aborted) {
          onAbort();
          return;
        }
        signal?.addEventListener("abort", onAbort, { once: true });
        void held.then(() => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        });
      });
    }
    if (signal?.aborted) throw new CriError("Cancelled", "PullImage", "context canceled");
    return { image_ref: this.addImage(ref) };
  }

  // ---------------------------------------------------------------------------------------------------------

  private nowNs(): Int64 {
    // A sequence below the millisecond keeps creation order strict when the (fake) clock stands still.
    const ns = BigInt(this.clock.now()) * 1_000_000n + BigInt(++this.seq % 1_000_000);
    return `${ns}`;
  }

  private nextId(kind: string): string {
    return `${kind}${(++this.seq).toString(16).padStart(12, "0")}`;
  }

  private mustSandbox(id: string, method: string): FakeSandbox {
    const s = this.sandboxMap.get(id);
    if (!s) throw new CriError("NotFound", method, `an error occurred when try to find sandbox "${id}": not found`);
    return s;
  }

  private mustContainer(id: string, method: string): FakeContainer {
    const c = this.containerMap.get(id);
    if (!c) throw new CriError("NotFound", method, `an error occurred when try to find container "${id}": not found`);
    return c;
  }

  private findImage(ref: string): FakeImage | undefined {
    return this.imageMap.get(ref) ?? [...this.imageMap.values()].find((i) => i.tags.includes(ref));
  }

  /** containerd's stopContainer: only a running (or unknown) container is acted on; a created one stays created. */
  private stop(c: FakeContainer): void {
    if (c.state !== "CONTAINER_RUNNING" && c.state !== "CONTAINER_UNKNOWN") return;
    c.state = "CONTAINER_EXITED";
    c.finishedAt = this.nowNs();
    c.exitCode = this.stopExitCode;
    c.reason = c.exitCode === 0 ? "Completed" : "Error";
  }

  /** Stops every container of the sandbox, its pause process, and tears its network down (idempotent). */
  private stopSandbox(s: FakeSandbox): void {
    for (const c of this.containerMap.values()) if (c.sandboxId === s.id) this.stop(c);
    s.state = "SANDBOX_NOTREADY";
    s.netnsOpen = false;
  }

  private runPodSandbox(request: RuntimeServiceMethods["RunPodSandbox"][0]): unknown {
    const config = request.config;
    const md = config?.metadata;
    if (!config || !md) throw new CriError("InvalidArgument", "RunPodSandbox", "sandbox config must include metadata");
    for (const s of this.sandboxMap.values()) {
      const m = s.config.metadata;
      if (m?.name === md.name && m?.namespace === md.namespace && m?.uid === md.uid && (m?.attempt ?? 0) === (md.attempt ?? 0)) {
        throw new CriError("AlreadyExists", "RunPodSandbox", `failed to reserve sandbox name "${md.name}_${md.namespace}_${md.uid}_${md.attempt ?? 0}": name is reserved`);
      }
    }
    const hostNetwork = config.linux?.security_context?.namespace_options?.network === "NODE";
    const id = this.nextId("sb");
    this.sandboxMap.set(id, { id, config, state: "SANDBOX_READY", createdAt: this.nowNs(), ip: hostNetwork ? "" : `10.88.0.${++this.ipSeq}`, netnsOpen: !hostNetwork });
    return { pod_sandbox_id: id };
  }

  private async execSync(request: RuntimeServiceMethods["ExecSync"][0], signal: AbortSignal | undefined): Promise<unknown> {
    const c = this.mustContainer(request.container_id ?? "", "ExecSync");
    if (c.state !== "CONTAINER_RUNNING") throw new CriError("Unknown", "ExecSync", `container ${c.id} is not running`);
    const res = await this.exec(c.id, [...(request.cmd ?? [])], signal);
    if (signal?.aborted) throw new CriError("Cancelled", "ExecSync", "context canceled");
    return { exit_code: res.exit_code, stdout: Buffer.from(res.stdout ?? ""), stderr: Buffer.from(res.stderr ?? "") };
  }

  private createContainer(request: RuntimeServiceMethods["CreateContainer"][0]): unknown {
    const method = "CreateContainer";
    if (!request.sandbox_config) throw new CriError("InvalidArgument", method, "sandbox_config is required (containerd 1.6 crashes without it)");
    const config = request.config;
    const md = config?.metadata;
    if (!config || !md) throw new CriError("InvalidArgument", method, "container config must include metadata");
    const sandbox = this.mustSandbox(request.pod_sandbox_id ?? "", method);
    if (sandbox.state !== "SANDBOX_READY") throw new CriError("FailedPrecondition", method, `sandbox container "${sandbox.id}" is not running`);
    const name = md.name ?? "";
    const attempt = md.attempt ?? 0;
    // containerd's makeContainerName: container name, pod name, namespace, uid and attempt, not the sandbox's
    // attempt, so a container of a new sandbox may not reuse an attempt that still exists in an old one.
    const podOf = (sandboxId: string): string => {
      const m = this.sandboxMap.get(sandboxId)?.config.metadata;
      return `${m?.name ?? ""}_${m?.namespace ?? ""}_${m?.uid ?? ""}`;
    };
    const reserved = `${name}_${podOf(sandbox.id)}_${attempt}`;
    for (const c of this.containerMap.values()) {
      if (`${c.name}_${podOf(c.sandboxId)}_${c.attempt}` === reserved) {
        throw new CriError("AlreadyExists", method, `failed to reserve container name "${reserved}": name is reserved`);
      }
    }
    const imageName = config.image?.image ?? "";
    const image = this.findImage(imageName);
    if (!image) throw new CriError("NotFound", method, `failed to get image "${imageName}": not found`);
    const id = this.nextId("c");
    this.containerMap.set(id, {
      id,
      sandboxId: sandbox.id,
      name,
      attempt,
      image: config.image?.user_specified_image || imageName,
      imageRef: image.id,
      state: "CONTAINER_CREATED",
      createdAt: this.nowNs(),
      startedAt: "0",
      finishedAt: "0",
      exitCode: 0,
      reason: "",
      message: "",
      labels: strings(config.labels),
      annotations: strings(config.annotations),
      logPath: config.log_path ?? "",
      mounts: (config.mounts ?? []).map((m) => ({ container_path: m.container_path ?? "", host_path: m.host_path ?? "", readonly: m.readonly ?? false, selinux_relabel: false, propagation: "PROPAGATION_PRIVATE", uidMappings: [], gidMappings: [], recursive_read_only: false, image: null, image_sub_path: "" })),
    });
    return { container_id: id };
  }

  private sandboxView(s: FakeSandbox): PodSandbox {
    const md = s.config.metadata;
    return {
      id: s.id,
      metadata: { name: md?.name ?? "", uid: md?.uid ?? "", namespace: md?.namespace ?? "", attempt: md?.attempt ?? 0 },
      state: s.state,
      created_at: s.createdAt,
      labels: strings(s.config.labels),
      annotations: strings(s.config.annotations),
      runtime_handler: "",
    };
  }

  /** What Container and ContainerStatus share. */
  private commonView(c: FakeContainer): Pick<Container, "id" | "metadata" | "state" | "created_at" | "image" | "image_ref" | "labels" | "annotations" | "image_id"> {
    const image = { image: c.image, annotations: {}, user_specified_image: "", runtime_handler: "" };
    return { id: c.id, metadata: { name: c.name, attempt: c.attempt }, state: c.state, created_at: c.createdAt, image, image_ref: c.imageRef, labels: { ...c.labels }, annotations: { ...c.annotations }, image_id: "" };
  }

  private containerView(c: FakeContainer): Container {
    return { ...this.commonView(c), pod_sandbox_id: c.sandboxId };
  }

  private statusView(c: FakeContainer): ContainerStatus {
    const times = { started_at: c.startedAt, finished_at: c.finishedAt };
    return { ...this.commonView(c), ...times, exit_code: c.exitCode, reason: c.reason, message: c.message, mounts: c.mounts, log_path: c.logPath, resources: null, user: null };
  }

  private imageView(i: FakeImage): Image {
    return { id: i.id, repo_tags: [...i.tags], repo_digests: [], size: `${BigInt(i.size)}`, uid: null, username: "", spec: null, pinned: false };
  }
}
