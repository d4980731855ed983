/**
 * The one-shot deckhand-bridge process: what bin/deckhand-bridge runs when no deckhand CNI daemon answers on
 * the configured socket (see cni/daemon.ts for why a daemon). Reads CNI_* and stdin, prints the result or the
 * error JSON, exits with the code. Loads nothing it does not need (no logger; netlink only on first use).
 */
import { BridgePlugin } from "./plugin.ts";
import { Rtnl } from "./rtnl.ts";
import { closeLocks } from "./ipam-disk.ts";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

let rtnl: Rtnl | undefined;
const plugin = new BridgePlugin({
  rtnl: () => (rtnl ??= new Rtnl()),
  log: (line) => process.stderr.write(`${line}\n`),
});
const res = await plugin.handle({ env: process.env, stdin: await readStdin() });
closeLocks();
rtnl?.close();
process.stdout.write(res.stdout);
process.exitCode = res.code;
