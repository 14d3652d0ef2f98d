// Directory copies (PROTOCOL.md §12): PUTDIR / GETDIR, then a stream of DIR_ENTRY headers, each file's
// bytes as FILE_DATA right after its header, and DIR_END. Everything a peer sends is checked here, at
// decode, into typed values: a receiver never sees a path that is absolute, empty, or that climbs with `..`.
import { ProtocolError, decodeJson, encodeJson, T, type Frame } from "./frame.ts";

/** Longest relative path in an entry, in UTF-8 bytes (PATH_MAX), and longest component (NAME_MAX). */
export const MAX_ENTRY_PATH = 4096;
export const MAX_NAME = 255;

export type DirEntry =
  | { type: "file"; path: string; mode: number; mtime: number; size: number }
  | { type: "dir"; path: string; mode: number; mtime: number }
  | { type: "symlink"; path: string; mode: number; mtime: number; target: string };

export interface DirRequest {
  /** Absolute path of the directory in the guest: the copy's root. */
  path: string;
}

export interface DirCounts {
  files: number;
  dirs: number;
  symlinks: number;
  /** File content bytes. */
  bytes: number;
  /** Entries the sender left out: sockets, FIFOs, devices. */
  skipped: number;
}

export type DirResult = ({ ok: true } & DirCounts) | { ok: false; errno: string; message: string; path?: string };

const enc = new TextEncoder();

function fail(msg: string): never {
  throw new ProtocolError(`DIR_ENTRY: ${msg}`);
}

/**
 * A path relative to the copy's root: components separated by single `/`, none empty, `.` or `..`, no NUL,
 * so it can never name anything outside the root by itself (symlinks are the extractor's concern).
 */
export function checkRelativePath(p: unknown, what = "path"): string {
  if (typeof p !== "string" || p === "") fail(`${what} must be a non-empty string`);
  if (enc.encode(p).byteLength > MAX_ENTRY_PATH) fail(`${what} is longer than ${MAX_ENTRY_PATH} bytes`);
  if (p.includes("\0")) fail(`${what} contains NUL`);
  if (p.startsWith("/")) fail(`${what} ${JSON.stringify(p)} is absolute`);
  for (const c of p.split("/")) {
    if (c === "") fail(`${what} ${JSON.stringify(p)} has an empty component`);
    if (c === "." || c === "..") fail(`${what} ${JSON.stringify(p)} has a "${c}" component`);
    if (enc.encode(c).byteLength > MAX_NAME) fail(`${what} has a component longer than ${MAX_NAME} bytes`);
  }
  return p;
}

/** One entry header, checked field by field. Modes keep only the permission bits (0o7777). */
export function decodeEntry(f: Frame): DirEntry {
  const b = decodeJson(f);
  const path = checkRelativePath(b.path);
  if (typeof b.mode !== "number" || !Number.isInteger(b.mode) || b.mode < 0 || b.mode > 0xffffffff) fail("mode must be a u32");
  const mode = b.mode & 0o7777;
  if (typeof b.mtime !== "number" || !Number.isFinite(b.mtime)) fail("mtime must be a finite number");
  const mtime = b.mtime;
  switch (b.type) {
    case "file":
      if (typeof b.size !== "number" || !Number.isSafeInteger(b.size) || b.size < 0) fail("size must be a non-negative integer");
      return { type: "file", path, mode, mtime, size: b.size };
    case "dir":
      return { type: "dir", path, mode, mtime };
    case "symlink": {
      const t = b.target;
      if (typeof t !== "string" || t === "" || t.includes("\0") || enc.encode(t).byteLength > MAX_ENTRY_PATH) fail(`target must be a non-empty string of at most ${MAX_ENTRY_PATH} bytes without NUL`);
      return { type: "symlink", path, mode, mtime, target: t };
    }
    default:
      fail('type must be "file", "dir" or "symlink"');
  }
}

export function encodeEntry(id: number, e: DirEntry): Uint8Array {
  return encodeJson(T.DIR_ENTRY, id, e);
}

/** PUTDIR and GETDIR bodies: an absolute guest path. */
export function decodeDirRequest(f: Frame, kind: "PUTDIR" | "GETDIR"): DirRequest {
  const p = decodeJson(f).path;
  if (typeof p !== "string" || !p.startsWith("/") || p.includes("\0")) throw new ProtocolError(`${kind}: path must be an absolute path`);
  return { path: p };
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** The RESULT that ends a directory copy. */
export function decodeDirResult(f: Frame): DirResult {
  const r = decodeJson(f);
  if (r.ok === true) {
    const counts = [r.files, r.dirs, r.symlinks, r.bytes, r.skipped ?? 0];
    if (!counts.every(isCount)) throw new ProtocolError("RESULT: files, dirs, symlinks, bytes and skipped must be non-negative integers");
    return { ok: true, files: r.files as number, dirs: r.dirs as number, symlinks: r.symlinks as number, bytes: r.bytes as number, skipped: (r.skipped as number) ?? 0 };
  }
  if (r.ok === false) {
    if (typeof r.errno !== "string" || typeof r.message !== "string") throw new ProtocolError("RESULT: errno and message must be strings");
    return { ok: false, errno: r.errno, message: r.message, ...(typeof r.path === "string" ? { path: r.path } : {}) };
  }
  throw new ProtocolError("RESULT frame: ok must be a boolean");
}
