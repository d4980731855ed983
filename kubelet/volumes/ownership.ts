/**
 * `securityContext.fsGroup` on the volumes that support ownership (upstream's SetVolumeOwnership,
 * pkg/volume/volume_linux.go): every file and folder of the volume gets the group, group read (and write unless
 * the volume is read-only) and, for folders, execute and the setgid bit, so that what the containers create
 * keeps the group. `fsGroupChangePolicy: OnRootMismatch` skips the walk when the volume's root already has the
 * group and permissions; `Always` (the default) walks every time the kubelet sets the volume up. hostPath
 * volumes are the host's and are never changed.
 */
import { chmod, lchown, lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

const RW_MASK = 0o660;
const RO_MASK = 0o440;
const EXEC_MASK = 0o110;
const SETGID = 0o2000;

/** Whether the root already carries what the walk would give it (OnRootMismatch's test). */
export async function rootMatches(dir: string, fsGroup: number, readOnly: boolean): Promise<boolean> {
  const st = await lstat(dir);
  const mask = (readOnly ? RO_MASK : RW_MASK) | EXEC_MASK | SETGID;
  return st.gid === fsGroup && (st.mode & mask) === mask;
}

export async function setVolumeOwnership(dir: string, fsGroup: number, readOnly: boolean, policy: string | undefined): Promise<void> {
  if (policy === "OnRootMismatch" && (await rootMatches(dir, fsGroup, readOnly))) return;
  await walk(dir, fsGroup, readOnly);
}

async function walk(path: string, gid: number, readOnly: boolean): Promise<void> {
  const st = await lstat(path);
  await lchown(path, st.uid, gid);
  if (st.isSymbolicLink()) return;
  let mode = (st.mode & 0o7777) | (readOnly ? RO_MASK : RW_MASK);
  if (st.isDirectory()) mode |= EXEC_MASK | SETGID;
  if (mode !== (st.mode & 0o7777)) await chmod(path, mode);
  if (st.isDirectory()) for (const name of await readdir(path)) await walk(join(path, name), gid, readOnly);
}
