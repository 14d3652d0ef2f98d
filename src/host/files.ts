// PUT and GET (PROTOCOL.md §8): uploads send only the credit the agent grants; downloads are streams whose
// credit goes back as they are read, like an execution's output.
import { DEFAULT_WINDOW, ProtocolError, T, decodeJson, encodeFrame, encodeJson, encodeWindow, typeName, type Frame } from "../protocol/v2/frame.ts";
import { DEFAULT_MAX_GET, validateFileResult, type GetRequest, type PutRequest } from "../protocol/v2/messages.ts";
import { Credit, sendWithin } from "../protocol/v2/credit.ts";
import { ReceiveWindow } from "../protocol/v2/receive-window.ts";
import { Inbox, collect } from "./_inbox.ts";
import { windowFrom } from "./_window.ts";
import type { Mux } from "./_mux.ts";
import { prepareSource, type PutSource } from "./_source.ts";
import { FileError, GuestError } from "./errors.ts";

export interface PutOptions {
  /** Permission bits; default: the local file's for `{ localPath }`, else 0o644. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Size of a ReadableStream source; without it the stream is read into memory first. */
  size?: number;
}

export interface FileInfo {
  size: number;
  /** Permission bits as the guest reports them (0..0o7777: may include setuid; see vge cp). */
  mode?: number;
  /** Modification time, seconds since the epoch, when the agent sends it. */
  mtime?: number;
}

function decodeResult(f: Frame, path: string): FileInfo {
  const r = validateFileResult(decodeJson(f));
  if (r.ok) return { size: r.size, ...(r.mode !== undefined ? { mode: r.mode } : {}), ...(r.mtime !== undefined ? { mtime: r.mtime } : {}) };
  throw new FileError(r.errno, path, r.message.startsWith(r.errno) ? r.message : `${r.errno}: ${r.message}`);
}

/** The agent's answer, or the FileError it reports; a malformed RESULT throws ProtocolError. */
function checkedResult(f: Frame, path: string): FileInfo | FileError {
  try {
    return decodeResult(f, path);
  } catch (e) {
    if (e instanceof FileError) return e;
    throw e;
  }
}

export async function putFile(mux: Mux, window: number, path: string, src: PutSource, opts: PutOptions = {}): Promise<FileInfo> {
  const prepared = await prepareSource(src, opts.size);
  const credit = new Credit(window, window);
  let settle!: { ok: (i: FileInfo) => void; fail: (e: Error) => void };
  const done = new Promise<FileInfo>((ok, fail) => (settle = { ok, fail }));
  done.catch(() => {});
  const id = mux.register({
    frame(f) {
      if (f.type === T.WINDOW) return windowFrom(credit, f, mux.name, `PUT ${id}`);
      if (f.type !== T.RESULT) throw new ProtocolError(`unexpected ${typeName(f.type)} frame for a PUT`);
      const r = checkedResult(f, path);
      mux.release(id);
      if (r instanceof FileError) settle.fail(r);
      else settle.ok(r);
      credit.fail(new Error("PUT answered"));
    },
    fail(e) {
      credit.fail(e);
      settle.fail(e);
    },
  });
  const req: PutRequest = { path, size: prepared.size, mode: opts.mode ?? prepared.mode ?? 0o644 };
  if (opts.uid !== undefined) req.uid = opts.uid;
  if (opts.gid !== undefined) req.gid = opts.gid;
  mux.post(encodeJson(T.PUT, id, req));
  let sent = 0;
  try {
    for await (const chunk of prepared.chunks) {
      await sendWithin(credit, (b) => mux.send(b), T.FILE_DATA, id, chunk);
      sent += chunk.byteLength;
    }
    await mux.send(encodeFrame(T.FILE_END, id));
  } catch {
    // An early RESULT (the agent refused the file) or a failed connection: `done` carries the reason.
  }
  const info = await done;
  if (sent !== prepared.size) throw new FileError("EIO", path, `the source gave ${sent} bytes, not the ${prepared.size} announced`);
  return info;
}

export interface GetOptions {
  /** Refuse files larger than this (the agent's default: 1 GiB). */
  maxSize?: number;
}

/** A download in progress: read `stream`; `done` has the size and mode once all bytes arrived. */
export interface RemoteFile {
  readonly stream: ReadableStream<Uint8Array>;
  readonly done: Promise<FileInfo>;
  /** The whole file in memory. */
  bytes(): Promise<Uint8Array>;
}

export function getFile(mux: Mux, path: string, opts: GetOptions = {}): RemoteFile {
  let finished = false;
  let settle!: { ok: (i: FileInfo) => void; fail: (e: Error) => void };
  const done = new Promise<FileInfo>((ok, fail) => (settle = { ok, fail }));
  done.catch(() => {});
  // The agent must stay within the size we asked for and report the size it sent: a guest cannot make a
  // download (and the disk of whoever writes it out) grow past the limit.
  const maxSize = opts.maxSize ?? DEFAULT_MAX_GET;
  /** Bytes that arrived in all. */
  let size = 0;
  const inbox = new Inbox((n) => {
    const back = received.consume(n);
    if (back > 0 && !finished && !mux.error) mux.post(encodeWindow(id, back));
  });
  const id = mux.register({
    frame(f) {
      if (f.type === T.FILE_DATA) {
        // Nothing is queued beyond the grant, however much a hostile guest sends.
        received.receive(f.type, f.payload.byteLength);
        size += f.payload.byteLength;
        if (size > maxSize) throw new ProtocolError(`FILE_DATA frame: more than the ${maxSize} bytes asked for at most`);
        return inbox.push(f.payload);
      }
      if (f.type !== T.RESULT) throw new ProtocolError(`unexpected ${typeName(f.type)} frame for a GET`);
      // Checked while the id is still ours: a malformed RESULT fails the connection and reaches this GET.
      const r = checkedResult(f, path);
      if (!(r instanceof FileError) && r.size !== size) throw new ProtocolError(`RESULT frame: size ${r.size}, but ${size} bytes arrived`);
      finished = true;
      mux.release(id);
      if (r instanceof FileError) {
        inbox.fail(r);
        settle.fail(r);
      } else {
        inbox.end();
        settle.ok(r);
      }
    },
    fail(e) {
      finished = true;
      inbox.fail(e);
      settle.fail(e);
    },
  });
  // The data credit (PROTOCOL.md §7): registered above, so the id is known here, before any frame arrives.
  const received = new ReceiveWindow(DEFAULT_WINDOW, `GET ${id}`, DEFAULT_WINDOW / 2);
  const req: GetRequest = { path };
  if (opts.maxSize !== undefined) req.maxSize = opts.maxSize;
  mux.post(encodeJson(T.GET, id, req));
  return {
    stream: inbox.stream,
    done,
    async bytes() {
      const b = await collect(inbox.stream);
      await done;
      return b;
    },
  };
}
