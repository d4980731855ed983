/**
 * `deckhand-bridge daemon [--socket PATH]`: runs the deckhand CNI daemon on its own (the kubelet can also run
 * CniDaemon in-process). It must run in the node's network and mount namespaces, as containerd does.
 */
import { parseArgs } from "node:util";
import { createLogger } from "../src-shared/log.ts";
import { CniDaemon } from "./daemon.ts";

const { values } = parseArgs({ options: { socket: { type: "string" } }, allowPositionals: true });
const log = createLogger({ name: "deckhand-cni" });
const daemon = new CniDaemon({ log, ...(values.socket ? { socketPath: values.socket } : {}) });
const controller = new AbortController();
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.once(sig, () => {
    log.info({ signal: sig }, "stopping");
    controller.abort();
  });
}
await daemon.start(controller.signal);
await new Promise<void>((resolve) => controller.signal.addEventListener("abort", () => resolve(), { once: true }));
await daemon.close();
