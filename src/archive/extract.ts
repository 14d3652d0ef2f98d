// Writing a directory stream into a target directory, safely against a hostile sender: nothing lands
// outside the target. Entry paths are already relative and free of `..` (src/protocol/v2/dirs.ts); what is
// left is symlinks. Every parent component under the root is checked with lstat and a symlink is refused
// (including one this same stream made a moment ago, or one already in the target tree); files are opened
// O_CREAT|O_EXCL|O_NOFOLLOW under a random temporary name and renamed into place, so neither the final
// component nor the temporary one is ever followed; directories get their modes through an fd opened with
// O_NOFOLLOW. node:fs has no openat(), so a process that swaps a checked directory for a symlink between
// our lstat and our open can still redirect us: the guarantee holds against the sender, not against a
// concurrent local writer of the target tree.
import { constants } from "node:fs";
import { lstat, lutimes, mkdir, open, rename, stat, symlink, unlink, type FileHandle } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { DirCounts, DirEntry } from "../protocol/v2/dirs.ts";

const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY } = constants;

/** A refused or failed entry: errno plus the entry's relative path, for one clear line. */
export class EntryError extends Error {
  constructor(
    readonly code: string,
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

export interface ExtractOptions {
  /** Permission bits allowed through: 0o7777 for a trusted sender, 0o777 (no setuid, setgid, sticky) for a guest. */
  modeMask: number;
}

interface OpenFile {
  entry: Extract<DirEntry, { type: "file" }>;
  fh: FileHandle;
  tmp: string;
  abs: string;
  got: number;
}

const seconds = (ms: number) => ms / 1000;

export class Extractor {
  readonly counts: DirCounts = { files: 0, dirs: 0, symlinks: 0, bytes: 0, skipped: 0 };
  /** Relative paths known to be real directories under the root (made or checked by us). */
  private readonly verified = new Set<string>([""]);
  /** Directories whose mode and mtime are set at the end: writing into them would change the mtime. */
  private readonly dirs: { abs: string; mode: number; mtime: number }[] = [];
  private cur: OpenFile | undefined;
  private root = "";

  constructor(
    private readonly target: string,
    private readonly opts: ExtractOptions,
  ) {}

  /** Creates the target directory if it is missing (its parent must exist). The target itself may be a symlink the caller chose. */
  async start(): Promise<void> {
    await mkdir(this.target, { mode: 0o755 }).catch((e) => {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    });
    if (!(await stat(this.target)).isDirectory()) throw Object.assign(new Error(`${this.target}: not a directory`), { code: "ENOTDIR" });
    this.root = this.target;
  }

  /** The next entry; a file entry's bytes follow through data() (none for size 0). */
  async entry(e: DirEntry): Promise<void> {
    if (this.cur) throw new EntryError("EPROTO", e.path, `entry before the end of ${this.cur.entry.path} (${this.cur.got} of ${this.cur.entry.size} bytes)`);
    const slash = e.path.lastIndexOf("/");
    const parent = slash < 0 ? "" : e.path.slice(0, slash);
    const name = e.path.slice(slash + 1);
    await this.parentDir(e.path, parent);
    const abs = join(this.root, e.path);
    const dirAbs = join(this.root, parent);
    if (e.type === "dir") return this.makeDir(e, abs);
    const tmp = join(dirAbs, `.${name.slice(0, 40)}.vge-${randomBytes(6).toString("hex")}`);
    if (e.type === "symlink") {
      try {
        await symlink(e.target, tmp);
        await lutimes(tmp, seconds(e.mtime), seconds(e.mtime));
        // rename replaces a file or a symlink, never follows one, and fails on a directory.
        await rename(tmp, abs);
      } catch (err) {
        await unlink(tmp).catch(() => {});
        throw this.wrap(err, e.path);
      }
      this.counts.symlinks++;
      return;
    }
    let fh: FileHandle;
    try {
      fh = await open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    } catch (err) {
      throw this.wrap(err, e.path);
    }
    this.cur = { entry: e, fh, tmp, abs, got: 0 };
    if (e.size === 0) await this.finishFile();
  }

  /** Bytes of the current file entry. */
  async data(bytes: Uint8Array): Promise<void> {
    const c = this.cur;
    if (!c) throw new EntryError("EPROTO", "", "file data outside a file entry");
    if (c.got + bytes.byteLength > c.entry.size) throw new EntryError("EFBIG", c.entry.path, `more than the announced ${c.entry.size} bytes`);
    try {
      for (let off = 0; off < bytes.byteLength; ) off += (await c.fh.write(bytes, off, bytes.byteLength - off)).bytesWritten;
    } catch (err) {
      throw this.wrap(err, c.entry.path);
    }
    c.got += bytes.byteLength;
    if (c.got === c.entry.size) await this.finishFile();
  }

  /** The end of the stream: directory modes and mtimes, deepest first. */
  async end(): Promise<DirCounts> {
    if (this.cur) throw new EntryError("EIO", this.cur.entry.path, `the stream ended after ${this.cur.got} of ${this.cur.entry.size} bytes`);
    for (const d of this.dirs.reverse()) {
      const fh = await open(d.abs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      try {
        await fh.chmod(d.mode);
        await fh.utimes(seconds(d.mtime), seconds(d.mtime));
      } finally {
        await fh.close();
      }
    }
    return this.counts;
  }

  /** Stops: the file being written is closed and its temporary name removed. */
  async abort(): Promise<void> {
    const c = this.cur;
    this.cur = undefined;
    if (!c) return;
    await c.fh.close().catch(() => {});
    await unlink(c.tmp).catch(() => {});
  }

  private async finishFile(): Promise<void> {
    const c = this.cur!;
    try {
      // The file was made 0600 so nobody reads it half-written; the sender's bits come now, by fd.
      await c.fh.chmod(c.entry.mode & this.opts.modeMask);
      await c.fh.utimes(seconds(c.entry.mtime), seconds(c.entry.mtime));
      await c.fh.sync();
      await c.fh.close();
      await rename(c.tmp, c.abs);
    } catch (err) {
      await this.abort();
      throw this.wrap(err, c.entry.path);
    }
    this.cur = undefined;
    this.counts.files++;
    this.counts.bytes += c.entry.size;
  }

  private async makeDir(e: DirEntry, abs: string): Promise<void> {
    const st = await lstat(abs).catch((err) => {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw this.wrap(err, e.path);
      return undefined;
    });
    if (st?.isSymbolicLink()) throw new EntryError("ELOOP", e.path, "refusing to use a symlink as a directory");
    if (st && !st.isDirectory()) throw new EntryError("ENOTDIR", e.path, "exists and is not a directory");
    // Owner rwx until the end, so that a read-only directory can still be filled.
    if (!st) await mkdir(abs, 0o700).catch((err) => Promise.reject(this.wrap(err, e.path)));
    this.verified.add(e.path);
    this.dirs.push({ abs, mode: e.mode & this.opts.modeMask, mtime: e.mtime });
    this.counts.dirs++;
  }

  /**
   * Every directory on the way to `path` is a real directory under the root: a missing one is made (like
   * tar), a symlink is refused. Checked once per directory; a later entry cannot turn a checked directory
   * into a symlink, because rename over a directory fails.
   */
  private async parentDir(path: string, parent: string): Promise<void> {
    if (this.verified.has(parent)) return;
    const parts = parent.split("/");
    let rel = "";
    for (const p of parts) {
      rel = rel ? `${rel}/${p}` : p;
      if (this.verified.has(rel)) continue;
      const abs = join(this.root, rel);
      const st = await lstat(abs).catch((err) => {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw this.wrap(err, path);
        return undefined;
      });
      if (st?.isSymbolicLink()) throw new EntryError("ELOOP", path, `refusing to write through the symlink ${rel}`);
      if (st && !st.isDirectory()) throw new EntryError("ENOTDIR", path, `${rel} is not a directory`);
      if (!st) await mkdir(abs, 0o755).catch((err) => Promise.reject(this.wrap(err, path)));
      this.verified.add(rel);
    }
  }

  private wrap(err: unknown, path: string): EntryError {
    if (err instanceof EntryError) return err;
    const e = err as NodeJS.ErrnoException;
    return new EntryError(typeof e.code === "string" ? e.code : "EIO", path, e.message ?? String(err));
  }
}
