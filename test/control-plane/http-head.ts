/**
 * The head of an HTTP/1.1 answer read off a raw socket (the kubelet's answer to an upgrade request, a
 * WebSocket server's handshake): status, headers (lower-cased names, repeated ones joined with ", ") and the
 * raw bytes; whatever follows the head is put back on the socket (unshift) for the next reader, and the socket
 * is left paused.
 */
import type { Duplex } from "node:stream";

export interface ResponseHead {
  status: number;
  reason: string;
  headers: Record<string, string>;
  /** The head as received, up to and including the blank line. */
  raw: Buffer;
}

export class HeadError extends Error {}

const MAX_HEAD = 1 << 20;

export function parseHead(raw: string): Omit<ResponseHead, "raw"> {
  const lines = raw.split(/\r?\n/);
  const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0] ?? "");
  if (m === null) throw new HeadError(`malformed HTTP status line ${JSON.stringify(lines[0] ?? "")}`);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    if (i <= 0) continue;
    const k = l.slice(0, i).trim().toLowerCase();
    const v = l.slice(i + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  return { status: Number(m[1]), reason: m[2] ?? "", headers };
}

export function readHead(socket: Duplex): Promise<ResponseHead> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const cleanup = (): void => {
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("close", onClose);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      reject(new HeadError("connection closed before an answer"));
    };
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      let end = buf.indexOf("\r\n\r\n");
      let sep = 4;
      if (end < 0) {
        end = buf.indexOf("\n\n");
        sep = 2;
      }
      if (end < 0) {
        if (buf.length > MAX_HEAD) onError(new HeadError("header size limit exceeded"));
        return;
      }
      cleanup();
      socket.pause();
      const raw = buf.subarray(0, end + sep);
      const rest = buf.subarray(end + sep);
      if (rest.length > 0) socket.unshift(rest);
      try {
        resolve({ ...parseHead(raw.toString("latin1")), raw });
      } catch (err) {
        reject(err instanceof Error ? err : new HeadError(String(err)));
      }
    };
    socket.on("data", onData);
    socket.once("error", onError);
    socket.once("close", onClose);
  });
}

/** The body after a head: Content-Length bytes, or up to the end of the connection; at most `limit`. */
export function readBody(socket: Duplex, head: ResponseHead, limit = 50_000): Promise<string> {
  const want = head.headers["content-length"] === undefined ? Infinity : Number(head.headers["content-length"]);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const done = (): void => {
      socket.off("data", onData);
      resolve(Buffer.concat(chunks).subarray(0, Math.min(want, limit)).toString("utf8"));
    };
    const onData = (c: Buffer): void => {
      chunks.push(c);
      n += c.length;
      if (n >= want || n >= limit) done();
    };
    if (want === 0) {
      resolve("");
      return;
    }
    socket.on("data", onData);
    socket.once("end", done);
    socket.once("close", done);
    socket.once("error", done);
    socket.resume();
  });
}
