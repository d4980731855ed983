/**
 * The control plane's WebSocket streaming: frames (RFC 6455), SPDY/3.1 frames and header blocks, and the
 * exec translator end to end between a WebSocket client and a fake kubelet speaking SPDY.
 */
import { duplexPair, type Duplex } from "node:stream";
import type { IncomingMessage } from "node:http";
import zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { acceptKey, encodeFrame, FrameParser, OP_BINARY, OP_PING, WebSocket } from "../../control-plane/websocket.ts";
import { dataFrame, HeaderCompressor, headerBlock, SpdyFrameReader, SpdySession, FLAG_FIN, TYPE_SYN_STREAM, TYPE_PING } from "../../control-plane/spdy.ts";
import { translatedStatus, translateStream } from "../../control-plane/stream-translator.ts";
import { tunneledProtocols, tunnelStream } from "../../control-plane/stream-tunnel.ts";
import { readHead, type ResponseHead } from "../../control-plane/http-head.ts";

function fakeRequest(headers: Record<string, string>): IncomingMessage {
  const raw = Object.entries(headers).flat();
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { headers: lower, rawHeaders: raw, method: "GET", url: "/" } as unknown as IncomingMessage;
}

describe("WebSocket frames", () => {
  it("computes the handshake's accept key as RFC 6455's example", () => {
    expect(acceptKey("dGhlIHNhbXBsZSBub25jZQ==")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });

  it("reads masked client frames of every length form, split anywhere, and fragmented messages", () => {
    const small = encodeFrame(OP_BINARY, Buffer.from("hi"), true);
    const mid = encodeFrame(OP_BINARY, Buffer.alloc(300, 7), true);
    const big = encodeFrame(OP_BINARY, Buffer.alloc(70_000, 9), true);
    const all = Buffer.concat([small, mid, big]);
    const p = new FrameParser();
    const frames = [];
    for (let i = 0; i < all.length; i += 1000) frames.push(...p.push(all.subarray(i, i + 1000)));
    expect(frames.map((f) => [f.opcode, f.payload.length, f.fin])).toEqual([
      [OP_BINARY, 2, true],
      [OP_BINARY, 300, true],
      [OP_BINARY, 70_000, true],
    ]);
    expect(frames[0]?.payload.toString()).toBe("hi");
    expect(frames[2]?.payload.every((b) => b === 9)).toBe(true);
  });

  it("answers pings, puts fragments together and closes with the handshake", async () => {
    const [a, b] = duplexPair();
    const got: string[] = [];
    let closed: number | undefined = -1;
    new WebSocket(a, "server", { message: (d) => got.push(d.toString()), close: (c) => (closed = c) });
    const fromServer = new FrameParser();
    const replies: number[] = [];
    b.on("data", (c: Buffer) => replies.push(...fromServer.push(c).map((f) => f.opcode)));
    b.write(encodeFrame(OP_PING, Buffer.from("p"), true));
    b.write(Buffer.concat([encodeFrame(OP_BINARY, Buffer.from("hel"), true, false), encodeFrame(0, Buffer.from("lo"), true, true)]));
    const close = Buffer.alloc(2);
    close.writeUInt16BE(1000);
    b.write(encodeFrame(0x8, close, true));
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual(["hello"]);
    expect(replies).toEqual([0xa, 0x8]);
    expect(closed).toBe(1000);
  });
});

describe("SPDY/3.1 frames", () => {
  it("writes header blocks as a zlib stream any inflater reads, one flushed block per frame", () => {
    const c = new HeaderCompressor();
    const one = c.compress(headerBlock([["streamType", "error"]]));
    const two = c.compress(headerBlock([["streamtype", "stdout"]]));
    const text = zlib.inflateSync(Buffer.concat([one, two]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(text.equals(Buffer.concat([headerBlock([["streamtype", "error"]]), headerBlock([["streamtype", "stdout"]])]))).toBe(true);
    // Every block ends with the empty stored block of a sync flush.
    expect(two.subarray(-5).toString("hex")).toBe("000000ffff");
  });

  it("reads control and data frames split across chunks", () => {
    const r = new SpdyFrameReader();
    const bytes = Buffer.concat([dataFrame(3, Buffer.from("abc"), true), Buffer.from("800300060000000400000002", "hex")]);
    const frames = [...r.push(bytes.subarray(0, 5)), ...r.push(bytes.subarray(5))];
    expect(frames).toEqual([
      { control: false, streamId: 3, flags: FLAG_FIN, payload: Buffer.from("abc") },
      { control: true, type: TYPE_PING, flags: 0, payload: Buffer.from("00000002", "hex") },
    ]);
  });
});

/** A kubelet's SPDY side (remotecommand v4): records the streams opened, replies to each, then runs `script`. */
function fakeKubelet(socket: Duplex, script: (streams: Map<string, number>, send: (b: Buffer) => void) => void): { stdin: string[] } {
  const reader = new SpdyFrameReader();
  const blocks: Buffer[] = [];
  let parsed = 0;
  const streams = new Map<string, number>();
  const seen = { stdin: [] as string[] };
  const reply = (id: number): Buffer => {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(id);
    const h = Buffer.alloc(8);
    h.writeUInt32BE(0x80030002, 0);
    h.writeUInt32BE(p.length, 4);
    return Buffer.concat([h, p]);
  };
  socket.on("data", (c: Buffer) => {
    for (const f of reader.push(c)) {
      if (f.control && f.type === TYPE_SYN_STREAM) {
        const id = f.payload.readUInt32BE(0);
        blocks.push(f.payload.subarray(10));
        const all = zlib.inflateSync(Buffer.concat(blocks), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
        // The newest block: a count of 1, then the length-prefixed name and value.
        const nameLen = all.readUInt32BE(parsed + 4);
        const valueLen = all.readUInt32BE(parsed + 8 + nameLen);
        const type = all.subarray(parsed + 12 + nameLen, parsed + 12 + nameLen + valueLen).toString("latin1");
        parsed += 12 + nameLen + valueLen;
        streams.set(type, id);
        socket.write(reply(id));
        if (streams.size === 3) script(streams, (b) => socket.write(b));
      } else if (!f.control && f.streamId === streams.get("stdin") && f.payload.length > 0) seen.stdin.push(f.payload.toString());
    }
  });
  return seen;
}

describe("the stream translator", () => {
  it("carries stdin to the kubelet, its output to the client and the exit code as upstream's status", async () => {
    const [client, server] = duplexPair();
    const [cp, kubelet] = duplexPair();
    const req = fakeRequest({ Upgrade: "websocket", Connection: "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Protocol": "v5.channel.k8s.io" });
    const seen = fakeKubelet(kubelet, (s, send) => {
      setTimeout(() => {
        send(dataFrame(s.get("stdout") ?? 0, Buffer.from("out!"), true));
        send(dataFrame(s.get("error") ?? 0, Buffer.from(JSON.stringify({ status: "Failure", reason: "NonZeroExitCode", message: "x", details: { causes: [{ reason: "ExitCode", message: "7" }] } })), true));
      }, 20);
    });
    const done = translateStream(req, server, Buffer.alloc(0), { stdin: true, stdout: true, stderr: false, tty: false }, () => Promise.resolve(new SpdySession(cp)), new AbortController().signal);
    const head = await readHead(client);
    expect(head.status).toBe(101);
    expect(head.headers["sec-websocket-protocol"]).toBe("v5.channel.k8s.io");
    const messages: Buffer[] = [];
    const ws = new WebSocket(client, "client", { message: (d) => messages.push(d), close: () => undefined });
    ws.send(Buffer.from("\x00typed"));
    ws.send(Buffer.from([255, 0]));
    expect(await done).toBe(200);
    expect(seen.stdin).toEqual(["typed"]);
    expect(messages.map((m) => [m[0], m.subarray(1).toString()])).toEqual([
      [1, ""],
      [1, "out!"],
      [3, JSON.stringify(translatedStatus('{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}'))],
    ]);
  });

  it("words the status as upstream's translator: success, exit codes, other failures as internal errors", () => {
    expect(translatedStatus("")).toEqual({ metadata: {}, status: "Success" });
    expect(translatedStatus('{"status":"Success"}')).toEqual({ metadata: {}, status: "Success" });
    expect(translatedStatus('{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}')).toMatchObject({ status: "Failure", reason: "NonZeroExitCode", details: { causes: [{ reason: "ExitCode", message: "3" }] } });
    expect(translatedStatus('{"status":"Failure","reason":"InternalError","message":"container not found"}')).toMatchObject({ status: "Failure", reason: "InternalError", code: 500, message: "Internal error occurred: container not found" });
    expect(translatedStatus("not json")).toMatchObject({ reason: "InternalError" });
  });

  it("reports a kubelet that refuses the upgrade as an InternalError status on the error channel", async () => {
    const [client, server] = duplexPair();
    const req = fakeRequest({ Upgrade: "websocket", Connection: "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Protocol": "v5.channel.k8s.io" });
    const done = translateStream(req, server, Buffer.alloc(0), { stdin: false, stdout: true, stderr: true, tty: false }, () => Promise.reject(new Error('unable to upgrade connection: container not found ("main")')), new AbortController().signal);
    expect((await readHead(client)).status).toBe(101);
    const messages: Buffer[] = [];
    new WebSocket(client, "client", { message: (d) => messages.push(d), close: () => undefined });
    expect(await done).toBe(500);
    const status = messages.find((m) => m[0] === 3)?.subarray(1).toString() ?? "{}";
    expect(JSON.parse(status)).toMatchObject({ status: "Failure", reason: "InternalError", code: 500, message: 'Internal error occurred: unable to upgrade connection: container not found ("main")' });
  });

  it("refuses a client that does not offer v5.channel.k8s.io with 400 (kubectl then falls back to SPDY)", async () => {
    const [client, server] = duplexPair();
    const req = fakeRequest({ Upgrade: "websocket", Connection: "Upgrade", "Sec-WebSocket-Key": "a2V5a2V5a2V5a2V5a2V5aw==", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Protocol": "v4.channel.k8s.io" });
    const code = await translateStream(req, server, Buffer.alloc(0), { stdin: false, stdout: true, stderr: false, tty: false }, () => Promise.reject(new Error("not asked")), new AbortController().signal);
    expect(code).toBe(400);
    expect((await readHead(client)).status).toBe(400);
  });

  it("takes the tunnelled SPDY protocols from the WebSocket subprotocols", () => {
    expect(tunneledProtocols(fakeRequest({ "Sec-WebSocket-Protocol": "SPDY/3.1+portforward.k8s.io, v4.channel.k8s.io" }))).toEqual(["portforward.k8s.io"]);
    expect(tunneledProtocols(fakeRequest({ "Sec-WebSocket-Protocol": "v5.channel.k8s.io" }))).toEqual([]);
  });
});

describe("the port-forward tunnel", () => {
  const wsRequest = (): IncomingMessage =>
    fakeRequest({ Upgrade: "websocket", Connection: "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Protocol": "SPDY/3.1+portforward.k8s.io" });

  it("asks the kubelet for the unprefixed protocols, answers with the chosen one prefixed, and carries bytes both ways", async () => {
    const [client, server] = duplexPair();
    const [up, kubelet] = duplexPair();
    let asked: string[] = [];
    const head: ResponseHead = { status: 101, reason: "Switching Protocols", headers: { connection: "Upgrade", upgrade: "SPDY/3.1", "x-stream-protocol-version": "portforward.k8s.io" }, raw: Buffer.alloc(0) };
    const done = tunnelStream(wsRequest(), server, Buffer.alloc(0), (protocols) => {
      asked = protocols;
      return Promise.resolve({ socket: up, head });
    }, new AbortController().signal);
    const answer = await readHead(client);
    expect(answer.status).toBe(101);
    expect(answer.headers["sec-websocket-protocol"]).toBe("SPDY/3.1+portforward.k8s.io");
    expect(asked).toEqual(["portforward.k8s.io"]);
    const got: string[] = [];
    const ws = new WebSocket(client, "client", { message: (d) => got.push(d.toString()), close: () => undefined });
    const atKubelet: string[] = [];
    kubelet.on("data", (c: Buffer) => {
      atKubelet.push(c.toString());
      kubelet.write("spdy-from-kubelet");
    });
    ws.send(Buffer.from("spdy-from-kubectl"));
    await new Promise((r) => setTimeout(r, 20));
    expect(atKubelet).toEqual(["spdy-from-kubectl"]);
    expect(got).toEqual(["spdy-from-kubelet"]);
    ws.close();
    kubelet.end();
    expect(await done).toBe(101);
  });

  it("passes any other kubelet answer back as it came, and refuses a request without tunnelling protocols", async () => {
    const [client, server] = duplexPair();
    const [up, kubelet] = duplexPair();
    const raw = Buffer.from("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n");
    const done = tunnelStream(wsRequest(), server, Buffer.alloc(0), () => Promise.resolve({ socket: up, head: { status: 404, reason: "Not Found", headers: {}, raw } }), new AbortController().signal);
    kubelet.end("not found");
    const chunks: Buffer[] = [];
    client.on("data", (c: Buffer) => chunks.push(c));
    expect(await done).toBe(404);
    await new Promise((r) => setTimeout(r, 10));
    expect(Buffer.concat(chunks).toString()).toBe(`${raw.toString()}not found`);

    const [c2, s2] = duplexPair();
    expect(await tunnelStream(fakeRequest({ Upgrade: "websocket", "Sec-WebSocket-Protocol": "v4.channel.k8s.io" }), s2, Buffer.alloc(0), () => Promise.reject(new Error("not asked")), new AbortController().signal)).toBe(400);
    expect((await readHead(c2)).status).toBe(400);
  });
});
