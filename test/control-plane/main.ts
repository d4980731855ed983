/**
 * `npm run control-plane -- --dir <folder> [--host 127.0.0.1] [--port 6443] [--service-cidr 10.96.0.0/12]
 *   [--cluster-cidr 10.244.0.0/16] [--node-cidr-mask-size 24] [--history 100000] [--mint-node NAME ...]`
 *
 * Starts the local control plane, writes <folder>/admin.kubeconfig (and a kubeconfig per --mint-node in
 * <folder>/nodes/), logs what it serves, and runs until SIGTERM or SIGINT.
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { createLogger } from "../../src-shared/log.ts";
import { ControlPlane, type ControlPlaneOptions } from "./control-plane.ts";

const { values } = parseArgs({
  options: {
    dir: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "6443" },
    "service-cidr": { type: "string" },
    "cluster-cidr": { type: "string" },
    "node-cidr-mask-size": { type: "string" },
    history: { type: "string" },
    "mint-node": { type: "string", multiple: true },
    help: { type: "boolean", short: "h" },
  },
});

if (values.help === true || values.dir === undefined) {
  process.stderr.write("usage: npm run control-plane -- --dir <folder> [--host 127.0.0.1] [--port 6443] [--service-cidr CIDR] [--cluster-cidr CIDR] [--node-cidr-mask-size N] [--history N] [--mint-node NAME]...\n");
  process.exit(values.help === true ? 0 : 2);
}

const log = createLogger({ name: "control-plane" });
const opts: ControlPlaneOptions = { dir: resolve(values.dir), host: values.host, port: Number(values.port), log };
if (values["service-cidr"] !== undefined) opts.serviceCIDR = values["service-cidr"];
if (values["cluster-cidr"] !== undefined) opts.clusterCIDR = values["cluster-cidr"];
if (values["node-cidr-mask-size"] !== undefined) opts.nodeCIDRMaskSize = Number(values["node-cidr-mask-size"]);
if (values.history !== undefined) opts.historyLimit = Number(values.history);

const cp = new ControlPlane(opts);
const stop = new AbortController();
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.once(sig, () => {
    log.info({ signal: sig }, "stopping");
    stop.abort();
    cp.close().then(
      () => process.exit(0),
      (e: unknown) => {
        log.error({ err: e }, "close failed");
        process.exit(1);
      },
    );
  });
}

try {
  await cp.start(stop.signal);
  for (const n of values["mint-node"] ?? []) log.info({ node: n, kubeconfig: await cp.mintNodeKubeconfig(n) }, "minted node kubeconfig");
  process.stdout.write(`${cp.adminKubeconfigPath}\n`);
} catch (e) {
  log.fatal({ err: e }, "control plane failed to start");
  process.exit(1);
}
