/**
 * `kube-proxy`: the command line. Reads the KubeProxyConfiguration (`--config`), starts the health and
 * metrics servers and the proxier, and feeds it Services, EndpointSlices and its Node from a source:
 *
 *   --watch-events-from=-|FILE   newline-delimited watch events (tests, demo; see source.ts)
 *   --kubeconfig FILE            the API server (informers on Services, EndpointSlices and this Node)
 *
 * SIGTERM/SIGINT stop it cleanly and leave the rules in place (upstream behaviour); `--cleanup` removes
 * everything the proxier owns and exits. An invalid configuration exits 1 with every problem named.
 */
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { hostname, networkInterfaces } from "node:os";
import { parseArgs } from "node:util";
import { createLogger, levelForVerbosity, type Logger } from "../src-shared/log.ts";
import { DeckhandError, errorMessage, isDeckhandError } from "../src-shared/errors.ts";
import { cleanupAllModes } from "./cleanup.ts";
import { defaultConfig, modeSettings, parseConfigText, type ProxyConfig } from "./config.ts";
import { IptablesRunner } from "./iptables.ts";
import { ProxyMetrics } from "./metrics.ts";
import { Proxier } from "./proxier.ts";
import { ProxyHealth, ProxyServer } from "./server.ts";
import { ServiceHealthServer } from "./service-health.ts";
import { cidrContains, parseCidr } from "./ip.ts";
import { StreamSource, type ProxySource } from "./source.ts";
import { ApiSource } from "./api-source.ts";
import { KubeClient } from "../src-shared/kube/client.ts";

const USAGE = `usage: kube-proxy [--config FILE] [--kubeconfig FILE] [--hostname-override NAME] [--cleanup]
                  [--watch-events-from -|FILE] [--v N]`;

export interface CliOptions {
  config?: string;
  kubeconfig?: string;
  hostnameOverride?: string;
  cleanup: boolean;
  watchEventsFrom?: string;
  verbosity: number;
}

export function parseCli(argv: readonly string[]): CliOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      config: { type: "string" },
      kubeconfig: { type: "string" },
      "hostname-override": { type: "string" },
      cleanup: { type: "boolean", default: false },
      "watch-events-from": { type: "string" },
      v: { type: "string", default: "0" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const v = Number(values.v);
  if (!Number.isInteger(v) || v < 0) throw new DeckhandError("InvalidArgument", `--v: must be a non-negative integer, got ${JSON.stringify(values.v)}`);
  return {
    ...(values.config !== undefined ? { config: values.config } : {}),
    ...(values.kubeconfig !== undefined ? { kubeconfig: values.kubeconfig } : {}),
    ...(values["hostname-override"] !== undefined ? { hostnameOverride: values["hostname-override"] } : {}),
    cleanup: values.cleanup,
    ...(values["watch-events-from"] !== undefined ? { watchEventsFrom: values["watch-events-from"] } : {}),
    verbosity: v,
  };
}

export async function loadConfig(path: string | undefined): Promise<ProxyConfig> {
  if (path === undefined) return defaultConfig();
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new DeckhandError("InvalidConfig", `--config ${path}: ${errorMessage(err)}`, { cause: err });
  }
  return parseConfigText(text, path);
}

/** The API server as the source: informers on Services, EndpointSlices and this node (api-source.ts). */
function apiSource(kubeconfig: string, nodeName: string, _resyncMs: number, log: Logger): ProxySource {
  const client = KubeClient.fromFile(kubeconfig, { userAgent: "kube-proxy/v1.33.0+deckhand deckhand" });
  return new ApiSource({ client, nodeName, logger: log });
}

export async function main(argv: readonly string[]): Promise<number> {
  let cli: CliOptions;
  try {
    cli = parseCli(argv);
  } catch (err) {
    process.stderr.write(`kube-proxy: ${errorMessage(err)}\n${USAGE}\n`);
    return 2;
  }
  const log = createLogger({ name: "kube-proxy", level: levelForVerbosity(cli.verbosity) });
  let config: ProxyConfig;
  try {
    config = await loadConfig(cli.config);
  } catch (err) {
    process.stderr.write(`kube-proxy: ${errorMessage(err)}\n`);
    return 1;
  }
  const iptables = new IptablesRunner();
  if (cli.cleanup) {
    const failed = await cleanupAllModes(iptables, log);
    return failed ? 1 : 0;
  }
  const nodeName = (cli.hostnameOverride ?? (config.hostnameOverride || hostname())).trim().toLowerCase();
  const kubeconfig = cli.kubeconfig ?? config.kubeconfig;
  let source: ProxySource;
  try {
    if (cli.watchEventsFrom !== undefined) {
      source = new StreamSource(cli.watchEventsFrom === "-" ? process.stdin : createReadStream(cli.watchEventsFrom), log.child({ component: "source" }));
    } else if (kubeconfig) {
      source = apiSource(kubeconfig, nodeName, config.configSyncPeriodMs, log);
    } else {
      throw new DeckhandError("InvalidArgument", "no source of Services: give --kubeconfig (or clientConnection.kubeconfig) or --watch-events-from");
    }
  } catch (err) {
    process.stderr.write(`kube-proxy: ${errorMessage(err)}\n`);
    return 1;
  }

  const metrics = new ProxyMetrics(config.mode);
  const health = new ProxyHealth({ healthTimeoutMs: 2 * modeSettings(config).syncPeriodMs });
  const serviceHealth = new ServiceHealthServer({ hosts: healthCheckHosts(config), log: log.child({ component: "service-health" }), healthy: () => health.health().healthy });
  const proxier = new Proxier({ config, nodeName, log: log.child({ component: "proxier" }), metrics, health, serviceHealth });
  const server = new ProxyServer({
    healthzBindAddress: config.healthzBindAddress,
    metricsBindAddress: config.metricsBindAddress,
    health,
    metrics,
    log: log.child({ component: "server" }),
  });
  const stop = new AbortController();
  let exitCode = 0;
  const done = new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      log.info({ signal: sig }, "stopping; the rules stay in place");
      stop.abort();
      resolve();
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  });
  try {
    log.info({ nodeName, config }, `starting kube-proxy (${config.mode} mode)`);
    await server.start(stop.signal);
    await proxier.start(stop.signal);
    await source.start(proxier, stop.signal);
  } catch (err) {
    log.error({ err: errorMessage(err), code: isDeckhandError(err) ? err.code : undefined }, "kube-proxy failed to start");
    exitCode = 1;
    stop.abort();
  }
  if (exitCode === 0) await done;
  await source.close();
  await proxier.close();
  await serviceHealth.close();
  await server.close();
  return exitCode;
}

/** Where healthCheckNodePorts listen: every address, or the node addresses nodePortAddresses selects. */
function healthCheckHosts(config: ProxyConfig): string[] {
  if (config.nodePortAddresses.length === 0) return ["0.0.0.0"];
  const sel = config.nodePortAddresses.filter((c) => c !== "primary");
  if (sel.length === 0) return ["0.0.0.0"]; // "primary": the node's own address is not known here yet
  const cidrs = sel.map((c) => parseCidr(c)).filter((c) => c !== undefined);
  const out: string[] = [];
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === "IPv4" && cidrs.some((c) => cidrContains(c, a.address))) out.push(a.address);
  }
  return out;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`kube-proxy: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
