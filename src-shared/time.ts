/** Times as the Kubernetes API writes them. */

/** metav1.Time: RFC 3339 in UTC, whole seconds ("2026-11-22T03:12:00Z"). */
export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** metav1.MicroTime: RFC 3339 with microseconds ("2026-11-22T03:12:00.123000Z"). */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
