/**
 * WebSocket (RFC 6455) as the control plane needs it for kubectl's streaming: the server handshake (and a
 * client one, for tests talking to the kubelet directly), frames in and out (client frames masked,
 * fragmented messages put back together), pings answered with pongs (client-go's heartbeat gives up on a
 * server that does not answer), and the close handshake. Only what kube-apiserver's streaming needs:
 * no extensions (permessage-deflate is not offered to us by client-go), messages up to 64 MiB.
 */
import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { readHead, type ResponseHead } from "./http-head.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_MESSAGE = 64 << 20;

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key. */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

/** Whether the request asks for a WebSocket upgrade. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return String(req.headers.upgrade ?? "").toLowerCase() === "websocket";
}

/** The subprotocols the client offers (Sec-WebSocket-Protocol, comma separated, possibly repeated). */
export function offeredProtocols(req: IncomingMessage): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    if ((req.rawHeaders[i] ?? "").toLowerCase() !== "sec-websocket-protocol") continue;
    for (const p of (req.rawHeaders[i + 1] ?? "").split(",")) if (p.trim() !== "") out.push(p.trim());
  }
  return out;
}

/** The handshake's checks (version 13, a key): the reason it cannot be accepted, or undefined. */
export function handshakeProblem(req: IncomingMessage): string | undefined {
  if (!isWebSocketUpgrade(req)) return "not a websocket upgrade request";
  if (String(req.headers["sec-websocket-version"] ?? "") !== "13") return "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header";
  if (String(req.headers["sec-websocket-key"] ?? "") === "") return "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be Base64 encoded value of 16-byte in length";
  return undefined;
}

/** The server's 101 answer, with the chosen subprotocol. */
export function handshakeResponse(req: IncomingMessage, protocol: string | undefined): string {
  const lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", `Sec-WebSocket-Accept: ${acceptKey(String(req.headers["sec-websocket-key"] ?? ""))}`];
  if (protocol !== undefined) lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/** One frame; client frames are masked with a random key. */
export function encodeFrame(opcode: number, payload: Buffer, mask: boolean, fin = true): Buffer {
  const len = payload.length;
  const extra = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + extra + (mask ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = (mask ? 0x80 : 0) | (len < 126 ? len : len < 65536 ? 126 : 127);
  if (extra === 2) head.writeUInt16BE(len, 2);
  else if (extra === 8) head.writeBigUInt64BE(BigInt(len), 2);
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  key.copy(head, 2 + extra);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] = (body[i] ?? 0) ^ (key[i & 3] ?? 0);
  return Buffer.concat([head, body]);
}

export interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

export class WebSocketProtocolError extends Error {}

/** Frames out of a byte stream, unmasked. */
export class FrameParser {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Frame[] = [];
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      const b0 = b[0] ?? 0;
      const b1 = b[1] ?? 0;
      if ((b0 & 0x70) !== 0) throw new WebSocketProtocolError("reserved bits set (no extension negotiated)");
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        const big = b.readBigUInt64BE(2);
        if (big > BigInt(MAX_MESSAGE)) throw new WebSocketProtocolError(`frame of ${big} bytes is too large`);
        len = Number(big);
        off = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      const keyAt = off;
      if (masked) off += 4;
      if (b.length < off + len) break;
      const payload = Buffer.from(b.subarray(off, off + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] = (payload[i] ?? 0) ^ (b[keyAt + (i & 3)] ?? 0);
      out.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload });
      this.buf = b.subarray(off + len);
    }
    return out;
  }
}

export interface WebSocketEvents {
  /** A whole message (text or binary). */
  message(data: Buffer, binary: boolean): void;
  /** The connection is gone (after the close handshake, an error or the socket closing). */
  close(code: number | undefined): void;
}

/**
 * A WebSocket over an upgraded socket. `send` returns the socket's write verdict (false: wait for `drain` on
 * `socket` before sending more). `close` sends a close frame; the socket ends when the peer answers it, or
 * after `closeTimeoutMs`.
 */
export class WebSocket {
  readonly socket: Duplex;
  private readonly role: "server" | "client";
  private readonly parser = new FrameParser();
  private readonly on: WebSocketEvents;
  private parts: Buffer[] = [];
  private partsOpcode = 0;
  private closeSent = false;
  private done = false;
  private closeTimer: NodeJS.Timeout | undefined;
  private readonly closeTimeoutMs: number;

  constructor(socket: Duplex, role: "server" | "client", on: WebSocketEvents, o: { head?: Buffer; closeTimeoutMs?: number } = {}) {
    this.socket = socket;
    this.role = role;
    this.on = on;
    this.closeTimeoutMs = o.closeTimeoutMs ?? 60_000;
    socket.on("data", (c: Buffer) => this.receive(c));
    socket.on("error", () => this.finish(undefined));
    socket.on("close", () => this.finish(undefined));
    socket.on("end", () => socket.end());
    if (o.head !== undefined && o.head.length > 0) socket.unshift(o.head);
    socket.resume();
  }

  get closed(): boolean {
    return this.done;
  }

  /** A binary (or text) message; false when the socket's buffer is full. */
  send(data: Buffer, binary = true): boolean {
    if (this.closeSent || this.done) return true;
    return this.socket.write(encodeFrame(binary ? OP_BINARY : OP_TEXT, data, this.role === "client"));
  }

  /** Starts the close handshake. */
  close(code = 1000, reason = ""): void {
    if (this.closeSent || this.done) return;
    this.closeSent = true;
    const p = Buffer.alloc(2 + Buffer.byteLength(reason));
    p.writeUInt16BE(code, 0);
    p.write(reason, 2);
    this.socket.write(encodeFrame(OP_CLOSE, p, this.role === "client"));
    this.closeTimer = setTimeout(() => this.socket.destroy(), this.closeTimeoutMs);
  }

  /** Drops the connection without a handshake. */
  destroy(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    if (this.done) return;
    let frames: Frame[];
    try {
      frames = this.parser.push(chunk);
    } catch {
      this.close(1002, "protocol error");
      this.socket.destroy();
      return;
    }
    for (const f of frames) {
      if (this.done) return;
      this.frame(f);
    }
  }

  private frame(f: Frame): void {
    switch (f.opcode) {
      case OP_PING:
        if (!this.closeSent) this.socket.write(encodeFrame(OP_PONG, f.payload, this.role === "client"));
        return;
      case OP_PONG:
        return;
      case OP_CLOSE: {
        const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined;
        if (!this.closeSent) {
          this.closeSent = true;
          this.socket.write(encodeFrame(OP_CLOSE, f.payload.subarray(0, 2), this.role === "client"));
        }
        // The server closes the TCP connection first; a client waits for it (RFC 6455 §7.1.1).
        if (this.role === "server") this.socket.end();
        this.finish(code);
        return;
      }
      case OP_CONTINUATION:
      case OP_TEXT:
      case OP_BINARY: {
        if (f.opcode !== OP_CONTINUATION) {
          this.parts = [];
          this.partsOpcode = f.opcode;
        }
        this.parts.push(f.payload);
        if (!f.fin) return;
        const data = this.parts.length === 1 ? (this.parts[0] ?? Buffer.alloc(0)) : Buffer.concat(this.parts);
        this.parts = [];
        this.on.message(data, this.partsOpcode === OP_BINARY);
        return;
      }
      default:
        this.close(1002, `unknown opcode ${f.opcode}`);
    }
  }

  private finish(code: number | undefined): void {
    if (this.done) return;
    this.done = true;
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    this.on.close(code);
  }
}

/** A client handshake on a connected socket: the answer's head, and the WebSocket when it was 101. */
export async function connectWebSocket(
  socket: Duplex,
  o: { path: string; host: string; protocols: string[]; headers?: Record<string, string> },
  on: WebSocketEvents,
): Promise<{ head: ResponseHead; ws?: WebSocket; protocol?: string }> {
  const key = randomBytes(16).toString("base64");
  const lines = [`GET ${o.path} HTTP/1.1`, `Host: ${o.host}`, "Upgrade: websocket", "Connection: Upgrade", `Sec-WebSocket-Key: ${key}`, "Sec-WebSocket-Version: 13"];
  if (o.protocols.length > 0) lines.push(`Sec-WebSocket-Protocol: ${o.protocols.join(", ")}`);
  for (const [k, v] of Object.entries(o.headers ?? {})) lines.push(`${k}: ${v}`);
  socket.write(`${lines.join("\r\n")}\r\n\r\n`);
  const head = await readHead(socket);
  if (head.status !== 101) return { head };
  if (head.headers["sec-websocket-accept"] !== acceptKey(key)) throw new WebSocketProtocolError("bad Sec-WebSocket-Accept in the server's answer");
  const protocol = head.headers["sec-websocket-protocol"];
  const ws = new WebSocket(socket, "client", on);
  return protocol === undefined ? { head, ws } : { head, ws, protocol };
}
