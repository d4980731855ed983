/**
 * A TCP forwarder on loopback that a test can cut and restore, to simulate an API server outage between a
 * node agent and its cluster without touching either: `cut()` drops every connection and refuses new ones
 * (as a dead server or a broken network does), `restore()` lets them through again.
 */
import net from "node:net";

export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private blocked = false;
  readonly target: { host: string; port: number };
  /** Listen on this unix socket instead of a loopback port (to be reached from another network namespace). */
  readonly socketPath: string | undefined;
  port = 0;

  constructor(target: { host: string; port: number }, options: { socketPath?: string } = {}) {
    this.target = target;
    this.socketPath = options.socketPath;
  }

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      if (this.blocked) {
        client.destroy();
        return;
      }
      const upstream = net.connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    this.server = server;
    if (this.socketPath !== undefined) {
      await new Promise<void>((resolve) => server.listen(this.socketPath, resolve));
      return;
    }
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.port = (server.address() as net.AddressInfo).port;
  }

  /** `https://127.0.0.1:<port>`: where clients should connect. */
  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  cut(): void {
    this.blocked = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.blocked = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
