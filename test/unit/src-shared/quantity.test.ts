/**
 * The quantity module against upstream's own cases (apimachinery pkg/api/resource quantity_test.go:
 * TestQuantityParse, its invalid list, TestQuantityString, TestQuantityParseEmit, TestQuantityCmp).
 */
import { describe, expect, it } from "vitest";
import { milliValue, parseQuantity, Quantity, quantitiesEqual, quantityAsFloat, quantityFromJSON, quantityValue, type QuantityFormat } from "../../../src-shared/quantity.ts";
import { isDeckhandError } from "../../../src-shared/errors.ts";

/** Upstream's decQuantity(i, exponent, format): i × 10^exponent. */
function dec(i: bigint | number, exponent: number, format: QuantityFormat): Quantity {
  const e = exponent + 9;
  const n = BigInt(i);
  return Quantity.ofNanos(e >= 0 ? n * 10n ** BigInt(e) : n / 10n ** BigInt(-e), format);
}


/**
 * TestQuantityParse's table, one case a line: the text, then the value it parses to (value × 10^exponent)
 * and its format. Upstream's maxAllowed (2^63-1) caps BinarySI; finer than a nano rounds up.
 */
const PARSE: [string, Quantity][] = `
  0 0 0 DecimalSI
  0n 0 0 DecimalSI
  0u 0 0 DecimalSI
  0m 0 0 DecimalSI
  0Ki 0 0 BinarySI
  0k 0 0 DecimalSI
  0Mi 0 0 BinarySI
  0M 0 0 DecimalSI
  0Gi 0 0 BinarySI
  0G 0 0 DecimalSI
  0Ti 0 0 BinarySI
  0T 0 0 DecimalSI
  1 1 0 DecimalSI
  1Ki 1024 0 BinarySI
  8Ki 8192 0 BinarySI
  7Mi 7340032 0 BinarySI
  6Gi 6442450944 0 BinarySI
  5Ti 5497558138880 0 BinarySI
  4Pi 4503599627370496 0 BinarySI
  3Ei 3458764513820540928 0 BinarySI
  10Ti 10995116277760 0 BinarySI
  100Ti 109951162777600 0 BinarySI
  5n 5 -9 DecimalSI
  4u 4 -6 DecimalSI
  3m 3 -3 DecimalSI
  9 9 0 DecimalSI
  8k 8 3 DecimalSI
  50k 5 4 DecimalSI
  7M 7 6 DecimalSI
  6G 6 9 DecimalSI
  5T 5 12 DecimalSI
  40T 4 13 DecimalSI
  300T 3 14 DecimalSI
  2P 2 15 DecimalSI
  1E 1 18 DecimalSI
  1E-3 1 -3 DecimalExponent
  1e3 1 3 DecimalExponent
  1E6 1 6 DecimalExponent
  1e9 1 9 DecimalExponent
  1E12 1 12 DecimalExponent
  1e15 1 15 DecimalExponent
  1E18 1 18 DecimalExponent
  1e14 1 14 DecimalExponent
  1e13 1 13 DecimalExponent
  100.035k 100035 0 DecimalSI
  0.001 1 -3 DecimalSI
  0.0005k 5 -1 DecimalSI
  0.005 5 -3 DecimalSI
  0.05 5 -2 DecimalSI
  0.5 5 -1 DecimalSI
  0.00050k 5 -1 DecimalSI
  0.00500 5 -3 DecimalSI
  0.05000 5 -2 DecimalSI
  0.50000 5 -1 DecimalSI
  0.5e0 5 -1 DecimalExponent
  0.5e-1 5 -2 DecimalExponent
  0.5e-2 5 -3 DecimalExponent
  10.035M 10035 3 DecimalSI
  1.2e3 12 2 DecimalExponent
  1.3E+6 13 5 DecimalExponent
  1.40e9 14 8 DecimalExponent
  1.53E12 153 10 DecimalExponent
  1.6e15 16 14 DecimalExponent
  1.7E18 17 17 DecimalExponent
  9.01 901 -2 DecimalSI
  8.1k 81 2 DecimalSI
  7.123456M 7123456 0 DecimalSI
  6.987654321G 6987654321 0 DecimalSI
  5.444T 5444 9 DecimalSI
  40.1T 401 11 DecimalSI
  300.2T 3002 11 DecimalSI
  2.5P 25 14 DecimalSI
  1.01E 101 16 DecimalSI
  3.001n 4 -9 DecimalSI
  1.1E-9 2 -9 DecimalExponent
  0.0000000001 1 -9 DecimalSI
  0.0000000005 1 -9 DecimalSI
  0.00000000050 1 -9 DecimalSI
  0.5e-9 1 -9 DecimalExponent
  0.9n 1 -9 DecimalSI
  0.00000012345 124 -9 DecimalSI
  0.00000012354 124 -9 DecimalSI
  9Ei 9223372036854775807 0 BinarySI
  9223372036854775807Ki 9223372036854775807 0 BinarySI
  12E 12 18 DecimalSI
  100.035Ki 10243584 -2 BinarySI
  0.5Mi 524288 0 BinarySI
  0.05Gi 536870912 -1 BinarySI
  0.025Ti 274877906944 -1 BinarySI
  0.000000000001Ki 2 -9 DecimalSI
  .001 1 -3 DecimalSI
  .0001k 100 -3 DecimalSI
  1. 1 0 DecimalSI
  1.G 1 9 DecimalSI
`
  .trim()
  .split("\n")
  .map((line) => {
    const [text = "", value = "", exponent = "", format = ""] = line.trim().split(/\s+/);
    return [text, dec(BigInt(value), Number(exponent), format as QuantityFormat)];
  });

describe("parseQuantity (ParseQuantity)", () => {
  it.each(PARSE)("%s", (text, want) => {
    const got = parseQuantity(text);
    expect(got.nanos).toBe(want.nanos);
    expect(got.format).toBe(want.format);
  });

  it.each(PARSE)("-%s is its negation and +%s itself, same format", (text, want) => {
    const neg = parseQuantity(`-${text}`);
    expect(neg.nanos).toBe(-want.nanos);
    expect(neg.format).toBe(want.format);
    expect(parseQuantity(`+${text}`).nanos).toBe(want.nanos);
  });

  it("takes what the scanner takes, however odd (\".\", \"-.\", \"m\" are zero)", () => {
    expect(parseQuantity(".").nanos).toBe(0n);
    expect(parseQuantity("-.").nanos).toBe(0n);
    expect(parseQuantity("m").nanos).toBe(0n);
  });

  it.each(["", "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-", "1e4294967297", " 1", "1 ", "Non-Numeric", "1e", "1KiB", "1e1.5"])(
    "rejects %j with InvalidArgument naming it",
    (text) => {
      let err: unknown;
      try {
        parseQuantity(text);
      } catch (e) {
        err = e;
      }
      expect(isDeckhandError(err, "InvalidArgument")).toBe(true);
      expect((err as Error).message).toContain(JSON.stringify(text));
    },
  );

  it("accepts the int32 exponent bounds, refuses past them", () => {
    expect(parseQuantity("1E-2147483647").nanos).toBe(1n);
    expect(() => parseQuantity("1E-2147483648")).toThrow(/suffix/);
  });

  it("refuses astronomically large exponents instead of hanging (a deliberate difference)", () => {
    expect(() => parseQuantity("1e2147483647")).toThrow(/too large/);
  });
});

/**
 * TestQuantityString's table, one case a line: value × 10^exponent, format, the canonical text, and an
 * alternate spelling that prints the same ("-" for none).
 */
const STRING_CASES: [Quantity, string, string][] = `
  1073741824 0 BinarySI 1Gi 1024Mi
  314572800 0 BinarySI 300Mi 307200Ki
  6144 0 BinarySI 6Ki -
  1074815565824 0 BinarySI 1001Gi 1025024Mi
  1099511627776 0 BinarySI 1Ti 1024Gi
  5 0 BinarySI 5 5000m
  500 -3 BinarySI 500m 0.5
  1 9 DecimalSI 1G 1000M
  1000 6 DecimalSI 1G 0.001T
  1000000 3 DecimalSI 1G -
  1000000000 0 DecimalSI 1G -
  1 -3 DecimalSI 1m 1000u
  80 -3 DecimalSI 80m -
  1080 -3 DecimalSI 1080m 1.08
  108 -2 DecimalSI 1080m 1080000000n
  10800 -4 DecimalSI 1080m -
  300 6 DecimalSI 300M -
  1 12 DecimalSI 1T -
  1 18 DecimalSI 1E -
  1 21 DecimalSI 1e21 1000E
  5 21 DecimalSI 5e21 5000E
  1 24 DecimalSI 1e24 1000000E
  1 70 BinarySI 10e69 -
  2 70 BinarySI 20e69 -
  1 72 BinarySI 1e72 -
  1234567 6 DecimalSI 1234567M -
  1234567 -3 BinarySI 1234567m -
  3 3 DecimalSI 3k -
  1025 0 BinarySI 1025 -
  0 0 DecimalSI 0 -
  0 0 BinarySI 0 -
  1 9 DecimalExponent 1e9 .001e12
  1 -3 DecimalExponent 1e-3 0.001e0
  1 -9 DecimalExponent 1e-9 1000e-12
  80 -3 DecimalExponent 80e-3 -
  300 6 DecimalExponent 300e6 -
  1 12 DecimalExponent 1e12 -
  1 3 DecimalExponent 1e3 -
  3 3 DecimalExponent 3e3 -
  0 0 DecimalExponent 0 00
  1 -9 DecimalSI 1n -
  80 -9 DecimalSI 80n -
  1080 -9 DecimalSI 1080n -
  108 -8 DecimalSI 1080n -
  1 -6 DecimalSI 1u -
  80 -6 DecimalSI 80u -
  1080 -6 DecimalSI 1080u -
`
  .trim()
  .split("\n")
  .map((line) => {
    const [value = "", exponent = "", format = "", canonical = "", alternate = ""] = line.trim().split(/\s+/);
    return [dec(BigInt(value), Number(exponent), format as QuantityFormat), canonical, alternate === "-" ? "" : alternate];
  });

describe("Quantity.toString (canonical form)", () => {
  it.each(STRING_CASES)("%s prints %s, and so does its alternate %j", (q, canonical, alternate) => {
    expect(q.toString()).toBe(canonical);
    expect(parseQuantity(canonical).equal(q)).toBe(true);
    if (alternate !== "") expect(parseQuantity(alternate).toString()).toBe(canonical);
    if (!q.isZero()) expect(Quantity.ofNanos(-q.nanos, q.format).toString()).toBe(`-${canonical}`);
  });

  it("prints 2^70 (BinarySI past Ei) as its exact decimal digits", () => {
    expect(parseQuantity("1Ei").add(Quantity.of(2n ** 70n - 2n ** 60n, "BinarySI")).toString()).toBe("1180591620717411303424");
  });

  it.each([
    ["1Ki", "1Ki"],
    ["1Mi", "1Mi"],
    ["1Gi", "1Gi"],
    ["1024Mi", "1Gi"],
    ["1000M", "1G"],
    [".001Ki", "1024m"],
    [".000001Ki", "1024u"],
    [".000000001Ki", "1024n"],
    [".000000000001Ki", "2n"],
  ])("parse then print %s gives %s (and negated)", (text, canonical) => {
    expect(parseQuantity(text).toString()).toBe(canonical);
    expect(parseQuantity(`-${text}`).toString()).toBe(`-${canonical}`);
  });

  it("prints node capacities as the API server does", () => {
    expect(Quantity.of(25276502016, "BinarySI").toString()).toBe("24684084Ki");
    expect(Quantity.of(243497856212, "BinarySI").toString()).toBe("243497856212");
    expect(Quantity.ofMilli(2000, "DecimalSI").toString()).toBe("2");
    expect(Quantity.ofMilli(1900, "DecimalSI").toString()).toBe("1900m");
    expect(Quantity.of(110, "DecimalSI").toString()).toBe("110");
    expect(Quantity.of(1_500_000, "DecimalSI").toString()).toBe("1500k");
  });
});

describe("comparison and arithmetic", () => {
  it.each([
    ["0", "0", 0],
    ["100m", "50m", 1],
    ["50m", "100m", -1],
    ["10000T", "100Gi", 1],
  ])("cmp(%s, %s) = %d", (x, y, want) => {
    expect(parseQuantity(x).cmp(parseQuantity(y))).toBe(want);
    expect(parseQuantity(y).cmp(parseQuantity(x))).toBe(-want || 0);
  });

  it("adds and subtracts exactly; a zero receiver takes the other's format (TestQuantityAddZeroPreservesSuffix)", () => {
    for (const text of ["100m", "1Gi"]) {
      const q = parseQuantity(text);
      expect(q.add(parseQuantity("0")).toString()).toBe(text);
      expect(parseQuantity("0").add(q).toString()).toBe(text);
      expect(parseQuantity("0").sub(q).toString()).toBe(`-${text}`);
    }
    expect(parseQuantity("1Gi").sub(parseQuantity("512Mi")).toString()).toBe("512Mi");
  });

  it("semantic equality of texts", () => {
    expect(quantitiesEqual("1Gi", "1024Mi")).toBe(true);
    expect(quantitiesEqual("1", "1000m")).toBe(true);
    expect(quantitiesEqual("1", "1001m")).toBe(false);
    expect(quantitiesEqual("bad", "bad2")).toBe(false);
  });
});

describe("accessors", () => {
  it("Value and MilliValue round up away from zero", () => {
    expect(milliValue("0.1")).toBe(100);
    expect(milliValue("100m")).toBe(100);
    expect(milliValue("1.0001")).toBe(1001);
    expect(milliValue("2")).toBe(2000);
    expect(milliValue("1e-3")).toBe(1);
    expect(milliValue("0.0001")).toBe(1);
    expect(milliValue("1n")).toBe(1);
    expect(quantityValue("100m")).toBe(1);
    expect(quantityValue("1Ki")).toBe(1024);
    expect(quantityValue("1.5")).toBe(2);
    expect(quantityValue("128Mi")).toBe(134217728);
    expect(quantityValue("-1.5")).toBe(-2);
    expect(parseQuantity("9.01").scaledValue(-1)).toBe(91n);
    expect(parseQuantity("-9.01").scaledValue(2)).toBe(-1n);
  });

  it("reads resource list values as UnmarshalJSON does: trimmed strings and bare numbers", () => {
    expect(quantityFromJSON(" 1Gi ").toString()).toBe("1Gi");
    expect(quantityFromJSON(2).milliValue()).toBe(2000);
    expect(quantityFromJSON(0.25).milliValue()).toBe(250);
    expect(quantityFromJSON(1e21).toString()).toBe("1e21");
    expect(quantityAsFloat("1.5Gi")).toBe(1.5 * 1024 ** 3);
    expect(quantityAsFloat("100m")).toBe(0.1);
    for (const bad of [true, null, {}, Number.NaN]) expect(() => quantityFromJSON(bad)).toThrow(/string or a number/);
  });
});
