/** listen(): resolves with the bound address, rejects with the listen error (nothing left to an unheard event). */
import { createServer } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { listen, listenTcp } from "../../../src-shared/listen.ts";

describe("listen", () => {
  it("gives the port a TCP server bound, and rejects a second server on it with EADDRINUSE", async () => {
    const a = createServer();
    const b = createServer();
    try {
      const { port } = await listenTcp(a, 0, "127.0.0.1");
      expect(port).toBeGreaterThan(0);
      await expect(listenTcp(b, port, "127.0.0.1")).rejects.toMatchObject({ code: "EADDRINUSE" });
      expect(b.listenerCount("error")).toBe(0);
    } finally {
      a.close();
      b.close();
    }
  });

  it("listens on a unix socket path", async () => {
    const dir = await mkdtemp(join(tmpdir(), "deckhand-listen-"));
    const server = createServer();
    try {
      expect(await listen(server, join(dir, "s.sock"))).toBe(join(dir, "s.sock"));
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
