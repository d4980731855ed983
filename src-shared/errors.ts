/**
 * Typed errors with stable codes. Callers branch on `code`, never on message text; messages are for people
 * and name the field and value at fault.
 */
export type ErrorCode =
  | "NotFound"
  | "AlreadyExists"
  | "InvalidArgument"
  | "FailedPrecondition"
  | "Unavailable"
  | "DeadlineExceeded"
  | "Cancelled"
  | "PermissionDenied"
  | "Unauthenticated"
  | "ResourceExhausted"
  | "Aborted"
  | "Unimplemented"
  | "Internal"
  | "Unknown"
  | "InvalidConfig";

export class DeckhandError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DeckhandError";
    this.code = code;
    this.details = options.details ?? {};
  }
}

export function isDeckhandError(err: unknown, code?: ErrorCode): err is DeckhandError {
  return err instanceof DeckhandError && (code === undefined || err.code === code);
}

/** Message of anything thrown, for log lines and status reasons. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
