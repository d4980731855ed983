import { describe, expect, it } from "vitest";
import { MachineFacts } from "../../../cadvisor/machine-facts.ts";
import type { MachineInfo, MachineInfoOptions } from "../../../cadvisor/machine.ts";
import { isDeckhandError } from "../../../src-shared/errors.ts";
import { silentLogger } from "../../../src-shared/log.ts";
import { FakeClock } from "../../harness/fake-clock.ts";

function facts(memoryCapacity: number): MachineInfo {
  return { numCores: 2, memoryCapacity, swapCapacity: 0, hugePages: [], machineID: "m", systemUUID: "s", bootID: "b", kernelVersion: "6.18", osImage: "Debian", operatingSystem: "linux", architecture: "amd64", rootFs: undefined, imageFs: undefined };
}

describe("MachineFacts", () => {
  it("reads nothing before load(), then keeps the facts fresh every interval, keeping the last ones when a read fails", async () => {
    const clock = new FakeClock();
    const answers: (MachineInfo | Error)[] = [facts(1000), facts(1000), facts(2000), new Error("statfs hung")];
    const asked: MachineInfoOptions[] = [];
    const read = (o: MachineInfoOptions): Promise<MachineInfo> => {
      asked.push(o);
      const a = answers.shift() ?? facts(3000);
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
    };
    const m = new MachineFacts({ rootFs: "/var/lib/kubelet", intervalMs: 10_000, log: silentLogger(), clock, read });
    expect(asked).toEqual([]);
    let early: unknown;
    try {
      m.get();
    } catch (err) {
      early = err;
    }
    expect(isDeckhandError(early, "FailedPrecondition")).toBe(true);
    expect((await m.load()).memoryCapacity).toBe(1000);
    expect(asked[0]).toEqual({ rootFs: "/var/lib/kubelet" });
    const stop = new AbortController();
    m.start(stop.signal);
    await clock.advance(0);
    await clock.advance(10_000);
    expect(m.get().memoryCapacity).toBe(2000);
    await clock.advance(10_000);
    // The failed refresh left the last facts.
    expect(m.get().memoryCapacity).toBe(2000);
    await m.close();
    const n = asked.length;
    await clock.advance(30_000);
    expect(asked.length).toBe(n);
  });
});
