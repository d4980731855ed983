/**
 * The kubelet's shutdown: its steps run in the written order, one at a time; a failing step is logged and does
 * not stop the others; every failure is reported in the end.
 */
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../../src-shared/log.ts";
import { shutdownInOrder, type ShutdownStep } from "../../../kubelet/kubelet.ts";

describe("shutdownInOrder", () => {
  it("runs every step in order, each after the previous has ended, skipping absent parts", async () => {
    const log: string[] = [];
    const step = (name: string): ShutdownStep => [name, async () => {
      log.push(`${name} start`);
      await new Promise((r) => setImmediate(r));
      log.push(`${name} end`);
    }];
    await shutdownInOrder([step("sources"), ["lease", undefined], step("workers"), step("cri")], silentLogger());
    expect(log).toEqual(["sources start", "sources end", "workers start", "workers end", "cri start", "cri end"]);
  });

  it("goes on past failures and throws them all together, named by step", async () => {
    const ran: string[] = [];
    const err = await shutdownInOrder([
      ["pod workers", () => {
        throw new Error("stuck");
      }],
      ["status manager", () => void ran.push("status manager")],
      ["events", () => Promise.reject(new Error("API down"))],
      ["cri", () => void ran.push("cri")],
    ], silentLogger()).then(() => undefined, (e: unknown) => e);
    expect(ran).toEqual(["status manager", "cri"]);
    expect(err).toBeInstanceOf(AggregateError);
    expect((err as AggregateError).errors.map((e: Error) => e.message)).toEqual(["pod workers: stuck", "events: API down"]);
  });
});
