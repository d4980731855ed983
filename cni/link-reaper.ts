/** Deletes links on a worker thread (see link-reaper-worker.ts); for the daemon's deferred DEL. */
import { Worker } from "node:worker_threads";
import { InFlight } from "../src-shared/concurrency.ts";

export class LinkReaper {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (deleted: boolean) => void; reject: (err: Error) => void }>();
  private readonly inFlight = new InFlight();

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
    const worker = this.start();
    const id = this.nextId++;
    return this.inFlight.track(
      new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        worker.postMessage({ id, name });
      }),
    );
  }

  /** Waits for the deletions in flight (up to `timeoutMs`), then stops the thread. */
  async close(timeoutMs = 5_000): Promise<void> {
    await this.inFlight.idle(timeoutMs);
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }
}
