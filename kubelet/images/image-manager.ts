/**
 * Makes a container's image present as its pull policy says, with credentials from the pod's
 * imagePullSecrets, and upstream's pull back-off: a failed pull gives ErrImagePull, and tries inside the
 * back-off window give ImagePullBackOff without pulling (pkg/kubelet/images/image_manager.go).
 */
import { createHash } from "node:crypto";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { DeckhandError, isDeckhandError } from "../../src-shared/errors.ts";
import type { Logger } from "../../src-shared/log.ts";
import type { ImageService } from "../cri/services.ts";
import { runtimeMessage } from "../cri/errors.ts";
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import type { AuthConfig, Input } from "../cri/types.ts";
import { Backoff } from "../../src-shared/backoff.ts";

/** A pull failed or may not happen: `reason` is the waiting reason the container shows. */
export class ImagePullError extends DeckhandError {
  readonly reason: "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull" | "InvalidImageName" | "ErrImageInspect";
  constructor(reason: ImagePullError["reason"], message: string, cause?: unknown) {
    super(reason === "InvalidImageName" ? "InvalidArgument" : "Unavailable", message, { cause });
    this.name = "ImagePullError";
    this.reason = reason;
  }
}

/** `.dockerconfigjson` as imagePullSecrets carry it. */
export interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string }>;
}

const REFERENCE = /^(?:([a-zA-Z0-9.-]+(?::[0-9]+)?)\/)?([a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::([\w][\w.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$/;

export interface ParsedImage {
  /** Registry host (docker.io when the reference names none). */
  registry: string;
  repository: string;
  tag: string | undefined;
  digest: string | undefined;
}

/** Docker's reference grammar: a first component with a dot, a colon or "localhost" is a registry host. */
export function parseImage(image: string): ParsedImage {
  let match = REFERENCE.exec(image);
  let registry = match?.[1];
  let repository = match?.[2];
  if (match && registry && !registry.includes(".") && !registry.includes(":") && registry !== "localhost") {
    // "library/busybox": the first component is a path, not a host.
    match = REFERENCE.exec(`docker.io/${image}`);
    registry = "docker.io";
    repository = match?.[2];
  }
  if (!match || repository === undefined) throw new ImagePullError("InvalidImageName", `Failed to apply default image tag "${image}": couldn't parse image name "${image}": invalid reference format`);
  registry ??= "docker.io";
  if (registry === "docker.io" && !repository.includes("/")) repository = `library/${repository}`;
  return { registry, repository, tag: match[3], digest: match[4] };
}

/** The API server's default: Always for `:latest` or no tag, IfNotPresent otherwise. */
export function defaultPullPolicy(image: string): "Always" | "IfNotPresent" {
  const { tag, digest } = parseImage(image);
  return !digest && (tag === undefined || tag === "latest") ? "Always" : "IfNotPresent";
}

/** Credentials for a registry host from docker configs, as the kubelet's keyring matches them (host, then URL forms). */
export function credentialsFor(registry: string, configs: readonly DockerConfig[]): Input<AuthConfig> | undefined {
  for (const config of configs) {
    for (const [key, entry] of Object.entries(config.auths ?? {})) {
      let host = key.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
      if (host === "index.docker.io" || host === "registry-1.docker.io") host = "docker.io";
      if (host !== registry) continue;
      let username = entry.username ?? "";
      let password = entry.password ?? "";
      if (entry.auth && !username) {
        const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
        const i = decoded.indexOf(":");
        username = decoded.slice(0, i);
        password = decoded.slice(i + 1);
      }
      // containerd 1.6 parses server_address as a URL: it needs the scheme.
      return { username, password, server_address: `https://${registry}`, identity_token: entry.identitytoken ?? "", registry_token: entry.registrytoken ?? "" };
    }
  }
  return undefined;
}

export interface ImageEvents {
  pulling(image: string): void;
  pulled(image: string, message: string): void;
  failed(reason: string, message: string): void;
  backOff(image: string): void;
}

interface PullResult {
  ref: string;
  size: number;
}

interface SharedPull {
  promise: Promise<PullResult>;
  /** Aborts the CRI call: only once every pod waiting on it has gone. */
  controller: AbortController;
  waiters: number;
}

/** Upstream's image pull back-off: 10 s doubling to 5 minutes. */
const MAX_PULL_BACK_OFF_MS = 300_000;

export interface ImageManagerOptions {
  images: ImageService;
  logger?: Logger;
  clock?: Clock;
}

/** Who an image's process runs as when the pod does not say. */
/** The pod's pull credentials, read only when an image must be pulled (an API read of its imagePullSecrets). */
export type PullSecrets = () => Promise<readonly DockerConfig[]>;

export type ImageUser = { uid: number } | { username: string };

export class ImageManager {
  private readonly images: ImageService;
  private readonly log: Logger | undefined;
  private readonly clock: Clock;
  private readonly backoffs = new Map<string, { backoff: Backoff; until: number; lastError: string }>();
  private readonly inFlight = new Map<string, SharedPull>();

  constructor(options: ImageManagerOptions) {
    this.images = options.images;
    this.log = options.logger?.child({ component: "image-manager" });
    this.clock = options.clock ?? systemClock;
  }

  /**
   * Returns the image reference to create the container with (the runtime's image id). Throws an
   * ImagePullError for a problem of the image (its `reason` is the container's waiting reason), and a
   * Cancelled error, leaving no back-off behind, when `signal` aborts (the pod is being stopped).
   */
  async ensureImage(pod: V1Pod, container: V1Container, pullSecrets: PullSecrets, events: ImageEvents, signal?: AbortSignal): Promise<string> {
    if (signal?.aborted) throw cancelled(signal.reason, signal);
    const image = container.image ?? "";
    if (!image) throw new ImagePullError("InvalidImageName", `container ${container.name}: spec.containers[].image is empty`);
    const parsed = parseImage(image);
    const policy = container.imagePullPolicy ?? defaultPullPolicy(image);
    let present: string | undefined;
    try {
      present = policy === "Always" ? undefined : await this.presentRef(image, signal);
    } catch (err) {
      if (signal?.aborted || isDeckhandError(err, "Cancelled")) throw cancelled(err, signal);
      // Upstream's ErrImageInspect: the runtime could not say whether the image is there; nothing was pulled.
      throw new ImagePullError("ErrImageInspect", `Failed to inspect image "${image}": ${runtimeMessage(err)}`, err);
    }
    if (present) return present;
    if (policy === "Never") {
      const message = `Container image "${image}" is not present with pull policy of Never`;
      events.failed("ErrImageNeverPull", message);
      throw new ImagePullError("ErrImageNeverPull", message);
    }
    const key = `${pod.metadata?.uid ?? ""}/${image}`;
    const b = this.backoffs.get(key);
    if (b && this.clock.now() < b.until) {
      // As upstream since 1.31: the back-off message carries the error that caused it.
      const message = `Back-off pulling image "${image}": ErrImagePull: ${b.lastError}`;
      events.backOff(image);
      throw new ImagePullError("ImagePullBackOff", message);
    }
    try {
      const ref = await this.pull(image, credentialsFor(parsed.registry, await pullSecrets()), events, signal);
      this.backoffs.delete(key);
      return ref;
    } catch (err) {
      // The pod was stopped mid-pull: not the image's fault, nothing to back off from.
      if (signal?.aborted || isDeckhandError(err, "Cancelled")) throw cancelled(err, signal);
      const entry = b ?? { backoff: new Backoff({ initialMs: 10_000, maxMs: MAX_PULL_BACK_OFF_MS, now: () => this.clock.now() }), until: 0, lastError: "" };
      entry.until = this.clock.now() + entry.backoff.next();
      const message = `Failed to pull image "${image}": ${runtimeMessage(err)}`;
      entry.lastError = message;
      this.backoffs.set(key, entry);
      events.failed("ErrImagePull", message);
      throw new ImagePullError("ErrImagePull", message, err);
    }
  }

  /**
   * The user an image runs as, as upstream's getImageUser: its numeric uid when it has one, else its user
   * name, else root (an image that names no user runs as uid 0).
   */
  async imageUser(imageRef: string, signal?: AbortSignal): Promise<ImageUser> {
    const { image } = await this.images.image("ImageStatus", { image: { image: imageRef } }, signal ? { signal } : {});
    if (image?.uid) return { uid: Number(image.uid.value) };
    if (image?.username) return { username: image.username };
    return { uid: 0 };
  }

  private async presentRef(image: string, signal?: AbortSignal): Promise<string | undefined> {
    const status = await this.images.image("ImageStatus", { image: { image } }, signal ? { signal } : {});
    return status.image?.id || undefined;
  }

  /**
   * One pull per image and credentials at a time: pods starting together with the same credentials share it,
   * but a pod never rides on another's credentials (a private image stays private under AlwaysPullImages).
   * Each caller stops waiting as soon as its own signal aborts; the CRI call is cancelled when nobody waits.
   * Every pod gets its own Pulling and Pulled events, as if it had pulled (upstream pulls once per pod).
   */
  private async pull(image: string, auth: Input<AuthConfig> | undefined, events: ImageEvents, signal?: AbortSignal): Promise<string> {
    const key = `${image}\u0000${auth ? createHash("sha256").update(JSON.stringify(auth)).digest("hex") : ""}`;
    const joined = this.clock.now();
    let shared = this.inFlight.get(key);
    if (!shared) {
      const controller = new AbortController();
      // No deadline, as upstream's PullImage: a large image may take longer than the runtime request timeout,
      // and a pull that nobody waits for any more is cancelled below.
      const opts = { signal: controller.signal, timeoutMs: Number.POSITIVE_INFINITY };
      const promise = this.images
        .image("PullImage", { image: { image }, ...(auth ? { auth } : {}) }, opts)
        .then(async (res) => {
          const status = await this.images.image("ImageStatus", { image: { image } }, { signal: controller.signal });
          this.log?.info({ image, ms: this.clock.now() - joined }, "pulled image");
          return { ref: res.image_ref, size: Number(status.image?.size ?? 0) };
        })
        .finally(() => {
          if (this.inFlight.get(key) === entry) this.inFlight.delete(key);
        });
      const entry: SharedPull = { promise, controller, waiters: 0 };
      shared = entry;
      this.inFlight.set(key, entry);
    }
    events.pulling(image);
    const { ref, size } = await this.wait(shared, key, signal);
    // Upstream's two figures differ by the time spent queued behind other pulls; there is no such queue here.
    const waited = this.clock.now() - joined;
    events.pulled(image, `Successfully pulled image "${image}" in ${waited}ms (${waited}ms including waiting). Image size: ${size} bytes.`);
    return ref;
  }

  private wait(shared: SharedPull, key: string, signal?: AbortSignal): Promise<PullResult> {
    shared.waiters++;
    if (!signal) return shared.promise;
    return new Promise<PullResult>((resolve, reject) => {
      let left = false;
      const leave = (): void => {
        if (left) return;
        left = true;
        signal.removeEventListener("abort", onAbort);
        shared.waiters--;
      };
      const onAbort = (): void => {
        leave();
        if (shared.waiters === 0) {
          // Nobody wants it any more: cancel the CRI call, and let the next pod start a fresh one.
          if (this.inFlight.get(key) === shared) this.inFlight.delete(key);
          shared.controller.abort(signal.reason);
        }
        reject(cancelled(signal.reason, signal));
      };
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener("abort", onAbort, { once: true });
      shared.promise.then(
        (ref) => {
          if (left) return;
          leave();
          resolve(ref);
        },
        (err: unknown) => {
          if (left) return;
          leave();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  forgetPod(uid: string): void {
    for (const k of this.backoffs.keys()) if (k.startsWith(`${uid}/`)) this.backoffs.delete(k);
  }

  /** Drops pull back-offs over for twice the longest delay (an image the pod no longer asks for). */
  gc(now: number): void {
    for (const [k, b] of this.backoffs) if (now - b.until > 2 * MAX_PULL_BACK_OFF_MS) this.backoffs.delete(k);
  }

  get backOffs(): number {
    return this.backoffs.size;
  }
}

function cancelled(cause: unknown, signal: AbortSignal | undefined): DeckhandError {
  if (isDeckhandError(cause, "Cancelled")) return cause;
  return new DeckhandError("Cancelled", "image pull cancelled: the pod is being stopped", { cause: cause ?? signal?.reason });
}
