/**
 * hostPath `type` checks as upstream's hostPath plugin (pkg/volume/hostpath): before the pod runs, the path must
 * be what the type says; `DirectoryOrCreate` and `FileOrCreate` make it (0755 folder, 0644 empty file) when it is
 * missing. A failed check fails the mount with upstream's message.
 */
import { lstat, mkdir, stat, writeFile, chmod } from "node:fs/promises";
import type { Stats } from "node:fs";
import { dirname } from "node:path";
import { VolumeError } from "./payload.ts";

export const HOST_PATH_TYPES = ["", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"] as const;

async function statOf(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

/** Checks (and for the *OrCreate types, makes) `path` as `type` says. */
export async function checkHostPathType(path: string, type: string | undefined): Promise<void> {
  const t = type ?? "";
  if (t === "") return; // no check, as upstream's HostPathUnset
  if (!(HOST_PATH_TYPES as readonly string[]).includes(t)) throw new VolumeError("InvalidArgument", `hostPath.type: Unsupported value: ${JSON.stringify(t)}`);
  if (!path.startsWith("/")) throw new VolumeError("InvalidArgument", `hostPath.path: Invalid value: ${JSON.stringify(path)}: must be an absolute path`);
  let st = await statOf(path);
  if (st === undefined && t === "DirectoryOrCreate") {
    await mkdir(path, { recursive: true, mode: 0o755 });
    await chmod(path, 0o755);
    st = await statOf(path);
  } else if (st === undefined && t === "FileOrCreate") {
    await mkdir(dirname(path), { recursive: true, mode: 0o755 });
    await writeFile(path, "", { mode: 0o644, flag: "a" });
    st = await statOf(path);
  }
  if (st === undefined) {
    const what = { Directory: "directory", File: "file", Socket: "socket", CharDevice: "character device", BlockDevice: "block device" }[t] ?? t;
    throw new VolumeError("NotFound", `hostPath type check failed: ${path} is not a ${what}`);
  }
  const ok =
    t === "DirectoryOrCreate" || t === "Directory"
      ? st.isDirectory()
      : t === "FileOrCreate" || t === "File"
        ? st.isFile()
        : t === "Socket"
          ? st.isSocket()
          : t === "CharDevice"
            ? st.isCharacterDevice()
            : st.isBlockDevice();
  if (!ok) {
    const messages: Record<string, string> = {
      DirectoryOrCreate: `path ${path} exists but is not a directory`,
      Directory: `hostPath type check failed: ${path} is not a directory`,
      FileOrCreate: `path ${path} exists but is not a file`,
      File: `hostPath type check failed: ${path} is not a file`,
      Socket: `hostPath type check failed: ${path} is not a socket file`,
      CharDevice: `hostPath type check failed: ${path} is not a character device`,
      BlockDevice: `hostPath type check failed: ${path} is not a block device`,
    };
    throw new VolumeError("FailedPrecondition", messages[t] ?? `hostPath type check failed: ${path}`);
  }
}

/** Whether `path` exists without following a final symlink (for tests and cleanup). */
export async function present(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}
