import { lstat, mkdtemp, readdir, readFile, readlink, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DATA_DIR, timestampPrefix, writeAtomically } from "../../../../kubelet/volumes/atomic-writer.ts";
import type { Payload } from "../../../../kubelet/volumes/payload.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "deckhand-atomic-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const payload = (files: Record<string, string>, mode = 0o644): Payload => new Map(Object.entries(files).map(([k, v]) => [k, { data: Buffer.from(v), mode }]));

describe("writeAtomically", () => {
  it("lays files out as upstream: a timestamped folder, ..data pointing at it, user-visible symlinks through ..data", async () => {
    const now = Date.parse("2026-12-03T15:04:05Z");
    expect(timestampPrefix(now)).toBe("..2026_12_03_15_04_05.");
    expect(writeAtomically(dir, payload({ "a.conf": "one", "sub/b": "two" }, 0o600), now)).toBe(true);
    const ts = await readlink(join(dir, DATA_DIR));
    expect(ts).toMatch(/^\.\.2026_12_03_15_04_05\.\w+$/);
    expect(await readlink(join(dir, "a.conf"))).toBe("..data/a.conf");
    expect(await readlink(join(dir, "sub"))).toBe("..data/sub");
    expect(await readFile(join(dir, "sub", "b"), "utf8")).toBe("two");
    expect((await stat(join(dir, "a.conf"))).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).sort()).toEqual([ts, DATA_DIR, "a.conf", "sub"].sort());
  });

  it("swaps the whole set on an update, removing names no longer there and the old folder", async () => {
    writeAtomically(dir, payload({ a: "1", b: "2" }));
    const first = await readlink(join(dir, DATA_DIR));
    expect(writeAtomically(dir, payload({ a: "10", c: "3" }))).toBe(true);
    const second = await readlink(join(dir, DATA_DIR));
    expect(second).not.toBe(first);
    expect(await readFile(join(dir, "a"), "utf8")).toBe("10");
    expect(await readFile(join(dir, "c"), "utf8")).toBe("3");
    await expect(lstat(join(dir, "b"))).rejects.toThrow(/ENOENT/);
    await expect(lstat(join(dir, first))).rejects.toThrow(/ENOENT/);
  });

  it("writes nothing when the payload equals what ..data shows", async () => {
    writeAtomically(dir, payload({ a: "1" }));
    const first = await readlink(join(dir, DATA_DIR));
    expect(writeAtomically(dir, payload({ a: "1" }))).toBe(false);
    expect(await readlink(join(dir, DATA_DIR))).toBe(first);
    // A mode change is a change.
    expect(writeAtomically(dir, payload({ a: "1" }, 0o400))).toBe(true);
  });

  it("never shows a reader half an update", async () => {
    writeAtomically(dir, payload({ a: "v0", b: "v0" }));
    let stop = false;
    const mixed: string[] = [];
    const reader = (async () => {
      while (!stop) {
        // Read both through one resolution of ..data, as a reader of a consistent snapshot does.
        const ts = await readlink(join(dir, DATA_DIR));
        const [a, b] = await Promise.all([readFile(join(dir, ts, "a"), "utf8").catch(() => "gone"), readFile(join(dir, ts, "b"), "utf8").catch(() => "gone")]);
        if (a !== "gone" && b !== "gone" && a !== b) mixed.push(`${a}/${b}`);
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 1; i <= 30; i++) writeAtomically(dir, payload({ a: `v${i}`, b: `v${i}` }));
    stop = true;
    await reader;
    expect(mixed).toEqual([]);
  });
});
