/**
 * The container runtime as the kubelet sees it: CRI's RuntimeService and ImageService (upstream's
 * internalapi.RuntimeService / ImageManagerService). `CriClient` implements both over gRPC; unit tests use an
 * in-memory fake (test/harness/fake-runtime.ts), as upstream's fake_runtime_service.go, so the kubelet's state
 * machines are tested without containerd while the e2e suites keep running on the real one.
 */
import type { ImageServiceMethods, RuntimeServiceMethods } from "./types.ts";

export interface CriCallOptions {
  signal?: AbortSignal;
  /** Deadline for this call; the client's default otherwise; `Number.POSITIVE_INFINITY` for none. */
  timeoutMs?: number;
}

export interface RuntimeService {
  runtime<M extends keyof RuntimeServiceMethods>(method: M, request: RuntimeServiceMethods[M][0], options?: CriCallOptions): Promise<RuntimeServiceMethods[M][1]>;
}

export interface ImageService {
  image<M extends keyof ImageServiceMethods>(method: M, request: ImageServiceMethods[M][0], options?: CriCallOptions): Promise<ImageServiceMethods[M][1]>;
}

/** Both services, as one runtime endpoint serves them. */
export type CriServices = RuntimeService & ImageService;
