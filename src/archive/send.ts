// The sending end of a directory stream: walk a local tree (never following a symlink below its root),
// and send each entry's header and a file's bytes within the receiver's window, read a chunk at a time.
// Used by the host library (PUTDIR) and the agent (GETDIR) alike.
import { constants, type Stats } from "node:fs";
import { lstat, open, readdir, readlink, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { CHUNK, T, encodeFrame } from "../protocol/v2/frame.ts";
import { encodeEntry, type DirCounts, type DirEntry } from "../protocol/v2/dirs.ts";
import { sendFrame, type Credit, type Send } from "../protocol/v2/credit.ts";
import { EntryError } from "./extract.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });
/** An entry gone (or changed into something else) between readdir and our look at it: skipped, not fatal. */
const vanished = (e: unknown) => ["ENOENT", "ENOTDIR", "ELOOP", "EINVAL"].includes((e as NodeJS.ErrnoException).code ?? "");

/** A name as text, or undefined if its bytes are not UTF-8 (the protocol's paths are JSON strings). */
function textName(b: Buffer): string | undefined {
  try {
    return utf8.decode(b);
  } catch {
    return undefined;
  }
}

/**
 * Entries under `root` in pre-order (a directory before what it holds), names sorted. Names are read as
 * bytes: one that is not UTF-8 cannot travel in a DIR_ENTRY, and is skipped and counted (so is what it
 * holds) rather than being decoded to U+FFFD and then not found. An entry that vanishes while the walk
 * runs is skipped and counted too; a directory that vanishes is sent empty.
 */
async function* walk(root: string, rel: string, counts: DirCounts, skip: OnSkip): AsyncGenerator<DirEntry> {
  let raw: Buffer[];
  try {
    raw = await readdir(rel ? join(root, rel) : root, { encoding: "buffer" });
  } catch (e) {
    if (rel && vanished(e)) return;
    throw e;
  }
  const names: string[] = [];
  for (const b of raw) {
    const name = textName(b);
    if (name === undefined) skip(rel ? `${rel}/` : "", `a name that is not UTF-8 (hex ${b.toString("hex")})`);
    else names.push(name);
  }
  for (const name of names.sort()) {
    const path = rel ? `${rel}/${name}` : name;
    let st: Stats;
    let target: string | undefined = "";
    try {
      st = await lstat(join(root, path));
      if (st.isSymbolicLink()) target = textName(await readlink(join(root, path), { encoding: "buffer" }));
    } catch (e) {
      if (!vanished(e)) throw e;
      skip(path, "vanished while the tree was read");
      continue;
    }
    if (target === undefined) {
      skip(path, "a symlink whose target is not UTF-8");
      continue;
    }
    const base = { path, mode: st.mode & 0o7777, mtime: st.mtimeMs };
    if (st.isDirectory()) {
      yield { type: "dir", ...base };
      yield* walk(root, path, counts, skip);
    } else if (st.isFile()) yield { type: "file", ...base, size: st.size };
    else if (st.isSymbolicLink()) yield { type: "symlink", ...base, target };
    else skip(path, "a special file (device, FIFO or socket)");
  }
}

/** Takes exactly `n` bytes of credit, in as many grants as it takes. */
async function takeAll(credit: Credit, n: number): Promise<void> {
  for (let got = 0; got < n; ) got += await credit.take(n - got);
}

/**
 * A file of the walk, opened before its header is sent: one that has vanished (or become something else)
 * since the walk saw it is skipped (undefined). The header then says what the open file is now.
 */
async function openFile(abs: string, e: Extract<DirEntry, { type: "file" }>): Promise<{ fh: FileHandle; entry: DirEntry & { type: "file" } } | undefined> {
  // O_NOFOLLOW: not read through a symlink swapped in; O_NONBLOCK: a FIFO swapped in does not block the open.
  const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err) => {
    if (vanished(err)) return undefined;
    throw err;
  });
  if (!fh) return undefined;
  const st = await fh.stat().catch(async (err) => {
    await fh.close();
    throw err;
  });
  if (!st.isFile()) {
    await fh.close();
    return undefined;
  }
  return { fh, entry: { ...e, mode: st.mode & 0o7777, mtime: st.mtimeMs, size: st.size } };
}

/** Told of each entry left out of a tree: its path under the root and why (for a log; it is counted anyway). */
export type OnSkip = (path: string, why: string) => void;

/**
 * Sends the tree under `root` as DIR_ENTRY / FILE_DATA frames and then DIR_END. A local failure throws
 * EntryError; the caller decides how to end the stream.
 */
export async function sendTree(root: string, id: number, send: Send, credit: Credit, onSkip?: OnSkip): Promise<DirCounts> {
  const counts: DirCounts = { files: 0, dirs: 0, symlinks: 0, bytes: 0, skipped: 0 };
  const skip: OnSkip = (path, why) => {
    counts.skipped++;
    onSkip?.(path, why);
  };
  if (!(await stat(root)).isDirectory()) throw new EntryError("ENOTDIR", root, "not a directory");
  const buf = new Uint8Array(CHUNK);
  let current = "";
  try {
    for await (const walked of walk(root, "", counts, skip)) {
      current = walked.path;
      let e: DirEntry = walked;
      let fh: FileHandle | undefined;
      if (walked.type === "file") {
        const opened = await openFile(join(root, walked.path), walked);
        if (!opened) {
          skip(walked.path, "vanished or changed while the tree was read");
          continue;
        }
        ({ fh, entry: e } = opened);
      }
      try {
        const frame = encodeEntry(id, e);
        await takeAll(credit, frame.byteLength - 9);
        await send(frame);
        if (e.type === "dir") counts.dirs++;
        else if (e.type === "symlink") counts.symlinks++;
        else {
          await sendFile(fh!, e.size, id, send, credit, buf);
          counts.files++;
          counts.bytes += e.size;
        }
      } finally {
        await fh?.close();
      }
    }
  } catch (err) {
    if (err instanceof EntryError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new EntryError(typeof e.code === "string" ? e.code : "EIO", current || root, e.message ?? String(err));
  }
  await send(encodeFrame(T.DIR_END, id));
  return counts;
}

/** Exactly `size` bytes, as announced: a file that shrank meanwhile is an error, one that grew is cut. */
async function sendFile(fh: FileHandle, size: number, id: number, send: Send, credit: Credit, buf: Uint8Array): Promise<void> {
  for (let sent = 0; sent < size; ) {
    const want = await credit.take(Math.min(CHUNK, size - sent));
    const { bytesRead } = await fh.read(buf, 0, want);
    if (bytesRead === 0) throw Object.assign(new Error(`shrank to ${sent} bytes while being sent (announced ${size})`), { code: "EIO" });
    if (bytesRead < want) credit.add(want - bytesRead);
    // No copy: `buf` is read into again only once sendFrame resolves.
    await sendFrame(send, T.FILE_DATA, id, buf.subarray(0, bytesRead));
    sent += bytesRead;
  }
}
