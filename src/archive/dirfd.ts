// Directory-relative file operations with node:fs alone, for Bun (the agent) and Node (the host library)
// alike. node:fs has no openat(), but Linux has /proc/self/fd/N: a magic link that resolves to the very
// directory held open as fd N, wherever it has been moved and whatever now sits at the path it was
// opened by. `/proc/self/fd/N/NAME`, with NAME one component, is therefore NAME looked up inside that
// directory: openat(N, NAME). Every directory is opened O_DIRECTORY|O_NOFOLLOW, so a symlink swapped in
// for a directory fails the open (ENOTDIR) instead of being followed, and once a directory is held no
// later swap of its path can redirect what is made in it. (FFI openat would do the same for the agent
// only; the host on Node has no bun:ffi, and one implementation serves both.)
import { constants } from "node:fs";
import { lstat, open, stat, type FileHandle } from "node:fs/promises";

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants;

/** NAME (one component, never containing `/`) inside the directory held open as `fd`. */
export function at(fd: number, name: string): string {
  return `/proc/self/fd/${fd}/${name}`;
}

/** The directory NAME inside `dirFd`; a symlink there is refused (ENOTDIR), never followed. */
export function openDirAt(dirFd: number, name: string): Promise<FileHandle> {
  return open(at(dirFd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
}

/** Why NAME inside `dirFd` is not a directory we may enter: "symlink", "other", or undefined if it is gone. */
export async function notDirKind(dirFd: number, name: string): Promise<"symlink" | "other" | undefined> {
  const st = await lstat(at(dirFd, name)).catch(() => undefined);
  return st ? (st.isSymbolicLink() ? "symlink" : "other") : undefined;
}

/** Fails clearly where /proc is not mounted (the agent's initrd mounts it; so does every normal system). */
export async function checkProcFd(dir: FileHandle): Promise<void> {
  const [viaFd, viaProc] = await Promise.all([dir.stat(), stat(`/proc/self/fd/${dir.fd}`).catch(() => undefined)]);
  if (!viaProc || viaProc.dev !== viaFd.dev || viaProc.ino !== viaFd.ino) {
    throw Object.assign(new Error("/proc is not mounted: directory copies name what they write through /proc/self/fd (mount -t proc proc /proc)"), { code: "ENOTSUP" });
  }
}
