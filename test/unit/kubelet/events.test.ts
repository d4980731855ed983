import { describe, expect, it } from "vitest";
import { nodeConditionEvents } from "../../../kubelet/events.ts";

describe("node condition events", () => {
  it("announces every condition at first, then only those whose status changed, in upstream's words", () => {
    const ready = [
      { type: "MemoryPressure", status: "False", reason: "KubeletHasSufficientMemory" },
      { type: "Ready", status: "False", reason: "KubeletNotReady" },
    ];
    expect(nodeConditionEvents("n1", undefined, ready)).toEqual([
      { reason: "NodeHasSufficientMemory", message: "Node n1 status is now: NodeHasSufficientMemory" },
      { reason: "NodeNotReady", message: "Node n1 status is now: NodeNotReady" },
    ]);
    const later = [ready[0] ?? { type: "", status: "" }, { type: "Ready", status: "True", reason: "KubeletReady" }];
    expect(nodeConditionEvents("n1", ready, later)).toEqual([{ reason: "NodeReady", message: "Node n1 status is now: NodeReady" }]);
    expect(nodeConditionEvents("n1", later, later)).toEqual([]);
  });
});
