/**
 * A test backend, run inside a pod's network namespace: answers HTTP on --http and UDP on --udp with
 * "<name> <client address>", so tests see which endpoint served them and what source address it saw.
 * Prints "ready" on stdout once both sockets listen.
 */
import { createSocket } from "node:dgram";
import { createServer } from "node:http";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { name: { type: "string" }, http: { type: "string" }, udp: { type: "string" } } });
const name = values.name ?? "backend";
const http = createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/plain", Connection: "close" });
  res.end(`${name} ${req.socket.remoteAddress ?? "?"}`);
});
const udp = createSocket("udp4");
udp.on("message", (_msg, rinfo) => udp.send(`${name} ${rinfo.address}`, rinfo.port, rinfo.address));
await Promise.all([
  new Promise<void>((r) => http.listen(Number(values.http ?? 8080), "0.0.0.0", r)),
  new Promise<void>((r) => udp.bind(Number(values.udp ?? 9000), "0.0.0.0", r)),
]);
process.stdout.write("ready\n");
process.on("SIGTERM", () => process.exit(0));
