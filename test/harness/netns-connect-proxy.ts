/**
 * Run inside a node's network namespace: an HTTP CONNECT proxy on a unix socket of the shared file system
 * (as konnectivity's agent serves kube-apiserver's egress selector), so the control plane on the host reaches
 * the node's kubelet at its own address (https://<node IP>:10250) without any interface or route on the host.
 *
 *   nsenter --net=/run/netns/<node> node netns-connect-proxy.ts /tmp/dh-xxxx/cluster-egress.sock
 */
import http from "node:http";
import net from "node:net";

const [socketPath = ""] = process.argv.slice(2);
if (!socketPath) {
  console.error("usage: netns-connect-proxy.ts <unix socket>");
  process.exit(2);
}
const server = http.createServer((_req, res) => {
  res.writeHead(405);
  res.end("CONNECT only\n");
});
server.on("connect", (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(req.url ?? "");
  if (m === null) {
    client.end("HTTP/1.1 400 Bad Request\r\n\r\n");
    return;
  }
  const upstream = net.connect(Number(m[2]), m[1] ?? "", () => {
    client.write("HTTP/1.1 200 Connection established\r\n\r\n");
    if (head.length > 0) upstream.write(head);
    client.pipe(upstream).pipe(client);
  });
  upstream.on("error", (err) => {
    if (client.writable && upstream.connecting) client.end(`HTTP/1.1 502 Bad Gateway\r\n\r\n${err.message}`);
    else client.destroy();
  });
  client.on("error", () => upstream.destroy());
});
server.listen(socketPath, () => console.log(`CONNECT proxy on ${socketPath}`));
process.on("SIGTERM", () => process.exit(0));
