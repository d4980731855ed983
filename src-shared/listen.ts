/**
 * Starts a server listening and resolves with its address once it does, or rejects with the listen error
 * (EADDRINUSE...) instead of leaving it to an 'error' event nobody waits for. For every server the agents and
 * the test control plane run: HTTP, HTTPS, and unix sockets (`port` a path, no host).
 */
import type { AddressInfo, Server } from "node:net";

export function listen(server: Server, port: number | string, host?: string): Promise<AddressInfo | string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    const ready = (): void => {
      server.off("error", reject);
      const address = server.address();
      resolve(address ?? String(port));
    };
    if (typeof port === "string") server.listen(port, ready);
    else server.listen(port, host, ready);
  });
}

/** `listen` for a TCP server: its address and the port it bound (port 0 picks one). */
export async function listenTcp(server: Server, port: number, host?: string): Promise<AddressInfo> {
  const address = await listen(server, port, host);
  if (typeof address === "string") throw new TypeError(`expected a TCP address, got ${address}`);
  return address;
}
