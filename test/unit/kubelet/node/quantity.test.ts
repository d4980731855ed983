import { describe, expect, it } from "vitest";
import { formatQuantity, milliUnits, parseQuantity, quantitiesEqual, quantityValue, units } from "../../../../kubelet/node/quantity.ts";
import { isDeckhandError } from "../../../../src-shared/errors.ts";

const N = 1_000_000_000n;

describe("parseQuantity", () => {
  it.each([
    ["100m", 100_000_000n],
    ["1", N],
    ["0.5", 500_000_000n],
    [".5", 500_000_000n],
    ["+1k", 1000n * N],
    ["-2", -2n * N],
    ["100Mi", 100n * 1024n * 1024n * N],
    ["1.5Gi", 1536n * 1024n * 1024n * N],
    ["500M", 500_000_000n * N],
    ["1e3", 1000n * N],
    ["1E3", 1000n * N],
    ["1E", 10n ** 18n * N],
    ["2e-3", 2_000_000n],
    ["5n", 5n],
    ["3u", 3000n],
    ["0.1n", 1n], // finer than a nano rounds up
  ])("%s", (text, nanos) => {
    expect(parseQuantity(text)).toBe(nanos);
  });

  it.each(["", "abc", "1Kb", "1 Gi", "1e", "--1", "1.2.3"])("rejects %j", (text) => {
    let err: unknown;
    try {
      parseQuantity(text);
    } catch (e) {
      err = e;
    }
    expect(isDeckhandError(err, "InvalidArgument")).toBe(true);
  });
});

describe("formatQuantity (Quantity.String canonical form)", () => {
  it.each([
    [units(25276502016), "BinarySI", "24684084Ki"],
    [units(16n * 1024n ** 3n), "BinarySI", "16Gi"],
    [units(16777216000), "BinarySI", "16000Mi"],
    [units(1023), "BinarySI", "1023"], // below 1024: DecimalSI
    [units(243497856212), "BinarySI", "243497856212"], // not a multiple of 1024
    [500_000_000n, "BinarySI", "500m"], // not whole: DecimalSI
    [0n, "BinarySI", "0"],
    [milliUnits(2000), "DecimalSI", "2"],
    [milliUnits(1900), "DecimalSI", "1900m"],
    [milliUnits(1500), "DecimalSI", "1500m"],
    [units(110), "DecimalSI", "110"],
    [units(1_500_000), "DecimalSI", "1500k"],
    [units(1_000_000), "DecimalSI", "1M"],
    [5n, "DecimalSI", "5n"],
    [-milliUnits(100), "DecimalSI", "-100m"],
  ] as const)("%s %s → %s", (nanos, format, text) => {
    expect(formatQuantity(nanos, format)).toBe(text);
  });

  it("round-trips the canonical forms", () => {
    for (const text of ["24684084Ki", "16Gi", "1900m", "110", "1500k", "1023"]) {
      expect(formatQuantity(parseQuantity(text), text.endsWith("i") ? "BinarySI" : "DecimalSI")).toBe(text);
    }
  });
});

describe("helpers", () => {
  it("compares by value", () => {
    expect(quantitiesEqual("1Gi", "1024Mi")).toBe(true);
    expect(quantitiesEqual("1", "1000m")).toBe(true);
    expect(quantitiesEqual("1", "1001m")).toBe(false);
    expect(quantitiesEqual("bad", "bad2")).toBe(false);
  });

  it("rounds Value() up", () => {
    expect(quantityValue(1n)).toBe(1n);
    expect(quantityValue(N)).toBe(1n);
    expect(quantityValue(-1n)).toBe(-1n);
  });
});
