/**
 * Real image pulls through the CRI client: a private registry (TLS from a test CA, htpasswd auth) serving
 * inside the sandbox node, so the node's containerd pulls over its own loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeSandbox } from "../../../harness/node-sandbox.ts";
import { PrivateRegistry } from "../../../harness/registry.ts";
import { buildTestImages, type TestImages } from "../../../harness/images.ts";
import type { CriError } from "../../../../kubelet/cri/client.ts";

const node = new NodeSandbox();
const registry = new PrivateRegistry({ netnsPath: node.netnsPath });
let images: TestImages;

beforeAll(async () => {
  await node.start();
  await registry.start();
  await node.trustRegistry(registry.host, registry.caCertPem);
  images = await buildTestImages();
  await registry.push(images.busybox, "private/busybox:1");
});

afterAll(async () => {
  await registry.stop();
  await node.teardown();
});

describe("PullImage from a private registry", () => {
  it("refuses without credentials and with a wrong password, saying so", async () => {
    const cri = node.criClient();
    const image = { image: registry.ref("private/busybox:1") };
    const anonymous = (await cri.image("PullImage", { image }).catch((e: unknown) => e)) as CriError;
    expect(anonymous.message).toMatch(/401|unauthorized/i);
    const wrong = (await cri
      .image("PullImage", { image, auth: { username: registry.username, password: "not-the-password" } })
      .catch((e: unknown) => e)) as CriError;
    expect(wrong.message).toMatch(/401|unauthorized/i);
    expect((await cri.image("ImageStatus", { image })).image).toBeNull();
  });

  it("pulls with credentials, runs the image, and removes it", async () => {
    const cri = node.criClient();
    const ref = registry.ref("private/busybox:1");
    const pulled = await cri.image("PullImage", {
      image: { image: ref },
      // containerd 1.6.20 parses server_address as a URL: "host:port" alone fails ("first path segment in URL
      // cannot contain colon"), so the kubelet must send it with its scheme.
      auth: { username: registry.username, password: registry.password, server_address: `https://${registry.host}` },
    });
    // containerd names an image by its config digest: the same bytes we built.
    expect(pulled.image_ref).toBe(images.busybox.configDigest);
    const status = await cri.image("ImageStatus", { image: { image: ref } });
    expect(status.image?.repo_tags).toContain(ref);
    expect(status.image?.repo_digests).toContain(`${registry.host}/private/busybox@${images.busybox.manifestDigest}`);

    const uid = "00000000-0000-4000-8000-000000000001";
    const config = {
      metadata: { name: "pulled", namespace: "default", uid, attempt: 0 },
      log_directory: `/var/log/pods/default_pulled_${uid}`,
      linux: { cgroup_parent: `${node.cgroupRoot}/kubepods/besteffort/pod${uid}` },
    };
    const { pod_sandbox_id } = await cri.runtime("RunPodSandbox", { config });
    try {
      const { container_id } = await cri.runtime("CreateContainer", {
        pod_sandbox_id,
        sandbox_config: config,
        config: { metadata: { name: "c" }, image: { image: ref }, command: ["sleep", "3600"], log_path: "c/0.log" },
      });
      await cri.runtime("StartContainer", { container_id });
      expect((await cri.runtime("ContainerStatus", { container_id })).status?.state).toBe("CONTAINER_RUNNING");
    } finally {
      await cri.runtime("StopPodSandbox", { pod_sandbox_id });
      await cri.runtime("RemovePodSandbox", { pod_sandbox_id });
    }
    await cri.image("RemoveImage", { image: { image: ref } });
    expect((await cri.image("ImageStatus", { image: { image: ref } })).image).toBeNull();
  });
});
