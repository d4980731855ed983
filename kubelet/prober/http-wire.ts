/**
 * The HTTP/1.1 wire format of the probes' and hooks' GET, free of I/O: the request bytes, and the response
 * read incrementally as Go's net/http reads it for upstream's prober (ReadResponse, the transfer rules of
 * transfer.go, the chunked reader), reduced to what a probe needs: the status, Location and at most `maxBody`
 * bytes of body. Go's wording is kept for the errors users see in events.
 */
import { DeckhandError } from "../../src-shared/errors.ts";

/** Go's Transport default MaxResponseHeaderBytes (10 MiB). */
export const MAX_RESPONSE_HEAD = 10 << 20;
/** Go's chunked reader refuses a chunk-size line longer than this. */
const MAX_CHUNK_LINE = 4096;

/**
 * A response that is not HTTP/1.x as Go's client reads it. `inBody` tells an error of the body (upstream's
 * prober then reports the probe as errored) from one of the status line or headers (a failed request).
 */
export class HttpWireError extends DeckhandError {
  readonly inBody: boolean;
  constructor(message: string, inBody: boolean) {
    super("Unavailable", message);
    this.name = "HttpWireError";
    this.inBody = inBody;
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Go's httpguts.ValidHeaderFieldValue: no control character but HTAB (obs-text allowed).
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

function hasToken(value: string, token: string): boolean {
  return value.split(",").some((t) => t.trim().toLowerCase() === token);
}

/**
 * The request: `GET <path> HTTP/1.1`, Host (the first Host header given, else `host`), the other headers in
 * order, and `Connection: close` (Go's DisableKeepAlives) unless one given asks for close already. Throws
 * Go's error for a header name or value that cannot be sent (CR/LF would split the request).
 */
export function formatRequest(pathAndQuery: string, host: string, headers: readonly (readonly [string, string])[]): Buffer {
  let hostValue = host;
  let lines = "";
  let close = false;
  let hostGiven = false;
  for (const [name, value] of headers) {
    if (!TOKEN.test(name)) throw new DeckhandError("InvalidArgument", `net/http: invalid header field name ${JSON.stringify(name)}`, { details: { header: name } });
    const lower = name.toLowerCase();
    // A Host header becomes the request's host (Go's req.Host), checked as such below.
    if (lower === "host") {
      if (!hostGiven) hostValue = value;
      hostGiven = true;
      continue;
    }
    if (BAD_VALUE.test(value)) throw new DeckhandError("InvalidArgument", `net/http: invalid header field value for ${JSON.stringify(name)}`, { details: { header: name } });
    if (lower === "connection" && hasToken(value, "close")) close = true;
    lines += `${name}: ${value}\r\n`;
  }
  if (BAD_VALUE.test(hostValue) || hostValue.includes(" ")) throw new DeckhandError("InvalidArgument", "http: invalid Host header", { details: { host: hostValue } });
  return Buffer.from(`GET ${pathAndQuery} HTTP/1.1\r\nHost: ${hostValue}\r\n${lines}${close ? "" : "Connection: close\r\n"}\r\n`, "utf8");
}

/** Go's badStringError: `what "value"`, the value cut to keep an event readable. */
function bad(what: string, value: string): string {
  return `${what} ${JSON.stringify(value.length > 128 ? `${value.slice(0, 128)}...` : value)}`;
}

/** Go wraps what ReadResponse refuses so. */
const BROKEN = "net/http: HTTP/1.x transport connection broken: ";

function headError(message: string): HttpWireError {
  return new HttpWireError(BROKEN + message, false);
}

/** Where the parser is: the head, a body by Content-Length, chunked or up to the close, or done. */
const State = { Head: 0, Length: 1, Chunked: 2, Close: 3, Done: 4 } as const;
type State = (typeof State)[keyof typeof State];

/** Within a chunked body: the size line, the data, the CRLF after it. */
const Chunk = { Size: 0, Data: 1, DataEnd: 2 } as const;
type Chunk = (typeof Chunk)[keyof typeof Chunk];

/** Hex digits of a chunk size, as Go's parseHexUint (at most 16). */
function parseChunkSize(line: string): number {
  if (line.length === 0) throw new HttpWireError("empty hex number for chunk length", true);
  if (line.length > 16) throw new HttpWireError("http chunk length too large", true);
  if (!/^[0-9a-fA-F]+$/.test(line)) throw new HttpWireError("invalid byte in chunk length", true);
  const n = Number.parseInt(line, 16);
  if (!Number.isSafeInteger(n)) throw new HttpWireError("http chunk length too large", true);
  return n;
}

/** Go's ReadResponse on the status line: `HTTP/d.d` and a 3-digit code (the reason phrase is free). */
function parseStatusLine(line: string): { status: number; atLeast11: boolean } {
  const sp = line.indexOf(" ");
  if (sp < 0) throw headError(bad("malformed HTTP response", line));
  const proto = line.slice(0, sp);
  const statusText = line.slice(sp + 1).replace(/^ +/, "");
  const codeSp = statusText.indexOf(" ");
  const code = codeSp < 0 ? statusText : statusText.slice(0, codeSp);
  if (!/^\d{3}$/.test(code)) throw headError(bad("malformed HTTP status code", code));
  const m = /^HTTP\/(\d)\.(\d)$/.exec(proto);
  if (!m) throw headError(bad("malformed HTTP version", proto));
  return { status: Number(code), atLeast11: Number(m[1]) > 1 || (m[1] === "1" && m[2] !== "0") };
}

/** Go's client reads at most this many interim 1xx responses before the final one. */
const MAX_INTERIM = 5;

/**
 * One response, fed with the connection's bytes. `push` and `end` return true once the response is complete
 * for a probe: the whole body read, or `maxBody` bytes of it (the rest is not needed: upstream reads at most
 * that much). They throw HttpWireError for a malformed or cut response. Interim 1xx responses (but 101) are
 * skipped as Go's client does; 1xx, 204 and 304 have no body.
 */
export class ResponseParser {
  /** The final response's status code (0 until its head is read). */
  status = 0;
  /** Its first Location header. */
  location: string | undefined;
  private state: State = State.Head;
  private pending: Buffer | undefined;
  /** Where the search for the head's end resumes in `pending`. */
  private scanned = 0;
  /** Whether the current head's status line was checked (as soon as it is whole, as Go reads it). */
  private statusChecked = false;
  private interim = 0;
  private received = false;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  /** Content-Length bytes left, or the current chunk's. */
  private left = 0;
  private chunk: Chunk = Chunk.Size;
  private chunkLine = "";
  private readonly maxBody: number;
  private readonly maxHead: number;

  constructor(maxBody: number, maxHead = MAX_RESPONSE_HEAD) {
    this.maxBody = maxBody;
    this.maxHead = maxHead;
  }

  /** Whether the final response's status line and headers are read (a later error is the body's). */
  get headDone(): boolean {
    return this.state !== State.Head;
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  /** The body read so far (at most `maxBody` bytes), as UTF-8. */
  body(): string {
    if (this.chunks.length === 1) return (this.chunks[0] as Buffer).toString("utf8");
    return Buffer.concat(this.chunks, this.size).toString("utf8");
  }

  push(data: Buffer): boolean {
    if (this.done) return true;
    if (data.length === 0) return false;
    this.received = true;
    if (this.state === State.Head) {
      const rest = this.readHead(data);
      if (rest === undefined || rest.length === 0) return this.done;
      data = rest;
    }
    const state: State = this.state;
    if (state === State.Length) this.readLength(data);
    else if (state === State.Chunked) this.readChunked(data);
    else if (state === State.Close) this.take(data);
    return this.done;
  }

  /** The connection ended (EOF): true when that completes the response, else throws Go's error. */
  end(): boolean {
    switch (this.state) {
      case State.Done:
        return true;
      case State.Close:
        this.state = State.Done;
        return true;
      case State.Head:
        // Nothing at all is Go's `EOF`; a head cut short its `unexpected EOF`.
        throw new HttpWireError(this.received ? "unexpected EOF" : "EOF", false);
      default:
        throw new HttpWireError("unexpected EOF", true);
    }
  }

  /** Body bytes, up to maxBody; Done once that many are held. */
  private take(data: Buffer): void {
    const room = this.maxBody - this.size;
    const part = data.length > room ? data.subarray(0, room) : data;
    if (part.length > 0) {
      this.chunks.push(part);
      this.size += part.length;
    }
    if (this.size >= this.maxBody) this.state = State.Done;
  }

  private readLength(data: Buffer): void {
    const part = data.length > this.left ? data.subarray(0, this.left) : data;
    this.left -= part.length;
    this.take(part);
    if (this.left === 0) this.state = State.Done;
  }

  private readChunked(data: Buffer): void {
    let at = 0;
    while (at < data.length && !this.done) {
      switch (this.chunk) {
        case Chunk.Size: {
          const nl = data.indexOf(10, at);
          const end = nl < 0 ? data.length : nl;
          this.chunkLine += data.toString("latin1", at, end);
          if (this.chunkLine.length > MAX_CHUNK_LINE) throw new HttpWireError("header line too long", true);
          if (nl < 0) return;
          at = nl + 1;
          // Go trims the CR and trailing blanks, then drops `;extensions`.
          let line = this.chunkLine.replace(/[\r \t]+$/, "");
          this.chunkLine = "";
          const semi = line.indexOf(";");
          if (semi >= 0) line = line.slice(0, semi).replace(/[ \t]+$/, "");
          const n = parseChunkSize(line);
          if (n === 0) {
            // The last chunk: trailers are not needed, the connection is closed anyway.
            this.state = State.Done;
            return;
          }
          this.left = n;
          this.chunk = Chunk.Data;
          break;
        }
        case Chunk.Data: {
          const n = Math.min(this.left, data.length - at);
          this.take(data.subarray(at, at + n));
          at += n;
          this.left -= n;
          if (this.left === 0) {
            this.chunk = Chunk.DataEnd;
            this.left = 2;
          }
          break;
        }
        case Chunk.DataEnd: {
          // Exactly CRLF after the data.
          const want = this.left === 2 ? 13 : 10;
          if (data[at] !== want) throw new HttpWireError("malformed chunked encoding", true);
          at++;
          this.left--;
          if (this.left === 0) this.chunk = Chunk.Size;
          break;
        }
      }
    }
  }

  /**
   * Reads head bytes; returns the bytes after the head when the final response's head is complete (the body
   * state set), undefined when more are needed.
   */
  private readHead(data: Buffer): Buffer | undefined {
    let buf = this.pending ? Buffer.concat([this.pending, data]) : data;
    for (;;) {
      if (!this.statusChecked) {
        // A response that is not HTTP fails at its first line, without waiting for more.
        const nl = buf.indexOf(10);
        if (nl >= 0) {
          parseStatusLine(buf.toString("latin1", 0, nl > 0 && buf[nl - 1] === 13 ? nl - 1 : nl));
          this.statusChecked = true;
        }
      }
      // The head ends at an empty line (CRLF or a bare LF, as Go's textproto accepts).
      let end = -1;
      let from = this.scanned;
      for (;;) {
        const nl = buf.indexOf(10, from);
        if (nl < 0) break;
        const next = buf[nl + 1];
        if (next === 10) {
          end = nl + 2;
          break;
        }
        if (next === 13 && buf[nl + 2] === 10) {
          end = nl + 3;
          break;
        }
        // The byte after this LF is not here yet: look again from this LF.
        if (next === undefined || (next === 13 && nl + 2 >= buf.length)) {
          from = nl;
          break;
        }
        from = nl + 1;
      }
      if (end < 0) {
        if (buf.length > this.maxHead) throw headError(`net/http: server response headers exceeded ${this.maxHead} bytes; aborted`);
        this.scanned = Math.max(0, from);
        this.pending = buf;
        return undefined;
      }
      if (end > this.maxHead) throw headError(`net/http: server response headers exceeded ${this.maxHead} bytes; aborted`);
      const interim = this.parseHead(buf.toString("latin1", 0, end));
      buf = buf.subarray(end);
      this.scanned = 0;
      this.statusChecked = false;
      this.pending = undefined;
      if (!interim) return buf;
      if (++this.interim > MAX_INTERIM) throw headError("net/http: too many 1xx informational responses");
      if (buf.length === 0) return undefined;
    }
  }

  /** Parses one head; returns true for an interim 1xx response to skip. */
  private parseHead(head: string): boolean {
    const lines = head.split("\n");
    // The last two entries are the empty line and what follows its LF.
    lines.length -= 2;
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i] as string;
      if (l.endsWith("\r")) lines[i] = l.slice(0, -1);
    }
    const { status, atLeast11 } = parseStatusLine(lines[0] ?? "");

    let location: string | undefined;
    const lengths: string[] = [];
    const encodings: string[] = [];
    let name = "";
    let value = "";
    const flush = (): void => {
      if (name === "") return;
      const lower = name.toLowerCase();
      if (lower === "location") location ??= value;
      else if (lower === "content-length") lengths.push(value);
      else if (lower === "transfer-encoding") encodings.push(value);
    };
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const first = line.charCodeAt(0);
      if (first === 32 || first === 9) {
        // obs-fold: a continuation of the previous header's value.
        if (name === "") throw headError(`malformed MIME header initial line: ${line}`);
        value = `${value} ${line.trim()}`;
        continue;
      }
      flush();
      const colon = line.indexOf(":");
      const key = colon < 0 ? "" : line.slice(0, colon);
      if (!TOKEN.test(key)) throw headError(`malformed MIME header line: ${line}`);
      name = key;
      value = line.slice(colon + 1).trim();
    }
    flush();

    if (status >= 100 && status < 200 && status !== 101) return true;
    this.status = status;
    this.location = location;
    if ((status >= 100 && status < 200) || status === 204 || status === 304) {
      this.state = State.Done;
      return false;
    }
    // Transfer-Encoding counts from HTTP/1.1 on, and then only `chunked`; it overrides Content-Length.
    if (atLeast11 && encodings.length > 0) {
      if (encodings.length > 1) throw headError(`too many transfer encodings: [${encodings.map((e) => JSON.stringify(e)).join(" ")}]`);
      if ((encodings[0] as string).toLowerCase() !== "chunked") throw headError(bad("unsupported transfer encoding:", encodings[0] as string));
      this.state = State.Chunked;
      return false;
    }
    if (lengths.length > 0) {
      const first = (lengths[0] as string).trim();
      if (lengths.some((l) => l.trim() !== first)) throw headError(`http: message cannot contain multiple Content-Length headers; got ${JSON.stringify(lengths.join(", "))}`);
      if (!/^\d{1,19}$/.test(first) || !Number.isSafeInteger(Number(first))) throw headError(bad("bad Content-Length", first));
      this.left = Number(first);
      this.state = this.left === 0 ? State.Done : State.Length;
      return false;
    }
    this.state = State.Close;
    return false;
  }
}
