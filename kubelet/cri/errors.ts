/**
 * The CRI's typed error, apart from the gRPC client so that in-memory runtimes (test/harness/fake-runtime.ts)
 * raise the same thing without loading gRPC. Callers branch on `code` (ours) and show `runtimeMessage` (the
 * runtime's own words, as upstream's events and waiting messages carry them); `message` is for logs.
 */
import { DeckhandError, type ErrorCode } from "../../src-shared/errors.ts";

/** A failed CRI call: `code` is ours, `grpcCode` the runtime's, `method` the RPC, `runtimeMessage` its text. */
export class CriError extends DeckhandError {
  readonly method: string;
  readonly grpcCode: number | undefined;
  /** What the runtime said, without our "CRI <method>: " prefix. */
  readonly runtimeMessage: string;
  constructor(code: ErrorCode, method: string, message: string, grpcCode?: number, cause?: unknown) {
    super(code, `CRI ${method}: ${message}`, { cause, details: { method, grpcCode } });
    this.name = "CriError";
    this.method = method;
    this.grpcCode = grpcCode;
    this.runtimeMessage = message;
  }
}

/** The text to show a user for a failure: the runtime's own words for a CRI error, the message otherwise. */
export function runtimeMessage(err: unknown): string {
  if (err instanceof CriError) return err.runtimeMessage;
  return err instanceof Error ? err.message : String(err);
}
