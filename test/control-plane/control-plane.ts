/**
 * The local control plane, in one object: PKI, store, REST semantics, HTTPS server and the controllers a
 * node needs (EndpointSlices, node IPAM, binder, namespaces). Test and demo infrastructure only.
 *
 *   const cp = new ControlPlane({ dir });        // no I/O
 *   await cp.start();                            // PKI, admin.kubeconfig, listening on 127.0.0.1:<port>
 *   const kc = cp.adminKubeConfig();             // @kubernetes/client-node KubeConfig
 *   const nodeKubeconfig = await cp.mintNodeKubeconfig("node-1");
 *   await cp.close();
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { createLogger } from "../../src-shared/log.ts";
import { Store } from "./store.ts";
import { Api, ADMIN, resource } from "./api.ts";
import { Authorizer, type UserInfo } from "./authz.ts";
import { Authenticator } from "./authn.ts";
import { TokenSigner } from "./tokens.ts";
import { createCA, issueCert, loadCA, type CertificateAuthority, type KeyAndCert } from "./pki.ts";
import { ApiServer } from "./server.ts";
import { loadSchemas } from "./validation.ts";
import { firstServiceIP, parseCidr } from "./allocators.ts";
import { EndpointSliceController } from "./controllers/endpointslices.ts";
import { NodeIpamController } from "./controllers/nodeipam.ts";
import { BinderController } from "./controllers/binder.ts";
import { NodeLifecycleController, type NodeLifecycleOptions } from "./controllers/nodelifecycle.ts";
import { TaintEvictionController } from "./controllers/taint-eviction.ts";
import { NamespaceController } from "./controllers/namespaces.ts";
import type { Controller } from "./controllers/base.ts";
import { RESOURCES, apiVersionOf } from "./registry.ts";
import { KubeletProxy, type ClusterDialer } from "./kubelet-proxy.ts";
import { MetricsScraper } from "./metrics-api.ts";

export const KUBERNETES_VERSION = { major: "1", minor: "33", gitVersion: "v1.33.0" } as const;

export interface ControlPlaneOptions {
  /** Folder for admin.kubeconfig, pki/ and minted node kubeconfigs. Created if missing. */
  dir: string;
  /** Address to serve on: 127.0.0.1 (default) or an address inside a network namespace the caller made. */
  host?: string;
  /** Port; 0 (default) picks a free one. */
  port?: number;
  serviceCIDR?: string;
  clusterCIDR?: string;
  nodeCIDRMaskSize?: number;
  nodePortRange?: readonly [number, number];
  /** Changes kept for watch replay; a watch from an older resourceVersion gets 410 Gone. */
  historyLimit?: number;
  bookmarkIntervalMs?: number;
  defaultWatchTimeoutSeconds?: number;
  maxWatchBacklogBytes?: number;
  /**
   * How to reach kubelets (kube-apiserver's egress selector, `cluster` context): a TCP connection to
   * host:port on the nodes' network. Direct by default.
   */
  kubeletDialer?: ClusterDialer;
  /** --kubelet-preferred-address-types (upstream's order by default). */
  kubeletPreferredAddressTypes?: string[];
  /** The shortest TokenRequest lifetime (default 600 s as kube-apiserver); tests of token refresh lower it. */
  minTokenExpirationSeconds?: number;
  /**
   * Serve metrics.k8s.io (`kubectl top`) as metrics-server does, scraping every kubelet's /metrics/resource at
   * this interval (metrics-server's --metric-resolution, 15 s there). Off when unset.
   */
  metricsResolutionMs?: number;
  /** Controllers to run (all by default). */
  controllers?: { endpointSlices?: boolean; nodeIpam?: boolean; binder?: boolean; namespaces?: boolean; nodeLifecycle?: boolean; taintEviction?: boolean };
  /** The node lifecycle controller's periods (kube-controller-manager's defaults: 5 s, 50 s, 60 s). */
  nodeLifecycle?: NodeLifecycleOptions;
  log?: Logger;
}

export interface Credentials {
  kubeconfigPath: string;
  cert: KeyAndCert;
}

function yamlString(s: string): string {
  return JSON.stringify(s);
}

/** A kubeconfig with embedded CA and either a client certificate or a token. */
export function renderKubeconfig(o: { server: string; caPem: string; user: string; cert?: KeyAndCert; token?: string; cluster?: string }): string {
  const cluster = o.cluster ?? "deckhand";
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const userLines =
    o.cert !== undefined
      ? [`    client-certificate-data: ${b64(o.cert.certPem)}`, `    client-key-data: ${b64(o.cert.keyPem)}`]
      : [`    token: ${yamlString(o.token ?? "")}`];
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    `- name: ${yamlString(cluster)}`,
    "  cluster:",
    `    server: ${yamlString(o.server)}`,
    `    certificate-authority-data: ${b64(o.caPem)}`,
    "contexts:",
    `- name: ${yamlString(`${o.user}@${cluster}`)}`,
    "  context:",
    `    cluster: ${yamlString(cluster)}`,
    `    user: ${yamlString(o.user)}`,
    `current-context: ${yamlString(`${o.user}@${cluster}`)}`,
    "preferences: {}",
    "users:",
    `- name: ${yamlString(o.user)}`,
    "  user:",
    ...userLines,
    "",
  ].join("\n");
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

export class ControlPlane {
  readonly options: Readonly<ControlPlaneOptions>;
  readonly log: Logger;
  private started: { api: Api; store: Store; server: ApiServer; ca: CertificateAuthority; authn: Authenticator; controllers: Controller[]; adminToken: string; scraper?: MetricsScraper } | undefined;

  constructor(options: ControlPlaneOptions) {
    this.options = options;
    this.log = (options.log ?? createLogger({ name: "control-plane" })).child({ component: "control-plane" });
  }

  private get s(): NonNullable<ControlPlane["started"]> {
    if (this.started === undefined) throw new Error("control plane not started");
    return this.started;
  }

  get api(): Api {
    return this.s.api;
  }

  get store(): Store {
    return this.s.store;
  }

  get host(): string {
    return this.options.host ?? "127.0.0.1";
  }

  get port(): number {
    return this.s.server.port;
  }

  /** https://127.0.0.1:<port> */
  get url(): string {
    const h = isIP(this.host) === 6 ? `[${this.host}]` : this.host;
    return `https://${h}:${this.port}`;
  }

  get adminKubeconfigPath(): string {
    return join(this.options.dir, "admin.kubeconfig");
  }

  get caPem(): string {
    return this.s.ca.certPem;
  }

  /** A static bearer token for system:admin (group system:masters). */
  get adminToken(): string {
    return this.s.adminToken;
  }

  get activeWatches(): number {
    return this.s.server.activeWatches;
  }

  /** Streaming upgrades served, by way and code ("spdy 101", "websocket-translated 200", "websocket-tunneled 101"). */
  get streamRequests(): ReadonlyMap<string, number> {
    return this.s.server.streamRequests;
  }

  /** What each open watch watches: `<resource> <namespace> <fieldSelector>`. */
  get openWatches(): string[] {
    return this.s.server.openWatches;
  }

  async start(signal?: AbortSignal): Promise<void> {
    if (this.started !== undefined) return;
    const o = this.options;
    const dir = o.dir;
    const pki = join(dir, "pki");
    await mkdir(pki, { recursive: true });
    await loadSchemas();

    const caKey = await readIfExists(join(pki, "ca.key"));
    const caCert = await readIfExists(join(pki, "ca.crt"));
    const ca = caKey !== undefined && caCert !== undefined ? await loadCA(caKey, caCert) : await createCA();
    if (caKey === undefined || caCert === undefined) {
      await writeFile(join(pki, "ca.key"), ca.keyPem, { mode: 0o600 });
      await writeFile(join(pki, "ca.crt"), ca.certPem);
    }
    const saKey = await readIfExists(join(pki, "sa.key"));
    const issuer = "https://kubernetes.default.svc.cluster.local";
    const signer = new TokenSigner(saKey === undefined ? { issuer } : { issuer, privateKeyPem: saKey });
    if (saKey === undefined) await writeFile(join(pki, "sa.key"), signer.privateKeyPem(), { mode: 0o600 });

    const serviceCIDR = o.serviceCIDR ?? "10.96.0.0/12";
    const kubernetesIP = firstServiceIP(parseCidr(serviceCIDR));
    const host = this.host;
    const ips = [...new Set([host, "127.0.0.1", kubernetesIP].filter((x) => isIP(x) !== 0 && x !== "0.0.0.0"))];
    const serving = await issueCert(ca, {
      commonName: "kube-apiserver",
      server: true,
      client: false,
      ips,
      dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
    });
    await writeFile(join(pki, "apiserver.crt"), serving.certPem);
    await writeFile(join(pki, "apiserver.key"), serving.keyPem, { mode: 0o600 });

    const store = new Store(o.historyLimit === undefined ? {} : { historyLimit: o.historyLimit });
    const authorizer = new Authorizer(store);
    const audiences = [issuer];
    const api = new Api({
      store,
      authorizer,
      tokens: signer,
      apiAudiences: audiences,
      serviceCIDR,
      nodePortRange: o.nodePortRange ?? [30000, 32767],
      ...(o.minTokenExpirationSeconds !== undefined ? { minTokenExpirationSeconds: o.minTokenExpirationSeconds } : {}),
    });
    const authn = new Authenticator(store, signer, audiences);
    api.tokenAuthenticator = (token, aud) => authn.authenticateToken(token, aud);
    const adminToken = randomBytes(24).toString("hex");
    authn.addStaticToken(adminToken, { username: "system:admin", groups: ["system:masters"] });

    // --kubelet-client-certificate: kubeadm's apiserver-kubelet-client identity.
    const kubeletClient = await issueCert(ca, { commonName: "kube-apiserver-kubelet-client", organizations: ["system:masters"] });
    const kubelet = new KubeletProxy({
      store,
      clientCert: kubeletClient,
      ...(o.kubeletDialer === undefined ? {} : { dial: o.kubeletDialer }),
      ...(o.kubeletPreferredAddressTypes === undefined ? {} : { preferredAddressTypes: o.kubeletPreferredAddressTypes }),
    });
    const scraper =
      o.metricsResolutionMs === undefined ? undefined : new MetricsScraper({ store, get: (node, path, sig) => kubelet.get(node, path, sig), resolutionMs: o.metricsResolutionMs, log: this.log.child({ component: "metrics-server" }) });
    const server = new ApiServer({
      api,
      kubelet,
      ...(scraper === undefined ? {} : { metrics: scraper.metrics }),
      authenticator: authn,
      log: this.log.child({ component: "apiserver" }),
      host,
      port: o.port ?? 0,
      tls: { key: serving.keyPem, cert: serving.certPem, ca: ca.certPem },
      version: {
        ...KUBERNETES_VERSION,
        gitCommit: "0000000000000000000000000000000000000000",
        gitTreeState: "clean",
        buildDate: "2025-01-01T00:00:00Z",
        goVersion: "go1.24.0",
        compiler: "gc",
        platform: "linux/amd64",
      },
      bookmarkIntervalMs: o.bookmarkIntervalMs ?? 60_000,
      defaultWatchTimeoutSeconds: o.defaultWatchTimeoutSeconds ?? 1800,
      maxWatchBacklogBytes: o.maxWatchBacklogBytes ?? 64 * 1024 * 1024,
    });
    await server.start();
    scraper?.start();
    this.started = { api, store, server, ca, authn, controllers: [], adminToken, ...(scraper === undefined ? {} : { scraper }) };

    this.bootstrap(kubernetesIP, server.port);
    const admin = await issueCert(ca, { commonName: "kubernetes-admin", organizations: ["system:masters"] });
    await writeFile(this.adminKubeconfigPath, renderKubeconfig({ server: this.url, caPem: ca.certPem, user: "kubernetes-admin", cert: admin }), { mode: 0o600 });

    const c = o.controllers ?? {};
    const clog = (name: string) => this.log.child({ component: name });
    const controllers: Controller[] = [];
    if (c.namespaces !== false) controllers.push(new NamespaceController(api, clog("namespace-controller"), ca.certPem));
    if (c.endpointSlices !== false) controllers.push(new EndpointSliceController(api, clog("endpointslice-controller")));
    if (c.nodeIpam !== false) controllers.push(new NodeIpamController(api, clog("node-ipam-controller"), o.clusterCIDR ?? "10.244.0.0/16", o.nodeCIDRMaskSize ?? 24));
    if (c.nodeLifecycle !== false) controllers.push(new NodeLifecycleController(api, clog("node-lifecycle-controller"), o.nodeLifecycle));
    if (c.taintEviction !== false) controllers.push(new TaintEvictionController(api, clog("taint-eviction-controller")));
    if (c.binder !== false) controllers.push(new BinderController(api, clog("binder")));
    for (const ctl of controllers) ctl.start();
    this.started.controllers = controllers;
    signal?.addEventListener("abort", () => void this.close(), { once: true });
    this.log.info(
      {
        url: this.url,
        kubeconfig: this.adminKubeconfigPath,
        serviceCIDR,
        clusterCIDR: o.clusterCIDR ?? "10.244.0.0/16",
        resources: RESOURCES.map((r) => `${r.plural}.${apiVersionOf(r)}`),
      },
      "control plane serving",
    );
  }

  private bootstrap(kubernetesIP: string, port: number): void {
    const api = this.s.api;
    const nsR = resource("", "namespaces");
    for (const ns of ["default", "kube-system", "kube-public", "kube-node-lease"]) {
      if (api.store.get(nsR.storage, undefined, ns) === undefined) api.create(ADMIN, nsR, "", { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
    }
    // RBAC's bootstrap cluster-admin, bound to system:masters.
    const crR = resource("rbac.authorization.k8s.io", "clusterroles");
    if (api.store.get(crR.storage, undefined, "cluster-admin") === undefined) {
      api.create(ADMIN, crR, "", {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        metadata: { name: "cluster-admin", labels: { "kubernetes.io/bootstrapping": "rbac-defaults" } },
        rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }, { nonResourceURLs: ["*"], verbs: ["*"] }],
      });
      api.create(ADMIN, resource("rbac.authorization.k8s.io", "clusterrolebindings"), "", {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: "cluster-admin", labels: { "kubernetes.io/bootstrapping": "rbac-defaults" } },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "system:masters" }],
      });
    }
    const svcR = resource("", "services");
    api.create(ADMIN, svcR, "default", {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "kubernetes", namespace: "default", labels: { component: "apiserver", provider: "kubernetes" } },
      spec: { type: "ClusterIP", clusterIP: kubernetesIP, ports: [{ name: "https", port: 443, protocol: "TCP", targetPort: port }], sessionAffinity: "None" },
    });
    const epsR = resource("discovery.k8s.io", "endpointslices");
    const host = this.host === "0.0.0.0" ? "127.0.0.1" : this.host;
    api.create(ADMIN, epsR, "default", {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: "kubernetes", namespace: "default", labels: { "kubernetes.io/service-name": "kubernetes" } },
      addressType: isIP(host) === 6 ? "IPv6" : "IPv4",
      endpoints: [{ addresses: [host], conditions: { ready: true, serving: true, terminating: false } }],
      ports: [{ name: "https", port, protocol: "TCP" }],
    });
  }

  /** A client-node KubeConfig for the admin (system:masters). */
  adminKubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.adminKubeconfigPath);
    return kc;
  }

  /** Issues a client certificate for any identity (CN = user, O = groups). */
  async issueClientCert(user: string, groups: string[]): Promise<KeyAndCert> {
    return issueCert(this.s.ca, { commonName: user, organizations: groups });
  }

  /**
   * Writes a kubeconfig for node `name` (user `system:node:<name>`, group `system:nodes`), by default to
   * `<dir>/nodes/<name>.kubeconfig`, and returns its path.
   */
  async mintNodeKubeconfig(name: string, path?: string): Promise<string> {
    const cert = await this.issueClientCert(`system:node:${name}`, ["system:nodes"]);
    const out = path ?? join(this.options.dir, "nodes", `${name}.kubeconfig`);
    await mkdir(join(out, ".."), { recursive: true });
    await writeFile(out, renderKubeconfig({ server: this.url, caPem: this.s.ca.certPem, user: `system:node:${name}`, cert }), { mode: 0o600 });
    return out;
  }

  /** Writes a kubeconfig for an arbitrary certificate identity and returns its path. */
  async mintKubeconfig(user: string, groups: string[], path: string): Promise<string> {
    const cert = await this.issueClientCert(user, groups);
    await mkdir(join(path, ".."), { recursive: true });
    await writeFile(path, renderKubeconfig({ server: this.url, caPem: this.s.ca.certPem, user, cert }), { mode: 0o600 });
    return path;
  }

  /** A client-node KubeConfig for node `name`. */
  async nodeKubeConfig(name: string): Promise<KubeConfig> {
    const kc = new KubeConfig();
    kc.loadFromFile(await this.mintNodeKubeconfig(name));
    return kc;
  }

  /** Adds a static bearer token for a user (like a --token-auth-file line). */
  addToken(token: string, user: UserInfo): void {
    this.s.authn.addStaticToken(token, user);
  }

  /** Forgets the watch history: every watch from an older resourceVersion now gets 410 Gone. */
  compact(): void {
    this.s.store.compact();
  }

  async close(): Promise<void> {
    const s = this.started;
    if (s === undefined) return;
    this.started = undefined;
    for (const c of s.controllers) c.close();
    await s.scraper?.close();
    await s.server.close();
    this.log.info("control plane stopped");
  }
}
