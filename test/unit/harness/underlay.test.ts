import { describe, expect, it } from "vitest";
import { underlayAddress } from "../../harness/underlay.ts";
import { isDeckhandError } from "../../../src-shared/errors.ts";

describe("underlay addresses", () => {
  it("gives node N the address 192.0.2.N (TEST-NET-1)", () => {
    expect(underlayAddress(1)).toBe("192.0.2.1");
    expect(underlayAddress(254)).toBe("192.0.2.254");
  });

  it.each([0, 255, 1.5, -1])("refuses node index %s", (i) => {
    let caught: unknown;
    try {
      underlayAddress(i);
    } catch (err) {
      caught = err;
    }
    expect(isDeckhandError(caught, "InvalidArgument")).toBe(true);
  });
});
