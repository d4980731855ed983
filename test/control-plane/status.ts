/**
 * Errors as kube-apiserver sends them: a metav1.Status with reason, code, message and details in the
 * exact wording of k8s.io/apimachinery/pkg/api/errors, so clients that branch on reason or code behave.
 */
import type { JsonObject } from "./types.ts";

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: StatusDetails | undefined;

  constructor(code: number, reason: string, message: string, details?: StatusDetails) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): JsonObject {
    const s: JsonObject = {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
    if (this.details !== undefined) s["details"] = this.details as unknown as JsonObject;
    return s;
  }
}

export function isApiError(e: unknown, reason?: string): e is ApiError {
  return e instanceof ApiError && (reason === undefined || e.reason === reason);
}

/** `pods` or `leases.coordination.k8s.io`, as the messages name a group-resource. */
export function qualifiedResource(group: string, resource: string): string {
  return group === "" ? resource : `${resource}.${group}`;
}

function details(group: string, resource: string, name?: string): StatusDetails {
  const d: StatusDetails = {};
  if (name !== undefined && name !== "") d.name = name;
  if (group !== "") d.group = group;
  d.kind = resource;
  return d;
}

export function notFound(group: string, resource: string, name: string): ApiError {
  return new ApiError(404, "NotFound", `${qualifiedResource(group, resource)} "${name}" not found`, details(group, resource, name));
}

export function pathNotFound(): ApiError {
  return new ApiError(404, "NotFound", "the server could not find the requested resource", {});
}

export function alreadyExists(group: string, resource: string, name: string): ApiError {
  return new ApiError(409, "AlreadyExists", `${qualifiedResource(group, resource)} "${name}" already exists`, details(group, resource, name));
}

export function conflict(group: string, resource: string, name: string, why: string): ApiError {
  return new ApiError(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualifiedResource(group, resource)} "${name}": ${why}`,
    details(group, resource, name),
  );
}

export const OPTIMISTIC_LOCK_MESSAGE = "the object has been modified; please apply your changes to the latest version and try again";

export interface FieldError {
  type: "FieldValueRequired" | "FieldValueInvalid" | "FieldValueNotSupported" | "FieldValueForbidden" | "FieldValueDuplicate" | "FieldValueTooLong" | "FieldValueTypeInvalid";
  field: string;
  /** Detail after the type's own words, e.g. for Invalid: `"x": must be ...`. */
  detail: string;
}

const typeWords: Record<FieldError["type"], string> = {
  FieldValueRequired: "Required value",
  FieldValueInvalid: "Invalid value",
  FieldValueNotSupported: "Unsupported value",
  FieldValueForbidden: "Forbidden",
  FieldValueDuplicate: "Duplicate value",
  FieldValueTooLong: "Too long",
  FieldValueTypeInvalid: "Invalid value",
};

export function fieldErrorMessage(e: FieldError): string {
  const words = typeWords[e.type];
  return e.detail === "" ? words : `${words}: ${e.detail}`;
}

export function required(field: string, detail = ""): FieldError {
  return { type: "FieldValueRequired", field, detail };
}
export function invalidValue(field: string, value: unknown, detail: string): FieldError {
  return { type: "FieldValueInvalid", field, detail: `${JSON.stringify(value)}: ${detail}` };
}
export function notSupported(field: string, value: unknown, supported: string[]): FieldError {
  return {
    type: "FieldValueNotSupported",
    field,
    detail: `${JSON.stringify(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(", ")}`,
  };
}
export function forbidden(field: string, detail: string): FieldError {
  return { type: "FieldValueForbidden", field, detail };
}
export function duplicate(field: string, value: unknown): FieldError {
  return { type: "FieldValueDuplicate", field, detail: JSON.stringify(value) };
}

/** 422 Invalid: `Pod "x" is invalid: [a: Required value, b: Invalid value: ...]`. */
export function invalid(group: string, kind: string, name: string, errs: FieldError[]): ApiError {
  const msgs = errs.map((e) => `${e.field}: ${fieldErrorMessage(e)}`);
  const joined = msgs.length === 1 ? (msgs[0] ?? "") : `[${msgs.join(", ")}]`;
  const d: StatusDetails = { name, kind, causes: errs.map((e) => ({ reason: e.type, message: fieldErrorMessage(e), field: e.field })) };
  if (group !== "") d.group = group;
  if (name === "") delete d.name;
  return new ApiError(422, "Invalid", `${kind}${name === "" ? "" : ` "${name}"`} is invalid: ${joined}`, d);
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, "BadRequest", message);
}

/** 410 with reason Expired, as the watch cache and etcd compaction send it. */
export function gone(message: string): ApiError {
  return new ApiError(410, "Expired", message);
}

export function tooOldResourceVersion(requested: number, oldest: number): ApiError {
  return gone(`too old resource version: ${requested} (${oldest})`);
}

export function forbiddenError(group: string, resource: string, name: string, message: string): ApiError {
  const what = name === "" ? qualifiedResource(group, resource) : `${qualifiedResource(group, resource)} "${name}"`;
  return new ApiError(403, "Forbidden", `${what} is forbidden: ${message}`, details(group, resource, name));
}

export function unauthorized(): ApiError {
  return new ApiError(401, "Unauthorized", "Unauthorized");
}

export function methodNotAllowed(): ApiError {
  return new ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {});
}

export function unsupportedMediaType(contentType: string): ApiError {
  return new ApiError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got ${contentType})`);
}

export function notAcceptable(): ApiError {
  return new ApiError(406, "NotAcceptable", "only the following media types are accepted: application/json, application/yaml, application/json;stream=watch");
}

export function internalError(message: string): ApiError {
  return new ApiError(500, "InternalError", `Internal error occurred: ${message}`, { causes: [{ reason: "", message }] });
}

export function tooManyRequests(message: string, retryAfterSeconds: number): ApiError {
  return new ApiError(429, "TooManyRequests", message, { causes: [{ reason: "DisruptionBudget", message }], retryAfterSeconds });
}

export function successStatus(d: StatusDetails): JsonObject {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details: d as unknown as JsonObject };
}
