import { describe, expect, it } from "vitest";
import { credentialsFor, defaultPullPolicy, parseImage, ImagePullError } from "../../../../kubelet/images/image-manager.ts";

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
