/**
 * Whether a pod tolerates a taint (k8s.io/api core/v1 Toleration.ToleratesTaint): the effect matches (an empty
 * toleration effect matches all), an empty key with Exists matches every taint, otherwise the keys match and,
 * with Equal (the default operator), the values. Pure.
 */
import { arr, dig, str, type KubeObject } from "../types.ts";

export function tolerationMatches(toleration: unknown, taint: unknown): boolean {
  const te = str(dig(toleration, "effect")) ?? "";
  if (te !== "" && te !== str(dig(taint, "effect"))) return false;
  const key = str(dig(toleration, "key")) ?? "";
  const op = str(dig(toleration, "operator")) ?? "Equal";
  if (key === "" && op === "Exists") return true;
  if (key !== str(dig(taint, "key"))) return false;
  return op === "Exists" || (str(dig(toleration, "value")) ?? "") === (str(dig(taint, "value")) ?? "");
}

/** The pod's tolerations that match the taint. */
export function matchingTolerations(pod: KubeObject, taint: unknown): unknown[] {
  return arr(dig(pod, "spec", "tolerations")).filter((t) => tolerationMatches(t, taint));
}
