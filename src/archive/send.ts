// The sending end of a directory stream: walk a local tree (never following a symlink below its root),
// and send each entry's header and a file's bytes within the receiver's window, read a chunk at a time.
// Used by the host library (PUTDIR) and the agent (GETDIR) alike.
import { constants } from "node:fs";
import { lstat, open, readdir, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { CHUNK, T, encodeFrame } from "../protocol/v2/frame.ts";
import { encodeEntry, type DirCounts, type DirEntry } from "../protocol/v2/dirs.ts";
import { sendFrame, type Credit, type Send } from "../protocol/v2/credit.ts";
import { EntryError } from "./extract.ts";

/** Entries under `root` in pre-order (a directory before what it holds), names sorted. */
async function* walk(root: string, rel: string, counts: DirCounts): AsyncGenerator<DirEntry> {
  const names = (await readdir(rel ? join(root, rel) : root)).sort();
  for (const name of names) {
    const path = rel ? `${rel}/${name}` : name;
    const st = await lstat(join(root, path));
    const base = { path, mode: st.mode & 0o7777, mtime: st.mtimeMs };
    if (st.isDirectory()) {
      yield { type: "dir", ...base };
      yield* walk(root, path, counts);
    } else if (st.isFile()) yield { type: "file", ...base, size: st.size };
    else if (st.isSymbolicLink()) yield { type: "symlink", ...base, target: await readlink(join(root, path)) };
    else counts.skipped++;
  }
}

/** Takes exactly `n` bytes of credit, in as many grants as it takes. */
async function takeAll(credit: Credit, n: number): Promise<void> {
  for (let got = 0; got < n; ) got += await credit.take(n - got);
}

/**
 * Sends the tree under `root` as DIR_ENTRY / FILE_DATA frames and then DIR_END. A local failure throws
 * EntryError; the caller decides how to end the stream.
 */
export async function sendTree(root: string, id: number, send: Send, credit: Credit): Promise<DirCounts> {
  const counts: DirCounts = { files: 0, dirs: 0, symlinks: 0, bytes: 0, skipped: 0 };
  if (!(await stat(root)).isDirectory()) throw new EntryError("ENOTDIR", root, "not a directory");
  const buf = new Uint8Array(CHUNK);
  let current = "";
  try {
    for await (const e of walk(root, "", counts)) {
      current = e.path;
      const frame = encodeEntry(id, e);
      await takeAll(credit, frame.byteLength - 9);
      await send(frame);
      if (e.type === "dir") counts.dirs++;
      else if (e.type === "symlink") counts.symlinks++;
      else {
        await sendFile(join(root, e.path), e.size, id, send, credit, buf);
        counts.files++;
        counts.bytes += e.size;
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
async function sendFile(abs: string, size: number, id: number, send: Send, credit: Credit, buf: Uint8Array): Promise<void> {
  // O_NOFOLLOW: the entry was a regular file at lstat; if it has become a symlink since, do not read through it.
  const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    for (let sent = 0; sent < size; ) {
      const want = await credit.take(Math.min(CHUNK, size - sent));
      const { bytesRead } = await fh.read(buf, 0, want);
      if (bytesRead === 0) throw Object.assign(new Error(`shrank to ${sent} bytes while being sent (announced ${size})`), { code: "EIO" });
      if (bytesRead < want) credit.add(want - bytesRead);
      // No copy: `buf` is read into again only once sendFrame resolves.
      await sendFrame(send, T.FILE_DATA, id, buf.subarray(0, bytesRead));
      sent += bytesRead;
    }
  } finally {
    await fh.close();
  }
}
