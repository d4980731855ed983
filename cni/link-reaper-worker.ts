/**
 * Worker thread of LinkReaper: deletes links by name with its own netlink socket, so the 10-40 ms the kernel
 * takes to delete a veth pair block this thread, not the daemon's event loop (the netlink addon sends
 * synchronously). Threads share the process's network namespace.
 */
import { parentPort } from "node:worker_threads";
import { Rtnl } from "./rtnl.ts";

const rtnl = new Rtnl();
parentPort?.on("message", (msg: { id: number; name: string }) => {
  rtnl.deleteLink(msg.name).then(
    (deleted) => parentPort?.postMessage({ id: msg.id, deleted }),
    (err: unknown) => parentPort?.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) }),
  );
});
