/**
 * Go's `time.ParseDuration` and `Duration.String`, which is what `metav1.Duration` uses for every duration
 * field of a KubeletConfiguration ("10s", "1m30s", "100ms", "1h2m3.5s", "-1.5h", "0"). Same grammar
 * (`[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or a bare "0"), same units (ns us µs μs ms s m h), same nanosecond
 * truncation of fractions and the same int64 overflow limits; error texts are Go's.
 */

export type GoDurationResult = { ok: true; ns: bigint } | { ok: false; error: string };

const UNIT_NS: ReadonlyMap<string, bigint> = new Map([
  ["ns", 1n],
  ["us", 1_000n],
  ["\u00b5s", 1_000n], // U+00B5 micro sign
  ["\u03bcs", 1_000n], // U+03BC Greek small letter mu
  ["ms", 1_000_000n],
  ["s", 1_000_000_000n],
  ["m", 60_000_000_000n],
  ["h", 3_600_000_000_000n],
]);

const MAX_INT64 = (1n << 63n) - 1n;
const TWO_63 = 1n << 63n;

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

/** Go's quoting of the input in its error messages (`strconv.Quote`-like for the common cases). */
function quote(s: string): string {
  return JSON.stringify(s);
}

/** Parses a Go duration string into nanoseconds. */
export function parseGoDuration(orig: string): GoDurationResult {
  const invalid = (): GoDurationResult => ({ ok: false, error: `time: invalid duration ${quote(orig)}` });
  let s = orig;
  let neg = false;
  if (s !== "" && (s[0] === "-" || s[0] === "+")) {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return { ok: true, ns: 0n };
  if (s === "") return invalid();

  let total = 0n;
  while (s !== "") {
    if (!(s[0] === "." || isDigit(s[0]))) return invalid();
    // Leading integer [0-9]*.
    let i = 0;
    let v = 0n;
    while (isDigit(s[i])) {
      v = v * 10n + BigInt(s.charCodeAt(i) - 48);
      if (v > TWO_63) return invalid(); // leadingInt overflow
      i++;
    }
    const pre = i > 0;
    s = s.slice(i);
    // Optional fraction (\.[0-9]*): digits past int64 range are consumed but ignored, as Go does.
    let post = false;
    let f = 0n;
    let scale = 1n;
    if (s[0] === ".") {
      s = s.slice(1);
      let j = 0;
      let overflow = false;
      while (isDigit(s[j])) {
        if (!overflow) {
          if (f > TWO_63 / 10n) overflow = true;
          else {
            const next = f * 10n + BigInt(s.charCodeAt(j) - 48);
            if (next > TWO_63) overflow = true;
            else {
              f = next;
              scale *= 10n;
            }
          }
        }
        j++;
      }
      post = j > 0;
      s = s.slice(j);
    }
    if (!pre && !post) return invalid(); // e.g. ".s" or "-.s"
    // Unit: everything up to the next '.' or digit.
    let k = 0;
    while (k < s.length && !(s[k] === "." || isDigit(s[k]))) k++;
    if (k === 0) return { ok: false, error: `time: missing unit in duration ${quote(orig)}` };
    const u = s.slice(0, k);
    s = s.slice(k);
    const unit = UNIT_NS.get(u);
    if (unit === undefined) return { ok: false, error: `time: unknown unit ${quote(u)} in duration ${quote(orig)}` };
    if (v > TWO_63 / unit) return invalid();
    v *= unit;
    if (f > 0n) {
      // Go computes the fraction in float64 ("nanosecond accurate for fractions of hours") and truncates.
      v += BigInt(Math.trunc(Number(f) * (Number(unit) / Number(scale))));
      if (v > TWO_63) return invalid();
    }
    total += v;
    if (total > TWO_63) return invalid();
  }
  if (neg) return { ok: true, ns: -total };
  if (total > MAX_INT64) return invalid();
  return { ok: true, ns: total };
}

/** Nanoseconds to milliseconds (fractional below a millisecond). */
export function nsToMs(ns: bigint): number {
  return Number(ns) / 1e6;
}

/** Milliseconds to the nanoseconds Go would hold (rounded to a whole nanosecond). */
export function msToNs(ms: number): bigint {
  return BigInt(Math.round(ms * 1e6));
}

function trimFraction(digits: string): string {
  const t = digits.replace(/0+$/, "");
  return t === "" ? "" : `.${t}`;
}

/** Go's `Duration.String`: "0s", "100ms", "1.5µs", "1m30s", "1h0m0s", "-2m3.5s". */
export function formatGoDuration(ns: bigint): string {
  if (ns === 0n) return "0s";
  const neg = ns < 0n;
  const u = neg ? -ns : ns;
  let out: string;
  if (u < 1_000_000_000n) {
    if (u < 1_000n) out = `${u}ns`;
    else if (u < 1_000_000n) out = `${u / 1_000n}${trimFraction((u % 1_000n).toString().padStart(3, "0"))}µs`;
    else out = `${u / 1_000_000n}${trimFraction((u % 1_000_000n).toString().padStart(6, "0"))}ms`;
  } else {
    const secs = u / 1_000_000_000n;
    const frac = trimFraction((u % 1_000_000_000n).toString().padStart(9, "0"));
    const h = secs / 3600n;
    const m = (secs / 60n) % 60n;
    const sec = secs % 60n;
    if (h > 0n) out = `${h}h${m}m${sec}${frac}s`;
    else if (m > 0n) out = `${m}m${sec}${frac}s`;
    else out = `${sec}${frac}s`;
  }
  return neg ? `-${out}` : out;
}

/** Milliseconds formatted as Go would print the duration. */
export function formatMs(ms: number): string {
  return formatGoDuration(msToNs(ms));
}
