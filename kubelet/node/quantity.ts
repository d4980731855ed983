/**
 * Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource), exactly enough for node status:
 * parse what a KubeletConfiguration may hold ("100m", "1.5Gi", "1e3", "500M"), add and subtract without
 * rounding, and print the canonical form the API server would print ("16384256Ki", "1900m", "110").
 *
 * Values are BigInt nano-units (10⁻⁹), the finest scale Kubernetes keeps: more precision is rounded up,
 * away from zero, as ParseQuantity does.
 */
import { DeckhandError } from "../../src-shared/errors.ts";

/** How a quantity prints: BinarySI (bytes: Ki, Mi…) or DecimalSI (m, k, M…). */
export type QuantityFormat = "DecimalSI" | "BinarySI";

const NANO = 1_000_000_000n;
const BINARY: Readonly<Record<string, bigint>> = { Ki: 1n << 10n, Mi: 1n << 20n, Gi: 1n << 30n, Ti: 1n << 40n, Pi: 1n << 50n, Ei: 1n << 60n };
const DECIMAL: Readonly<Record<string, number>> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_SUFFIX = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
const DECIMAL_SUFFIX: Readonly<Record<number, string>> = { [-9]: "n", [-6]: "u", [-3]: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E" };
// The exponent form is tried before the single letter, so "1E3" is 1000 and "1E" one exa.
const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|[numkMGTPE])?$/;

function pow10(n: number): bigint {
  return 10n ** BigInt(n);
}

/** A quantity string as nano-units; throws InvalidArgument on anything ParseQuantity would reject. */
export function parseQuantity(text: string): bigint {
  const m = QUANTITY.exec(text.trim());
  if (!m) throw new DeckhandError("InvalidArgument", `quantity ${JSON.stringify(text)} must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`);
  const [, sign = "", number = "0", suffix = ""] = m;
  const [whole = "", frac = ""] = number.split(".");
  let num = BigInt(`${whole}${frac}` || "0") * NANO;
  let den = pow10(frac.length);
  const binary = BINARY[suffix];
  if (binary !== undefined) {
    num *= binary;
  } else {
    const exp = suffix.startsWith("e") || (suffix.startsWith("E") && suffix.length > 1) ? Number(suffix.slice(1)) : (DECIMAL[suffix] ?? 0);
    if (exp >= 0) num *= pow10(exp);
    else den *= pow10(-exp);
  }
  const nanos = (num + den - 1n) / den; // finer than a nano: round up, away from zero
  return sign === "-" ? -nanos : nanos;
}

/** Whole units (bytes, pods, cores) as nano-units. */
export function units(n: number | bigint): bigint {
  return (typeof n === "bigint" ? n : BigInt(Math.trunc(n))) * NANO;
}

/** Milli-units (millicores) as nano-units. */
export function milliUnits(n: number): bigint {
  return BigInt(Math.trunc(n)) * 1_000_000n;
}

/** The whole value, rounded up as Quantity.Value() does. */
export function quantityValue(nanos: bigint): bigint {
  return nanos >= 0n ? (nanos + NANO - 1n) / NANO : -((-nanos + NANO - 1n) / NANO);
}

/** The canonical string Quantity.String() prints for this value in this format. */
export function formatQuantity(nanos: bigint, format: QuantityFormat): string {
  if (nanos === 0n) return "0";
  const abs = nanos < 0n ? -nanos : nanos;
  const sign = nanos < 0n ? "-" : "";
  // BinarySI only for whole values of at least 1024 in magnitude; anything else prints as DecimalSI.
  if (format === "BinarySI" && abs >= 1024n * NANO && abs % NANO === 0n) {
    let value = abs / NANO;
    let exp = 0;
    while (value % 1024n === 0n && exp < BINARY_SUFFIX.length - 1) {
      value /= 1024n;
      exp++;
    }
    return `${sign}${value}${BINARY_SUFFIX[exp] ?? ""}`;
  }
  // DecimalSI: strip the factors of ten, then step down to an exponent that is a multiple of three.
  let mantissa = abs;
  let exp = -9;
  while (mantissa % 10n === 0n) {
    mantissa /= 10n;
    exp++;
  }
  const down = ((exp % 3) + 3) % 3;
  mantissa *= pow10(down);
  exp -= down;
  if (exp > 18) {
    mantissa *= pow10(exp - 18);
    exp = 18;
  }
  return `${sign}${mantissa}${DECIMAL_SUFFIX[exp] ?? ""}`;
}

/** Whether two quantity strings hold the same value (apimachinery's Semantic equality). */
export function quantitiesEqual(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return parseQuantity(a) === parseQuantity(b);
  } catch {
    return false;
  }
}
