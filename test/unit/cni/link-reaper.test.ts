/** LinkReaper through the daemon's netns runner: one RTM_DELLINK per link, errno answers mapped. */
import { describe, expect, it } from "vitest";
import { LinkReaper } from "../../../cni/link-reaper.ts";
import type { NetnsRunner, NsRunResult } from "../../../cni/nsexec.ts";

const RTM_DELLINK = 17;

function fakeRunner(answer: (name: string) => NsRunResult): { runner: NetnsRunner; sent: { netns: string; type: number; name: string }[] } {
  const sent: { netns: string; type: number; name: string }[] = [];
  const runner = {
    netlink: (netns: string, messages: readonly Buffer[]): Promise<NsRunResult> => {
      const m = messages[0] ?? Buffer.alloc(0);
      // The IFLA_IFNAME attribute follows the 16-byte header and the 16-byte ifinfomsg: 4 bytes of rtattr, then the name.
      const name = m.subarray(36, 36 + m.readUInt16LE(32) - 5).toString();
      sent.push({ netns, type: m.readUInt16LE(4), name });
      return Promise.resolve(answer(name));
    },
  } as unknown as NetnsRunner;
  return { runner, sent };
}

describe("LinkReaper with the daemon's runner", () => {
  it("sends one RTM_DELLINK by name in its namespace: deleted, already gone, or the errno named", async () => {
    const { runner, sent } = fakeRunner((name) => (name === "veth-here" ? { code: 0, output: "" } : name === "veth-gone" ? { code: 19, output: "0" } : { code: 1, output: "0" }));
    const reaper = new LinkReaper({ runner, netns: "/proc/1/ns/net" });
    expect(await reaper.delete("veth-here")).toBe(true);
    expect(await reaper.delete("veth-gone")).toBe(false);
    await expect(reaper.delete("veth-perm")).rejects.toThrow("delete link veth-perm: EPERM");
    expect(sent).toEqual([
      { netns: "/proc/1/ns/net", type: RTM_DELLINK, name: "veth-here" },
      { netns: "/proc/1/ns/net", type: RTM_DELLINK, name: "veth-gone" },
      { netns: "/proc/1/ns/net", type: RTM_DELLINK, name: "veth-perm" },
    ]);
    await reaper.close();
  });
});
