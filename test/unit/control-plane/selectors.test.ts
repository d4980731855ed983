import { describe, expect, it } from "vitest";
import { formatLabelSelector, matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from "../../control-plane/selectors.ts";
import { ApiError } from "../../control-plane/status.ts";

describe("label selectors", () => {
  const labels = { app: "web", tier: "fe", version: "3" };
  const cases: [string, boolean][] = [
    ["", true],
    ["app=web", true],
    ["app==web", true],
    ["app!=web", false],
    ["app=web,tier=fe", true],
    ["app=web,tier=be", false],
    ["app in (web, db)", true],
    ["app notin (web,db)", false],
    ["tier", true],
    ["!tier", false],
    ["!missing", true],
    ["missing!=x", true],
    ["version>2", true],
    ["version<3", false],
    ["app in (web),tier notin (be),!missing", true],
  ];
  for (const [sel, want] of cases) {
    it(`${JSON.stringify(sel)} → ${want}`, () => {
      expect(matchesLabels(parseLabelSelector(sel), labels)).toBe(want);
    });
  }

  it("round-trips through formatting", () => {
    const s = "a=b,c!=d,e in (f,g),h notin (i),j,!k";
    expect(formatLabelSelector(parseLabelSelector(s))).toBe(s);
  });

  it("rejects bad syntax and bad values with 400", () => {
    for (const bad of ["a=b=c", "a in ()", "=x", "a=-bad-", "a>x"]) {
      let err: unknown;
      try {
        parseLabelSelector(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe(400);
    }
  });
});

describe("field selectors", () => {
  const fields: Record<string, string> = { "metadata.name": "p1", "spec.nodeName": "n1", "status.phase": "Running" };
  const get = (f: string) => fields[f];
  it("matches =, == and !=", () => {
    expect(matchesFields(parseFieldSelector("spec.nodeName=n1"), get)).toBe(true);
    expect(matchesFields(parseFieldSelector("spec.nodeName==n1,status.phase!=Failed"), get)).toBe(true);
    expect(matchesFields(parseFieldSelector("spec.nodeName=n2"), get)).toBe(false);
    expect(matchesFields(parseFieldSelector("spec.nodeName="), get)).toBe(false);
    expect(matchesFields(parseFieldSelector("metadata.name!=p1"), get)).toBe(false);
  });
  it("unescapes values", () => {
    expect(parseFieldSelector("a=x\\,y")).toEqual([{ field: "a", op: "=", value: "x,y" }]);
  });
  it("rejects garbage", () => {
    expect(() => parseFieldSelector("nonsense")).toThrow(ApiError);
  });
});
