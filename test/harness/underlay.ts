/**
 * The network joining sandbox nodes on one machine, as a rack switch joins real nodes: a "switch" network
 * namespace of the test's own holding a bridge, and a veth from it into each node (its `eth0`, an address of
 * 192.0.2.0/24: TEST-NET-1, documentation addresses). No default route anywhere, so no packet can leave the
 * machine; nodes reach each other's addresses directly on the shared link, and pod CIDRs through the routes
 * the pod-route controller (cni/routes.ts) keeps via each node's InternalIP.
 *
 * The switch is named like a node sandbox (uniqueName, an owner file in its /tmp folder), so the leak check and
 * the stale clean-up see it; deleting it takes the bridge and every node's peer end with it.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { DeckhandError } from "../../src-shared/errors.ts";
import { run } from "../../src-shared/exec.ts";
import { uniqueName, writeOwnerFile } from "./leaks.ts";

/** The underlay's prefix; node N (from 1) gets 192.0.2.N. */
export const UNDERLAY_PREFIX_LENGTH = 24;

export function underlayAddress(index: number): string {
  if (!Number.isInteger(index) || index < 1 || index > 254) throw new DeckhandError("InvalidArgument", `underlay node index ${index} is not a whole number from 1 to 254`);
  return `192.0.2.${index}`;
}

export class Underlay {
  /** The switch's network namespace (and its folder /tmp/<name>). */
  readonly name = uniqueName();
  private ports = 0;
  private created = false;

  async start(): Promise<void> {
    this.created = true;
    try {
      await mkdir(join("/tmp", this.name), { recursive: true });
      await writeOwnerFile(join("/tmp", this.name));
      await run("ip", ["netns", "add", this.name]);
      const sw = ["-n", this.name];
      await run("ip", [...sw, "link", "set", "lo", "up"]);
      await run("ip", [...sw, "link", "add", "ul0", "type", "bridge"]);
      await run("ip", [...sw, "link", "set", "ul0", "up"]);
    } catch (err) {
      await this.teardown().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Plugs a node in: a veth from the switch's bridge into the node's network namespace (by name, under
   * /run/netns) as `ifname`, with `address` (CIDR) on it, up.
   */
  async attach(netnsName: string, address: string, ifname = "eth0"): Promise<void> {
    const sw = ["-n", this.name];
    const port = `ul-${this.ports++}`;
    await run("ip", [...sw, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", netnsName]);
    await run("ip", [...sw, "link", "set", port, "master", "ul0", "up"]);
    await run("ip", ["-n", netnsName, "addr", "add", address, "dev", ifname]);
    await run("ip", ["-n", netnsName, "link", "set", ifname, "up"]);
  }

  /** Removes the switch (its bridge and the nodes' peer ends go with it). Safe to call twice. */
  async teardown(): Promise<void> {
    if (!this.created) return;
    this.created = false;
    await run("ip", ["netns", "del", this.name], { allowFailure: true });
    await rm(join("/tmp", this.name), { recursive: true, force: true });
  }
}
