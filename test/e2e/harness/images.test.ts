/**
 * The e2e harness's test images and private registry: reproducible OCI layouts, a registry with TLS and
 * basic auth that skopeo pushes to, and a throwaway containerd (own root, state and sockets) that imports the
 * images, sees them through CRI at once, and pulls from the registry through its certs.d hosts dir.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { run } from "../../../src-shared/exec.ts";
import {
  BUSYBOX_IMAGE_REF,
  PAUSE_IMAGE_REF,
  buildTestImages,
  importImages,
  listContainerdImages,
  verifyLayout,
  type TestImages,
} from "../../harness/images.ts";
import { PrivateRegistry, httpsGet } from "../../harness/registry.ts";

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

describe("containerd import and pull", () => {
  let registry: PrivateRegistry;
  let containerd: ThrowawayContainerd | undefined;

  beforeAll(async () => {
    registry = new PrivateRegistry();
    await registry.start(AbortSignal.timeout(60_000));
    await registry.push(images.busybox, "e2e/busybox:1");
    // The kubelet's way: credentials come with each PullImage request (imagePullSecrets), the CA from certs.d.
    containerd = await startContainerd(registry.criRegistryToml());
  });

  afterAll(async () => {
    const dir = containerd?.dir;
    await containerd?.stop();
    await registry.stop();
    if (dir !== undefined) {
      expect(existsSync(dir)).toBe(false);
      expect(await mountsUnder(dir)).toEqual([]);
    }
  });

  it("imports both images so ctr and CRI see them unpacked at once", async () => {
    const c = containerd!;
    const imported = await importImages({ address: c.address, images: [images.busybox, images.pause] });
    const { busybox, pause } = images;
    expect(imported).toEqual([
      { ref: BUSYBOX_IMAGE_REF, manifestDigest: busybox.manifestDigest, configDigest: busybox.configDigest },
      { ref: PAUSE_IMAGE_REF, manifestDigest: pause.manifestDigest, configDigest: pause.configDigest },
    ]);
    // Importing again (another suite, a restarted node) is fine and changes nothing.
    expect(await importImages({ address: c.address, images: [images.busybox, images.pause] })).toEqual(imported);
    const listed = await listContainerdImages({ address: c.address });
    const mediaType = "application/vnd.oci.image.manifest.v1+json";
    expect(listed).toContainEqual({ ref: BUSYBOX_IMAGE_REF, mediaType, digest: busybox.manifestDigest });
    expect(listed).toContainEqual({ ref: PAUSE_IMAGE_REF, mediaType, digest: pause.manifestDigest });

    // REF TYPE DIGEST STATUS SIZE UNPACKED, for the CRI snapshotter.
    const ctr = ["--address", c.address, "-n", "k8s.io"];
    const { stdout: check } = await run("ctr", [...ctr, "images", "check", "--snapshotter", "overlayfs"]);
    for (const image of [images.busybox, images.pause]) {
      const line = check.split("\n").find((l) => l.startsWith(`${image.ref} `));
      expect(line).toBeDefined();
      expect(line).toContain(image.manifestDigest);
      expect(line).toMatch(/complete \(2\/2\)/);
      expect(line?.trim().endsWith("true")).toBe(true);
    }

    // CRI: image id is the config digest, no wait needed after the import.
    const cri = criImageClient(c.address);
    try {
      for (const image of [images.busybox, images.pause]) {
        const status = await cri.imageStatus(image.ref);
        expect(status.image?.id).toBe(image.configDigest);
        expect(status.image?.repo_tags).toContain(image.ref);
      }
    } finally {
      cri.close();
    }
  });

  it("pulls from the private registry through CRI with request credentials and the certs.d CA", async () => {
    const c = containerd!;
    const ref = registry.ref("e2e/busybox:1");
    const cri = criImageClient(c.address);
    try {
      await expect(cri.pullImage(ref)).rejects.toThrow(/401 Unauthorized|unauthorized/i);
      const pulled = await cri.pullImage(ref, { username: registry.username, password: registry.password });
      expect(pulled.image_ref).toBe(images.busybox.configDigest);
      const status = await cri.imageStatus(ref);
      expect(status.image?.repo_tags).toContain(ref);
      expect(status.image?.repo_digests).toContain(`${registry.host}/e2e/busybox@${images.busybox.manifestDigest}`);
    } finally {
      cri.close();
    }
  });

  it("pulls with the credentials from the containerd config (criRegistryToml includeAuth)", async () => {
    const second = await startContainerd(registry.criRegistryToml({ includeAuth: true }));
    const cri = criImageClient(second.address);
    try {
      const pulled = await cri.pullImage(registry.ref("e2e/busybox:1"));
      expect(pulled.image_ref).toBe(images.busybox.configDigest);
    } finally {
      cri.close();
      await second.stop();
    }
    expect(existsSync(second.dir)).toBe(false);
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

/** Mount points at or below `dir`, deepest first (octal escapes of /proc/self/mountinfo decoded). */
async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const points = text
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return points.sort((a, b) => b.length - a.length);
}

interface ThrowawayContainerd {
  dir: string;
  address: string;
  stop(): Promise<void>;
}

/**
 * A containerd of this test's own: root, state, sockets, CNI dirs and opt dir under one temp folder. It runs
 * no tasks (so nothing lands in /run/containerd), only image work.
 */
async function startContainerd(extraToml: string): Promise<ThrowawayContainerd> {
  const dir = await mkdtemp(path.join(tmpdir(), "deckhand-e2e-ctrd-"));
  for (const d of ["root", "state", "run", "cni-bin", "cni-conf", "opt"]) await mkdir(path.join(dir, d));
  const address = path.join(dir, "run", "containerd.sock");
  const q = (s: string): string => JSON.stringify(s);
  const config = `version = 2
root = ${q(path.join(dir, "root"))}
state = ${q(path.join(dir, "state"))}
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
]

[grpc]
  address = ${q(address)}
[ttrpc]
  address = ${q(`${address}.ttrpc`)}
[debug]
  address = ${q(path.join(dir, "run", "debug.sock"))}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(path.join(dir, "opt"))}
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(PAUSE_IMAGE_REF)}
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = ${q(path.join(dir, "cni-bin"))}
  conf_dir = ${q(path.join(dir, "cni-conf"))}
${extraToml}`;
  const configPath = path.join(dir, "config.toml");
  await writeFile(configPath, config);
  const logPath = path.join(dir, "containerd.log");
  const logFd = openSync(logPath, "w");
  let child: ChildProcess;
  try {
    child = spawn("setpriv", ["--pdeathsig", "TERM", "--", "containerd", "--config", configPath], {
      cwd: dir,
      env: { PATH: process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin" },
      stdio: ["ignore", logFd, logFd],
    });
  } finally {
    closeSync(logFd);
  }
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await exited;
    for (const m of await mountsUnder(dir)) await run("umount", [m], { allowFailure: true });
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error("containerd exited during start");
      const r = await run("ctr", ["--address", address, "plugins", "ls"], { allowFailure: true, timeoutMs: 5_000 });
      if (r.code === 0) {
        const cri = r.stdout.split("\n").find((l) => /^io\.containerd\.grpc\.v1\s+cri\s/.test(l));
        if (cri === undefined || !/\sok\s*$/.test(cri)) {
          throw new Error(`CRI plugin did not load: ${cri ?? "not listed"}`);
        }
        break;
      }
      if (Date.now() > deadline) throw new Error(`containerd did not answer: ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  } catch (err) {
    const log = await readFile(logPath, "utf8").catch(() => "");
    await stop();
    throw new Error(`${(err as Error).message}\n${log.slice(-3000)}`, { cause: err });
  }
  return { dir, address, stop };
}

interface CriImage {
  id: string;
  repo_tags: string[];
  repo_digests: string[];
}

/** Just enough of runtime.v1.ImageService (field numbers as in cri-api's api.proto). */
function criImageClient(address: string): {
  imageStatus(ref: string): Promise<{ image: CriImage | null }>;
  pullImage(ref: string, auth?: { username: string; password: string }): Promise<{ image_ref: string }>;
  close(): void;
} {
  const str = (id: number) => ({ type: "string", id });
  const msg = (type: string, id: number) => ({ type, id });
  const method = (requestType: string, responseType: string) => ({ requestType, responseType, comment: "" });
  const def = fromJSON(
    {
      nested: {
        runtime: {
          nested: {
            v1: {
              nested: {
                ImageService: {
                  methods: {
                    ImageStatus: method("ImageStatusRequest", "ImageStatusResponse"),
                    PullImage: method("PullImageRequest", "PullImageResponse"),
                  },
                },
                ImageSpec: { fields: { image: str(1) } },
                AuthConfig: { fields: { username: str(1), password: str(2) } },
                Image: {
                  fields: {
                    id: str(1),
                    repo_tags: { rule: "repeated", type: "string", id: 2 },
                    repo_digests: { rule: "repeated", type: "string", id: 3 },
                  },
                },
                ImageStatusRequest: { fields: { image: msg("ImageSpec", 1), verbose: msg("bool", 2) } },
                ImageStatusResponse: { fields: { image: msg("Image", 1) } },
                PullImageRequest: { fields: { image: msg("ImageSpec", 1), auth: msg("AuthConfig", 2) } },
                PullImageResponse: { fields: { image_ref: str(1) } },
              },
            },
          },
        },
      },
    },
    { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true },
  );
  const service = def["runtime.v1.ImageService"] as grpc.ServiceDefinition;
  const client = new grpc.Client(`unix://${address}`, grpc.credentials.createInsecure());
  const call = <Res>(name: string, req: object): Promise<Res> => {
    const m = service[name];
    if (m === undefined) return Promise.reject(new Error(`no method ${name}`));
    return new Promise<Res>((resolve, reject) => {
      client.makeUnaryRequest(
        m.path,
        (v: object) => m.requestSerialize(v),
        (b: Buffer) => m.responseDeserialize(b) as Res,
        req,
        { deadline: Date.now() + 60_000 },
        (err, res) => {
          if (err) reject(err);
          else if (res === undefined) reject(new Error(`${name}: no response`));
          else resolve(res);
        },
      );
    });
  };
  return {
    imageStatus: (ref) => call("ImageStatus", { image: { image: ref } }),
    pullImage: (ref, auth) => call("PullImage", { image: { image: ref }, ...(auth === undefined ? {} : { auth }) }),
    close: () => client.close(),
  };
}
