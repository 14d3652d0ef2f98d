// Writing a directory stream into a target directory, safely against a hostile sender and against a local
// user who swaps parts of the target tree while we write (the agent writes as root). Entry paths are
// already relative and free of `..` (src/protocol/v2/dirs.ts); what is left is symlinks. Every directory
// is opened O_DIRECTORY|O_NOFOLLOW, one component at a time, from the target held open as an fd, and
// everything is then made *relative to a held directory fd* (./dirfd.ts): a symlink, made by the stream or
// found in the tree or swapped in at any moment, fails the open instead of being followed, and nothing
// resolves a path twice. Files are opened O_CREAT|O_EXCL|O_NOFOLLOW under a random temporary name and
// renamed within their directory's fd.
//
// Memory is bounded by depth, not by the stream: the directories on the way to the current entry are a
// chain (at most 2,048 deep: paths are at most 4,096 bytes), and a directory entry's mode and mtime are set
// when the stream leaves that directory (a sender walks in pre-order) or at DIR_END. However often an
// entry repeats, nothing accumulates. Fds are bounded too: only the top levels and the last keep theirs,
// and leaving a level reaches its parent, if let go, through `..` of the level's own fd, checked to be
// the same directory (device and inode) as when it was opened: O(1) a level, however deep the tree.
import { constants } from "node:fs";
import { lutimes, mkdir, open, rename, symlink, unlink, type FileHandle } from "node:fs/promises";
import type { DirCounts, DirEntry } from "../protocol/v2/dirs.ts";
import { at, checkProcFd, notDirKind, openDirAt } from "./dirfd.ts";

const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY } = constants;

/** Levels of the chain below this keep their fd open; deeper ones (except the last) are reached again through `..`. */
const HELD = 32;

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
  /** The directory it is made in: the chain's last fd (or the root's), open until the next entry. */
  dirFd: number;
  tmp: string;
  name: string;
  got: number;
}

/** One directory on the way to the current entry. */
interface Level {
  name: string;
  fh: FileHandle | undefined;
  /** Which directory it is: one reached again through `..` must be this one. */
  dev: number;
  ino: number;
  /** A directory entry's mode and mtime, set when the stream leaves it. */
  fix?: { mode: number; mtime: number };
}

const seconds = (ms: number) => ms / 1000;
const code = (e: unknown) => (e as NodeJS.ErrnoException).code;

export class Extractor {
  readonly counts: DirCounts = { files: 0, dirs: 0, symlinks: 0, bytes: 0, skipped: 0 };
  private root: FileHandle | undefined;
  private readonly chain: Level[] = [];
  private cur: OpenFile | undefined;

  constructor(
    private readonly target: string,
    private readonly opts: ExtractOptions,
  ) {}

  /** Creates the target directory if it is missing (its parent must exist). The target itself may be a symlink the caller chose. */
  async start(): Promise<void> {
    await mkdir(this.target, { mode: 0o755 }).catch((e) => {
      if (code(e) !== "EEXIST") throw e;
    });
    this.root = await open(this.target, O_RDONLY | O_DIRECTORY).catch((e) => {
      if (code(e) !== "ENOTDIR") throw e;
      throw Object.assign(new Error(`${this.target}: not a directory`), { code: "ENOTDIR" });
    });
    await checkProcFd(this.root);
  }

  /** The next entry; a file entry's bytes follow through data() (none for size 0). */
  async entry(e: DirEntry): Promise<void> {
    if (this.cur) throw new EntryError("EPROTO", e.path, `entry before the end of ${this.cur.entry.path} (${this.cur.got} of ${this.cur.entry.size} bytes)`);
    const parts = e.path.split("/");
    const name = parts.pop()!;
    const dirFd = await this.enter(parts, e.path);
    if (e.type === "dir") return this.makeDir(e, dirFd, name);
    const tmp = `.${name.slice(0, 40)}.vge-${Buffer.from(crypto.getRandomValues(new Uint8Array(6))).toString("hex")}`;
    if (e.type === "symlink") {
      try {
        await symlink(e.target, at(dirFd, tmp));
        await lutimes(at(dirFd, tmp), seconds(e.mtime), seconds(e.mtime));
        // rename replaces a file or a symlink, never follows one, and fails on a directory.
        await rename(at(dirFd, tmp), at(dirFd, name));
      } catch (err) {
        await unlink(at(dirFd, tmp)).catch(() => {});
        throw this.wrap(err, e.path);
      }
      this.counts.symlinks++;
      return;
    }
    let fh: FileHandle;
    try {
      fh = await open(at(dirFd, tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    } catch (err) {
      throw this.wrap(err, e.path);
    }
    this.cur = { entry: e, fh, dirFd, tmp, name, got: 0 };
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

  /** The end of the stream: the modes and mtimes of the directories still open, deepest first. */
  async end(): Promise<DirCounts> {
    if (this.cur) throw new EntryError("EIO", this.cur.entry.path, `the stream ended after ${this.cur.got} of ${this.cur.entry.size} bytes`);
    await this.leave(0);
    await this.root?.close();
    this.root = undefined;
    return this.counts;
  }

  /** Stops: the file being written is closed and its temporary name removed; every directory fd is closed. */
  async abort(): Promise<void> {
    const c = this.cur;
    this.cur = undefined;
    if (c) {
      await c.fh.close().catch(() => {});
      await unlink(at(c.dirFd, c.tmp)).catch(() => {});
    }
    for (const l of this.chain.splice(0)) await l.fh?.close().catch(() => {});
    await this.root?.close().catch(() => {});
    this.root = undefined;
  }

  private async finishFile(): Promise<void> {
    const c = this.cur!;
    try {
      // The file was made 0600 so nobody reads it half-written; the sender's bits come now, by fd.
      await c.fh.chmod(c.entry.mode & this.opts.modeMask);
      await c.fh.utimes(seconds(c.entry.mtime), seconds(c.entry.mtime));
      await c.fh.sync();
      await c.fh.close();
      await rename(at(c.dirFd, c.tmp), at(c.dirFd, c.name));
    } catch (err) {
      await this.abort();
      throw this.wrap(err, c.entry.path);
    }
    this.cur = undefined;
    this.counts.files++;
    this.counts.bytes += c.entry.size;
  }

  private async makeDir(e: DirEntry, dirFd: number, name: string): Promise<void> {
    // Owner rwx until the stream leaves it, so that a read-only directory can still be filled.
    await mkdir(at(dirFd, name), 0o700).catch((err) => {
      if (code(err) !== "EEXIST") throw this.wrap(err, e.path);
    });
    const fh = await openDirAt(dirFd, name).catch(async (err) => {
      const kind = code(err) === "ENOTDIR" ? await notDirKind(dirFd, name) : undefined;
      if (kind === "symlink") throw new EntryError("ELOOP", e.path, "refusing to use a symlink as a directory");
      if (kind === "other") throw new EntryError("ENOTDIR", e.path, "exists and is not a directory");
      throw this.wrap(err, e.path);
    });
    await this.push(name, fh, e.path, { mode: e.mode & this.opts.modeMask, mtime: e.mtime });
    this.counts.dirs++;
  }

  /**
   * Makes the chain the directories `parts` (a missing one is made, mode 0755, like tar; a symlink or a
   * file is refused) and returns the fd of the last one (the root's for none). Levels the new path does
   * not share are left first, deepest first, their modes set.
   */
  private async enter(parts: string[], path: string): Promise<number> {
    let k = 0;
    while (k < this.chain.length && k < parts.length && this.chain[k]!.name === parts[k]) k++;
    await this.leave(k);
    for (let i = k; i < parts.length; i++) {
      const parentFd = this.lastFd();
      const name = parts[i]!;
      const rel = () => parts.slice(0, i + 1).join("/");
      let fh = await openDirAt(parentFd, name).catch((err) => err as NodeJS.ErrnoException);
      if (fh instanceof Error && fh.code === "ENOENT") {
        await mkdir(at(parentFd, name), 0o755).catch((err) => {
          if (code(err) !== "EEXIST") throw this.wrap(err, path);
        });
        fh = await openDirAt(parentFd, name).catch((err) => err as NodeJS.ErrnoException);
      }
      if (fh instanceof Error) {
        const kind = fh.code === "ENOTDIR" ? await notDirKind(parentFd, name) : undefined;
        if (kind === "symlink") throw new EntryError("ELOOP", path, `refusing to write through the symlink ${rel()}`);
        if (kind === "other") throw new EntryError("ENOTDIR", path, `${rel()} is not a directory`);
        throw this.wrap(fh, path);
      }
      await this.push(name, fh, path);
    }
    return this.lastFd();
  }

  private lastFd(): number {
    const fd = this.chain.length ? this.chain[this.chain.length - 1]!.fh?.fd : this.root?.fd;
    if (fd === undefined) throw new EntryError("EIO", "", "internal: the current directory is not open");
    return fd;
  }

  /** A new deepest level; the one above lets its fd go if it is beyond the held ones. */
  private async push(name: string, fh: FileHandle, path: string, fix?: Level["fix"]): Promise<void> {
    const st = await fh.stat().catch(async (err) => {
      await fh.close();
      throw this.wrap(err, path);
    });
    const above = this.chain[this.chain.length - 1];
    this.chain.push({ name, fh, dev: st.dev, ino: st.ino, fix });
    if (above && this.chain.length - 2 >= HELD) {
      const let_go = above.fh;
      above.fh = undefined;
      await let_go?.close();
    }
  }

  /**
   * Pops the chain down to `k` levels, deepest first, setting each directory entry's mode and mtime by
   * fd. The deepest level always holds its fd; a level above that let its fd go gets it back as `..` of
   * the one below, if that is still the same directory (else ESTALE: it was moved or replaced).
   */
  private async leave(k: number): Promise<void> {
    while (this.chain.length > k) {
      const l = this.chain[this.chain.length - 1]!;
      const up = this.chain[this.chain.length - 2];
      // Only for an error: joining the chain for every level left would be quadratic in the depth.
      const rel = (n: number) => this.chain.slice(0, n).map((x) => x.name).join("/");
      try {
        if (l.fix) {
          await l.fh!.chmod(l.fix.mode);
          await l.fh!.utimes(seconds(l.fix.mtime), seconds(l.fix.mtime));
        }
        if (up && !up.fh) {
          const fh = await openDirAt(l.fh!.fd, "..");
          const st = await fh.stat().catch(async (err) => {
            await fh.close();
            throw err;
          });
          if (st.dev !== up.dev || st.ino !== up.ino) {
            await fh.close();
            throw new EntryError("ESTALE", rel(this.chain.length - 1), "was moved or replaced during the copy");
          }
          up.fh = fh;
        }
      } catch (err) {
        throw this.wrap(err, rel(this.chain.length));
      } finally {
        this.chain.pop();
        await l.fh?.close().catch(() => {});
      }
    }
  }

  private wrap(err: unknown, path: string): EntryError {
    if (err instanceof EntryError) return err;
    const e = err as NodeJS.ErrnoException;
    return new EntryError(typeof e.code === "string" ? e.code : "EIO", path, e.message ?? String(err));
  }
}
