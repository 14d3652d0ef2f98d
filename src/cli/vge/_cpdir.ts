// `vge cp -r`: whole directories through putDir / getDir, no tar needed in the guest. Naming follows
// cp -r: a destination that is an existing local directory, or that ends in /, receives the source
// under its own name; any other destination is the copy itself (created, or merged into).
import { stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { UsageError } from "../../common/argv.ts";
import type { DirInfo, Guest } from "../../host/index.ts";

/** The source's last component, for `DST/` ("/srv/app/" → "app"). */
function lastName(path: string): string {
  const name = basename(path.replace(/\/+$/, ""));
  if (name === "" || name === "." || name === "..") throw new UsageError(`cannot tell the name of ${JSON.stringify(path)} to copy it under; give the destination in full`);
  return name;
}

export async function putTree(guest: Guest, local: string, remote: string): Promise<DirInfo> {
  if (local === "-") throw new UsageError("-r copies directories: - (stdin) is not one");
  // Checked here too for the one-line hint; putDir refuses a non-directory as well.
  const st = await stat(local).catch(() => null);
  if (!st?.isDirectory()) throw new UsageError(`-r: ${local} is not a local directory`);
  const target = remote.endsWith("/") ? remote + lastName(local) : remote;
  return guest.putDir(local, target);
}

export async function getTree(guest: Guest, remote: string, local: string, opts: { preserve?: boolean } = {}): Promise<DirInfo> {
  if (local === "-") throw new UsageError("-r copies directories: - (stdout) cannot take one");
  const isDir = (await stat(local).catch(() => null))?.isDirectory() ?? false;
  const target = isDir || local.endsWith("/") ? join(local, lastName(remote)) : local;
  return guest.getDir(remote, target, { preserveMode: opts.preserve });
}

/** One line for stderr: what moved. */
export function describeTree(i: DirInfo): string {
  // Skipped: special files (devices, fifos, sockets), names that are not UTF-8, entries that vanished mid-walk.
  const skipped = i.skipped ? `, ${i.skipped} skipped (special files, non-UTF-8 names or vanished entries)` : "";
  return `${i.files} files, ${i.dirs} directories, ${i.symlinks} symlinks, ${i.bytes} bytes${skipped}`;
}
