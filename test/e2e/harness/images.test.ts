/**
 * The e2e harness's test images and private registry: reproducible OCI layouts, a registry with TLS and
 * basic auth that skopeo pushes to, and a sandbox node's containerd that imports the images and sees them
 * through CRI at once.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { run } from "../../../src-shared/exec.ts";
import {
  BUSYBOX_IMAGE_REF,
  GRPC_HEALTH_IMAGE_REF,
  PAUSE_IMAGE_REF,
  buildGrpcHealthImage,
  buildTestImages,
  importImages,
  listContainerdImages,
  verifyLayout,
  type TestImages,
} from "../../harness/images.ts";
import { PrivateRegistry, httpsGet } from "../../harness/registry.ts";
import { NodeSandbox } from "../../harness/node-sandbox.ts";

const HERE_IMAGES_TS = new URL("../../harness/images.ts", import.meta.url).pathname;
/** The repo's Node 24 (runs .ts directly), even if vitest itself was started by another node. */
const REPO_NODE = new URL("../../../node_modules/.bin/node", import.meta.url).pathname;

let images: TestImages;
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), "deckhand-e2e-images-"));
  images = await buildTestImages();
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe("test images", () => {
  it("builds the same digests every time, from a cold cache and concurrently from two processes", async () => {
    const cold = await buildTestImages({ cacheDir: path.join(scratch, "cold") });
    expect(cold.busybox.manifestDigest).toBe(images.busybox.manifestDigest);
    expect(cold.busybox.configDigest).toBe(images.busybox.configDigest);
    expect(cold.pause.manifestDigest).toBe(images.pause.manifestDigest);
    expect(cold.pause.configDigest).toBe(images.pause.configDigest);
    expect(cold.busybox.layoutDir).not.toBe(images.busybox.layoutDir);

    // Two processes racing for the same empty cache: both succeed, one build wins the rename.
    const shared = path.join(scratch, "race");
    const script = `import { buildTestImages } from ${JSON.stringify(HERE_IMAGES_TS)};
      const r = await buildTestImages({ cacheDir: ${JSON.stringify(shared)} });
      console.log(JSON.stringify([r.busybox.manifestDigest, r.pause.manifestDigest]));`;
    const node = existsSync(REPO_NODE) ? REPO_NODE : process.execPath;
    const args = ["--input-type=module", "--no-warnings", "-e", script];
    const results = await Promise.all([1, 2].map(() => run(node, args, { timeoutMs: 60_000 })));
    for (const r of results) {
      expect(JSON.parse(r.stdout.trim())).toEqual([images.busybox.manifestDigest, images.pause.manifestDigest]);
    }
    const left = (await readdir(shared)).sort();
    expect(left).toHaveLength(2);
    expect(left.every((e) => /^(busybox|pause)-[0-9a-f]{16}$/.test(e))).toBe(true);
  });

  it("writes valid OCI layouts whose blobs hash to their names", async () => {
    for (const [image, ref] of [
      [images.busybox, BUSYBOX_IMAGE_REF],
      [images.pause, PAUSE_IMAGE_REF],
    ] as const) {
      expect(image.ref).toBe(ref);
      const { images: inLayout } = await verifyLayout(image.layoutDir);
      expect(inLayout).toHaveLength(1);
      const { manifestDigest, configDigest } = image;
      expect(inLayout[0]).toMatchObject({ ref, manifestDigest, configDigest });
      const ociLayout: unknown = JSON.parse(await readFile(path.join(image.layoutDir, "oci-layout"), "utf8"));
      expect(ociLayout).toEqual({ imageLayoutVersion: "1.0.0" });
      const index = JSON.parse(await readFile(path.join(image.layoutDir, "index.json"), "utf8")) as {
        manifests: { annotations: Record<string, string> }[];
      };
      expect(index.manifests[0]?.annotations["org.opencontainers.image.ref.name"]).toBe(ref);
      const blobDir = path.join(image.layoutDir, "blobs", "sha256");
      const blobs = await readdir(blobDir);
      expect(blobs).toHaveLength(3); // manifest, config, one layer
      for (const name of blobs) {
        expect(createHash("sha256").update(await readFile(path.join(blobDir, name))).digest("hex")).toBe(name);
      }
      // The archive holds exactly the layout.
      const { stdout } = await run("tar", ["-tf", image.archivePath]);
      expect(stdout.trim().split("\n").sort()).toEqual(
        ["blobs/", "blobs/sha256/", ...blobs.map((b) => `blobs/sha256/${b}`), "index.json", "oci-layout"].sort(),
      );
    }

    const config = JSON.parse(await readBlob(images.busybox.layoutDir, images.busybox.configDigest)) as {
      config: { Cmd?: string[]; Env?: string[] };
      rootfs: { diff_ids: string[] };
    };
    expect(config.config.Cmd).toEqual(["sh"]);
    expect(config.config.Env?.some((e) => e.startsWith("PATH=/"))).toBe(true);
    const pauseConfig = JSON.parse(await readBlob(images.pause.layoutDir, images.pause.configDigest)) as {
      config: { Entrypoint?: string[] };
    };
    expect(pauseConfig.config.Entrypoint).toEqual(["/bin/sleep", "infinity"]);

    // The busybox layer: applets as links, passwd/group, root-owned entries at mtime 0, /tmp sticky.
    const manifest = JSON.parse(await readBlob(images.busybox.layoutDir, images.busybox.manifestDigest)) as {
      layers: { digest: string }[];
    };
    const layer = path.join(images.busybox.layoutDir, "blobs", "sha256", manifest.layers[0]?.digest.slice(7) ?? "");
    const { stdout: listing } = await run("tar", ["--numeric-owner", "--full-time", "-tvzf", layer]);
    const lines = listing.trim().split("\n");
    expect(lines.every((l) => / 0\/0 /.test(l) && l.includes("1970-01-01 00:00:00"))).toBe(true);
    expect(listing).toMatch(/^-rwxr-xr-x .* bin\/busybox$/m);
    expect(listing).toMatch(/^lrwxrwxrwx .* bin\/sh -> \/bin\/busybox$/m);
    expect(listing).toMatch(/^lrwxrwxrwx .* bin\/sleep -> \/bin\/busybox$/m);
    expect(listing).toMatch(/^drwxrwxrwt .* tmp\/$/m);
    for (const d of ["proc", "sys", "dev", "etc"]) expect(listing).toMatch(new RegExp(`^d.* ${d}/$`, "m"));
    const { stdout: passwd } = await run("tar", ["-xzOf", layer, "etc/passwd"]);
    expect(passwd).toMatch(/^root:x:0:0:/m);
    expect(passwd).toMatch(/^nobody:x:65534:65534:/m);
  });

  it("builds the gRPC health image reproducibly: the same digests from a cold cache, a static server inside", async () => {
    const first = await buildGrpcHealthImage();
    const cold = await buildGrpcHealthImage({ cacheDir: path.join(scratch, "grpc-cold") });
    expect(cold.ref).toBe(GRPC_HEALTH_IMAGE_REF);
    expect(cold.manifestDigest).toBe(first.manifestDigest);
    expect(cold.configDigest).toBe(first.configDigest);
    // One layer: the busybox image's files and the server.
    const { stdout } = await run("tar", ["-tzf", path.join(cold.layoutDir, "blobs", "sha256", (await verifyLayout(cold.layoutDir)).images[0]!.layerDigests[0]!.slice(7))]);
    expect(stdout.split("\n")).toEqual(expect.arrayContaining(["bin/busybox", "bin/grpc-health-server", "bin/sh"]));
  });
});

describe("private registry", () => {
  it("serves TLS with basic auth, takes a push, reports the build's digest, and stops clean", async () => {
    const registry = new PrivateRegistry();
    expect(() => registry.host).toThrow(/not started/);
    await registry.start(AbortSignal.timeout(60_000));
    const { dir, pid } = registry;
    try {
      expect(registry.host).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(registry.caCertPem).toContain("BEGIN CERTIFICATE");
      expect(await readFile(registry.caCertPath, "utf8")).toBe(registry.caCertPem);
      const hostsToml = await readFile(path.join(registry.hostsDir, registry.host, "hosts.toml"), "utf8");
      expect(hostsToml).toContain(`ca = "${registry.caCertPath}"`);

      const anonymous = await httpsGet(`https://${registry.host}/v2/`, { ca: registry.caCertPem });
      expect(anonymous.status).toBe(401);
      const wrong = await httpsGet(`https://${registry.host}/v2/`, {
        ca: registry.caCertPem,
        auth: { username: registry.username, password: `${registry.password}x` },
      });
      expect(wrong.status).toBe(401);
      const authed = await httpsGet(`https://${registry.host}/v2/`, { ca: registry.caCertPem, auth: registry });
      expect(authed.status).toBe(200);
      // The certificate is for 127.0.0.1 and localhost, signed by the test CA only.
      await expect(httpsGet(`https://${registry.host}/v2/`, { ca: "" })).rejects.toThrow();
      const port = registry.host.split(":")[1] ?? "";
      const viaLocalhost = await httpsGet(`https://localhost:${port}/v2/`, { ca: registry.caCertPem });
      expect(viaLocalhost.status).toBe(401);

      const pushed = await registry.push(images.busybox, "e2e/busybox:1");
      expect(pushed).toEqual({ ref: `${registry.host}/e2e/busybox:1`, digest: images.busybox.manifestDigest });
      expect(await registry.inspectDigest("e2e/busybox:1")).toBe(images.busybox.manifestDigest);
      const manifest = await httpsGet(`https://${registry.host}/v2/e2e/busybox/manifests/1`, {
        ca: registry.caCertPem,
        auth: registry,
        headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
      });
      expect(manifest.status).toBe(200);
      expect(manifest.headers["docker-content-digest"]).toBe(images.busybox.manifestDigest);
      expect(manifest.headers["content-type"]).toBe("application/vnd.oci.image.manifest.v1+json");
    } finally {
      await registry.stop();
    }
    expect(pid).toBeTypeOf("number");
    expect(isAlive(pid ?? 0)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    expect(() => registry.dir).toThrow(/not started/);
    await registry.stop(); // idempotent
  });
});

describe("containerd import", () => {
  // A sandbox node's own containerd, without the harness's own import, so this test is the one that imports.
  const node = new NodeSandbox({ importImages: false, withoutCni: true });
  beforeAll(() => node.start());
  afterAll(() => node.teardown());

  it("imports both images so ctr and CRI see them unpacked at once", async () => {
    const address = node.containerdSocket;
    const imported = await importImages({ address, images: [images.busybox, images.pause] });
    const { busybox, pause } = images;
    expect(imported).toEqual([
      { ref: BUSYBOX_IMAGE_REF, manifestDigest: busybox.manifestDigest, configDigest: busybox.configDigest },
      { ref: PAUSE_IMAGE_REF, manifestDigest: pause.manifestDigest, configDigest: pause.configDigest },
    ]);
    // Importing again (another suite, a restarted node) is fine and changes nothing.
    expect(await importImages({ address, images: [images.busybox, images.pause] })).toEqual(imported);
    const listed = await listContainerdImages({ address });
    const mediaType = "application/vnd.oci.image.manifest.v1+json";
    expect(listed).toContainEqual({ ref: BUSYBOX_IMAGE_REF, mediaType, digest: busybox.manifestDigest });
    expect(listed).toContainEqual({ ref: PAUSE_IMAGE_REF, mediaType, digest: pause.manifestDigest });

    // REF TYPE DIGEST STATUS SIZE UNPACKED, for the CRI snapshotter.
    const { stdout: check } = await run("ctr", ["--address", address, "-n", "k8s.io", "images", "check", "--snapshotter", "overlayfs"]);
    for (const image of [images.busybox, images.pause]) {
      const line = check.split("\n").find((l) => l.startsWith(`${image.ref} `));
      expect(line).toBeDefined();
      expect(line).toContain(image.manifestDigest);
      expect(line).toMatch(/complete \(2\/2\)/);
      expect(line?.trim().endsWith("true")).toBe(true);
    }

    // CRI: image id is the config digest, no wait needed after the import. (Pulls from the private registry
    // through CRI are tested in test/e2e/kubelet/cri/pull.test.ts.)
    for (const image of [images.busybox, images.pause]) {
      const status = await node.criClient().image("ImageStatus", { image: { image: image.ref } });
      expect(status.image?.id).toBe(image.configDigest);
      expect(status.image?.repo_tags).toContain(image.ref);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Helpers

async function readBlob(layoutDir: string, digest: string): Promise<string> {
  return readFile(path.join(layoutDir, "blobs", "sha256", digest.replace(/^sha256:/, "")), "utf8");
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
