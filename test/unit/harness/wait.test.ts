import { describe, expect, it } from "vitest";
import { DeckhandError } from "../../../src-shared/errors.ts";
import { FakeClock } from "../../harness/fake-clock.ts";
import { eventually, eventuallyGone, pollUntil, WaitTimeoutError } from "../../harness/wait.ts";

describe("eventually", () => {
  it("returns the first value that is neither undefined nor false, retrying through errors", async () => {
    const clock = new FakeClock();
    let calls = 0;
    const p = eventually(
      () => {
        calls++;
        if (calls === 1) throw new Error("not yet");
        return calls === 2 ? false : calls === 3 ? undefined : { calls };
      },
      { clock, intervalMs: 10 },
    );
    await clock.advance(30);
    await expect(p).resolves.toEqual({ calls: 4 });
  });

  it("fails on time-out with the message, the last error and the diagnosis, never quietly", async () => {
    const clock = new FakeClock();
    const p = eventually(
      () => {
        throw new Error("still 3 pods");
      },
      { clock, timeoutMs: 1000, intervalMs: 100, message: "pods to be gone", diagnose: () => "kubelet log tail" },
    );
    const caught = p.catch((e: unknown) => e);
    await clock.advance(1000);
    const err = await caught;
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect((err as Error).message).toBe("timed out after 1000 ms waiting for pods to be gone; last error: still 3 pods\nkubelet log tail");
  });

  it("stops when its signal aborts", async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    const p = eventually(() => false, { clock, signal: ac.signal }).catch((e: unknown) => e);
    await clock.advance(100);
    ac.abort(new Error("test over"));
    expect(await p).toEqual(new Error("test over"));
  });
});

describe("pollUntil", () => {
  it("returns the value the predicate accepts, and on time-out shows the last value read", async () => {
    const clock = new FakeClock();
    let n = 0;
    const ok = pollUntil(() => ++n, (v) => v >= 3, { clock, intervalMs: 10 });
    await clock.advance(20);
    await expect(ok).resolves.toBe(3);
    const late = pollUntil(() => ({ phase: "Pending" }), (p) => p.phase === "Running", { clock, timeoutMs: 50, message: "web to run" }).catch((e: unknown) => e);
    await clock.advance(50);
    expect(((await late) as Error).message).toBe("timed out after 50 ms waiting for web to run; last value: { phase: 'Pending' }");
  });
});

describe("eventuallyGone", () => {
  it("waits for NotFound; any other error counts as not yet and is shown on time-out", async () => {
    const clock = new FakeClock();
    const answers = [Promise.resolve({}), Promise.resolve({})];
    const read = (): Promise<unknown> => answers.shift() ?? Promise.reject(new DeckhandError("NotFound", "pods \"web\" not found"));
    const gone = eventuallyGone(read, { clock, intervalMs: 10 });
    await clock.advance(20);
    await expect(gone).resolves.toBeUndefined();
    const broken = eventuallyGone(() => Promise.reject(new DeckhandError("Unavailable", "no answer")), { clock, timeoutMs: 20, intervalMs: 10 }).catch((e: unknown) => e);
    await clock.advance(20);
    expect(((await broken) as Error).message).toContain("last error: no answer");
  });
});
