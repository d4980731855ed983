/**
 * A typed, promise-based client for the CRI (runtime.v1) RuntimeService and ImageService over one gRPC channel.
 *
 * - Every call has a deadline (upstream's runtimeRequestTimeout, 2 minutes, unless the caller gives one) and
 *   honours an AbortSignal; `close()` cancels what is in flight.
 * - gRPC failures become `CriError`s whose `code` is a stable `ErrorCode` (NotFound, Unavailable...).
 * - After the runtime restarts, the channel reconnects by itself within about a second; read-only calls that
 *   meet Unavailable meanwhile are retried until their deadline, mutating calls report it to the caller
 *   (the kubelet's sync loop retries those, as upstream does).
 * - CreateContainer without `sandbox_config` is refused here: containerd 1.6.20 panics on it and the whole
 *   daemon dies.
 */
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { ErrorCode } from "../../src-shared/errors.ts";
import { CriError } from "./errors.ts";
import type { Logger } from "../../src-shared/log.ts";
import type { ImageServiceMethods, RuntimeServiceMethods } from "./types.ts";
import type { CriCallOptions, CriServices } from "./services.ts";

/** Upstream's default runtimeRequestTimeout. */
export const DEFAULT_CRI_TIMEOUT_MS = 2 * 60_000;
/** Upstream's CRI message limit (pkg/kubelet/cri/remote/utils.go): the gRPC default of 4 MiB is too small for busy nodes. */
export const MAX_CRI_MESSAGE_BYTES = 16 * 1024 * 1024;

const READ_ONLY = new Set<string>([
  "Version",
  "Status",
  "PodSandboxStatus",
  "ListPodSandbox",
  "ListContainers",
  "ContainerStatus",
  "ContainerStats",
  "ListContainerStats",
  "PodSandboxStats",
  "ListPodSandboxStats",
  "ListImages",
  "ImageStatus",
  "ImageFsInfo",
]);

const GRPC_TO_CODE: Record<number, ErrorCode> = {
  [grpc.status.CANCELLED]: "Cancelled",
  [grpc.status.UNKNOWN]: "Unknown",
  [grpc.status.INVALID_ARGUMENT]: "InvalidArgument",
  [grpc.status.DEADLINE_EXCEEDED]: "DeadlineExceeded",
  [grpc.status.NOT_FOUND]: "NotFound",
  [grpc.status.ALREADY_EXISTS]: "AlreadyExists",
  [grpc.status.PERMISSION_DENIED]: "PermissionDenied",
  [grpc.status.RESOURCE_EXHAUSTED]: "ResourceExhausted",
  [grpc.status.FAILED_PRECONDITION]: "FailedPrecondition",
  [grpc.status.ABORTED]: "Aborted",
  [grpc.status.OUT_OF_RANGE]: "InvalidArgument",
  [grpc.status.UNIMPLEMENTED]: "Unimplemented",
  [grpc.status.INTERNAL]: "Internal",
  [grpc.status.UNAVAILABLE]: "Unavailable",
  [grpc.status.DATA_LOSS]: "Internal",
  [grpc.status.UNAUTHENTICATED]: "Unauthenticated",
};

export { CriError } from "./errors.ts";

export type { CriCallOptions } from "./services.ts";

export interface CriClientOptions {
  /** `unix:///run/containerd/containerd.sock`, or a bare socket path. */
  endpoint: string;
  timeoutMs?: number;
  logger?: Logger;
}

type UnaryFn = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response: unknown) => void,
) => grpc.ClientUnaryCall;

const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

interface ServiceCtors {
  RuntimeService: grpc.ServiceClientConstructor;
  ImageService: grpc.ServiceClientConstructor;
}
let services: ServiceCtors | undefined;

function loadServices(): ServiceCtors {
  if (services) return services;
  const definition = protoLoader.loadSync(fileURLToPath(new URL("./api.proto", import.meta.url)), LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { runtime: { v1: ServiceCtors } };
  services = pkg.runtime.v1;
  return services;
}

export class CriClient implements CriServices {
  private readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly log: Logger | undefined;
  private runtimeClient: grpc.Client | undefined;
  private imageClient: grpc.Client | undefined;
  private readonly inFlight = new Set<grpc.ClientUnaryCall>();
  private closed = false;

  constructor(options: CriClientOptions) {
    this.endpoint = options.endpoint.startsWith("unix:") ? options.endpoint : `unix://${options.endpoint}`;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_CRI_TIMEOUT_MS;
    this.log = options.logger?.child({ component: "cri-client" });
  }

  /** Ties the client to a lifetime: aborting the signal closes it. Calls also work without start(). */
  start(signal: AbortSignal): void {
    if (signal.aborted) this.close();
    else signal.addEventListener("abort", () => this.close(), { once: true });
  }

  /** Cancels calls in flight and closes the channel. */
  close(): void {
    this.closed = true;
    for (const call of this.inFlight) call.cancel();
    this.inFlight.clear();
    this.imageClient?.close();
    this.runtimeClient?.close();
    this.imageClient = undefined;
    this.runtimeClient = undefined;
  }

  /** Calls a RuntimeService RPC. */
  runtime<M extends keyof RuntimeServiceMethods>(
    method: M,
    request: RuntimeServiceMethods[M][0],
    options: CriCallOptions = {},
  ): Promise<RuntimeServiceMethods[M][1]> {
    if (method === "CreateContainer") {
      const req = request as { sandbox_config?: unknown; pod_sandbox_id?: unknown };
      if (req.sandbox_config === undefined || req.sandbox_config === null) {
        return Promise.reject(
          new CriError("InvalidArgument", method, "sandbox_config is required (containerd 1.6 crashes without it)"),
        );
      }
    }
    return this.call("RuntimeService", method, request, options) as Promise<RuntimeServiceMethods[M][1]>;
  }

  /** Calls an ImageService RPC. */
  image<M extends keyof ImageServiceMethods>(
    method: M,
    request: ImageServiceMethods[M][0],
    options: CriCallOptions = {},
  ): Promise<ImageServiceMethods[M][1]> {
    return this.call("ImageService", method, request, options) as Promise<ImageServiceMethods[M][1]>;
  }

  private clients(): { RuntimeService: grpc.Client; ImageService: grpc.Client } {
    if (this.closed) throw new CriError("Cancelled", "-", "client is closed");
    if (!this.runtimeClient || !this.imageClient) {
      const ctors = loadServices();
      const channelOptions: grpc.ChannelOptions = {
        "grpc.max_receive_message_length": MAX_CRI_MESSAGE_BYTES,
        "grpc.max_send_message_length": MAX_CRI_MESSAGE_BYTES,
        // The runtime is local: after a restart, be back within a second rather than gRPC's 1-120 s back-off.
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 1000,
      };
      const runtimeClient = new ctors.RuntimeService(this.endpoint, grpc.credentials.createInsecure(), channelOptions);
      this.runtimeClient = runtimeClient;
      this.imageClient = new ctors.ImageService(this.endpoint, grpc.credentials.createInsecure(), {
        ...channelOptions,
        channelOverride: runtimeClient.getChannel(),
      });
    }
    return { RuntimeService: this.runtimeClient, ImageService: this.imageClient };
  }

  private async call(service: "RuntimeService" | "ImageService", method: string, request: unknown, options: CriCallOptions): Promise<unknown> {
    const deadline = Date.now() + (options.timeoutMs ?? this.timeoutMs);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.callOnce(service, method, request, deadline, options.signal);
      } catch (err) {
        const retry = err instanceof CriError && err.code === "Unavailable" && READ_ONLY.has(method) && !this.closed;
        if (!retry || Date.now() + 200 >= deadline || options.signal?.aborted) throw err;
        if (attempt === 0) this.log?.debug({ method, err: err.message }, "runtime unavailable; retrying read-only call");
        await sleep(200, undefined, options.signal ? { signal: options.signal } : {}).catch(() => undefined);
      }
    }
  }

  private callOnce(service: "RuntimeService" | "ImageService", method: string, request: unknown, deadline: number, signal?: AbortSignal): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new CriError("Cancelled", method, "aborted", undefined, signal.reason));
        return;
      }
      let client: grpc.Client;
      try {
        client = this.clients()[service];
      } catch (err) {
        reject(err instanceof Error ? err : new CriError("Internal", method, String(err)));
        return;
      }
      const fn = (client as unknown as Record<string, UnaryFn | undefined>)[method];
      if (typeof fn !== "function") {
        reject(new CriError("Unimplemented", method, `no such RPC in ${service}`));
        return;
      }
      const onAbort = (): void => call.cancel();
      const call = fn.call(client, request, new grpc.Metadata(), { deadline }, (err, response) => {
        this.inFlight.delete(call);
        signal?.removeEventListener("abort", onAbort);
        if (err) {
          const code = GRPC_TO_CODE[err.code] ?? "Unknown";
          reject(new CriError(code, method, err.details || err.message, err.code, err));
        } else resolve(response);
      });
      this.inFlight.add(call);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}
