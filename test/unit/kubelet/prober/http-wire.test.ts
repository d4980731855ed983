import { describe, expect, it } from "vitest";
import { formatRequest, HttpWireError, ResponseParser } from "../../../../kubelet/prober/http-wire.ts";

/** Feeds `parts` in order; returns the parser and whether it completed (ending the connection if asked). */
function parse(parts: readonly (string | Buffer)[], o: { maxBody?: number; end?: boolean } = {}): { p: ResponseParser; done: boolean } {
  const p = new ResponseParser(o.maxBody ?? 10 * 1024);
  let done = false;
  for (const part of parts) {
    done = p.push(typeof part === "string" ? Buffer.from(part, "latin1") : part);
    if (done) break;
  }
  if (!done && o.end) done = p.end();
  return { p, done };
}

/** Every split of `text` into single bytes. */
function bytes(text: string): string[] {
  return [...text];
}

function wireError(fn: () => unknown): HttpWireError {
  try {
    fn();
  } catch (err) {
    if (err instanceof HttpWireError) return err;
    throw err;
  }
  throw new Error("no error thrown");
}

describe("formatRequest", () => {
  it("writes the GET with Host first, the headers in order, and Connection: close", () => {
    const req = formatRequest("/healthz?x=1", "10.0.0.5:8080", [
      ["User-Agent", "kube-probe/1.31"],
      ["X-Trace", "a"],
      ["X-Trace", "b"],
    ]).toString("latin1");
    expect(req).toBe("GET /healthz?x=1 HTTP/1.1\r\nHost: 10.0.0.5:8080\r\nUser-Agent: kube-probe/1.31\r\nX-Trace: a\r\nX-Trace: b\r\nConnection: close\r\n\r\n");
  });

  it("takes the first Host header given instead of the address; keeps a Connection: close given", () => {
    const req = formatRequest("/", "[fd00::1]:80", [
      ["host", "svc.example"],
      ["Host", "other"],
      ["Connection", "Close"],
    ]).toString("latin1");
    expect(req).toBe("GET / HTTP/1.1\r\nHost: svc.example\r\nConnection: Close\r\n\r\n");
  });

  it("refuses a header that would split the request, naming it", () => {
    expect(() => formatRequest("/", "h:80", [["X-A", "1\r\nX-Injected: 2"]])).toThrow('net/http: invalid header field value for "X-A"');
    expect(() => formatRequest("/", "h:80", [["Bad Name", "1"]])).toThrow('net/http: invalid header field name "Bad Name"');
    expect(() => formatRequest("/", "h:80", [["Host", "a\nb"]])).toThrow("http: invalid Host header");
  });
});

describe("ResponseParser", () => {
  it("reads a Content-Length body, stopping at its length", () => {
    const { p, done } = parse(["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"]);
    expect(done).toBe(true);
    expect([p.status, p.body()]).toEqual([200, "hello"]);
  });

  it("reads a head and body split at every byte, CRLF or bare LF", () => {
    for (const text of ["HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.1 302 Found\nLocation: /next\nContent-Length: 3\n\nabc"]) {
      const { p, done } = parse(bytes(text));
      expect(done).toBe(true);
      expect([p.status, p.location, p.body()]).toEqual([302, "/next", "abc"]);
    }
  });

  it("decodes a chunked body with extensions, split anywhere, ignoring trailers", () => {
    const text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 999\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";
    for (const parts of [[text], bytes(text)]) {
      const { p, done } = parse(parts);
      expect(done).toBe(true);
      expect(p.body()).toBe("Wikipedia in\r\n\r\nchunks.");
    }
  });

  it("refuses malformed chunked encoding as an error of the body", () => {
    const head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    const cases: [string, string][] = [
      [`${head}zz\r\n`, "invalid byte in chunk length"],
      [`${head}\r\n`, "empty hex number for chunk length"],
      [`${head}3\r\nabcXY`, "malformed chunked encoding"],
      [`${head}11111111111111111\r\n`, "http chunk length too large"],
    ];
    for (const [text, message] of cases) {
      const err = wireError(() => parse([text]));
      expect(err.message).toBe(message);
      expect(err.inBody).toBe(true);
    }
    const cut = wireError(() => parse([`${head}5\r\nab`], { end: true }));
    expect([cut.message, cut.inBody]).toEqual(["unexpected EOF", true]);
  });

  it("reads a body without length up to the close", () => {
    const { p, done } = parse(["HTTP/1.0 200 OK\r\n\r\nsome ", "more"], { end: true });
    expect(done).toBe(true);
    expect(p.body()).toBe("some more");
  });

  it("ignores Transfer-Encoding in an HTTP/1.0 response", () => {
    const { p, done } = parse(["HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc"], { end: true });
    expect(done).toBe(true);
    expect(p.body()).toBe("3\r\nabc");
  });

  it("stops at maxBody bytes of a body of any kind, without waiting for the rest", () => {
    const big = "x".repeat(100);
    expect(parse([`HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n${big}`], { maxBody: 64 }).p.body()).toBe("x".repeat(64));
    const chunked = parse([`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n${big}`], { maxBody: 64 });
    expect([chunked.done, chunked.p.body()]).toEqual([true, "x".repeat(64)]);
    const close = parse([`HTTP/1.1 200 OK\r\n\r\n${big.slice(0, 40)}`, big.slice(40)], { maxBody: 64 });
    expect([close.done, close.p.body().length]).toEqual([true, 64]);
  });

  it("gives 204, 304 and 101 no body; skips interim 1xx responses", () => {
    for (const status of [204, 304, 101]) {
      const { p, done } = parse([`HTTP/1.1 ${status} X\r\nContent-Length: 5\r\n\r\n`]);
      expect([done, p.status, p.body()]).toEqual([true, status, ""]);
    }
    const { p, done } = parse(bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    expect([done, p.status, p.body()]).toEqual([true, 200, "ok"]);
  });

  it("refuses a bad status line or header with Go's words, as an error of the head", () => {
    const cases: [string, string][] = [
      ["garbage\r\n\r\n", 'malformed HTTP response "garbage"'],
      ["HTTP/1.1 2000 OK\r\n\r\n", 'malformed HTTP status code "2000"'],
      ["HTTP/1.1 abc OK\r\n\r\n", 'malformed HTTP status code "abc"'],
      ["HTTP/x 200 OK\r\n\r\n", 'malformed HTTP version "HTTP/x"'],
      ["\x00\x00\x12\x04 \r\n\r\n", 'malformed HTTP status code ""'],
      ["HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed MIME header line: no colon here"],
      ["HTTP/1.1 200 OK\r\n folded\r\n\r\n", "malformed MIME header initial line:  folded"],
      ["HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 'http: message cannot contain multiple Content-Length headers; got "1, 2"'],
      ["HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 'bad Content-Length "-1"'],
      ["HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 'unsupported transfer encoding: "gzip"'],
    ];
    for (const [text, message] of cases) {
      const err = wireError(() => parse([text]));
      expect(err.message).toBe(`net/http: HTTP/1.x transport connection broken: ${message}`);
      expect(err.inBody).toBe(false);
    }
  });

  it("refuses a bad status line as soon as it is whole, before the rest of the head", () => {
    const p = new ResponseParser(1024);
    expect(p.push(Buffer.from("SSH-2.0-OpenSSH"))).toBe(false);
    expect(() => p.push(Buffer.from("_9.6\r\n"))).toThrow('malformed HTTP response "SSH-2.0-OpenSSH_9.6"');
  });

  it("refuses more than 5 interim responses", () => {
    expect(parse(["HTTP/1.1 100 Continue\r\n\r\n".repeat(5), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]).p.status).toBe(200);
    expect(() => parse(["HTTP/1.1 100 Continue\r\n\r\n".repeat(6)])).toThrow("net/http: too many 1xx informational responses");
  });

  it("tells a connection closed before any byte (EOF) from a head cut short", () => {
    expect(wireError(() => parse([], { end: true })).message).toBe("EOF");
    expect(wireError(() => parse(["HTTP/1.1 200 OK\r\nContent-"], { end: true })).message).toBe("unexpected EOF");
    expect(wireError(() => parse(["HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"], { end: true })).inBody).toBe(true);
  });

  it("folds continuation lines into the header's value", () => {
    const { p } = parse(["HTTP/1.1 301 Moved\r\nLocation: /a\r\n  b\r\nContent-Length: 0\r\n\r\n"]);
    expect(p.location).toBe("/a b");
  });

  it("refuses a head larger than its limit, even without an end of line", () => {
    const p = new ResponseParser(1024, 64);
    expect(() => p.push(Buffer.from(`HTTP/1.1 200 OK\r\nX-Big: ${"y".repeat(100)}`))).toThrow("net/http: server response headers exceeded 64 bytes; aborted");
  });
});
