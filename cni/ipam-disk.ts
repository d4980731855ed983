/**
 * host-local's on-disk store, same layout so operators' knowledge and tools carry over:
 *   <dataDir>/<network>/<ip>                 "<containerID>\r\n<ifname>"
 *   <dataDir>/<network>/last_reserved_ip.<n>  the last address reserved in range set n
 *   <dataDir>/<network>/lock                  flock(2)ed around every change
 * A reservation is written to a temporary file and then hard-linked to its address name, so the address file
 * appears with its content or not at all (host-local's O_EXCL create can leave an empty file when killed
 * between create and write). Temporary files seen under the lock belong to a writer that died: removed.
 * Sync fs calls on purpose: a handful of tiny files, faster than the async round trips, and always under lock.
 */
import { linkSync, mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { formatIp, parseIp, type IpAddr } from "./ip.ts";
import { ownerText, parseOwner, type IpamStore, type Reservation } from "./ipam.ts";
import type { Attachment } from "./config.ts";
import { FileLock } from "./flock.ts";
import { CniCode, CniError } from "./spec.ts";

const LAST_RESERVED = "last_reserved_ip.";
const TEMP_PREFIX = ".deckhand-";

function ioError(what: string, err: unknown): CniError {
  return new CniError(CniCode.IoFailure, `${what}: ${err instanceof Error ? err.message : String(err)}`);
}

export class DiskStore implements IpamStore {
  readonly dir: string;

  constructor(dataDir: string, network: string) {
    this.dir = join(dataDir, network);
  }

  ensureDir(): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw ioError(`cannot create IPAM directory ${this.dir}`, err);
    }
  }

  lockPath(): string {
    return join(this.dir, "lock");
  }

  reserve(owner: Attachment, ip: IpAddr, rangeSetIndex: number): Promise<boolean> {
    const name = formatIp(ip);
    const temp = join(this.dir, `${TEMP_PREFIX}${name}.${process.pid}.${randomBytes(4).toString("hex")}`);
    try {
      writeFileSync(temp, ownerText(owner), { mode: 0o644 });
      try {
        linkSync(temp, join(this.dir, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") return Promise.resolve(false);
        throw err;
      }
      writeFileSync(join(this.dir, `${LAST_RESERVED}${rangeSetIndex}`), name, { mode: 0o644 });
      return Promise.resolve(true);
    } catch (err) {
      throw ioError(`cannot reserve ${name} in ${this.dir}`, err);
    } finally {
      try {
        unlinkSync(temp);
      } catch {
        // not created
      }
    }
  }

  lastReserved(rangeSetIndex: number): Promise<IpAddr | undefined> {
    try {
      return Promise.resolve(parseIp(readFileSync(join(this.dir, `${LAST_RESERVED}${rangeSetIndex}`), "utf8").trim()));
    } catch {
      return Promise.resolve(undefined);
    }
  }

  release(ip: IpAddr): Promise<void> {
    try {
      unlinkSync(join(this.dir, formatIp(ip)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw ioError(`cannot release ${formatIp(ip)} in ${this.dir}`, err);
    }
    return Promise.resolve();
  }

  list(): Promise<Reservation[]> {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return Promise.resolve([]);
      throw ioError(`cannot read IPAM directory ${this.dir}`, err);
    }
    const out: Reservation[] = [];
    for (const name of names) {
      if (name.startsWith(TEMP_PREFIX)) {
        // Only ever listed under the lock: a writer that died before linking its reservation.
        try {
          unlinkSync(join(this.dir, name));
        } catch {
          // gone
        }
        continue;
      }
      const ip = parseIp(name);
      if (!ip) continue;
      let text = "";
      try {
        text = readFileSync(join(this.dir, name), "utf8");
      } catch {
        // unreadable: reported without owner, so GC can release it
      }
      out.push({ ip, ...parseOwner(text) });
    }
    return Promise.resolve(out);
  }
}

/** Runs `fn` with the network's store under its lock. Locks are cached per path (the daemon reuses helpers). */
const locks = new Map<string, FileLock>();

export async function withStore<T>(dataDir: string, network: string, fn: (store: DiskStore) => Promise<T>): Promise<T> {
  const store = new DiskStore(dataDir, network);
  store.ensureDir();
  const path = store.lockPath();
  let lock = locks.get(path);
  if (!lock) {
    lock = new FileLock(path);
    locks.set(path, lock);
  }
  return lock.with(() => fn(store));
}

/** Stops every lock helper (end of a one-shot invocation, or daemon shutdown). */
export function closeLocks(): void {
  for (const lock of locks.values()) lock.close();
  locks.clear();
}
