/** Shared helpers of the control-plane e2e suites: start one in a temp dir, wait for conditions. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../../src-shared/log.ts";
import { ControlPlane, type ControlPlaneOptions } from "../../control-plane/control-plane.ts";

export async function startControlPlane(options: Partial<ControlPlaneOptions> = {}): Promise<{ cp: ControlPlane; dir: string; stop: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "deckhand-cp-e2e-"));
  const cp = new ControlPlane({ dir, log: silentLogger(), ...options });
  await cp.start();
  return {
    cp,
    dir,
    stop: async () => {
      await cp.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The Status a client-node ApiException carries. */
export function statusOf(e: unknown): { code?: number; reason?: string; message?: string; details?: { causes?: { field?: string }[] } } {
  const body = (e as { body?: unknown }).body;
  if (typeof body === "string") {
    try {
      return JSON.parse(body) as ReturnType<typeof statusOf>;
    } catch {
      return {};
    }
  }
  return (body ?? {});
}

export async function rejects(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to fail");
}
