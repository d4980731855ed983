/**
 * The kubelet's servers from its configuration and parts: the kubelet API (server.ts) with its serving
 * certificate, client CA, authenticator and authorizer, reading the kubelet's pod manager, status manager,
 * runtime pod cache, PLEG and prober; and the health server. Started by main after the kubelet.
 */
import { readFile } from "node:fs/promises";
import type { V1Pod, V1PodStatus } from "@kubernetes/client-node";
import type { Logger } from "../../src-shared/log.ts";
import { DeckhandError, errorMessage } from "../../src-shared/errors.ts";
import type { KubeClient } from "../../src-shared/kube/client.ts";
import { formatMs } from "../../src-shared/go-duration.ts";
import type { KubeletConfig } from "../config/types.ts";
import { gateEnabled } from "../config/feature-gates.ts";
import type { Kubelet } from "../kubelet.ts";
import { KubeletMetrics } from "../metrics.ts";
import { KubeletAuthenticator } from "./authn.ts";
import { alwaysAllow, WebhookAuthorizer, type KubeletAuthorizer } from "./authz.ts";
import { configz } from "./configz.ts";
import { HealthzServer, KubeletServer, type ServerHost } from "./server.ts";
import { TlsFilesReloader, servingCertificate } from "./serving-cert.ts";
import { tlsSettings } from "./tls-options.ts";
import type { StatsHost } from "./stats-host.ts";

/** The syncloop check: the PLEG (which drives every pod sync) relisted within max(2 × syncFrequency, 5m). */
function healthChecks(kubelet: Kubelet, config: KubeletConfig): () => { name: string; error?: string }[] {
  const limit = Math.max(2 * config.syncFrequency, 300_000);
  return () => {
    const h = kubelet.pleg.healthy();
    const stale = kubelet.pleg.hasRelisted && h.lastSeenMs > limit;
    return [{ name: "ping" }, { name: "log" }, stale ? { name: "syncloop", error: `sync loop last ran ${formatMs(h.lastSeenMs)} ago (limit ${formatMs(limit)})` } : { name: "syncloop" }];
  };
}

function serverHost(kubelet: Kubelet, config: KubeletConfig, metrics: KubeletMetrics): ServerHost {
  const withStatus = (p: V1Pod): V1Pod => {
    const st = kubelet.statusManager.getStatus(p.metadata?.uid ?? "");
    return st === undefined ? p : { ...p, status: st as unknown as V1PodStatus };
  };
  return {
    pods: () => kubelet.podManager.pods().map(withStatus),
    runningPods: () =>
      [...kubelet.pleg.runtimePods().values()]
        .filter((p) => p.running.length > 0)
        .map((p) => {
          const containers = kubelet.podCache.get(p.uid).status.containers.filter((c) => c.state === "running");
          return { metadata: { name: p.name, namespace: p.namespace, uid: p.uid }, spec: { containers: containers.map((c) => ({ name: c.name, image: c.image })) } };
        }),
    configz: () => configz(config),
    metrics: () => metrics.render(),
    probeMetrics: () => kubelet.prober.metrics.render(),
    healthChecks: healthChecks(kubelet, config),
    pod: (namespace, name) => {
      const p = kubelet.podManager.pods().find((x) => x.metadata?.namespace === namespace && x.metadata.name === name);
      return p === undefined ? undefined : withStatus(p);
    },
    containerLogPath: async (id, signal) => {
      const r = await kubelet.cri.runtime("ContainerStatus", { container_id: id, verbose: false }, { signal });
      const path = r.status?.log_path ?? "";
      if (path === "") throw new DeckhandError("NotFound", `container ${id} has no log path`);
      return path;
    },
    streamURL: async (target, o, signal) => {
      const pod = kubelet.podManager.pods().find((x) => x.metadata?.namespace === target.namespace && x.metadata.name === target.pod);
      const uid = pod?.metadata?.uid ?? "";
      if (pod === undefined || (target.uid !== undefined && target.uid !== uid)) throw new DeckhandError("NotFound", "pod does not exist");
      const runtime = kubelet.podCache.get(uid).status;
      if (target.kind === "portForward") {
        const sandbox = runtime.sandboxes.find((s) => s.state === "ready");
        if (sandbox === undefined) throw new DeckhandError("NotFound", `pod ${target.pod} has no running sandbox`);
        return (await kubelet.cri.runtime("PortForward", { pod_sandbox_id: sandbox.id, port: o.ports }, { signal })).url;
      }
      const c = runtime.containers.find((x) => x.name === target.container && x.state === "running");
      if (c === undefined) throw new DeckhandError("NotFound", `container not found (${JSON.stringify(target.container ?? "")})`);
      if (target.kind === "exec") return (await kubelet.cri.runtime("Exec", { container_id: c.id, cmd: o.command, tty: o.tty, stdin: o.stdin, stdout: o.stdout, stderr: o.stderr }, { signal })).url;
      return (await kubelet.cri.runtime("Attach", { container_id: c.id, tty: o.tty, stdin: o.stdin, stdout: o.stdout, stderr: o.stderr }, { signal })).url;
    },
    containerRunning: async (id, signal) => {
      try {
        const r = await kubelet.cri.runtime("ContainerStatus", { container_id: id, verbose: false }, { signal });
        return r.status?.state === "CONTAINER_RUNNING";
      } catch {
        return false;
      }
    },
  };
}

export interface Servers {
  api: KubeletServer | undefined;
  healthz: HealthzServer | undefined;
  close(): Promise<void>;
}

export async function startServers(config: KubeletConfig, kubelet: Kubelet, client: KubeClient | undefined, log: Logger, signal: AbortSignal, stats?: StatsHost): Promise<Servers> {
  let api: KubeletServer | undefined;
  let healthz: HealthzServer | undefined;
  let reloader: TlsFilesReloader | undefined;
  if (config.enableServer) {
    const cert = await servingCertificate({ tlsCertFile: config.tlsCertFile, tlsPrivateKeyFile: config.tlsPrivateKeyFile, certDir: config.certDir, nodeName: config.hostname, log });
    let clientCAPem: string | undefined;
    const caFile = config.authentication.x509.clientCAFile;
    if (caFile !== "") {
      try {
        clientCAPem = await readFile(caFile, "utf8");
      } catch (err) {
        throw new DeckhandError("InvalidConfig", `authentication.x509.clientCAFile ${caFile}: ${errorMessage(err)}`, { cause: err });
      }
    }
    const webhook = config.authentication.webhook;
    if ((webhook.enabled || config.authorization.mode === "Webhook") && client === undefined) {
      throw new DeckhandError("InvalidConfig", "authentication.webhook.enabled and authorization.mode Webhook need an API server (--kubeconfig): disable them to run standalone");
    }
    const authenticator = new KubeletAuthenticator({
      x509: clientCAPem !== undefined,
      webhook: { enabled: webhook.enabled, cacheTTLMs: webhook.cacheTTL, review: client && ((body, s) => client.create({ group: "authentication.k8s.io", version: "v1", resource: "tokenreviews" }, body, s ? { signal: s } : {})) },
      anonymous: config.authentication.anonymous.enabled,
      log,
    });
    const authorizer: KubeletAuthorizer =
      config.authorization.mode === "AlwaysAllow" || client === undefined
        ? alwaysAllow
        : new WebhookAuthorizer({
            review: (body, s) => client.create({ group: "authorization.k8s.io", version: "v1", resource: "subjectaccessreviews" }, body, s ? { signal: s } : {}),
            cacheAuthorizedTTLMs: config.authorization.webhook.cacheAuthorizedTTL,
            cacheUnauthorizedTTLMs: config.authorization.webhook.cacheUnauthorizedTTL,
            log,
          });
    const metrics = new KubeletMetrics({
      nodeName: config.hostname,
      pods: () => [...kubelet.pleg.runtimePods().keys()].map((uid) => kubelet.podCache.get(uid).status),
      lastRelistAt: () => (kubelet.pleg.hasRelisted ? Date.now() - kubelet.pleg.healthy().lastSeenMs : undefined),
    });
    kubelet.pleg.onRelist((ms) => metrics.observeRelist(ms));
    kubelet.nodePressure?.manager.onEviction((e) => metrics.observeEviction(e.signal));
    kubelet.podWorkers.onSyncDone((operation, seconds) => metrics.observePodWorker(operation, seconds));
    kubelet.podSync.onPodStarted((seconds) => metrics.observePodStart(seconds));
    api = new KubeletServer({
      host: { ...serverHost(kubelet, config, metrics), ...stats },
      nodeName: config.hostname,
      address: config.address,
      port: config.port,
      tls: { certPem: cert.certPem, keyPem: cert.keyPem, ...(clientCAPem === undefined ? {} : { clientCAPem }), settings: tlsSettings(config) },
      authenticator,
      authorizer,
      fineGrainedAuthz: gateEnabled(config.featureGates, "KubeletFineGrainedAuthz"),
      enableDebuggingHandlers: config.enableDebuggingHandlers,
      enableSystemLogHandler: config.enableSystemLogHandler && config.enableDebuggingHandlers,
      log,
    });
    await api.start(signal);
    if (config.tlsCertFile !== "" || caFile !== "") {
      const server = api;
      reloader = new TlsFilesReloader({
        ...(config.tlsCertFile === "" ? {} : { certFile: config.tlsCertFile, keyFile: config.tlsPrivateKeyFile }),
        ...(caFile === "" ? {} : { clientCAFile: caFile }),
        current: { certPem: cert.certPem, keyPem: cert.keyPem, ...(clientCAPem === undefined ? {} : { clientCAPem }) },
        onChange: (m) => server.setTlsMaterial(m),
        log: log.child({ component: "tls-files" }),
      });
      reloader.start(signal);
    }
  }
  if (config.healthzPort > 0) {
    healthz = new HealthzServer({ address: config.healthzBindAddress, port: config.healthzPort, checks: healthChecks(kubelet, config), log });
    await healthz.start(signal);
  }
  return {
    api,
    healthz,
    close: async () => {
      await reloader?.close();
      await api?.close();
      await healthz?.close();
    },
  };
}
