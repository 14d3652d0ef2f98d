// Being told when a Unix socket's name appears (or is replaced, or changes mode) in its folder: the signal
// a dialing agent waits on instead of dialing every 50 ms. inotify on the folder, not the path: the path
// does not exist yet.
import { basename, dirname } from "node:path";
import { IN_ATTRIB, IN_CREATE, IN_IGNORED, IN_MOVED_TO, IN_Q_OVERFLOW, inotifyAddWatch, inotifyInit, inotifyRead } from "../sys/inotify.ts";
import { close, POLLIN } from "../sys/socket.ts";
import { fdReady } from "../sys/fdwatch.ts";

export class PathWatch {
  private readonly name: string;
  private dead = false;

  private constructor(
    private readonly fd: number,
    path: string,
  ) {
    this.name = basename(path);
  }

  /** A watch on `path`'s folder, or null when there is none to be had (no folder yet, no inotify). */
  static open(path: string): PathWatch | null {
    let fd: number;
    try {
      fd = inotifyInit();
    } catch {
      return null; // ENOSYS, EMFILE, or the per-user instance limit: the caller dials blind
    }
    try {
      inotifyAddWatch(fd, dirname(path), IN_CREATE | IN_MOVED_TO | IN_ATTRIB);
      return new PathWatch(fd, path);
    } catch {
      close(fd);
      return null;
    }
  }

  /** False once the folder itself is gone: no event will come any more. */
  get alive(): boolean {
    return !this.dead;
  }

  /**
   * Resolves true when the name changed in the folder, false when `signal` aborted first. Events for other
   * names are read and dropped (a busy /run or /tmp must not make the agent dial on every change there).
   */
  async changed(signal: AbortSignal): Promise<boolean> {
    for (;;) {
      if (this.dead) return false;
      try {
        await fdReady(this.fd, POLLIN, signal);
      } catch {
        return false; // aborted
      }
      let hit = false;
      for (const e of inotifyRead(this.fd)) {
        if (e.mask & IN_IGNORED) this.dead = true;
        if (e.mask & IN_Q_OVERFLOW || e.name === this.name) hit = true;
      }
      if (hit) return true;
    }
  }

  /** Abort every changed() first: a number closed while watched may be reused by another file. */
  close(): void {
    close(this.fd);
  }
}
