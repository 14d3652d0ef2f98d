// `vge cp ADDRESS SRC DST`: exactly one of SRC and DST is in the guest, written with a leading ':'
// (`:/etc/motd`), the way scp writes `host:path` with the host given on its own. `-` is stdin / stdout.
import { defineCommand } from "citty";
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { open, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { UsageError } from "../../common/argv.ts";
import type { FileInfo, Guest } from "../../host/index.ts";
import { address, addressArg, commonArgs, tokenArg, seconds, waitArg } from "./_args.ts";
import { openGuest } from "./_guest.ts";
import { vgeLog } from "./_log.ts";
import { pumpOut } from "./_stdio.ts";
import { streamToFile } from "./_filewrite.ts";
import { checkStdin, stdinStream } from "./_stdin.ts";
import { describeTree, getTree, putTree } from "./_cpdir.ts";

export const CP_NOTES = `
EXAMPLES
  vge cp unix:/run/agent.sock ./build.tar :/tmp/build.tar    host → guest (mode kept)
  vge cp unix:/run/agent.sock :/var/log/boot.log ./boot.log  guest → host (mode under the umask)
  vge cp -p unix:/run/agent.sock :/usr/bin/tool ./tool       guest → host, mode and mtime kept
  vge cp unix:/run/agent.sock ./tool :/usr/local/bin/        a guest path ending in / takes the file's name
  tar c . | vge cp vsock:3:1024 - :/tmp/src.tar             stdin → guest;  :PATH - writes to stdout
  vge cp -r unix:/run/agent.sock ./site :/srv/               a directory: /srv/site (files, symlinks, modes, mtimes)
  vge cp -r unix:/run/agent.sock :/var/log ./guest-log       guest directory → ./guest-log (setuid bits dropped)
`;

function parseMode(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-7]{1,4}$/.test(text)) throw new UsageError(`--mode must be octal permission bits like 644 or 0755, got "${text}"`);
  return parseInt(text, 8);
}

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

async function put(guest: Guest, local: string, remote: string, mode: number | undefined): Promise<void> {
  if (local === "-") {
    if (remote.endsWith("/")) throw new UsageError("with - as the source, give the guest path a file name");
    checkStdin();
    // PUT announces its size first, so stdin is read whole before the upload starts.
    await guest.putFile(remote, stdinStream(), { mode });
    return;
  }
  const target = remote.endsWith("/") ? remote + basename(local) : remote;
  await guest.putFile(target, { localPath: local }, { mode });
}

/**
 * The local file's mode. The guest's bits never bring setuid, setgid or sticky (a compromised guest must
 * not plant a setuid file owned by the operator), and go under the umask as any new file does, unless
 * --preserve. An explicit --mode is the operator's own choice and is applied as given.
 */
function localMode(info: FileInfo, mode: number | undefined, preserve: boolean): number {
  if (mode !== undefined) return mode;
  const bits = (info.mode ?? 0o644) & 0o777;
  return preserve ? bits : bits & ~process.umask();
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

/**
 * Into a temporary file next to the target, then renamed: a reader never sees half a file. The name is
 * random and opened O_CREAT|O_EXCL|O_NOFOLLOW, so nothing planted in the directory (a symlink at a
 * guessable name) is written through; rename replaces a symlink at the target, never follows it.
 */
async function get(guest: Guest, remote: string, local: string, o: { maxSize?: number; mode?: number; preserve: boolean }): Promise<void> {
  const file = guest.getFile(remote, { maxSize: o.maxSize });
  if (local === "-") {
    await pumpOut(file.stream, process.stdout);
    await file.done;
    return;
  }
  const target = (await isDir(local)) ? join(local, basename(remote)) : local;
  const tmp = join(dirname(target), `.${basename(target)}.vge-${randomBytes(12).toString("hex")}`);
  const fh = await open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  let isOpen = true;
  let done = false;
  try {
    await streamToFile(file.stream, fh);
    const info = await file.done;
    await fh.chmod(localMode(info, o.mode, o.preserve));
    if (o.preserve && info.mtime !== undefined) await fh.utimes(new Date(), info.mtime);
    await fh.sync();
    isOpen = false;
    await fh.close();
    await rename(tmp, target);
    done = true;
  } finally {
    if (isOpen) await fh.close().catch(() => {});
    if (!done) await rm(tmp, { force: true });
  }
}

export default defineCommand({
  meta: { name: "cp", description: "Copy a file, or a directory with -r, into or out of the guest (the guest side starts with ':')" },
  args: {
    ...addressArg,
    source: { type: "positional", required: true, valueHint: "SRC", description: "LOCAL, :GUEST_PATH or -" },
    dest: { type: "positional", required: true, valueHint: "DST", description: "LOCAL, :GUEST_PATH or -" },
    mode: { type: "string", valueHint: "OCTAL", description: "Permission bits for the new file (default: the source's)" },
    preserve: { type: "boolean", alias: "p", description: "Guest → host: keep the guest's permission bits (never setuid/setgid/sticky) and mtime, instead of applying the umask" },
    recursive: { type: "boolean", alias: "r", description: "Copy a directory tree (no tar needed in the guest)" },
    "max-size": { type: "string", valueHint: "BYTES", description: "Refuse guest files larger than this (default 1 GiB)" },
    ...waitArg,
    ...tokenArg, ...commonArgs,
  },
  async run({ args }) {
    if (args._.length !== 3) throw new UsageError("usage: vge cp ADDRESS SRC DST, with one of SRC and DST written :GUEST_PATH");
    const [addrText, src, dst] = args._ as [string, string, string];
    const a = address(addrText);
    const mode = parseMode(args.mode);
    const remoteSrc = src.startsWith(":");
    if (remoteSrc === dst.startsWith(":")) throw new UsageError("exactly one of SRC and DST must be a guest path, written :PATH");
    const remote = (remoteSrc ? src : dst).slice(1);
    if (remote === "") throw new UsageError("the guest path after ':' is empty");
    let maxSize: number | undefined;
    if (args["max-size"] !== undefined) {
      if (!/^\d+$/.test(args["max-size"])) throw new UsageError(`--max-size must be a number of bytes, got "${args["max-size"]}"`);
      maxSize = Number(args["max-size"]);
    }
    if (args.recursive && (mode !== undefined || maxSize !== undefined)) throw new UsageError("--mode and --max-size apply to single files, not to -r");
    const log = vgeLog({ quiet: args.quiet, verbose: args.verbose });
    const guest = await openGuest(a, { waitMs: seconds("wait", args.wait), log, tokenFile: args["token-file"] });
    try {
      if (args.recursive) {
        const info = remoteSrc ? await getTree(guest, remote, dst, { preserve: !!args.preserve }) : await putTree(guest, src, remote);
        if (log.verbose) log.info(`copied ${describeTree(info)}`);
        return 0;
      }
      if (remoteSrc) await get(guest, remote, dst, { maxSize, mode, preserve: !!args.preserve });
      else await put(guest, src, remote, mode);
      return 0;
    } finally {
      guest.close();
    }
  },
});
