/**
 * What a request to the kubelet API asks for, in authorization terms, as upstream's
 * nodeAuthorizerAttributesGetter (pkg/kubelet/server/auth.go): resource `nodes`, the node's name, the HTTP
 * method as a verb, and a subresource chosen by path — `stats`, `metrics`, `log` (for /logs), `spec`,
 * `checkpoint`, else `proxy`. With KubeletFineGrainedAuthz (beta, on), /pods and /runningpods/ are first asked
 * as `pods`, /healthz as `healthz` and /configz as `configz`, then as `proxy`: either grant lets the request in.
 * Also the 401 and 403 bodies upstream writes (text, not a Status).
 */

export interface KubeletUser {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

export interface NodeAttributes {
  user: KubeletUser;
  verb: string;
  resource: "nodes";
  subresource: string;
  name: string;
  path: string;
}

/** The API verb for an HTTP method; "" for methods upstream does not map (the authorizer then decides). */
export function apiVerb(method: string): string {
  switch (method.toUpperCase()) {
    case "POST":
      return "create";
    case "GET":
    case "HEAD":
      return "get";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return "delete";
    default:
      return "";
  }
}

/** `subpath` is `path` or under it (a trailing slash on `path` does not count). */
export function isSubpath(subpath: string, path: string): boolean {
  const p = path.endsWith("/") ? path.slice(0, -1) : path;
  return subpath === p || (subpath.startsWith(p) && subpath[p.length] === "/");
}

/** The attributes to authorize, in order: the request is allowed when any of them is. */
export function requestAttributes(user: KubeletUser, method: string, path: string, nodeName: string, fineGrained: boolean): NodeAttributes[] {
  const subresources: string[] = [];
  if (fineGrained) {
    if (isSubpath(path, "/pods") || isSubpath(path, "/runningpods/")) subresources.push("pods");
    else if (isSubpath(path, "/healthz")) subresources.push("healthz");
    else if (isSubpath(path, "/configz")) subresources.push("configz");
  }
  if (isSubpath(path, "/stats")) subresources.push("stats");
  else if (isSubpath(path, "/metrics")) subresources.push("metrics");
  else if (isSubpath(path, "/logs")) subresources.push("log");
  else if (isSubpath(path, "/spec")) subresources.push("spec");
  else if (isSubpath(path, "/checkpoint")) subresources.push("checkpoint");
  else subresources.push("proxy");
  const verb = apiVerb(method);
  return subresources.map((subresource) => ({ user, verb, resource: "nodes", subresource, name: nodeName, path }));
}

/** The 403 body: `Forbidden (user=..., verb=..., resource=..., subresource=...)`. */
export function forbiddenMessage(a: NodeAttributes): string {
  return `Forbidden (user=${a.user.username}, verb=${a.verb}, resource=${a.resource}, subresource=${a.subresource})`;
}

/** The 500 body when the authorizer itself failed. */
export function authorizationErrorMessage(a: NodeAttributes): string {
  return `Authorization error (user=${a.user.username}, verb=${a.verb}, resource=${a.resource}, subresource=${a.subresource})`;
}
