import { describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { credentialsFor, defaultPullPolicy, parseImage, ImagePullError, ImageManager, type ImageEvents } from "../../../../kubelet/images/image-manager.ts";
import { CriError } from "../../../../kubelet/cri/errors.ts";
import { isDeckhandError } from "../../../../src-shared/errors.ts";
import { FakeClock, flush } from "../../../harness/fake-clock.ts";
import { FakeRuntime } from "../../../harness/fake-runtime.ts";

const noSecrets = (): Promise<[]> => Promise.resolve([]);

describe("image references", () => {
  it.each([
    ["busybox", { registry: "docker.io", repository: "library/busybox", tag: undefined, digest: undefined }],
    ["busybox:1.36", { registry: "docker.io", repository: "library/busybox", tag: "1.36", digest: undefined }],
    ["library/busybox", { registry: "docker.io", repository: "library/busybox", tag: undefined, digest: undefined }],
    ["quay.io/org/app:v1", { registry: "quay.io", repository: "org/app", tag: "v1", digest: undefined }],
    ["127.0.0.1:5000/private/busybox:1", { registry: "127.0.0.1:5000", repository: "private/busybox", tag: "1", digest: undefined }],
    ["localhost/busybox:1", { registry: "localhost", repository: "busybox", tag: "1", digest: undefined }],
    [`x@sha256:${"a".repeat(64)}`, { registry: "docker.io", repository: "library/x", tag: undefined, digest: `sha256:${"a".repeat(64)}` }],
  ])("parses %s", (image, expected) => {
    expect(parseImage(image)).toEqual(expected);
  });

  it.each(["UPPER/case", "bad image", "", "a:b:c"])("rejects %j as InvalidImageName", (image) => {
    const err = (() => {
      try {
        parseImage(image);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ImagePullError);
    expect((err as ImagePullError).reason).toBe("InvalidImageName");
  });

  it("defaults the pull policy as the API server does", () => {
    expect(defaultPullPolicy("busybox")).toBe("Always");
    expect(defaultPullPolicy("busybox:latest")).toBe("Always");
    expect(defaultPullPolicy("busybox:1")).toBe("IfNotPresent");
    expect(defaultPullPolicy(`busybox@sha256:${"b".repeat(64)}`)).toBe("IfNotPresent");
  });

  it("finds credentials for a registry in docker configs, with the scheme containerd 1.6 needs", () => {
    const auth = Buffer.from("user:pa:ss").toString("base64");
    const configs = [{ auths: { "https://index.docker.io/v1/": { auth: Buffer.from("hub:x").toString("base64") } } }, { auths: { "127.0.0.1:5000": { auth } } }];
    expect(credentialsFor("127.0.0.1:5000", configs)).toMatchObject({ username: "user", password: "pa:ss", server_address: "https://127.0.0.1:5000" });
    expect(credentialsFor("docker.io", configs)).toMatchObject({ username: "hub", password: "x" });
    expect(credentialsFor("quay.io", configs)).toBeUndefined();
  });
});

describe("ImageManager pulls on the fake runtime", () => {
  const events: ImageEvents = { pulling: () => undefined, pulled: () => undefined, failed: () => undefined, backOff: () => undefined };
  const pod = (uid: string): V1Pod => ({ metadata: { uid, name: uid, namespace: "default" }, spec: { containers: [] } });
  const container = { name: "app", image: "registry.example/app:1" };

  function setup() {
    const clock = new FakeClock();
    const fake = new FakeRuntime({ clock });
    const images = new ImageManager({ images: fake, clock });
    return { clock, fake, images };
  }

  it("shares one pull between pods and keeps it going while one of them is still waiting", async () => {
    const { fake, images } = setup();
    const release = fake.holdPulls();
    const a = new AbortController();
    const first = images.ensureImage(pod("a"), container, noSecrets, events, a.signal);
    const second = images.ensureImage(pod("b"), container, noSecrets, events, new AbortController().signal);
    const firstOutcome = first.catch((err: unknown) => err);
    while (fake.callsOf("PullImage").length === 0) await flush();
    a.abort();
    expect(isDeckhandError(await firstOutcome, "Cancelled")).toBe(true);
    release();
    expect(await second).toMatch(/^sha256:/);
    expect(fake.callsOf("PullImage")).toHaveLength(1);
  });

  it("tells each pod sharing a pull that its image is being pulled and has been, with its own wait", async () => {
    const { clock, fake, images } = setup();
    const seen: string[] = [];
    const recorder = (pod: string): ImageEvents => ({
      pulling: (image) => seen.push(`${pod} pulling ${image}`),
      pulled: (_image, message) => seen.push(`${pod} ${message}`),
      failed: () => undefined,
      backOff: () => undefined,
    });
    const release = fake.holdPulls();
    const first = images.ensureImage(pod("a"), container, noSecrets, recorder("a"));
    while (fake.callsOf("PullImage").length === 0) await flush();
    await clock.advance(300);
    const second = images.ensureImage(pod("b"), container, noSecrets, recorder("b"));
    await flush();
    await clock.advance(200);
    release();
    await Promise.all([first, second]);
    expect(fake.callsOf("PullImage")).toHaveLength(1);
    expect(seen).toEqual([
      "a pulling registry.example/app:1",
      "b pulling registry.example/app:1",
      'a Successfully pulled image "registry.example/app:1" in 500ms (500ms including waiting). Image size: 1000000 bytes.',
      'b Successfully pulled image "registry.example/app:1" in 200ms (200ms including waiting). Image size: 1000000 bytes.',
    ]);
  });

  it("tells an image it could not inspect (ErrImageInspect) from one it could not pull, and pulls nothing for a pod already stopped", async () => {
    const { fake, images } = setup();
    const present = { name: "app", image: "registry.example/app:1", imagePullPolicy: "IfNotPresent" };
    fake.failNext("ImageStatus", new CriError("Unavailable", "ImageStatus", "connection refused"));
    const err = await images.ensureImage(pod("a"), present, noSecrets, events).catch((e: unknown) => e);
    expect([(err as ImagePullError).reason, (err as ImagePullError).message]).toEqual(["ErrImageInspect", 'Failed to inspect image "registry.example/app:1": connection refused']);
    expect(fake.callsOf("PullImage")).toHaveLength(0);
    const stopped = new AbortController();
    stopped.abort();
    const pulling: string[] = [];
    const outcome = await images.ensureImage(pod("a"), container, noSecrets, { ...events, pulling: (i) => pulling.push(i) }, stopped.signal).catch((e: unknown) => e);
    expect(isDeckhandError(outcome, "Cancelled")).toBe(true);
    expect([fake.callsOf("PullImage"), pulling]).toEqual([[], []]);
  });

  it("gives a pull no deadline, as upstream (a large image may take longer than the runtime request timeout)", async () => {
    const { fake } = setup();
    const timeouts: (number | undefined)[] = [];
    const images = new ImageManager({
      images: {
        image: (method, request, options) => {
          if (method === "PullImage") timeouts.push(options?.timeoutMs);
          return fake.image(method, request, options);
        },
      },
    });
    await images.ensureImage(pod("a"), container, noSecrets, events);
    expect(timeouts).toEqual([Number.POSITIVE_INFINITY]);
  });

  it("cancels the CRI pull once every waiting pod has gone, and records no back-off", async () => {
    const { fake, images } = setup();
    const release = fake.holdPulls();
    const a = new AbortController();
    const outcome = images.ensureImage(pod("a"), container, noSecrets, events, a.signal).catch((err: unknown) => err);
    while (fake.callsOf("PullImage").length === 0) await flush();
    a.abort();
    expect(isDeckhandError(await outcome, "Cancelled")).toBe(true);
    release();
    await flush();
    expect((await fake.image("ImageStatus", { image: { image: container.image } })).image).toBeNull();
    // The same pod pulls again at once: no ImagePullBackOff from a cancellation.
    expect(await images.ensureImage(pod("a"), container, noSecrets, events)).toMatch(/^sha256:/);
    expect(fake.callsOf("PullImage")).toHaveLength(2);
  });

  it("backs off a failed pull per pod and image, for 10 s then 20 s (fake clock)", async () => {
    const { clock, fake, images } = setup();
    const reasonOf = (p: Promise<string>) => p.then(() => "ok", (err: unknown) => (err instanceof ImagePullError ? err.reason : String(err)));
    fake.failNext("PullImage", new CriError("Unavailable", "PullImage", "connection reset"));
    expect(await reasonOf(images.ensureImage(pod("a"), container, noSecrets, events))).toBe("ErrImagePull");
    expect(await reasonOf(images.ensureImage(pod("a"), container, noSecrets, events))).toBe("ImagePullBackOff");
    await clock.advance(10_000);
    fake.failNext("PullImage", new CriError("Unavailable", "PullImage", "connection reset"));
    expect(await reasonOf(images.ensureImage(pod("a"), container, noSecrets, events))).toBe("ErrImagePull");
    await clock.advance(10_000);
    expect(await reasonOf(images.ensureImage(pod("a"), container, noSecrets, events))).toBe("ImagePullBackOff");
    // Another pod is not held back by this one's failures; forgetPod drops the back-off.
    expect(await reasonOf(images.ensureImage(pod("b"), container, noSecrets, events))).toBe("ok");
    await fake.image("RemoveImage", { image: { image: container.image } });
    images.forgetPod("a");
    expect(await reasonOf(images.ensureImage(pod("a"), container, noSecrets, events))).toBe("ok");
  });

  it("drops a pull back-off in housekeeping once it has been over for twice the longest delay, not before", async () => {
    const { clock, fake, images } = setup();
    fake.failNext("PullImage", new CriError("Unavailable", "PullImage", "connection reset"));
    await images.ensureImage(pod("a"), container, noSecrets, events).catch(() => undefined);
    expect(images.backOffs).toBe(1);
    await clock.advance(10_000 + 600_000);
    images.gc(clock.now());
    expect(images.backOffs).toBe(1);
    await clock.advance(1);
    images.gc(clock.now());
    expect(images.backOffs).toBe(0);
  });
});
