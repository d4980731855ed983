/**
 * The client side of SPDY/3.1 as kube-apiserver's stream translator speaks it to the kubelet (client-go's
 * httpstream/spdy over moby/spdystream): the client opens every stream (SYN_STREAM with its headers), waits
 * for each SYN_REPLY, then sends DATA frames and half-closes with FIN; it answers the server's PINGs.
 *
 * Header blocks are zlib streams (one per direction and connection, SPDY/3's dictionary); the client writes
 * its blocks as stored (uncompressed) deflate blocks, a valid zlib stream that any inflater reads without
 * using the dictionary, and never needs to read the server's blocks (the replies' headers carry nothing the
 * remotecommand protocol uses). No flow control: spdystream has none (WINDOW_UPDATE and SETTINGS ignored).
 */
import type { Duplex } from "node:stream";

export const TYPE_SYN_STREAM = 1;
export const TYPE_SYN_REPLY = 2;
export const TYPE_RST_STREAM = 3;
export const TYPE_SETTINGS = 4;
export const TYPE_PING = 6;
export const TYPE_GOAWAY = 7;
export const TYPE_HEADERS = 8;
export const TYPE_WINDOW_UPDATE = 9;
export const FLAG_FIN = 0x01;
export const RST_CANCEL = 5;
export const RST_REFUSED_STREAM = 3;
const MAX_DATA = (1 << 24) - 1;

/** The uncompressed name/value block: count, then length-prefixed names (lower case) and values. */
export function headerBlock(headers: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  const n = Buffer.alloc(4);
  n.writeUInt32BE(headers.length);
  parts.push(n);
  for (const [k, v] of headers) {
    for (const s of [k.toLowerCase(), v]) {
      const b = Buffer.from(s, "utf8");
      const l = Buffer.alloc(4);
      l.writeUInt32BE(b.length);
      parts.push(l, b);
    }
  }
  return Buffer.concat(parts);
}

/** The client's header compression context: a zlib stream of stored blocks, each block flushed whole. */
export class HeaderCompressor {
  private started = false;

  compress(block: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.started) {
      // CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (no preset dictionary; (0x7801 % 31) === 0).
      parts.push(Buffer.from([0x78, 0x01]));
      this.started = true;
    }
    for (let off = 0; off < block.length; off += 0xffff) parts.push(storedBlock(block.subarray(off, off + 0xffff)));
    // An empty stored block, as a zlib sync flush ends with: Go's inflater hands out what it has on reading
    // it, where after a non-empty block it would read on for the next one (past the frame).
    parts.push(storedBlock(Buffer.alloc(0)));
    return Buffer.concat(parts);
  }
}

/** A non-final stored deflate block (BFINAL 0, BTYPE 00, padding to the byte, LEN, NLEN). */
function storedBlock(data: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.writeUInt16LE(data.length, 1);
  h.writeUInt16LE(~data.length & 0xffff, 3);
  return Buffer.concat([h, data]);
}

function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE((0x8000 | 3) * 0x10000 + type, 0);
  h.writeUInt32BE(flags * 0x1000000 + payload.length, 4);
  return Buffer.concat([h, payload]);
}

export function synStreamFrame(id: number, headers: Buffer, fin: boolean): Buffer {
  const p = Buffer.alloc(10);
  p.writeUInt32BE(id & 0x7fffffff, 0);
  p.writeUInt32BE(0, 4); // associated-to stream
  p.writeUInt16BE(0, 8); // priority 0, slot 0
  return controlFrame(TYPE_SYN_STREAM, fin ? FLAG_FIN : 0, Buffer.concat([p, headers]));
}

export function dataFrame(id: number, data: Buffer, fin: boolean): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(id & 0x7fffffff, 0);
  h.writeUInt32BE((fin ? FLAG_FIN : 0) * 0x1000000 + data.length, 4);
  return Buffer.concat([h, data]);
}

export function rstStreamFrame(id: number, status: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(id & 0x7fffffff, 0);
  p.writeUInt32BE(status, 4);
  return controlFrame(TYPE_RST_STREAM, 0, p);
}

export function pingFrame(id: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(id, 0);
  return controlFrame(TYPE_PING, 0, p);
}

export function goAwayFrame(lastGoodStreamId: number, status = 0): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(lastGoodStreamId, 0);
  p.writeUInt32BE(status, 4);
  return controlFrame(TYPE_GOAWAY, 0, p);
}

export type SpdyFrame = { control: true; type: number; flags: number; payload: Buffer } | { control: false; streamId: number; flags: number; payload: Buffer };

export class SpdyProtocolError extends Error {}

/** Frames out of a byte stream. */
export class SpdyFrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): SpdyFrame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: SpdyFrame[] = [];
    while (this.buf.length >= 8) {
      const w0 = this.buf.readUInt32BE(0);
      const w1 = this.buf.readUInt32BE(4);
      const len = w1 & 0xffffff;
      const flags = w1 >>> 24;
      if (this.buf.length < 8 + len) break;
      const payload = this.buf.subarray(8, 8 + len);
      if ((w0 & 0x80000000) !== 0) {
        const version = (w0 >>> 16) & 0x7fff;
        if (version !== 3) throw new SpdyProtocolError(`SPDY version ${version} is not 3`);
        out.push({ control: true, type: w0 & 0xffff, flags, payload });
      } else out.push({ control: false, streamId: w0 & 0x7fffffff, flags, payload });
      this.buf = this.buf.subarray(8 + len);
    }
    return out;
  }
}

export interface SpdyStreamHandlers {
  data(chunk: Buffer): void;
  /** The server half-closed the stream (FIN), reset it, or the connection went away. */
  end(reset: boolean): void;
}

/** One client-initiated stream. */
export class SpdyStream {
  readonly id: number;
  readonly headers: readonly (readonly [string, string])[];
  replied = false;
  remoteEnded = false;
  localEnded = false;
  handlers: SpdyStreamHandlers = { data: () => undefined, end: () => undefined };
  private readonly session: SpdySession;
  private readonly replyWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];

  constructor(session: SpdySession, id: number, headers: readonly (readonly [string, string])[]) {
    this.session = session;
    this.id = id;
    this.headers = headers;
  }

  /** Resolves on SYN_REPLY; rejects on RST_STREAM or the connection going away first. */
  reply(): Promise<void> {
    if (this.replied) return Promise.resolve();
    if (this.remoteEnded) return Promise.reject(new SpdyProtocolError(`stream ${this.id} was reset before a reply`));
    return new Promise((resolve, reject) => this.replyWaiters.push({ resolve, reject }));
  }

  /** Sends data; false when the socket's buffer is full. */
  write(chunk: Buffer): boolean {
    if (this.localEnded) return true;
    let ok = true;
    for (let off = 0; off < chunk.length; off += MAX_DATA) ok = this.session.write(dataFrame(this.id, chunk.subarray(off, off + MAX_DATA), false));
    return ok;
  }

  /** Half-closes (FIN). */
  end(): void {
    if (this.localEnded) return;
    this.localEnded = true;
    this.session.write(dataFrame(this.id, Buffer.alloc(0), true));
  }

  /** @internal */
  gotReply(fin: boolean): void {
    if (this.replied) return;
    this.replied = true;
    for (const w of this.replyWaiters.splice(0)) w.resolve();
    if (fin) this.remoteEnd(false);
  }

  /** @internal */
  remoteEnd(reset: boolean): void {
    if (this.remoteEnded) return;
    this.remoteEnded = true;
    for (const w of this.replyWaiters.splice(0)) w.reject(new SpdyProtocolError(`stream ${this.id} ${reset ? "was reset" : "ended"} before a reply`));
    this.handlers.end(reset);
  }
}

/** A client SPDY/3.1 session over an upgraded connection. */
export class SpdySession {
  readonly socket: Duplex;
  private readonly reader = new SpdyFrameReader();
  private readonly compressor = new HeaderCompressor();
  private readonly streams = new Map<number, SpdyStream>();
  private nextId = 1;
  private goneAway = false;
  private closed = false;
  private readonly onClose: (() => void)[] = [];

  constructor(socket: Duplex) {
    this.socket = socket;
    socket.on("data", (c: Buffer) => this.receive(c));
    socket.on("close", () => this.finish());
    socket.on("error", () => this.finish());
    socket.resume();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  whenClosed(cb: () => void): void {
    if (this.closed) cb();
    else this.onClose.push(cb);
  }

  /** @internal */
  write(frame: Buffer): boolean {
    if (this.closed) return true;
    return this.socket.write(frame);
  }

  createStream(headers: readonly (readonly [string, string])[]): SpdyStream {
    const id = this.nextId;
    this.nextId += 2;
    const s = new SpdyStream(this, id, headers);
    this.streams.set(id, s);
    this.write(synStreamFrame(id, this.compressor.compress(headerBlock(headers)), false));
    return s;
  }

  /** GOAWAY, then the connection ends. */
  close(): void {
    if (this.closed) return;
    if (!this.goneAway) {
      this.goneAway = true;
      this.write(goAwayFrame(0));
    }
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    let frames: SpdyFrame[];
    try {
      frames = this.reader.push(chunk);
    } catch {
      this.socket.destroy();
      return;
    }
    for (const f of frames) this.frame(f);
  }

  private frame(f: SpdyFrame): void {
    if (!f.control) {
      const s = this.streams.get(f.streamId);
      if (s === undefined || !s.replied || s.remoteEnded) return;
      if (f.payload.length > 0) s.handlers.data(Buffer.from(f.payload));
      if ((f.flags & FLAG_FIN) !== 0) s.remoteEnd(false);
      return;
    }
    const p = f.payload;
    switch (f.type) {
      case TYPE_SYN_REPLY:
        this.streams.get(p.readUInt32BE(0) & 0x7fffffff)?.gotReply((f.flags & FLAG_FIN) !== 0);
        return;
      case TYPE_RST_STREAM:
        this.streams.get(p.readUInt32BE(0) & 0x7fffffff)?.remoteEnd(true);
        return;
      case TYPE_PING: {
        const id = p.readUInt32BE(0);
        // Even ids are the server's: echo them; ours (odd) are answers, which we never ask for.
        if (id % 2 === 0) this.write(pingFrame(id));
        return;
      }
      case TYPE_SYN_STREAM:
        // The remotecommand protocols never have the server open streams.
        this.write(rstStreamFrame(p.readUInt32BE(0) & 0x7fffffff, RST_REFUSED_STREAM));
        return;
      case TYPE_GOAWAY:
        this.goneAway = true;
        return;
      default:
        // SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do (no flow control; reply headers unused).
        return;
    }
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams.values()) s.remoteEnd(true);
    for (const cb of this.onClose.splice(0)) cb();
  }
}
