/**
 * A private registry for tests of real pulls: Debian's `docker-registry` (CNCF distribution 2.8) on
 * 127.0.0.1, with TLS from a throwaway CA and htpasswd (bcrypt) basic auth, everything in one temp dir.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { DeckhandError, errorMessage } from "../../src-shared/errors.ts";
import { run, type RunOptions } from "../../src-shared/exec.ts";
import type { BuiltImage } from "./images.ts";
import { eventually } from "./wait.ts";

export interface PrivateRegistryOptions {
  /** Default `deckhand`. */
  username?: string;
  /** Default: random. */
  password?: string;
  /** Parent of the temp dir; default the OS temp dir. */
  tmpParent?: string;
  /** How long `start` waits for the registry to answer; default 15 s. */
  startTimeoutMs?: number;
  /**
   * Serve inside this network namespace (e.g. a sandbox node's `/run/netns/dh-...`) on its 127.0.0.1, so that
   * node's containerd can pull from it; pushes and inspections then run inside it too. Default: the host's.
   */
  netnsPath?: string;
}

const START_ATTEMPTS = 5;

export class PrivateRegistry {
  readonly username: string;
  readonly password: string;
  readonly #tmpParent: string;
  readonly #startTimeoutMs: number;
  readonly #netnsPath: string | undefined;
  #dir: string | undefined;
  #port: number | undefined;
  #caPem: string | undefined;
  #child: ChildProcess | undefined;
  #exited: Promise<void> | undefined;

  /** Does no I/O. */
  constructor(options: PrivateRegistryOptions = {}) {
    this.username = options.username ?? "deckhand";
    this.password = options.password ?? randomBytes(12).toString("base64url");
    this.#tmpParent = options.tmpParent ?? tmpdir();
    this.#startTimeoutMs = options.startTimeoutMs ?? 15_000;
    this.#netnsPath = options.netnsPath;
  }

  /** argv that runs `file args` in the registry's network namespace. */
  #inNetns(file: string, args: readonly string[]): [string, string[]] {
    return this.#netnsPath === undefined ? [file, [...args]] : ["nsenter", [`--net=${this.#netnsPath}`, file, ...args]];
  }

  /** `127.0.0.1:<port>`, the registry host part of image references. */
  get host(): string {
    return `127.0.0.1:${this.#need(this.#port, "host")}`;
  }

  /** The temp dir that holds everything (certs, htpasswd, config, storage, log). */
  get dir(): string {
    return this.#need(this.#dir, "dir");
  }

  /** The CA that signed the server certificate, alone in its directory (usable as a `--cert-dir`). */
  get caCertPath(): string {
    return path.join(this.certDir, "ca.crt");
  }

  get caCertPem(): string {
    return this.#need(this.#caPem, "caCertPem");
  }

  /** Directory with `ca.crt` only: skopeo's `--cert-dir`/`--dest-cert-dir`, Docker's `certs.d/<host>` layout. */
  get certDir(): string {
    return path.join(this.dir, "certs");
  }

  /**
   * containerd `certs.d`-style hosts directory: `<hostsDir>/127.0.0.1:<port>/hosts.toml` trusts the CA.
   * Point `[plugins."io.containerd.grpc.v1.cri".registry] config_path` (or `ctr --hosts-dir`) at it.
   */
  get hostsDir(): string {
    return path.join(this.dir, "certs.d");
  }

  /** The registry's stdout and stderr. */
  get logPath(): string {
    return path.join(this.dir, "registry.log");
  }

  /** `<host>/<repoTag>`, the reference to pull a pushed image by. */
  ref(repoTag: string): string {
    return `${this.host}/${repoTag}`;
  }

  /**
   * The CRI plugin section for a containerd 1.6 config that makes it trust this registry. With
   * `includeAuth`, containerd also sends the credentials when the pull request carries none (the
   * deprecated `configs.<host>.auth`, still honoured next to `config_path` in 1.6).
   */
  criRegistryToml(options: { includeAuth?: boolean } = {}): string {
    const lines = [`[plugins."io.containerd.grpc.v1.cri".registry]`, `  config_path = ${tomlString(this.hostsDir)}`];
    if (options.includeAuth) {
      lines.push(
        `[plugins."io.containerd.grpc.v1.cri".registry.configs.${tomlString(this.host)}.auth]`,
        `  username = ${tomlString(this.username)}`,
        `  password = ${tomlString(this.password)}`,
      );
    }
    return `${lines.join("\n")}\n`;
  }

  /** Creates the certs, htpasswd and config, spawns the registry and waits until `/v2/` answers 401. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#dir !== undefined) throw new DeckhandError("FailedPrecondition", "registry already started");
    this.#dir = await mkdtemp(path.join(this.#tmpParent, "deckhand-registry-"));
    try {
      await this.#prepare(signal);
      for (let attempt = 1; ; attempt++) {
        // A fresh namespace of our own has every port free; the host's needs a probe.
        const port = this.#netnsPath === undefined ? await freePort() : 5000 + attempt;
        try {
          await this.#spawn(port, signal);
          return;
        } catch (err) {
          await this.#killChild();
          const log = await readFile(this.logPath, "utf8").catch(() => "");
          // Someone else took the port between our probe and the registry's bind: take another.
          if (attempt < START_ATTEMPTS && /address already in use/i.test(log) && !signal?.aborted) continue;
          const message = `docker-registry did not start: ${errorMessage(err)}\n${log.slice(-2000)}`;
          throw new DeckhandError("Unavailable", message, { cause: err });
        }
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /**
   * Pushes an OCI layout into the registry as `<host>/<repoTag>` with skopeo, verifying the server
   * certificate against the test CA. The manifest is copied unchanged, so its digest stays the build's.
   */
  async push(image: BuiltImage, repoTag: string, signal?: AbortSignal): Promise<{ ref: string; digest: string }> {
    const digestFile = path.join(this.dir, `push-${randomBytes(4).toString("hex")}.digest`);
    await run(
      ...this.#inNetns("skopeo", [
        ...this.#skopeoGlobal(),
        "copy",
        "--quiet",
        "--dest-authfile",
        this.#authFile,
        "--dest-cert-dir",
        this.certDir,
        "--digestfile",
        digestFile,
        `oci:${image.layoutDir}:${image.ref}`,
        `docker://${this.ref(repoTag)}`,
      ]),
      this.#skopeoOptions(signal),
    );
    const digest = (await readFile(digestFile, "utf8")).trim();
    await rm(digestFile, { force: true });
    return { ref: this.ref(repoTag), digest };
  }

  /** `skopeo inspect` of `<host>/<repoTag>` with the credentials: the manifest digest the registry serves. */
  async inspectDigest(repoTag: string, signal?: AbortSignal): Promise<string> {
    const { stdout } = await run(
      ...this.#inNetns("skopeo", [
        ...this.#skopeoGlobal(),
        "inspect",
        "--authfile",
        this.#authFile,
        "--cert-dir",
        this.certDir,
        `docker://${this.ref(repoTag)}`,
      ]),
      this.#skopeoOptions(signal),
    );
    const parsed = JSON.parse(stdout) as { Digest?: unknown };
    if (typeof parsed.Digest !== "string") {
      throw new DeckhandError("Internal", `skopeo inspect gave no Digest: ${stdout.slice(0, 500)}`);
    }
    return parsed.Digest;
  }

  /** Kills the registry (its own child, by PID) and removes the temp dir. Idempotent. */
  async stop(): Promise<void> {
    await this.#killChild();
    const dir = this.#dir;
    this.#dir = undefined;
    this.#port = undefined;
    this.#caPem = undefined;
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }

  /** The PID of the running registry, for tests that check it is gone after `stop`. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  get #authFile(): string {
    return path.join(this.dir, "auth.json");
  }

  async #prepare(signal: AbortSignal | undefined): Promise<void> {
    const dir = this.dir;
    const opts: RunOptions = { timeoutMs: 30_000, ...(signal === undefined ? {} : { signal }) };
    await mkdir(path.join(dir, "pki"));
    await mkdir(this.certDir);
    await mkdir(path.join(dir, "data"));
    const cnf = path.join(dir, "pki", "openssl.cnf");
    await writeFile(
      cnf,
      [
        "[req]",
        "distinguished_name = dn",
        "prompt = no",
        "[dn]",
        "CN = unused",
        "[v3_ca]",
        "basicConstraints = critical,CA:TRUE",
        "keyUsage = critical,keyCertSign,cRLSign",
        "subjectKeyIdentifier = hash",
        "[v3_server]",
        "basicConstraints = critical,CA:FALSE",
        "keyUsage = critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage = serverAuth",
        "subjectAltName = IP:127.0.0.1,DNS:localhost",
        "subjectKeyIdentifier = hash",
        "authorityKeyIdentifier = keyid",
        "",
      ].join("\n"),
    );
    const caKey = path.join(dir, "pki", "ca.key");
    const serverKey = path.join(dir, "pki", "server.key");
    const serverCsr = path.join(dir, "pki", "server.csr");
    const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    const tag = path.basename(dir);
    await run(
      "openssl",
      [
        "req", "-x509", "-config", cnf, "-extensions", "v3_ca", ...ecKey,
        "-keyout", caKey, "-out", this.caCertPath, "-days", "7", "-subj", `/CN=deckhand test registry CA ${tag}`,
      ],
      opts,
    );
    await run(
      "openssl",
      ["req", "-new", "-config", cnf, ...ecKey, "-keyout", serverKey, "-out", serverCsr, "-subj", "/CN=127.0.0.1"],
      opts,
    );
    await run(
      "openssl",
      [
        "x509", "-req", "-in", serverCsr, "-CA", this.caCertPath, "-CAkey", caKey,
        "-set_serial", `0x${randomBytes(8).toString("hex")}`, "-days", "7",
        "-extfile", cnf, "-extensions", "v3_server", "-out", path.join(dir, "pki", "server.crt"),
      ],
      opts,
    );
    this.#caPem = await readFile(this.caCertPath, "utf8");

    const { stdout: htpasswd } = await run("htpasswd", ["-Bbn", this.username, this.password], opts);
    await writeFile(path.join(dir, "htpasswd"), htpasswd);
    await writeFile(path.join(dir, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
    await writeFile(path.join(dir, "registries.conf"), "");
  }

  async #spawn(port: number, signal: AbortSignal | undefined): Promise<void> {
    const dir = this.dir;
    const host = `127.0.0.1:${port}`;
    this.#port = port;
    // JSON is YAML: no quoting surprises with paths.
    const config = {
      version: "0.1",
      log: { level: "info", formatter: "text", accesslog: { disabled: false } },
      storage: {
        filesystem: { rootdirectory: path.join(dir, "data") },
        delete: { enabled: true },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: {
        addr: host,
        secret: randomBytes(16).toString("hex"),
        tls: { certificate: path.join(dir, "pki", "server.crt"), key: path.join(dir, "pki", "server.key") },
        headers: { "X-Content-Type-Options": ["nosniff"] },
      },
      auth: { htpasswd: { realm: "deckhand-test", path: path.join(dir, "htpasswd") } },
    };
    const configPath = path.join(dir, "config.yml");
    await writeFile(configPath, JSON.stringify(config, null, 2));
    // skopeo reads the credentials from this file (not argv, where `ps` and error messages would show them).
    const basic = Buffer.from(`${this.username}:${this.password}`).toString("base64");
    await writeFile(this.#authFile, JSON.stringify({ auths: { [host]: { auth: basic } } }));
    const hostDir = path.join(this.hostsDir, host);
    await mkdir(hostDir, { recursive: true });
    // containerd 1.6.20 rejects a hosts.toml without a [host] table ("invalid `host` tree"), and still appends
    // `server` as a last-resort host with its own settings: both carry the CA, or that one fails with x509.
    await writeFile(
      path.join(hostDir, "hosts.toml"),
      [
        `server = ${tomlString(`https://${host}`)}`,
        `ca = ${tomlString(this.caCertPath)}`,
        "",
        `[host.${tomlString(`https://${host}`)}]`,
        `  capabilities = ["pull", "resolve", "push"]`,
        `  ca = ${tomlString(this.caCertPath)}`,
        "",
      ].join("\n"),
    );

    const logFd = openSync(this.logPath, "w");
    let child: ChildProcess;
    try {
      // setpriv's parent-death signal: a test process that dies without stop() takes its registry with it.
      child = spawn("setpriv", ["--pdeathsig", "KILL", "--", ...this.#inNetns("docker-registry", ["serve", configPath]).flat()], {
        cwd: dir,
        // No REGISTRY_* overrides from our environment.
        env: { PATH: process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin" },
        stdio: ["ignore", logFd, logFd],
      });
    } finally {
      closeSync(logFd);
    }
    this.#child = child;
    let exitInfo: string | undefined;
    this.#exited = new Promise<void>((resolve) => {
      child.once("exit", (code, sig) => {
        exitInfo = `exited with ${code === null ? `signal ${sig ?? "?"}` : `code ${code}`}`;
        resolve();
      });
      child.once("error", (err) => {
        exitInfo = `failed to spawn: ${err.message}`;
        resolve();
      });
    });

    const outcome = await eventually(async () => {
      if (exitInfo !== undefined) return "exited";
      const status = await this.#probe(host, signal);
      if (status !== 401) throw new Error(`status ${status}`);
      return "answering";
    }, { timeoutMs: this.#startTimeoutMs, intervalMs: 50, message: `the registry on ${host} to answer 401 on /v2/`, ...(signal ? { signal } : {}) });
    if (outcome === "exited") throw new Error(`docker-registry ${exitInfo ?? ""}`);
  }

  /** Status of an anonymous `GET /v2/`, verifying the server against the test CA. */
  async #probe(host: string, signal: AbortSignal | undefined): Promise<number> {
    if (this.#netnsPath !== undefined) {
      // Our process cannot enter the namespace: ask the kernel there whether the port listens (the pulls
      // themselves then check TLS and auth).
      const res = await run("nsenter", [`--net=${this.#netnsPath}`, "ss", "-Hltn", `sport = :${this.#port ?? 0}`], {
        allowFailure: true,
        ...(signal === undefined ? {} : { signal }),
      });
      return res.stdout.trim() ? 401 : 0;
    }
    const options: HttpsGetOptions = { ca: this.caCertPem, ...(signal === undefined ? {} : { signal }) };
    const { status } = await httpsGet(`https://${host}/v2/`, options);
    return status;
  }

  async #killChild(): Promise<void> {
    const child = this.#child;
    const exited = this.#exited;
    this.#child = undefined;
    this.#exited = undefined;
    if (child === undefined || exited === undefined) return;
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    } else {
      await exited;
    }
  }

  #skopeoGlobal(): string[] {
    return ["--policy", path.join(this.dir, "policy.json"), "--registries.d", path.join(this.dir, "registries.d")];
  }

  #skopeoOptions(signal: AbortSignal | undefined): RunOptions {
    return {
      timeoutMs: 120_000,
      // Keep skopeo away from the host's registries.conf and auth files.
      env: {
        ...process.env,
        CONTAINERS_REGISTRIES_CONF: path.join(this.dir, "registries.conf"),
        REGISTRY_AUTH_FILE: this.#authFile,
      },
      ...(signal === undefined ? {} : { signal }),
    };
  }

  #need<T>(value: T | undefined, what: string): T {
    if (value === undefined) {
      throw new DeckhandError("FailedPrecondition", `PrivateRegistry.${what}: registry not started`);
    }
    return value;
  }
}

export interface HttpsGetOptions {
  /** PEM of the CA to trust (and only it). */
  ca: string;
  auth?: { username: string; password: string };
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface HttpsGetResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * One GET to a loopback address, trusting only the given CA, with optional basic credentials. Never follows
 * redirects. Exported for tests that check the registry's answers.
 */
export function httpsGet(url: string, options: HttpsGetOptions): Promise<HttpsGetResult> {
  const u = new URL(url);
  if (u.hostname !== "127.0.0.1" && u.hostname !== "localhost" && u.hostname !== "[::1]")
    return Promise.reject(new DeckhandError("InvalidArgument", `httpsGet: ${url} is not a loopback address`));
  const { auth, headers, signal } = options;
  return new Promise((resolve, reject) => {
    const req = request(
      u,
      {
        method: "GET",
        ca: options.ca,
        timeout: 5_000,
        agent: false,
        ...(headers === undefined ? {} : { headers }),
        ...(auth === undefined ? {} : { auth: `${auth.username}:${auth.password}` }),
        ...(signal === undefined ? {} : { signal }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === "object") resolve(address.port);
        else reject(new DeckhandError("Internal", "could not learn the probed port"));
      });
    });
  });
}

function tomlString(s: string): string {
  return JSON.stringify(s); // a JSON string is a valid TOML basic string
}
