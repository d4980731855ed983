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

/** Milliseconds (fractional) of an RFC 3339 time with up to nanosecond digits; NaN if it is not one. */
export function parseRfc3339Nano(s: string): number {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (m === null) return NaN;
  const whole = Date.parse(`${m[1] ?? ""}${m[3] ?? ""}`);
  const frac = m[2] === undefined ? 0 : Number(`0.${m[2]}`) * 1000;
  return whole + frac;
}

/** Go's RFC3339Nano rendering of a parsed time: the fraction without trailing zeros (none when all zero). */
export function formatRfc3339Nano(timestamp: string): string {
  return timestamp.replace(/\.(\d*?)0+(?=Z|[+-])/, (_m, digits: string) => (digits === "" ? "" : `.${digits}`));
}

/** One line of a CRI log file (without its terminating newline). */
export function parseCriLogLine(line: Buffer): CriLogMessage {
  const i1 = line.indexOf(SPACE);
  if (i1 < 0) throw new DeckhandError("InvalidArgument", "timestamp is not found");
  const timestamp = line.subarray(0, i1).toString("latin1");
  const timeMs = parseRfc3339Nano(timestamp);
  if (Number.isNaN(timeMs)) throw new DeckhandError("InvalidArgument", `unexpected timestamp ${JSON.stringify(timestamp)}`);
  const i2 = line.indexOf(SPACE, i1 + 1);
  if (i2 < 0) throw new DeckhandError("InvalidArgument", "stream type is not found");
  const stream = line.subarray(i1 + 1, i2).toString("latin1");
  if (stream !== "stdout" && stream !== "stderr") throw new DeckhandError("InvalidArgument", `unexpected stream type ${JSON.stringify(stream)}`);
  const i3 = line.indexOf(SPACE, i2 + 1);
  if (i3 < 0) throw new DeckhandError("InvalidArgument", "log tag is not found");
  const tag = line.subarray(i2 + 1, i3).toString("latin1").split(":")[0];
  const partial = tag === "P";
  const body = line.subarray(i3 + 1);
  return { timestamp, timeMs, stream, partial, content: partial ? Buffer.from(body) : Buffer.concat([body, Buffer.from("\n")]) };
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
