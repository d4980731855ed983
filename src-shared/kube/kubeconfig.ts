/**
 * kubeconfig loading for the node agents: the current context's server, CA and credentials (client
 * certificate and key, inline or as files; a bearer token or token file; an exec credential plugin).
 *
 * Why not @kubernetes/client-node's KubeConfig: importing that package costs a long-running agent about 80 MiB
 * of resident memory (measured here: 45 MiB for bare Node, 127 MiB with it loaded), for a file format this
 * small. The agents keep using its types; tests keep using the library itself.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { execFile } from "node:child_process";
import yaml from "js-yaml";
import { DeckhandError, errorMessage } from "../errors.ts";

interface NamedCluster {
  name: string;
  cluster: { server?: string; "certificate-authority"?: string; "certificate-authority-data"?: string; "insecure-skip-tls-verify"?: boolean; "tls-server-name"?: string };
}
interface ExecConfig {
  command: string;
  args?: string[];
  env?: { name: string; value: string }[] | null;
  apiVersion?: string;
}
interface NamedUser {
  name: string;
  user: {
    "client-certificate"?: string;
    "client-certificate-data"?: string;
    "client-key"?: string;
    "client-key-data"?: string;
    token?: string;
    tokenFile?: string;
    exec?: ExecConfig;
  };
}
interface KubeconfigFile {
  clusters?: NamedCluster[];
  users?: NamedUser[];
  contexts?: { name: string; context: { cluster: string; user: string; namespace?: string } }[];
  "current-context"?: string;
}

/** What a request needs to reach and authenticate to the API server. */
export interface ClusterCredentials {
  server: URL;
  ca?: Buffer;
  insecureSkipTLSVerify: boolean;
  serverName?: string;
  cert?: Buffer;
  key?: Buffer;
  /** Current bearer token (static, re-read from tokenFile, or from the exec plugin, refreshed when due). */
  token(): Promise<string | undefined>;
  /** Client certificate from an exec plugin, if it gives one. */
  execCertificate?(): Promise<{ cert: Buffer; key: Buffer } | undefined>;
  /** Name of the context in use, for messages. */
  context: string;
}

function bad(path: string, what: string): never {
  throw new DeckhandError("InvalidConfig", `kubeconfig ${path}: ${what}`);
}

function fileOrData(base: string, path: string, file: string | undefined, data: string | undefined, field: string): Buffer | undefined {
  if (data) return Buffer.from(data, "base64");
  if (!file) return undefined;
  const full = isAbsolute(file) ? file : resolve(base, file);
  try {
    return readFileSync(full);
  } catch (err) {
    return bad(path, `${field}: cannot read ${full}: ${errorMessage(err)}`);
  }
}

/** Parses a kubeconfig's text (YAML or JSON); relative file paths resolve against `path`'s folder. */
export function parseKubeconfig(text: string, path: string, contextName?: string): ClusterCredentials {
  let doc: KubeconfigFile;
  try {
    doc = (yaml.load(text) ?? {});
  } catch (err) {
    return bad(path, `not YAML or JSON: ${errorMessage(err)}`);
  }
  const base = dirname(path);
  const ctxName = contextName ?? doc["current-context"];
  if (!ctxName) bad(path, "no current-context");
  const ctx = doc.contexts?.find((c) => c.name === ctxName)?.context;
  if (!ctx) bad(path, `current-context "${ctxName}" is not among contexts`);
  const cluster = doc.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster) bad(path, `context "${ctxName}" names cluster "${ctx.cluster}", which is not among clusters`);
  if (!cluster.server) bad(path, `cluster "${ctx.cluster}": server is empty`);
  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch {
    return bad(path, `cluster "${ctx.cluster}": server: not a URL: ${cluster.server}`);
  }
  const user = doc.users?.find((u) => u.name === ctx.user)?.user ?? {};
  const staticToken = user.token;
  const tokenFile = user.tokenFile ? (isAbsolute(user.tokenFile) ? user.tokenFile : resolve(base, user.tokenFile)) : undefined;
  const exec = user.exec ? new ExecCredentials(user.exec, base) : undefined;
  // A token file is re-read at most once a minute, as client-go does: projected tokens rotate, but not so
  // often that every request should touch the disk.
  let fileToken: { value: string; readAt: number } | undefined;
  const ca = fileOrData(base, path, cluster["certificate-authority"], cluster["certificate-authority-data"], "certificate-authority");
  const cert = fileOrData(base, path, user["client-certificate"], user["client-certificate-data"], "client-certificate");
  const key = fileOrData(base, path, user["client-key"], user["client-key-data"], "client-key");
  return {
    server,
    ...(ca ? { ca } : {}),
    insecureSkipTLSVerify: cluster["insecure-skip-tls-verify"] === true,
    ...(cluster["tls-server-name"] ? { serverName: cluster["tls-server-name"] } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    context: ctxName,
    token: async () => {
      if (staticToken) return staticToken;
      if (tokenFile) {
        if (!fileToken || Date.now() - fileToken.readAt > 60_000) fileToken = { value: readFileSync(tokenFile, "utf8").trim(), readAt: Date.now() };
        return fileToken.value;
      }
      return exec ? (await exec.get()).token : undefined;
    },
    ...(exec ? { execCertificate: async () => (await exec.get()).certificate } : {}),
  };
}

export function loadKubeconfig(path: string, contextName?: string): ClusterCredentials {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    return bad(path, `cannot read: ${errorMessage(err)}`);
  }
  return parseKubeconfig(text, path, contextName);
}

interface ExecCredential {
  status?: { token?: string; clientCertificateData?: string; clientKeyData?: string; expirationTimestamp?: string };
}

/** client.authentication.k8s.io exec plugins: run the command, cache its credential until it expires. */
class ExecCredentials {
  private readonly config: ExecConfig;
  private readonly cwd: string;
  private cached: { token: string | undefined; certificate: { cert: Buffer; key: Buffer } | undefined; until: number } | undefined;
  private running: Promise<NonNullable<ExecCredentials["cached"]>> | undefined;

  constructor(config: ExecConfig, cwd: string) {
    this.config = config;
    this.cwd = cwd;
  }

  async get(): Promise<NonNullable<ExecCredentials["cached"]>> {
    if (this.cached && Date.now() < this.cached.until) return this.cached;
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    this.cached = await this.running;
    return this.cached;
  }

  private run(): Promise<NonNullable<ExecCredentials["cached"]>> {
    const apiVersion = this.config.apiVersion ?? "client.authentication.k8s.io/v1";
    const env: NodeJS.ProcessEnv = { ...process.env, KUBERNETES_EXEC_INFO: JSON.stringify({ apiVersion, kind: "ExecCredential", spec: { interactive: false } }) };
    for (const e of this.config.env ?? []) env[e.name] = e.value;
    return new Promise((resolvePromise, reject) => {
      execFile(this.config.command, this.config.args ?? [], { env, cwd: this.cwd, timeout: 60_000 }, (err, stdout, stderr) => {
        if (err) {
          reject(new DeckhandError("Unauthenticated", `kubeconfig exec plugin ${this.config.command}: ${stderr.trim() || err.message}`));
          return;
        }
        try {
          const cred = JSON.parse(stdout) as ExecCredential;
          const s = cred.status ?? {};
          const until = s.expirationTimestamp ? Date.parse(s.expirationTimestamp) - 10_000 : Number.POSITIVE_INFINITY;
          resolvePromise({
            token: s.token,
            certificate: s.clientCertificateData && s.clientKeyData ? { cert: Buffer.from(s.clientCertificateData), key: Buffer.from(s.clientKeyData) } : undefined,
            until,
          });
        } catch (e) {
          reject(new DeckhandError("Unauthenticated", `kubeconfig exec plugin ${this.config.command}: its output is not an ExecCredential: ${errorMessage(e)}`));
        }
      });
    });
  }
}
