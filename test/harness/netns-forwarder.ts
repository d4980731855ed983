/**
 * Run inside a node's network namespace: accepts TCP on `<host>:<port>` there and forwards each connection to
 * a unix socket on the shared file system. Unix sockets cross network namespaces, so a kubelet inside the
 * node reaches the control plane on the host's loopback at https://127.0.0.1:6443 as on a real node, without
 * any interface or route added to the host.
 *
 *   nsenter --net=/run/netns/<node> node netns-forwarder.ts 127.0.0.1 6443 /tmp/dh-xxxx/apiserver.sock
 */
import net from "node:net";

const [host = "127.0.0.1", port = "6443", socketPath = ""] = process.argv.slice(2);
if (!socketPath) {
  console.error("usage: netns-forwarder.ts <host> <port> <unix socket>");
  process.exit(2);
}
const server = net.createServer((client) => {
  const upstream = net.connect(socketPath);
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
  client.pipe(upstream).pipe(client);
});
server.listen(Number(port), host, () => console.log(`forwarding ${host}:${port} -> ${socketPath}`));
process.on("SIGTERM", () => process.exit(0));
