/**
 * Test images without a registry on the internet: OCI image layouts built reproducibly from Debian's static
 * `/bin/busybox`, cached on disk, and imported into a containerd with `ctr images import`.
 *
 * Reproducible means the same busybox bytes give the same digests on every build: the layer tar has sorted
 * names, uid/gid 0 without names, mtime 0 and explicit modes (GNU tar, `--format=gnu`, so no pax atime or
 * ctime records), it is compressed with `gzip -n` (no name, no timestamp), and every JSON document is
 * serialised from objects with a fixed key order.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DeckhandError, errorMessage } from "../../src-shared/errors.ts";
import { run, type RunOptions } from "../../src-shared/exec.ts";

/**
 * Bump when anything about what is built changes (files, modes, config, even the history text): it is part of
 * the cache key, and a cache entry under an unchanged key would otherwise differ from a fresh build.
 */
export const IMAGE_BUILDER_VERSION = 1;
const BUILDER_NAME = "deckhand test image builder";
export const BUSYBOX_IMAGE_REF = "localhost/busybox:1";
export const PAUSE_IMAGE_REF = "localhost/pause:1";
/** busybox plus `/bin/grpc-health-server PORT STATUS_DIR` (test/images/grpc-health-server.c, built with gcc). */
export const GRPC_HEALTH_IMAGE_REF = "localhost/grpc-health:1";
const GRPC_HEALTH_SOURCE = fileURLToPath(new URL("../images/grpc-health-server.c", import.meta.url));
export const DEFAULT_IMAGE_CACHE_DIR = "/var/cache/deckhand-test/images";
/** Overrides the default cache directory (an explicit `cacheDir` option wins over it). */
export const IMAGE_CACHE_DIR_ENV = "DECKHAND_TEST_IMAGE_CACHE";

const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";
const MEDIA_INDEX = "application/vnd.oci.image.index.v1+json";
const MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
const EPOCH = "1970-01-01T00:00:00Z";
const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** GNU tar flags that make an archive depend only on the names, contents, modes and link targets. */
const REPRODUCIBLE_TAR_FLAGS = [
  "--format=gnu",
  "--sort=name",
  "--owner=0",
  "--group=0",
  "--numeric-owner",
  "--mtime=@0",
  "--no-acls",
  "--no-xattrs",
  "--no-selinux",
] as const;

export interface BuiltImage {
  /** Full reference, also the `org.opencontainers.image.ref.name` annotation in `index.json`. */
  readonly ref: string;
  /** OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/...`). */
  readonly layoutDir: string;
  /** The same layout as one tar (an OCI archive), for `ctr images import`. */
  readonly archivePath: string;
  /** `sha256:...` of the image manifest: the digest a registry and containerd report for the image. */
  readonly manifestDigest: string;
  /** `sha256:...` of the image config: what the CRI reports as the image id. */
  readonly configDigest: string;
}

export interface TestImages {
  busybox: BuiltImage;
  pause: BuiltImage;
}

export interface BuildOptions {
  /** Where built layouts are kept; default `$DECKHAND_TEST_IMAGE_CACHE` or `/var/cache/deckhand-test/images`. */
  cacheDir?: string;
  /** The static busybox to put in the images; default `/bin/busybox`. */
  busyboxPath?: string;
  signal?: AbortSignal;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

interface ImageSpec {
  name: "busybox" | "pause" | "grpc-health";
  ref: string;
  /** Builds the root filesystem in `dir` (which exists and is empty). */
  populate: (dir: string, busybox: string, signal: AbortSignal | undefined) => Promise<void>;
  config: Record<string, unknown>;
}

const inFlight = new Map<string, Promise<BuiltImage>>();
const TMP_PREFIX = ".tmp-";

/** Removes temp dirs of earlier builds of `finalDir` whose process is gone (killed mid-build). */
async function removeAbandonedBuilds(finalDir: string): Promise<void> {
  const parent = path.dirname(finalDir);
  const prefix = `${TMP_PREFIX}${path.basename(finalDir)}-`;
  for (const entry of await readdir(parent).catch(() => [])) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length).split("-")[0]);
    if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) {
      await rm(path.join(parent, entry), { recursive: true, force: true });
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Builds (or finds in the cache) `localhost/busybox:1` and `localhost/pause:1`. Safe to call from several
 * processes at once: each build happens in its own temporary directory that is renamed into place.
 */
export async function buildTestImages(options: BuildOptions = {}): Promise<TestImages> {
  const cacheDir = options.cacheDir ?? process.env[IMAGE_CACHE_DIR_ENV] ?? DEFAULT_IMAGE_CACHE_DIR;
  const busyboxPath = options.busyboxPath ?? "/bin/busybox";
  const busyboxSha = await sha256File(busyboxPath);
  const key = createHash("sha256")
    .update(`deckhand test images v${IMAGE_BUILDER_VERSION}\n${busyboxSha}\n`)
    .digest("hex")
    .slice(0, 16);
  // allSettled: when one build fails, the other has finished (and cleaned up) before this returns.
  const [busybox, pause] = await Promise.allSettled(
    [busyboxSpec(), pauseSpec()].map((spec) =>
      cachedBuild(spec, path.join(cacheDir, `${spec.name}-${key}`), busyboxPath, busyboxSha, options.signal),
    ),
  );
  if (busybox?.status === "rejected") throw busybox.reason;
  if (pause?.status === "rejected") throw pause.reason;
  if (busybox === undefined || pause === undefined) throw new DeckhandError("Internal", "image build lost a result");
  return { busybox: busybox.value, pause: pause.value };
}

/**
 * Builds (or finds in the cache) `localhost/grpc-health:1`: the busybox image plus a static grpc.health.v1
 * server compiled from test/images/grpc-health-server.c with the machine's gcc (Debian's gcc and libc6-dev).
 * Only the tests that need it build and import it. Its cache key covers busybox, the source and the compiler.
 */
export async function buildGrpcHealthImage(options: BuildOptions = {}): Promise<BuiltImage> {
  const cacheDir = options.cacheDir ?? process.env[IMAGE_CACHE_DIR_ENV] ?? DEFAULT_IMAGE_CACHE_DIR;
  const busyboxPath = options.busyboxPath ?? "/bin/busybox";
  const busyboxSha = await sha256File(busyboxPath);
  const sourceSha = await sha256File(GRPC_HEALTH_SOURCE);
  const gcc = (await run("gcc", ["-dumpfullversion"], withSignal(options.signal))).stdout.trim();
  const key = createHash("sha256")
    .update(`deckhand test images v${IMAGE_BUILDER_VERSION}\n${busyboxSha}\n${sourceSha}\ngcc ${gcc}\n`)
    .digest("hex")
    .slice(0, 16);
  return cachedBuild(grpcHealthSpec(), path.join(cacheDir, `grpc-health-${key}`), busyboxPath, busyboxSha, options.signal);
}

function cachedBuild(
  spec: ImageSpec,
  finalDir: string,
  busyboxPath: string,
  busyboxSha: string,
  signal: AbortSignal | undefined,
): Promise<BuiltImage> {
  let pending = inFlight.get(finalDir);
  if (pending === undefined) {
    pending = (async () => {
      const cached = await loadBuilt(finalDir);
      if (cached !== undefined) return cached;
      await mkdir(path.dirname(finalDir), { recursive: true });
      await removeAbandonedBuilds(finalDir);
      const suffix = `${process.pid}-${randomBytes(4).toString("hex")}`;
      const tmp = path.join(path.dirname(finalDir), `${TMP_PREFIX}${path.basename(finalDir)}-${suffix}`);
      try {
        await mkdir(tmp);
        await buildInto(spec, tmp, busyboxPath, busyboxSha, signal);
        try {
          await rename(tmp, finalDir);
        } catch (err) {
          // Another process finished the same build first: its result has the same bytes.
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
        }
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
      const built = await loadBuilt(finalDir);
      if (built === undefined) {
        throw new DeckhandError("Internal", `image build of ${spec.ref} left nothing in ${finalDir}`);
      }
      return built;
    })();
    inFlight.set(finalDir, pending);
    // Only concurrent calls share a build; later ones look at the disk again (cheap, and sees a wiped cache).
    const forget = (): void => void inFlight.delete(finalDir);
    pending.then(forget, forget);
  }
  return pending;
}

/** The image in a finished cache directory, or undefined when there is none. Throws if it is damaged. */
async function loadBuilt(dir: string): Promise<BuiltImage | undefined> {
  const layoutDir = path.join(dir, "layout");
  const archivePath = path.join(dir, "image.oci.tar");
  try {
    await stat(dir);
  } catch {
    return undefined;
  }
  try {
    const [layout] = await Promise.all([verifyLayout(layoutDir), stat(archivePath)]);
    const only = layout.images[0];
    if (layout.images.length !== 1 || only === undefined) {
      throw new Error(`expected one image, found ${layout.images.length}`);
    }
    const { ref, manifestDigest, configDigest } = only;
    return { ref, layoutDir, archivePath, manifestDigest, configDigest };
  } catch (err) {
    const message = `cached test image in ${dir} is damaged (remove the directory): ${errorMessage(err)}`;
    throw new DeckhandError("FailedPrecondition", message, { cause: err });
  }
}

async function buildInto(
  spec: ImageSpec,
  dir: string,
  busyboxPath: string,
  busyboxSha: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  const rootfs = path.join(dir, "rootfs");
  const layoutDir = path.join(dir, "layout");
  const blobsDir = path.join(layoutDir, "blobs", "sha256");
  await mkdir(rootfs);
  await mkdir(blobsDir, { recursive: true });
  await spec.populate(rootfs, busyboxPath, signal);

  // The layer: tar of the root filesystem (its sha256 is the diff id), then gzip -n of it.
  const layerTar = path.join(dir, "layer.tar");
  const topLevel = await readdirSorted(rootfs);
  await run(
    "tar",
    ["--create", `--file=${layerTar}`, ...REPRODUCIBLE_TAR_FLAGS, "-C", rootfs, "--", ...topLevel],
    withSignal(signal),
  );
  await run("gzip", ["-n", "-9", "--keep", "--", layerTar], withSignal(signal));
  const diffId = await sha256File(layerTar);
  const layerGz = `${layerTar}.gz`;
  const layerDigest = await sha256File(layerGz);
  const layerSize = (await stat(layerGz)).size;
  await rename(layerGz, path.join(blobsDir, layerDigest.slice("sha256:".length)));

  const config = {
    created: EPOCH,
    architecture: ociArchitecture(),
    os: "linux",
    config: spec.config,
    rootfs: { type: "layers", diff_ids: [diffId] },
    history: [{ created: EPOCH, created_by: `${BUILDER_NAME} v${IMAGE_BUILDER_VERSION} from busybox ${busyboxSha}` }],
  };
  const configDesc = await writeBlob(blobsDir, MEDIA_CONFIG, config);
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_MANIFEST,
    config: configDesc,
    layers: [{ mediaType: MEDIA_LAYER_GZIP, digest: layerDigest, size: layerSize }],
  };
  const manifestDesc = await writeBlob(blobsDir, MEDIA_MANIFEST, manifest);
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_INDEX,
    manifests: [
      {
        ...manifestDesc,
        platform: { architecture: ociArchitecture(), os: "linux" },
        annotations: { [REF_NAME_ANNOTATION]: spec.ref },
      },
    ],
  };
  await writeFile(path.join(layoutDir, "index.json"), JSON.stringify(index));
  await writeFile(path.join(layoutDir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await setModes(layoutDir);
  const archive = path.join(dir, "image.oci.tar");
  const layoutEntries = ["blobs", "index.json", "oci-layout"];
  await run(
    "tar",
    ["--create", `--file=${archive}`, ...REPRODUCIBLE_TAR_FLAGS, "-C", layoutDir, "--", ...layoutEntries],
    withSignal(signal),
  );
  await rm(rootfs, { recursive: true, force: true });
  await rm(layerTar, { force: true });
}

function busyboxSpec(): ImageSpec {
  return {
    name: "busybox",
    ref: BUSYBOX_IMAGE_REF,
    config: { Env: [PATH_ENV], Cmd: ["sh"], WorkingDir: "/" },
    populate: async (root, busybox, signal) => {
      const { stdout } = await run(busybox, ["--list"], withSignal(signal));
      const applets = [...new Set(stdout.split("\n").map((s) => s.trim()))]
        .filter((a) => a !== "" && a !== "busybox" && !a.includes("/"))
        .sort();
      await baseDirs(root, ["bin", "dev", "etc", "proc", "root", "sys", "tmp"]);
      await chmod(path.join(root, "root"), 0o700);
      await chmod(path.join(root, "tmp"), 0o1777);
      await installBusybox(root, busybox);
      for (const applet of applets) await symlink("/bin/busybox", path.join(root, "bin", applet));
      await writeFileMode(
        path.join(root, "etc", "passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        0o644,
      );
      await writeFileMode(path.join(root, "etc", "group"), "root:x:0:\nnobody:x:65534:\n", 0o644);
    },
  };
}

function grpcHealthSpec(): ImageSpec {
  const busybox = busyboxSpec();
  return {
    name: "grpc-health",
    ref: GRPC_HEALTH_IMAGE_REF,
    config: busybox.config,
    populate: async (root, busyboxPath, signal) => {
      await busybox.populate(root, busyboxPath, signal);
      const out = path.join(root, "bin", "grpc-health-server");
      // Static (the image has no libc), stripped, and with no build path inside: the same bytes on every build.
      const flags = ["-static", "-O2", "-s", `-ffile-prefix-map=${path.dirname(GRPC_HEALTH_SOURCE)}=.`];
      await run("gcc", [...flags, "-o", out, GRPC_HEALTH_SOURCE], { timeoutMs: 120_000, ...withSignal(signal) });
      await chmod(out, 0o755);
    },
  };
}

/**
 * The sandbox ("pause") image: busybox `sleep infinity`. busybox picks the applet from argv[0], so the entry
 * point is the `/bin/sleep` link, not a `/pause` copy (which would answer "applet not found").
 */
function pauseSpec(): ImageSpec {
  return {
    name: "pause",
    ref: PAUSE_IMAGE_REF,
    config: { Env: [PATH_ENV], Entrypoint: ["/bin/sleep", "infinity"], WorkingDir: "/" },
    populate: async (root, busybox) => {
      await baseDirs(root, ["bin", "dev", "etc", "proc", "sys"]);
      await installBusybox(root, busybox);
      for (const applet of ["sh", "sleep"]) await symlink("/bin/busybox", path.join(root, "bin", applet));
    },
  };
}

async function baseDirs(root: string, names: readonly string[]): Promise<void> {
  await chmod(root, 0o755);
  for (const name of names) {
    await mkdir(path.join(root, name));
    await chmod(path.join(root, name), 0o755);
  }
}

async function installBusybox(root: string, busybox: string): Promise<void> {
  const dest = path.join(root, "bin", "busybox");
  await copyFile(busybox, dest);
  await chmod(dest, 0o755);
}

async function writeFileMode(file: string, content: string, mode: number): Promise<void> {
  await writeFile(file, content);
  await chmod(file, mode); // not subject to the umask, unlike writeFile's mode
}

/** Directories 0755 and files 0644 in a layout, whatever the umask. */
async function setModes(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const name of await readdirSorted(dir)) {
    const p = path.join(dir, name);
    if ((await stat(p)).isDirectory()) await setModes(p);
    else await chmod(p, 0o644);
  }
}

async function readdirSorted(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

async function writeBlob(blobsDir: string, mediaType: string, doc: unknown): Promise<Descriptor> {
  const bytes = Buffer.from(JSON.stringify(doc));
  const hex = createHash("sha256").update(bytes).digest("hex");
  await writeFile(path.join(blobsDir, hex), bytes);
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

function ociArchitecture(): string {
  switch (process.arch) {
    case "x64":
      return "amd64";
    case "ia32":
      return "386";
    default:
      return process.arch; // arm64, arm, ppc64, s390x, riscv64 have the same name in both
  }
}

function withSignal(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal };
}

// ---------------------------------------------------------------------------------------------------------------
// Layout verification

export interface LayoutImage {
  ref: string;
  manifestDigest: string;
  configDigest: string;
  layerDigests: string[];
}

/**
 * Checks an OCI image layout: `oci-layout` version, `index.json`, and that every blob the index reaches
 * (manifests, configs, layers) is present with the size and sha256 its descriptor claims.
 */
export async function verifyLayout(layoutDir: string): Promise<{ images: LayoutImage[] }> {
  const ociLayout = JSON.parse(await readFile(path.join(layoutDir, "oci-layout"), "utf8")) as {
    imageLayoutVersion?: unknown;
  };
  if (ociLayout.imageLayoutVersion !== "1.0.0") {
    throw new Error(`oci-layout: unexpected imageLayoutVersion ${String(ociLayout.imageLayoutVersion)}`);
  }
  const index = JSON.parse(await readFile(path.join(layoutDir, "index.json"), "utf8")) as {
    schemaVersion?: unknown;
    manifests?: Descriptor[];
  };
  if (index.schemaVersion !== 2 || !Array.isArray(index.manifests)) {
    throw new Error("index.json: not an OCI image index");
  }
  const images: LayoutImage[] = [];
  for (const desc of index.manifests) {
    const manifestBytes = await readBlob(layoutDir, desc);
    const manifest = JSON.parse(manifestBytes.toString("utf8")) as { config?: Descriptor; layers?: Descriptor[] };
    if (manifest.config === undefined || !Array.isArray(manifest.layers)) {
      throw new Error(`manifest ${desc.digest}: no config or layers`);
    }
    await readBlob(layoutDir, manifest.config);
    for (const layer of manifest.layers) await readBlob(layoutDir, layer);
    images.push({
      ref: desc.annotations?.[REF_NAME_ANNOTATION] ?? "",
      manifestDigest: desc.digest,
      configDigest: manifest.config.digest,
      layerDigests: manifest.layers.map((l) => l.digest),
    });
  }
  return { images };
}

async function readBlob(layoutDir: string, desc: Descriptor): Promise<Buffer> {
  const m = /^sha256:([0-9a-f]{64})$/.exec(desc.digest);
  if (m?.[1] === undefined) throw new Error(`unsupported digest ${desc.digest}`);
  const bytes = await readFile(path.join(layoutDir, "blobs", "sha256", m[1]));
  if (bytes.length !== desc.size) {
    throw new Error(`blob ${desc.digest}: size ${bytes.length}, descriptor says ${desc.size}`);
  }
  const actual = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  if (actual !== desc.digest) throw new Error(`blob ${desc.digest}: content hashes to ${actual}`);
  return bytes;
}

// ---------------------------------------------------------------------------------------------------------------
// containerd

export interface ContainerdTarget {
  /** containerd's gRPC socket. */
  address: string;
  /** containerd namespace; default `k8s.io`, the one the CRI plugin uses. */
  namespace?: string;
  signal?: AbortSignal;
}

export interface ImportOptions extends ContainerdTarget {
  images: readonly BuiltImage[];
  /** Snapshotter to unpack into; default `overlayfs` (the CRI default), so CreateContainer finds it unpacked. */
  snapshotter?: string;
}

export interface ImportedImage {
  ref: string;
  manifestDigest: string;
  configDigest: string;
}

export interface ContainerdImage {
  ref: string;
  mediaType: string;
  digest: string;
}

/**
 * `ctr images import` of each image's OCI archive, unpacked into the snapshotter, and checks that containerd
 * now lists each reference at the built manifest digest. Returns the references and digests.
 */
export async function importImages(opts: ImportOptions): Promise<ImportedImage[]> {
  const namespace = opts.namespace ?? "k8s.io";
  const snapshotter = opts.snapshotter ?? "overlayfs";
  for (const image of opts.images) {
    const args = ["--address", opts.address, "--namespace", namespace, "images", "import"];
    await run("ctr", [...args, "--snapshotter", snapshotter, "--", image.archivePath], ctrOptions(opts.signal));
  }
  const listed = await listContainerdImages(opts);
  return opts.images.map((image) => {
    const found = listed.find((l) => l.ref === image.ref);
    if (found === undefined) {
      throw new DeckhandError("NotFound", `ctr images import of ${image.archivePath} did not create ${image.ref}`);
    }
    if (found.digest !== image.manifestDigest) {
      const message = `containerd has ${image.ref} at ${found.digest}, the build made ${image.manifestDigest}`;
      throw new DeckhandError("Internal", message);
    }
    return { ref: image.ref, manifestDigest: image.manifestDigest, configDigest: image.configDigest };
  });
}

/** References and target digests of the images containerd has (`ctr images ls`). */
export async function listContainerdImages(opts: ContainerdTarget): Promise<ContainerdImage[]> {
  const { stdout } = await run(
    "ctr",
    ["--address", opts.address, "--namespace", opts.namespace ?? "k8s.io", "images", "ls"],
    ctrOptions(opts.signal),
  );
  const out: ContainerdImage[] = [];
  for (const line of stdout.split("\n").slice(1)) {
    const [ref, mediaType, digest] = line.trim().split(/\s+/);
    if (ref && mediaType && digest) out.push({ ref, mediaType, digest });
  }
  return out;
}

/** ctr reads CONTAINERD_* variables for defaults; give it none so only the flags count. */
function ctrOptions(signal: AbortSignal | undefined): RunOptions {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("CONTAINERD_")) env[k] = v;
  return { env, timeoutMs: 60_000, ...withSignal(signal) };
}

/**
 * A copy of `base` as `ref` whose config also carries `labels`: a distinct image (its own config and manifest
 * digests) sharing the base's layers, for tests that need an image the runtime does not have yet. The layout
 * and its archive go under `dir`.
 */
export async function variantImage(base: BuiltImage, ref: string, labels: Record<string, string>, dir: string): Promise<BuiltImage> {
  const blob = (digest: string): string => path.join(base.layoutDir, "blobs", "sha256", digest.replace(/^sha256:/, ""));
  const manifest = JSON.parse(await readFile(blob(base.manifestDigest), "utf8")) as { config: Descriptor; layers: Descriptor[] } & Record<string, unknown>;
  const config = JSON.parse(await readFile(blob(manifest.config.digest), "utf8")) as { config?: { Labels?: Record<string, string> } } & Record<string, unknown>;
  const layoutDir = path.join(dir, "layout");
  const blobs = path.join(layoutDir, "blobs", "sha256");
  await mkdir(blobs, { recursive: true });
  const put = async (bytes: Buffer): Promise<{ digest: string; size: number }> => {
    const hex = createHash("sha256").update(bytes).digest("hex");
    await writeFile(path.join(blobs, hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  for (const layer of manifest.layers) await copyFile(blob(layer.digest), path.join(blobs, layer.digest.replace(/^sha256:/, "")));
  const newConfig = await put(Buffer.from(JSON.stringify({ ...config, config: { ...config.config, Labels: { ...config.config?.Labels, ...labels } } })));
  const newManifest = await put(Buffer.from(JSON.stringify({ ...manifest, config: { ...manifest.config, ...newConfig } })));
  await writeFile(path.join(layoutDir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...newManifest, annotations: { "org.opencontainers.image.ref.name": ref } }],
  };
  await writeFile(path.join(layoutDir, "index.json"), JSON.stringify(index));
  const archivePath = path.join(dir, "image.oci.tar");
  await run("tar", ["-C", layoutDir, "-cf", archivePath, "."], { timeoutMs: 30_000 });
  return { ref, layoutDir, archivePath, manifestDigest: newManifest.digest, configDigest: newConfig.digest };
}
