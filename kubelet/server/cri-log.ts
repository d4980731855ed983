/**
 * The CRI container log format and what `kubectl logs` asks of it, as upstream's kuberuntime_logs.go (pure):
 * lines `<RFC3339Nano> <stdout|stderr> <P|F>[:more tags] <content>`, where P marks a partial line (its newline
 * is not content), and the writer that applies `sinceTime`/`sinceSeconds` (messages older are skipped),
 * `timestamps` (each message prefixed with its time in RFC3339Nano, trailing zeros trimmed, as Go formats it)
 * and `limitBytes` (output cut at that many bytes). `tailLines` is found in the raw file (tailStart).
 * Also the PodLogOptions query decoding and validation of the kubelet's /containerLogs handler.
 */
import { DeckhandError } from "../../src-shared/errors.ts";

export interface CriLogMessage {
  /** The timestamp as written. */
  timestamp: string;
  /** Milliseconds since the epoch, with the sub-millisecond part as a fraction. */
  timeMs: number;
  stream: "stdout" | "stderr";
  partial: boolean;
  /** The content; a full line keeps its newline, a partial one has none. */
  content: Buffer;
}

const SPACE = 0x20;

/** The last whole second parsed, with its zone: log lines come in time order, most share their second. */
let lastSecond = "";
let lastZone = "";
let lastSecondMs = NaN;

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/**
 * Milliseconds (fractional) of an RFC 3339 time with up to nanosecond digits
 * (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`); NaN if it is not one. Checked by hand, not by a regular
 * expression, and the date itself parsed once per second: it runs for every line of a log that is read.
 */
export function parseRfc3339Nano(s: string): number {
  if (s.length < 20) return NaN;
  for (let i = 0; i < 19; i++) {
    const c = s.charCodeAt(i);
    const sep = i === 4 || i === 7 ? 0x2d : i === 10 ? 0x54 : i === 13 || i === 16 ? 0x3a : -1;
    if (sep >= 0 ? c !== sep : !isDigit(c)) return NaN;
  }
  let p = 19;
  let frac = 0;
  if (s.charCodeAt(p) === 0x2e) {
    const start = ++p;
    while (p < s.length && isDigit(s.charCodeAt(p))) p++;
    if (p === start || p - start > 9) return NaN;
    frac = Number(`0.${s.slice(start, p)}`) * 1000;
  }
  const zone = s.slice(p);
  if (zone !== "Z") {
    const c = zone.charCodeAt(0);
    if (zone.length !== 6 || (c !== 0x2b && c !== 0x2d) || !isDigit(zone.charCodeAt(1)) || !isDigit(zone.charCodeAt(2)) || zone.charCodeAt(3) !== 0x3a || !isDigit(zone.charCodeAt(4)) || !isDigit(zone.charCodeAt(5))) return NaN;
  }
  const second = s.slice(0, 19);
  if (second !== lastSecond || zone !== lastZone) {
    const ms = Date.parse(second + zone);
    if (Number.isNaN(ms)) return NaN;
    lastSecond = second;
    lastZone = zone;
    lastSecondMs = ms;
  }
  return lastSecondMs + frac;
}

/** Go's RFC3339Nano rendering of a parsed time: the fraction without trailing zeros (none when all zero). */
export function formatRfc3339Nano(timestamp: string): string {
  return timestamp.replace(/\.(\d*?)0+(?=Z|[+-])/, (_m, digits: string) => (digits === "" ? "" : `.${digits}`));
}

const NEWLINE = Buffer.from("\n");
const STDOUT = Buffer.from("stdout");
const STDERR = Buffer.from("stderr");

/** One line of a CRI log file, with or without its terminating newline. */
export function parseCriLogLine(raw: Buffer): CriLogMessage {
  // The line may come with its newline: a full message's content keeps it (a view, no copy), a partial one's not.
  // Offsets into `raw` rather than views of it: this runs for every line of a log that is read.
  const hasNewline = raw.length > 0 && raw[raw.length - 1] === 0x0a;
  const end = hasNewline ? raw.length - 1 : raw.length;
  const i1 = raw.indexOf(SPACE);
  if (i1 < 0 || i1 >= end) throw new DeckhandError("InvalidArgument", "timestamp is not found");
  const timestamp = raw.toString("latin1", 0, i1);
  const timeMs = parseRfc3339Nano(timestamp);
  if (Number.isNaN(timeMs)) throw new DeckhandError("InvalidArgument", `unexpected timestamp ${JSON.stringify(timestamp)}`);
  const i2 = raw.indexOf(SPACE, i1 + 1);
  if (i2 < 0 || i2 >= end) throw new DeckhandError("InvalidArgument", "stream type is not found");
  // Compared as bytes: no string per line for what is one of two words.
  const stream = i2 - i1 === 7 && raw.compare(STDOUT, 0, 6, i1 + 1, i2) === 0 ? "stdout" : i2 - i1 === 7 && raw.compare(STDERR, 0, 6, i1 + 1, i2) === 0 ? "stderr" : undefined;
  if (stream === undefined) throw new DeckhandError("InvalidArgument", `unexpected stream type ${JSON.stringify(raw.toString("latin1", i1 + 1, i2))}`);
  const i3 = raw.indexOf(SPACE, i2 + 1);
  if (i3 < 0 || i3 >= end) throw new DeckhandError("InvalidArgument", "log tag is not found");
  // The first tag (before any ':'): P is a partial line.
  const partial = raw[i2 + 1] === 0x50 && (i3 === i2 + 2 || raw[i2 + 2] === 0x3a);
  const content = partial ? raw.subarray(i3 + 1, end) : hasNewline ? raw.subarray(i3 + 1) : Buffer.concat([raw.subarray(i3 + 1), NEWLINE]);
  return { timestamp, timeMs, stream, partial, content };
}

export interface LogOptions {
  follow: boolean;
  /** undefined: every line. */
  tailLines: number | undefined;
  /** undefined: no limit. */
  limitBytes: number | undefined;
  /** Messages before this time (ms) are skipped. */
  sinceMs: number | undefined;
  timestamps: boolean;
  previous: boolean;
}

/** Applies since, timestamps and limitBytes to messages in order; `done` once the byte limit is reached. */
export class CriLogWriter {
  private remaining: number;
  private readonly o: Pick<LogOptions, "sinceMs" | "timestamps" | "limitBytes">;
  done = false;

  constructor(o: Pick<LogOptions, "sinceMs" | "timestamps" | "limitBytes">) {
    this.o = o;
    this.remaining = o.limitBytes ?? Infinity;
  }

  /** What to send for one message (empty when skipped or past the limit). */
  write(msg: CriLogMessage): Buffer {
    if (this.done) return Buffer.alloc(0);
    if (this.o.sinceMs !== undefined && msg.timeMs < this.o.sinceMs) return Buffer.alloc(0);
    let out = this.o.timestamps ? Buffer.concat([Buffer.from(`${formatRfc3339Nano(msg.timestamp)} `), msg.content]) : msg.content;
    if (out.length >= this.remaining) {
      out = out.subarray(0, this.remaining);
      this.remaining = 0;
      this.done = true;
      return out;
    }
    this.remaining -= out.length;
    return out;
  }
}

/**
 * Where the last `n` lines of `data` start (the whole buffer when it has fewer): a final line without its
 * newline counts as a line, as upstream's tail.FindTailLineStartIndex.
 */
export function tailStart(data: Buffer, n: number): number {
  if (n <= 0) return data.length;
  let end = data.length;
  if (end > 0 && data[end - 1] === 0x0a) end--; // the last line's own newline
  let count = 0;
  for (let i = end - 1; i >= 0; i--) {
    if (data[i] === 0x0a) {
      count++;
      if (count === n) return i + 1;
    }
  }
  return 0;
}

/** Why a /containerLogs query was refused: 400 (cannot decode) or 422 (invalid), with upstream's bodies. */
export class LogQueryError extends DeckhandError {
  readonly status: 400 | 422;
  constructor(status: 400 | 422, detail: string) {
    super("InvalidArgument", status === 400 ? `{"message": "Unable to decode query."}` : `{"message": "Invalid request."}`, { details: { detail } });
    this.status = status;
  }
}

function bool(q: URLSearchParams, k: string): boolean {
  const v = q.get(k);
  if (v === null || v === "") return false;
  // Go's strconv.ParseBool.
  if (["1", "t", "T", "true", "TRUE", "True"].includes(v)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(v)) return false;
  throw new LogQueryError(400, `${k}: ${v}`);
}

function int(q: URLSearchParams, k: string): number | undefined {
  const v = q.get(k);
  if (v === null || v === "") return undefined;
  if (!/^[+-]?\d+$/.test(v)) throw new LogQueryError(400, `${k}: ${v}`);
  return Number(v);
}

/** PodLogOptions from the query (with the legacy `tail`, where "all" means every line), validated. */
export function parseLogQuery(q: URLSearchParams, nowMs: number): LogOptions {
  const params = new URLSearchParams(q);
  const tail = params.get("tail");
  if (tail !== null && tail !== "") {
    if (tail === "all") params.delete("tailLines");
    else params.set("tailLines", tail);
  }
  const tailLines = int(params, "tailLines");
  const limitBytes = int(params, "limitBytes");
  const sinceSeconds = int(params, "sinceSeconds");
  const sinceTimeText = params.get("sinceTime");
  let sinceTime: number | undefined;
  if (sinceTimeText !== null && sinceTimeText !== "") {
    sinceTime = parseRfc3339Nano(sinceTimeText);
    if (Number.isNaN(sinceTime)) throw new LogQueryError(400, `sinceTime: ${sinceTimeText}`);
  }
  const o: LogOptions = {
    follow: bool(params, "follow"),
    previous: bool(params, "previous"),
    timestamps: bool(params, "timestamps"),
    tailLines,
    limitBytes,
    sinceMs: undefined,
  };
  // validation.ValidatePodLogOptions
  if (tailLines !== undefined && tailLines < 0) throw new LogQueryError(422, "tailLines must be greater than or equal to 0");
  if (limitBytes !== undefined && limitBytes < 1) throw new LogQueryError(422, "limitBytes must be greater than 0");
  if (sinceSeconds !== undefined && sinceTime !== undefined) throw new LogQueryError(422, "at most one of sinceTime or sinceSeconds may be specified");
  if (sinceSeconds !== undefined) {
    if (sinceSeconds < 1) throw new LogQueryError(422, "sinceSeconds must be greater than 0");
    o.sinceMs = nowMs - sinceSeconds * 1000;
  }
  if (sinceTime !== undefined) o.sinceMs = sinceTime;
  return o;
}
