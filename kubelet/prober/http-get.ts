/**
 * One HTTP/1.1 GET on a fresh net/tls socket, for the probes and the httpGet lifecycle hooks: a minimal client
 * (http-wire.ts) instead of node:http, whose request/response machinery costs more CPU than a probe is worth.
 * No pooling and `Connection: close` (upstream's DisableKeepAlives), no proxy, TLS without verification (SNI
 * for a host name only, as Go), IPv6 literals, at most `maxBody` bytes of body read.
 */
import net from "node:net";
import tls from "node:tls";
import { DeckhandError } from "../../src-shared/errors.ts";
import { formatRequest, HttpWireError, ResponseParser } from "./http-wire.ts";

export interface HttpGetResponse {
  status: number;
  location: string | undefined;
  /** At most `maxBody` bytes of body, as UTF-8. */
  body: string;
  /** Why the body could not be read whole (Go's wording): the head was read, the body not. */
  bodyError?: string;
}

/** Go's wording of a Client.Timeout that ran out while the body was read. */
export const BODY_TIMEOUT_TEXT = "context deadline exceeded (Client.Timeout or context cancellation while reading body)";

export interface HttpGetOnceOptions {
  maxBody: number;
  /** The caller's signal: its abort rejects with its reason, whatever the phase. */
  signal?: AbortSignal | undefined;
  /**
   * The exchange's deadline: before the head, its abort rejects with its reason; after, the response is
   * returned with `bodyError` (Go's client returns the response, its body read then fails).
   */
  deadline?: AbortSignal | undefined;
}

/**
 * GETs `url` with the Host and headers given (formatRequest). Rejects with the socket's error (a system
 * `code`: ECONNREFUSED, EPROTO for a TLS exchange that failed...), an HttpWireError for a malformed head, a
 * DeckhandError InvalidArgument for a header that cannot be sent, or an abort reason.
 */
export function httpGetOnce(url: URL, host: string, headers: readonly (readonly [string, string])[], o: HttpGetOnceOptions): Promise<HttpGetResponse> {
  return new Promise((resolve, reject) => {
    for (const s of [o.signal, o.deadline]) {
      if (s?.aborted) {
        reject(asError(s.reason));
        return;
      }
    }
    let request: Buffer;
    try {
      request = formatRequest(`${url.pathname}${url.search}`, host, headers);
    } catch (err) {
      reject(asError(err));
      return;
    }
    const secure = url.protocol === "https:";
    const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    const port = url.port ? Number(url.port) : secure ? 443 : 80;
    const socket = secure
      ? tls.connect({ host: hostname, port, rejectUnauthorized: false, ...(net.isIP(hostname) ? {} : { servername: hostname }) })
      : net.connect({ host: hostname, port });
    const parser = new ResponseParser(o.maxBody);
    let settled = false;

    const response = (bodyError?: string): HttpGetResponse => ({
      status: parser.status,
      location: parser.location,
      body: parser.body(),
      ...(bodyError === undefined ? {} : { bodyError }),
    });
    const finish = (settle: () => void): void => {
      if (settled) return;
      settled = true;
      o.signal?.removeEventListener("abort", onAbort);
      o.deadline?.removeEventListener("abort", onDeadline);
      socket.destroy();
      settle();
    };
    /** An error: the request's before the head was read, the body's after. */
    const fail = (err: unknown): void => {
      if (!parser.headDone) return finish(() => reject(asError(err)));
      const text = err instanceof HttpWireError ? err.message : err instanceof Error ? readErrorText(err) : String(err);
      finish(() => resolve(response(text)));
    };
    const onAbort = (): void => finish(() => reject(asError(o.signal?.reason)));
    const onDeadline = (): void => {
      if (parser.headDone) finish(() => resolve(response(BODY_TIMEOUT_TEXT)));
      else finish(() => reject(asError(o.deadline?.reason)));
    };
    o.signal?.addEventListener("abort", onAbort, { once: true });
    o.deadline?.addEventListener("abort", onDeadline, { once: true });

    socket.on("data", (data: Buffer) => {
      try {
        if (parser.push(data)) finish(() => resolve(response()));
      } catch (err) {
        fail(err);
      }
    });
    const onEnd = (): void => {
      try {
        if (parser.end()) finish(() => resolve(response()));
      } catch (err) {
        fail(err);
      }
    };
    socket.on("end", onEnd);
    // A close without an end or an error (a reset seen as a close) is an EOF too.
    socket.on("close", onEnd);
    socket.on("error", fail);
    socket.write(request);
  });
}

/** A socket error while the body was read, as Go's `read tcp ...: <syscall>` reduced to the error's text. */
function readErrorText(err: Error): string {
  const code = (err as { code?: unknown }).code;
  return code === "ECONNRESET" ? "read: connection reset by peer" : err.message;
}

/** Abort reasons are anything; rejections are errors. */
function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new DeckhandError("Cancelled", `request aborted: ${String(reason)}`, { cause: reason });
}
