import { describe, expect, it } from "vitest";
import { gridLateness } from "../../harness/probe-recorder.ts";

describe("gridLateness", () => {
  it("measures each run against the period grid its earliest run shows, whatever the constant delay", () => {
    const r = gridLateness([5_000 + 7, 6_000 + 2, 7_000 + 30, 8_000 + 2], 1_000);
    expect(r.lateness).toEqual([5, 0, 28, 0]);
    expect(r.skipped).toBe(0);
  });

  it("counts skipped ticks as gaps, not lateness, and sorts its input", () => {
    const r = gridLateness([3_000, 0, 1_000, 5_010], 1_000);
    expect(r.lateness).toEqual([0, 0, 0, 10]);
    expect(r.skipped).toBe(2);
  });

  it("has nothing to say about no runs", () => {
    expect(gridLateness([], 1_000)).toEqual({ lateness: [], skipped: 0 });
  });
});
