/**
 * kube-apiserver's StreamTranslatorHandler (apiserver/pkg/util/proxy/streamtranslator.go, websocket.go) for
 * pods/exec and pods/attach: kubectl 1.30+ speaks WebSocket with the remotecommand protocol
 * `v5.channel.k8s.io` (every message's first byte names its channel: 0 stdin, 1 stdout, 2 stderr, 3 error,
 * 4 resize; `[255, n]` closes channel n); the API server accepts it, then opens SPDY to the kubelet with
 * `v4.channel.k8s.io` (one stream each for error, stdin, stdout, stderr and resize, as client-go's SPDY
 * executor does) and copies between the two. When the kubelet's side is done (error stream and outputs
 * ended) the status goes to the client on channel 3 — Success, the exit code as upstream's
 * codeExitToStatusError words it, or an InternalError — then the close frame, and the client closes.
 *
 * Before the WebSocket handshake nothing is asked of the kubelet, so failures there (the kubelet refusing
 * the upgrade, a container not found) reach the client as a status on channel 3, as upstream's.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { rawHttpError } from "../../kubelet/server/streaming.ts";
import { handshakeProblem, handshakeResponse, offeredProtocols, WebSocket } from "./websocket.ts";
import type { SpdySession, SpdyStream } from "./spdy.ts";
import { internalError } from "./status.ts";
import type { JsonObject } from "./types.ts";

export const REMOTE_COMMAND_V5 = "v5.channel.k8s.io";
export const REMOTE_COMMAND_V4 = "v4.channel.k8s.io";

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;
const CLOSE = 255;

/** How long the kubelet has to answer each stream's creation (client-go's createStreamResponseTimeout). */
const CREATE_STREAM_TIMEOUT_MS = 30_000;

export interface TranslateOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

export class TranslatorError extends Error {}

/** The status for channel 3 from the kubelet's v4 error stream (client-go's errorDecoderV4, then upstream's translation). */
export function translatedStatus(errorStream: string): JsonObject {
  if (errorStream === "") return { metadata: {}, status: "Success" };
  let s: { status?: string; reason?: string; message?: string; details?: { causes?: { reason?: string; message?: string }[] } };
  try {
    s = JSON.parse(errorStream) as typeof s;
  } catch (err) {
    return internalError(`error stream protocol error: ${err instanceof Error ? err.message : String(err)} in ${JSON.stringify(errorStream)}`).toStatus();
  }
  if (s.status === "Success") return { metadata: {}, status: "Success" };
  if (s.status !== "Failure") return internalError("error stream protocol error: unknown error").toStatus();
  if (s.reason === "NonZeroExitCode") {
    const cause = s.details?.causes?.find((c) => c.reason === "ExitCode");
    if (cause === undefined) return internalError("error stream protocol error: no ExitCode cause given").toStatus();
    const rc = Number(cause.message);
    if (!Number.isInteger(rc) || rc < 0 || rc > 255) return internalError(`error stream protocol error: invalid exit code value ${JSON.stringify(cause.message)}`).toStatus();
    return {
      metadata: {},
      status: "Failure",
      message: `command terminated with non-zero exit code: command terminated with exit code ${rc}`,
      reason: "NonZeroExitCode",
      details: { causes: [{ reason: "ExitCode", message: String(rc) }] },
    };
  }
  return internalError(s.message ?? "").toStatus();
}

function framed(channel: number, data: Buffer): Buffer {
  const b = Buffer.allocUnsafe(data.length + 1);
  b[0] = channel;
  data.copy(b, 1);
  return b;
}

/**
 * Serves one WebSocket exec/attach: `openSpdy` makes the kubelet connection (SPDY, v4 negotiated) once the
 * client's handshake is answered. Resolves with the code for the log (101 upgrade refused as 400, else the
 * status's: 200 for a finished command, exit codes included, 500 for an error) when both sides are closed.
 */
export async function translateStream(req: IncomingMessage, socket: Duplex, head: Buffer, opts: TranslateOptions, openSpdy: () => Promise<SpdySession>, signal: AbortSignal): Promise<number> {
  const problem = handshakeProblem(req) ?? (offeredProtocols(req).includes(REMOTE_COMMAND_V5) ? undefined : `unable to upgrade: no supported protocol offered (want ${REMOTE_COMMAND_V5})`);
  if (problem !== undefined) {
    rawHttpError(socket, 400, "Bad Request", problem);
    return 400;
  }
  socket.write(handshakeResponse(req, REMOTE_COMMAND_V5));

  let spdy: SpdySession | undefined;
  const streams: Partial<Record<"error" | "stdin" | "stdout" | "stderr" | "resize", SpdyStream>> = {};
  let ready = false;
  const early: Buffer[] = [];
  let clientGone!: () => void;
  const clientClosed = new Promise<void>((resolve) => (clientGone = resolve));

  const toKubelet = (msg: Buffer): void => {
    if (msg.length === 0) return;
    const ch = msg[0];
    const payload = msg.subarray(1);
    const target = ch === STDIN ? streams.stdin : ch === RESIZE ? streams.resize : undefined;
    if (ch === CLOSE) {
      if (payload[0] === STDIN) streams.stdin?.end();
      return;
    }
    if (target === undefined || payload.length === 0) return;
    if (!target.write(payload) && spdy !== undefined) {
      socket.pause();
      spdy.socket.once("drain", () => socket.resume());
    }
  };
  const ws = new WebSocket(
    socket,
    "server",
    {
      message: (data) => {
        if (ready) toKubelet(data);
        else early.push(data);
      },
      close: () => {
        spdy?.destroy();
        clientGone();
      },
    },
    { head },
  );
  const onAbort = (): void => {
    ws.destroy();
    spdy?.destroy();
  };
  signal.addEventListener("abort", onAbort, { once: true });

  // An empty message on the lowest writable channel tells the client the connection is established.
  ws.send(Buffer.from([opts.stdout ? STDOUT : opts.stderr ? STDERR : ERROR]));

  const finish = async (status: JsonObject): Promise<void> => {
    ws.send(Buffer.concat([Buffer.from([ERROR]), Buffer.from(JSON.stringify(status))]));
    ws.close(1000);
    spdy?.close();
    await clientClosed;
    signal.removeEventListener("abort", onAbort);
  };

  try {
    spdy = await openSpdy();
  } catch (err) {
    await finish(internalError(err instanceof Error ? err.message : String(err)).toStatus());
    return 500;
  }
  if (ws.closed) {
    spdy.destroy();
    return 499;
  }
  const session = spdy;
  const open = (type: "error" | "stdin" | "stdout" | "stderr" | "resize"): SpdyStream => (streams[type] = session.createStream([["streamtype", type]]));
  const created = [open("error")];
  if (opts.stdin) created.push(open("stdin"));
  if (opts.stdout) created.push(open("stdout"));
  if (opts.stderr) created.push(open("stderr"));
  if (opts.tty) created.push(open("resize"));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.all(created.map((s) => s.reply())),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new TranslatorError("timed out waiting for the kubelet to accept the streams")), CREATE_STREAM_TIMEOUT_MS))),
    ]);
  } catch (err) {
    clearTimeout(timer);
    await finish(internalError(err instanceof Error ? err.message : String(err)).toStatus());
    return 500;
  }
  clearTimeout(timer);

  // Outputs to the client, the error stream gathered, until each has ended.
  let errorText = "";
  const ended: Promise<void>[] = [];
  const pipeOut = (s: SpdyStream | undefined, channel: number): void => {
    if (s === undefined) return;
    ended.push(
      new Promise((resolve) => {
        s.handlers = {
          data: (c) => {
            if (!ws.send(framed(channel, c))) {
              session.socket.pause();
              socket.once("drain", () => session.socket.resume());
            }
          },
          end: () => resolve(),
        };
        if (s.remoteEnded) resolve();
      }),
    );
  };
  pipeOut(streams.stdout, STDOUT);
  pipeOut(streams.stderr, STDERR);
  const errorStream = streams.error;
  if (errorStream !== undefined) {
    ended.push(
      new Promise((resolve) => {
        errorStream.handlers = { data: (c) => (errorText += c.toString("utf8")), end: () => resolve() };
        if (errorStream.remoteEnded) resolve();
      }),
    );
  }
  // The resize stream only carries the client's sizes; nothing comes back.
  ready = true;
  for (const m of early.splice(0)) toKubelet(m);

  await Promise.race([Promise.all(ended), clientClosed]);
  if (ws.closed) {
    session.destroy();
    return 499;
  }
  const status = translatedStatus(errorText);
  await finish(status);
  const code = status["code"];
  return typeof code === "number" ? code : 200;
}
