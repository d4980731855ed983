/**
 * Deletes links off the daemon's event loop, for its deferred DEL: the kernel takes 10-40 ms to delete a veth
 * pair, and the netlink addon sends synchronously. With the daemon's NetnsRunner, each deletion is one
 * RTM_DELLINK sent by a forked helper in the daemon's own network namespace (~0.5 ms of work here, and no second
 * V8 isolate: a worker thread costs the kubelet ~16 MiB of RSS at rest). Without one (an architecture whose
 * setns number we do not know), a worker thread with its own netlink socket does it (link-reaper-worker.ts).
 */
import { Worker } from "node:worker_threads";
import { InFlight } from "../src-shared/concurrency.ts";
import { deleteLinkMessage, errnoName } from "./rtnl.ts";
import type { NetnsRunner } from "./nsexec.ts";

const ENODEV = 19;

export class LinkReaper {
  private readonly runner: NetnsRunner | undefined;
  private readonly netns: string;
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (deleted: boolean) => void; reject: (err: Error) => void }>();
  private readonly inFlight = new InFlight();

  /** `runner`: the daemon's helper; `netns`: the namespace the links are in (the process's own by default). */
  constructor(options: { runner?: NetnsRunner; netns?: string } = {}) {
    this.runner = options.runner;
    this.netns = options.netns ?? `/proc/${process.pid}/ns/net`;
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    // The worker is a sibling module: .ts when running from source, .js from dist/.
    const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
    const worker = new Worker(new URL(`./link-reaper-worker${ext}`, import.meta.url));
    worker.on("message", (msg: { id: number; deleted?: boolean; error?: string }) => {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (!p) return;
      if (msg.error !== undefined) p.reject(new Error(msg.error));
      else p.resolve(msg.deleted ?? false);
    });
    worker.on("error", (err: unknown) => this.failAll(err instanceof Error ? err : new Error(String(err))));
    worker.on("exit", () => {
      if (this.worker === worker) this.worker = undefined;
      this.failAll(new Error("link reaper thread exited"));
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private failAll(err: Error): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(err);
    }
  }

  /** Deletes the link; resolves false when there was none. */
  delete(name: string): Promise<boolean> {
    return this.inFlight.track(this.runner ? this.deleteByRunner(this.runner, name) : this.deleteByWorker(name));
  }

  private async deleteByRunner(runner: NetnsRunner, name: string): Promise<boolean> {
    const r = await runner.netlink(this.netns, [deleteLinkMessage(name)]);
    if (r.code === 0) return true;
    if (r.code === ENODEV) return false;
    throw new Error(`delete link ${name}: ${r.code >= 250 ? r.output.trim() : errnoName(r.code)}`);
  }

  private deleteByWorker(name: string): Promise<boolean> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, name });
    });
  }

  /** Waits for the deletions in flight (up to `timeoutMs`), then stops the thread if one was started. */
  async close(timeoutMs = 5_000): Promise<void> {
    await this.inFlight.idle(timeoutMs);
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }
}
