/**
 * Listening and closing of the components' HTTP(S) servers: `listen` resolves once bound (or rejects with the
 * bind error, the server left unbound), `closeServers` stops accepting and drops open connections (keep-alive
 * ones included), resolving once each server has closed.
 */
import type { Server } from "node:net";
import type { AddressInfo } from "node:net";

export function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

export function closeServers(servers: readonly (Server & { closeAllConnections?: () => void })[]): Promise<void> {
  return Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections?.();
        }),
    ),
  ).then(() => undefined);
}
