/**
 * kube-apiserver's TunnelingHandler (apiserver/pkg/util/proxy/streamtunnel.go) for pods/portforward: kubectl
 * 1.31+ offers the WebSocket subprotocol `SPDY/3.1+portforward.k8s.io` and speaks SPDY inside binary
 * messages. The API server sends the kubelet a SPDY upgrade request for the protocols named after the
 * prefix; when the kubelet answers 101 it completes the client's WebSocket handshake with the chosen protocol
 * (prefixed again) and copies bytes: message payloads to the kubelet, the kubelet's bytes as binary messages.
 * Any other answer from the kubelet is passed back to the client as it came.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { rawHttpError } from "../../kubelet/server/streaming.ts";
import type { ResponseHead } from "./http-head.ts";
import { handshakeProblem, handshakeResponse, offeredProtocols, WebSocket } from "./websocket.ts";

export const SPDY_TUNNELING_PREFIX = "SPDY/3.1+";

/** The SPDY protocols the client offers through the tunnel: its `SPDY/3.1+*.k8s.io` subprotocols, unprefixed. */
export function tunneledProtocols(req: IncomingMessage): string[] {
  return offeredProtocols(req)
    .filter((p) => p.startsWith(SPDY_TUNNELING_PREFIX) && p.endsWith(".k8s.io"))
    .map((p) => p.slice(SPDY_TUNNELING_PREFIX.length));
}

/** http.Error's answer: the text and a newline. */
function httpError(socket: Duplex, status: number, reason: string, body: string): void {
  rawHttpError(socket, status, reason, `${body}\n`);
}

/**
 * Tunnels one port-forward session. `upgrade` sends the kubelet the SPDY upgrade request for the protocols
 * and returns its answer's head and the connection. Resolves with the code for the log when both sides are
 * closed.
 */
export async function tunnelStream(req: IncomingMessage, socket: Duplex, head: Buffer, upgrade: (protocols: string[]) => Promise<{ socket: Duplex; head: ResponseHead }>, signal: AbortSignal): Promise<number> {
  const protocols = tunneledProtocols(req);
  if (protocols.length === 0) {
    httpError(socket, 400, "Bad Request", "unable to upgrade: no tunneling spdy protocols provided");
    return 400;
  }
  const up = await upgrade(protocols);
  const kubelet = up.socket;
  const answer = up.head;
  if (answer.status !== 101) {
    // Anything but an upgrade passes through as the kubelet wrote it.
    socket.write(answer.raw);
    kubelet.pipe(socket);
    kubelet.resume();
    await new Promise<void>((resolve) => {
      // The pipe ends the client's side when the kubelet's answer ends.
      const done = (): void => {
        socket.end();
        kubelet.destroy();
        resolve();
      };
      kubelet.once("end", done);
      kubelet.once("close", done);
      socket.once("close", done);
    });
    return answer.status;
  }
  const upgraded = (answer.headers["connection"] ?? "").toLowerCase().includes("upgrade") && (answer.headers["upgrade"] ?? "").toLowerCase().includes("spdy/3.1");
  if (!upgraded) {
    kubelet.destroy();
    httpError(socket, 500, "Internal Server Error", "unable to upgrade: missing upgrade headers in response");
    return 500;
  }
  const problem = handshakeProblem(req);
  if (problem !== undefined) {
    kubelet.destroy();
    httpError(socket, 400, "Bad Request", problem);
    return 400;
  }
  const chosen = (answer.headers["x-stream-protocol-version"] ?? "").trim();
  const wsProtocol = chosen === "" ? undefined : `${SPDY_TUNNELING_PREFIX}${chosen}`;
  socket.write(handshakeResponse(req, wsProtocol !== undefined && offeredProtocols(req).includes(wsProtocol) ? wsProtocol : undefined));

  let closedSides = 0;
  let bothClosed!: () => void;
  const done = new Promise<void>((resolve) => (bothClosed = resolve));
  const sideClosed = (): void => {
    if (++closedSides === 2) bothClosed();
  };
  const ws = new WebSocket(
    socket,
    "server",
    {
      message: (data) => {
        if (!kubelet.write(data)) {
          socket.pause();
          kubelet.once("drain", () => socket.resume());
        }
      },
      close: () => {
        kubelet.end();
        setTimeout(() => kubelet.destroy(), 5_000).unref();
        sideClosed();
      },
    },
    { head },
  );
  kubelet.on("data", (c: Buffer) => {
    if (!ws.send(c)) {
      kubelet.pause();
      socket.once("drain", () => kubelet.resume());
    }
  });
  kubelet.once("close", () => {
    ws.close(1000);
    sideClosed();
  });
  kubelet.on("error", () => kubelet.destroy());
  kubelet.resume();
  const onAbort = (): void => {
    ws.destroy();
    kubelet.end();
    setTimeout(() => kubelet.destroy(), 5_000).unref();
  };
  signal.addEventListener("abort", onAbort, { once: true });
  await done;
  signal.removeEventListener("abort", onAbort);
  return 101;
}
