import { describe, expect, it } from "vitest";
import { CriLogWriter, formatRfc3339Nano, LogQueryError, parseCriLogLine, parseLogQuery, parseRfc3339Nano, tailStart } from "../../../../kubelet/server/cri-log.ts";

const line = (s: string): Buffer => Buffer.from(s);

describe("CRI log lines", () => {
  it("parses full and partial lines; a full line keeps its newline, a partial one does not", () => {
    const f = parseCriLogLine(line("2016-10-06T00:17:09.669794202Z stdout F log content"));
    expect(f).toMatchObject({ timestamp: "2016-10-06T00:17:09.669794202Z", stream: "stdout", partial: false });
    expect(f.content.toString()).toBe("log content\n");
    const p = parseCriLogLine(line("2016-10-06T00:17:09.669794202Z stderr P:extra part"));
    expect(p).toMatchObject({ stream: "stderr", partial: true });
    expect(p.content.toString()).toBe("part");
    expect(parseCriLogLine(line("2016-10-06T00:17:09Z stdout F ")).content.toString()).toBe("\n");
  });

  it("refuses lines without timestamp, stream or tag, and unknown streams", () => {
    expect(() => parseCriLogLine(line("garbage"))).toThrow("timestamp is not found");
    expect(() => parseCriLogLine(line("2016-10-06T00:17:09Z stdout"))).toThrow("stream type is not found");
    expect(() => parseCriLogLine(line("2016-10-06T00:17:09Z stdin F x"))).toThrow('unexpected stream type "stdin"');
    expect(() => parseCriLogLine(line("2016-10-06T00:17:09Z stdout Fx"))).toThrow("log tag is not found");
    expect(() => parseCriLogLine(line("yesterday stdout F x"))).toThrow("unexpected timestamp");
  });

  it("reads RFC 3339 times to the sub-millisecond and writes them as Go's RFC3339Nano", () => {
    expect(parseRfc3339Nano("2016-10-06T00:17:09.669794202Z") - Date.parse("2016-10-06T00:17:09Z")).toBeCloseTo(669.794, 2);
    expect(parseRfc3339Nano("2016-10-06T02:17:09+02:00")).toBe(Date.parse("2016-10-06T00:17:09Z"));
    expect(formatRfc3339Nano("2016-10-06T00:17:09.669794200Z")).toBe("2016-10-06T00:17:09.6697942Z");
    expect(formatRfc3339Nano("2016-10-06T00:17:09.000000000Z")).toBe("2016-10-06T00:17:09Z");
    expect(formatRfc3339Nano("2016-10-06T00:17:09.5+02:00")).toBe("2016-10-06T00:17:09.5+02:00");
  });
});

describe("the log writer", () => {
  const msg = (ts: string, text: string, partial = false) => parseCriLogLine(line(`${ts} stdout ${partial ? "P" : "F"} ${text}`));

  it("skips messages before since, prefixes each message with its time, and cuts at limitBytes", () => {
    const w = new CriLogWriter({ sinceMs: Date.parse("2020-01-01T00:00:01Z"), timestamps: true, limitBytes: 40 });
    expect(w.write(msg("2020-01-01T00:00:00.9Z", "old")).length).toBe(0);
    expect(w.write(msg("2020-01-01T00:00:01.000Z", "new")).toString()).toBe("2020-01-01T00:00:01Z new\n");
    expect(w.write(msg("2020-01-01T00:00:02.5Z", "more text")).toString()).toBe("2020-01-01T00:0");
    expect(w.done).toBe(true);
    expect(w.write(msg("2020-01-01T00:00:03Z", "after")).length).toBe(0);
  });

  it("joins partial lines back into one", () => {
    const w = new CriLogWriter({ sinceMs: undefined, timestamps: false, limitBytes: undefined });
    const out = Buffer.concat([w.write(msg("2020-01-01T00:00:00Z", "hel", true)), w.write(msg("2020-01-01T00:00:00Z", "lo"))]);
    expect(out.toString()).toBe("hello\n");
  });

  it("finds where the last n lines start", () => {
    const data = line("a\nb\nc\n");
    expect(data.subarray(tailStart(data, 2)).toString()).toBe("b\nc\n");
    expect(tailStart(data, 5)).toBe(0);
    expect(tailStart(data, 0)).toBe(data.length);
    const noNewline = line("a\nb");
    expect(noNewline.subarray(tailStart(noNewline, 1)).toString()).toBe("b");
  });
});

describe("the /containerLogs query", () => {
  const q = (s: string) => parseLogQuery(new URLSearchParams(s), Date.parse("2020-01-01T00:01:00Z"));
  const status = (s: string): number | undefined => {
    try {
      q(s);
      return undefined;
    } catch (e) {
      return e instanceof LogQueryError ? e.status : -1;
    }
  };

  it("decodes PodLogOptions, with the legacy tail (where all means every line)", () => {
    expect(q("follow=true&tailLines=3&limitBytes=10&timestamps=1&previous=false")).toEqual({ follow: true, tailLines: 3, limitBytes: 10, timestamps: true, previous: false, sinceMs: undefined });
    expect(q("tail=5").tailLines).toBe(5);
    expect(q("tail=all&tailLines=5").tailLines).toBeUndefined();
    expect(q("sinceSeconds=30").sinceMs).toBe(Date.parse("2020-01-01T00:00:30Z"));
    expect(q("sinceTime=2020-01-01T00:00:10Z").sinceMs).toBe(Date.parse("2020-01-01T00:00:10Z"));
  });

  it("answers 400 for what it cannot decode and 422 for invalid options, with upstream's bodies", () => {
    expect(status("follow=maybe")).toBe(400);
    expect(status("tailLines=x")).toBe(400);
    expect(status("sinceTime=yesterday")).toBe(400);
    expect(status("tailLines=-1")).toBe(422);
    expect(status("limitBytes=0")).toBe(422);
    expect(status("sinceSeconds=0")).toBe(422);
    expect(status("sinceSeconds=5&sinceTime=2020-01-01T00:00:10Z")).toBe(422);
    expect(() => q("tailLines=-1")).toThrow('{"message": "Invalid request."}');
    expect(() => q("follow=maybe")).toThrow('{"message": "Unable to decode query."}');
  });
});
