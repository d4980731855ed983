import { describe, expect, it } from "vitest";
import { CriError, runtimeMessage } from "../../../../kubelet/cri/errors.ts";
import { CriError as CriErrorFromClient } from "../../../../kubelet/cri/client.ts";
import { DeckhandError } from "../../../../src-shared/errors.ts";

describe("CriError", () => {
  it("keeps the runtime's own message apart from the log line, with our code and the RPC", () => {
    const err = new CriError("NotFound", "PullImage", 'failed to resolve reference "x:1": not found', 5);
    expect(err).toBeInstanceOf(DeckhandError);
    expect(err).toMatchObject({ code: "NotFound", method: "PullImage", grpcCode: 5, runtimeMessage: 'failed to resolve reference "x:1": not found' });
    expect(err.message).toBe('CRI PullImage: failed to resolve reference "x:1": not found');
  });

  it("is the one class the gRPC client throws", () => {
    expect(CriErrorFromClient).toBe(CriError);
  });

  it("gives the runtime's words for a CRI error and the message of anything else", () => {
    expect(runtimeMessage(new CriError("Unknown", "StartContainer", "exec failed"))).toBe("exec failed");
    expect(runtimeMessage(new Error("plain"))).toBe("plain");
    expect(runtimeMessage("text")).toBe("text");
  });
});
