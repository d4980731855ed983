/**
 * Kubernetes resource quantities, as k8s.io/apimachinery/pkg/api/resource's Quantity: the one grammar of the
 * code base for "100m", "1.5Gi", "1e3", "500M" (pod resources, node capacity, kubelet configuration, eviction
 * thresholds).
 *
 * - `parseQuantity` is ParseQuantity: the same scanner (sign, digits, one optional ".", a suffix of
 *   [eEinumkKMGTP]* then an optional signed integer), the same suffixes (n u m "" k M G T P E; Ki…Ei; e<int32>),
 *   finer than a nano rounded up away from zero, BinarySI capped at 2^63-1 and a BinarySI value in (0, 1)
 *   turned DecimalSI; `quantityFromJSON` is UnmarshalJSON (a trimmed string, or a bare JSON/YAML number).
 * - `value()`/`milliValue()`/`scaledValue()` round up away from zero (ceil of the magnitude), as upstream.
 * - `toString()` is the canonical form (CanonicalizeBytes): "1Gi", "1080m", "1e3"; past "E" or "Ei" it falls
 *   back to exponent notation as current upstream does ("1e21", never "1000E" nor a dropped suffix).
 *
 * The value is kept exactly as a BigInt of nano-units (10⁻⁹), which is what ParseQuantity keeps after its
 * rounding. Where we differ on purpose: an exponent that would make the value exceed 10^MAX_EXPONENT is
 * refused (upstream accepts "1e2147483647" and then hangs in big-number arithmetic); upstream's int64
 * accessors become JavaScript numbers (exact up to 2^53, ample for cores, bytes and pods).
 */
import { DeckhandError } from "./errors.ts";

export type QuantityFormat = "DecimalExponent" | "BinarySI" | "DecimalSI";

/** A resource list value as the API carries it: a string, or a number where YAML/JSON had a bare one. */
export type QuantityInput = string | number;

const NANO = 1_000_000_000n;
/** Upstream's maxAllowed (math.MaxInt64 units): the cap of BinarySI values at parse. */
const MAX_ALLOWED_NANOS = (2n ** 63n - 1n) * NANO;
const MAX_INT32 = 2_147_483_647;
/** Largest decimal exponent we compute with (see the module comment). */
const MAX_EXPONENT = 1000;

export const QUANTITY_REGEXP = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";
const FORMAT_WRONG = `quantities must match the regular expression '${QUANTITY_REGEXP}'`;
const SUFFIX_WRONG = "unable to parse quantity's suffix";

const DECIMAL_SUFFIXES: Readonly<Record<string, number>> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_SUFFIXES: Readonly<Record<string, number>> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL_SUFFIX_OF: Readonly<Record<number, string>> = { [-9]: "n", [-6]: "u", [-3]: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E" };
const BINARY_SUFFIX_OF = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

function quantityError(input: string, why: string): DeckhandError {
  return new DeckhandError("InvalidArgument", `invalid quantity ${JSON.stringify(input)}: ${why}`, { details: { quantity: input } });
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

function pow10(n: number): bigint {
  return 10n ** BigInt(n);
}

/** Division rounded up in magnitude (inf.RoundUp: away from zero). */
function divRoundUp(num: bigint, den: bigint): bigint {
  const negative = num < 0n;
  const abs = negative ? -num : num;
  const q = (abs + den - 1n) / den;
  return negative ? -q : q;
}

/** parseQuantityString: sign, integer digits, fraction digits, suffix; FORMAT_WRONG on anything else. */
function scan(str: string): { negative: boolean; num: string; denom: string; suffix: string } {
  let pos = 0;
  let negative = false;
  if (str[0] === "-" || str[0] === "+") {
    negative = str[0] === "-";
    pos++;
  }
  const numStart = pos;
  while (isDigit(str[pos])) pos++;
  const num = str.slice(numStart, pos);
  let denom = "";
  if (str[pos] === ".") {
    const start = ++pos;
    while (isDigit(str[pos])) pos++;
    denom = str.slice(start, pos);
  }
  const suffixStart = pos;
  while (pos < str.length && "eEinumkKMGTP".includes(str[pos]!)) pos++;
  if (str[pos] === "-" || str[pos] === "+") pos++;
  while (isDigit(str[pos])) pos++;
  if (pos < str.length) throw quantityError(str, FORMAT_WRONG);
  return { negative, num, denom, suffix: str.slice(suffixStart) };
}

/** suffixHandler.interpret: base, exponent and format of a suffix, or undefined. */
function interpret(suffix: string): { base: 2 | 10; exponent: number; format: QuantityFormat } | undefined {
  const dec = DECIMAL_SUFFIXES[suffix];
  if (dec !== undefined) return { base: 10, exponent: dec, format: "DecimalSI" };
  const bin = BINARY_SUFFIXES[suffix];
  if (bin !== undefined) return { base: 2, exponent: bin, format: "BinarySI" };
  if (suffix.length > 1 && (suffix[0] === "e" || suffix[0] === "E") && /^[+-]?[0-9]+$/.test(suffix.slice(1))) {
    const exponent = Number(suffix.slice(1));
    // Upstream keeps the exponent in an int32 scale it negates: [-MaxInt32, MaxInt32].
    if (Math.abs(exponent) > MAX_INT32) return undefined;
    return { base: 10, exponent, format: "DecimalExponent" };
  }
  return undefined;
}

/** An exact resource quantity, immutable. */
export class Quantity {
  /** The value in nano-units (10⁻⁹): exact, since nothing finer is kept. */
  readonly nanos: bigint;
  readonly format: QuantityFormat;

  private constructor(nanos: bigint, format: QuantityFormat) {
    this.nanos = nanos;
    this.format = format;
  }

  /** NewQuantity: `value` whole units. */
  static of(value: number | bigint, format: QuantityFormat): Quantity {
    return new Quantity((typeof value === "bigint" ? value : BigInt(Math.trunc(value))) * NANO, format);
  }

  /** NewMilliQuantity: `value` thousandths (millicores). */
  static ofMilli(value: number | bigint, format: QuantityFormat): Quantity {
    return new Quantity((typeof value === "bigint" ? value : BigInt(Math.trunc(value))) * 1_000_000n, format);
  }

  /** A value already in nano-units. */
  static ofNanos(nanos: bigint, format: QuantityFormat): Quantity {
    return new Quantity(nanos, format);
  }

  /** ParseQuantity; throws a DeckhandError (InvalidArgument) naming the text. */
  static parse(str: string): Quantity {
    if (str.length === 0) throw quantityError(str, FORMAT_WRONG);
    const { negative, num, denom, suffix } = scan(str);
    const s = interpret(suffix);
    if (s === undefined) throw quantityError(str, SUFFIX_WRONG);
    const digits = BigInt((num + denom).replace(/^0+/, "") || "0");
    let format = s.format;
    let nanos: bigint;
    if (s.base === 2) {
      nanos = divRoundUp((digits << BigInt(s.exponent)) * NANO, pow10(denom.length));
    } else {
      // The value is digits × 10^e; computed in nano-units, rounding finer digits up.
      const e = s.exponent - denom.length + 9;
      if (digits === 0n) nanos = 0n;
      else if (e >= 0) {
        if (e + String(digits).length > MAX_EXPONENT) throw quantityError(str, `exponent too large (values above 1e${MAX_EXPONENT - 9} are not supported)`);
        nanos = digits * pow10(e);
      } else nanos = -e > String(digits).length ? 1n : divRoundUp(digits, pow10(-e));
    }
    if (format === "BinarySI") {
      if (nanos > MAX_ALLOWED_NANOS) nanos = MAX_ALLOWED_NANOS;
      if (nanos > 0n && nanos < NANO) format = "DecimalSI";
    }
    return new Quantity(negative ? -nanos : nanos, format);
  }

  /**
   * UnmarshalJSON: a quoted string (surrounding white space trimmed) or a bare number, as a resource list
   * read from JSON or YAML holds (`cpu: 1`). Throws InvalidArgument on anything else.
   */
  static fromJSON(v: unknown): Quantity {
    if (typeof v === "string") return Quantity.parse(v.trim());
    // A JavaScript number prints in a form the grammar takes ("1e+21", "1.5e-7").
    if (typeof v === "number" && Number.isFinite(v)) return Quantity.parse(String(v));
    throw quantityError(JSON.stringify(v) ?? String(v), "a quantity must be a string or a number");
  }

  /** ScaledValue: ceil(q / 10^scale), away from zero. */
  scaledValue(scale: number): bigint {
    const e = -9 - scale;
    return e >= 0 ? this.nanos * pow10(e) : divRoundUp(this.nanos, pow10(-e));
  }

  /** Value: whole units, rounded up away from zero ("100m" → 1, "-1.5" → -2). */
  value(): number {
    return Number(this.scaledValue(0));
  }

  /** MilliValue: ceil(q × 1000) ("0.1" → 100, "1.0001" → 1001). */
  milliValue(): number {
    return Number(this.scaledValue(-3));
  }

  /** AsApproximateFloat64. */
  asApproximateFloat64(): number {
    return Number(this.nanos) / 1e9;
  }

  sign(): -1 | 0 | 1 {
    return this.nanos < 0n ? -1 : this.nanos > 0n ? 1 : 0;
  }

  isZero(): boolean {
    return this.nanos === 0n;
  }

  cmp(y: Quantity): -1 | 0 | 1 {
    return this.nanos < y.nanos ? -1 : this.nanos > y.nanos ? 1 : 0;
  }

  equal(y: Quantity): boolean {
    return this.nanos === y.nanos;
  }

  /** Add: a zero receiver takes y's format. */
  add(y: Quantity): Quantity {
    return new Quantity(this.nanos + y.nanos, this.isZero() ? y.format : this.format);
  }

  /** Sub: a zero receiver takes y's format. */
  sub(y: Quantity): Quantity {
    return new Quantity(this.nanos - y.nanos, this.isZero() ? y.format : this.format);
  }

  /** The canonical form (Quantity.String). */
  toString(): string {
    if (this.nanos === 0n) return "0";
    const negative = this.nanos < 0n;
    const abs = negative ? -this.nanos : this.nanos;
    const sign = negative ? "-" : "";
    let format = this.format;
    // BinarySI only for whole values of magnitude ≥ 1024; anything else would round or confuse.
    if (format === "BinarySI" && (abs < 1024n * NANO || abs % NANO !== 0n)) format = "DecimalSI";
    if (format === "BinarySI") {
      let value = abs / NANO;
      let exp = 0;
      while (value % 1024n === 0n) {
        value /= 1024n;
        exp++;
      }
      const suffix = BINARY_SUFFIX_OF[exp];
      if (suffix !== undefined) return `${sign}${value}${suffix}`;
      // Past "Ei" there is no binary suffix: exact decimal instead.
      format = "DecimalExponent";
    }
    // AsCanonicalBytes: move the factors of ten into the exponent, then step down to a multiple of three.
    let mantissa = abs;
    let exp = -9;
    while (mantissa % 10n === 0n) {
      mantissa /= 10n;
      exp++;
    }
    const down = ((exp % 3) + 3) % 3;
    mantissa *= pow10(down);
    exp -= down;
    const si = format === "DecimalSI" ? DECIMAL_SUFFIX_OF[exp] : undefined;
    if (si !== undefined) return `${sign}${mantissa}${si}`;
    // DecimalExponent, or DecimalSI past "E": exponent notation.
    return `${sign}${mantissa}${exp === 0 ? "" : `e${exp}`}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** ParseQuantity. */
export function parseQuantity(str: string): Quantity {
  return Quantity.parse(str);
}

/** Quantity.UnmarshalJSON (see Quantity.fromJSON). */
export function quantityFromJSON(v: unknown): Quantity {
  return Quantity.fromJSON(v);
}

/** Value() of a resource list value: whole units rounded up (bytes, pods). */
export function quantityValue(v: QuantityInput): number {
  return Quantity.fromJSON(v).value();
}

/** MilliValue() of a resource list value (millicores). */
export function milliValue(v: QuantityInput): number {
  return Quantity.fromJSON(v).milliValue();
}

/** A resource list value as an approximate float of base units (cores, bytes). */
export function quantityAsFloat(v: QuantityInput): number {
  return Quantity.fromJSON(v).asApproximateFloat64();
}

/** Whether two quantity texts hold the same value (apimachinery's semantic equality); malformed ones never do. */
export function quantitiesEqual(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return Quantity.parse(a).equal(Quantity.parse(b));
  } catch {
    return false;
  }
}
