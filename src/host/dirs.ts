// putDir and getDir (PROTOCOL.md §12): a directory tree as one stream each way. The guest is treated as
// hostile when it sends: entry headers are checked at decode, nothing is written outside the target, no
// symlink is followed, no setuid/setgid/sticky bit survives, and at most one window is held in memory.
import { ProtocolError, T, encodeFrame, encodeJson, encodeWindow, typeName, type Frame } from "../protocol/v2/frame.ts";
import { decodeDirResult, type DirCounts, type DirRequest } from "../protocol/v2/dirs.ts";
import { Credit } from "../protocol/v2/credit.ts";
import { TreeReceiver } from "../archive/receive.ts";
import { sendTree } from "../archive/send.ts";
import { EntryError } from "../archive/extract.ts";
import { stat } from "node:fs/promises";
import type { Mux } from "./_mux.ts";
import { FileError, GuestError } from "./errors.ts";
import { windowFrom } from "./_window.ts";

/** What a directory copy moved: regular files, directories, symlinks, file bytes, and what it left out (special files, non-UTF-8 names, entries gone mid-walk). */
export type DirInfo = DirCounts;

function fromResult(f: Frame, root: string): DirInfo {
  const r = decodeDirResult(f);
  if (r.ok) return { files: r.files, dirs: r.dirs, symlinks: r.symlinks, bytes: r.bytes, skipped: r.skipped };
  const where = r.path ? (r.path.startsWith("/") ? r.path : `${root}/${r.path}`) : root;
  const msg = r.path && r.message.startsWith(`${r.path}: `) ? r.message.slice(r.path.length + 2) : r.message;
  // As for single files: the errno leads, once.
  throw new FileError(r.errno, where, msg.startsWith(r.errno) ? msg : `${r.errno}: ${msg}`);
}

function localError(e: unknown, root: string): FileError {
  const err = e as EntryError;
  const where = err.path ? (err.path.startsWith("/") ? err.path : `${root}/${err.path}`) : root;
  const msg = err instanceof EntryError && err.path ? err.message.slice(err.path.length + 2) : err.message;
  const code = typeof err.code === "string" ? err.code : "EIO";
  return new FileError(code, where, msg.startsWith(code) ? msg : `${code}: ${msg}`);
}

function needDirs(caps: string[], name: string): void {
  if (!caps.includes("dirs")) throw new GuestError("ENOTSUP", `${name}: this agent cannot copy directories (no "dirs" capability); upgrade it`);
}

/** Host directory `local` → guest directory `remote` (created if missing; its parent must exist). */
export async function putDir(mux: Mux, window: number, caps: string[], local: string, remote: string): Promise<DirInfo> {
  needDirs(caps, mux.name);
  // Checked before anything is sent: a PUTDIR would already create the guest directory.
  const st = await stat(local).catch((e) => Promise.reject(new FileError((e as NodeJS.ErrnoException).code ?? "EIO", local, (e as Error).message)));
  if (!st.isDirectory()) throw new FileError("ENOTDIR", local, "not a directory (copy a single file without -r / with putFile)");
  const credit = new Credit(window, window);
  let answered = false;
  let settle!: { ok: (i: DirInfo) => void; fail: (e: Error) => void };
  const done = new Promise<DirInfo>((ok, fail) => (settle = { ok, fail }));
  done.catch(() => {});
  const id = mux.register({
    frame(f) {
      if (f.type === T.WINDOW) return windowFrom(credit, f, mux.name, `PUTDIR ${id}`);
      if (f.type !== T.RESULT) throw new ProtocolError(`unexpected ${typeName(f.type)} frame for a PUTDIR`);
      // Decoded while the id is still ours: a malformed RESULT fails the connection, and so reaches fail().
      let result: DirInfo | FileError;
      try {
        result = fromResult(f, remote);
      } catch (e) {
        if (!(e instanceof FileError)) throw e;
        result = e;
      }
      answered = true;
      mux.release(id);
      credit.fail(new Error("PUTDIR answered"));
      if (result instanceof FileError) settle.fail(result);
      else settle.ok(result);
    },
    fail(e) {
      credit.fail(e);
      settle.fail(e);
    },
  });
  const req: DirRequest = { path: remote };
  mux.post(encodeJson(T.PUTDIR, id, req));
  let localFailure: FileError | undefined;
  let skipped = 0;
  try {
    skipped = (await sendTree(local, id, (frame) => mux.send(frame), credit)).skipped;
  } catch (e) {
    // An early RESULT (the agent refused an entry) or a dropped connection: `done` has the reason. A
    // local failure (an unreadable file) ends the stream with DIR_END, which fails a file cut short.
    if (e instanceof EntryError && !mux.error && !answered) {
      localFailure = localError(e, local);
      mux.post(encodeFrame(T.DIR_END, id));
    }
  }
  const info = await done.catch((e) => {
    throw localFailure ?? e;
  });
  if (localFailure) throw localFailure;
  // What was left out is known here, at the sender: the agent only counts what it wrote.
  return { ...info, skipped };
}

export interface GetDirOptions {
  /**
   * Keep the guest's permission bits as sent (never setuid, setgid or sticky). Default: they are masked
   * with this process's umask, as a file a local program makes would be.
   */
  preserveMode?: boolean;
}

/** Guest directory `remote` → host directory `local` (created if missing; its parent must exist). */
export async function getDir(mux: Mux, window: number, caps: string[], remote: string, local: string, opts: GetDirOptions = {}): Promise<DirInfo> {
  needDirs(caps, mux.name);
  let released = false;
  let settle!: { ok: (i: DirInfo) => void; fail: (e: Error) => void };
  const done = new Promise<DirInfo>((ok, fail) => (settle = { ok, fail }));
  done.catch(() => {});
  const id = mux.register({
    frame(f) {
      if (f.type !== T.RESULT) return rx.frame(f);
      // Checked while the id is still ours: a malformed RESULT, or a success without DIR_END, fails the
      // connection, and so reaches fail() below (a getDir never waits on a stream that cannot end).
      let remoteInfo: DirInfo;
      try {
        remoteInfo = fromResult(f, remote);
      } catch (e) {
        if (!(e instanceof FileError)) throw e;
        released = true;
        mux.release(id);
        rx.abort();
        return void rx.outcome.then(() => settle.fail(e));
      }
      if (!rx.ended) throw new ProtocolError("RESULT {ok:true} of a GETDIR before its DIR_END");
      released = true;
      mux.release(id);
      // The agent's RESULT comes after its DIR_END; what we wrote must be what it says it sent.
      void rx.outcome.then((o) => {
        if (!o.ok) return settle.fail(localError(o.error, local));
        const c = o.counts;
        if (c.files !== remoteInfo.files || c.dirs !== remoteInfo.dirs || c.symlinks !== remoteInfo.symlinks || c.bytes !== remoteInfo.bytes) {
          return settle.fail(new FileError("EIO", local, `received ${JSON.stringify(c)} but the agent reported ${JSON.stringify(remoteInfo)}`));
        }
        settle.ok({ ...c, skipped: remoteInfo.skipped });
      });
    },
    fail(e) {
      // Rejected once the file being written is gone: the caller may look at the target at once.
      rx.abort();
      void rx.outcome.then(() => settle.fail(e));
    },
  });
  // Made once the id is registered: a failed connection refuses the call before the target is touched.
  const modeMask = opts.preserveMode ? 0o777 : 0o777 & ~currentUmask();
  const rx = new TreeReceiver(local, { modeMask }, window, (n) => {
    if (!released && !mux.error) mux.post(encodeWindow(id, n));
  });
  // A refused entry ends the copy for us at once; the agent, not told, streams on, and the receiver
  // keeps returning credit (dropping the bytes) until the agent's RESULT releases the id.
  void rx.outcome.then((o) => {
    if (!o.ok && o.error.code !== "ECONNRESET") settle.fail(localError(o.error, local));
  });
  const req: DirRequest = { path: remote };
  mux.post(encodeJson(T.GETDIR, id, req));
  return done;
}

/** The umask, read without changing it for more than an instant (process.umask() alone is deprecated). */
function currentUmask(): number {
  const old = process.umask(0o022);
  process.umask(old);
  return old;
}
