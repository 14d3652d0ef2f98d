// Pseudo-terminals: a master this process reads and writes without blocking, and the slave a child gets as
// its stdio and controlling terminal. Every fd is close-on-exec; a child gets the slave through spawn's stdio.
import { libc } from "./_libc.ts";
import { check } from "./_call.ts";
import { SyscallError } from "./_errno.ts";
import { close } from "./socket.ts";

const O_RDWR = 0o2;
const O_NOCTTY = 0o400;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const F_GETFL = 3;
const F_SETFL = 4;
// asm-generic's numbers, the same on x86_64 and arm64.
const TIOCSCTTY = 0x540e;
const TIOCSWINSZ = 0x5414;

export interface Pty {
  /** Non-blocking, close-on-exec; reads return EIO once every holder of the slave has closed it. */
  master: number;
  /** Blocking, close-on-exec: hand it to the child (spawn's stdio dup2s it) and close it here. */
  slave: number;
  /** /dev/pts/N */
  path: string;
}

/** Opens a new pseudo-terminal pair of size `cols`×`rows`; nothing is left open if any step fails. */
export function openPty(cols: number, rows: number): Pty {
  const c = libc();
  const master = check("posix_openpt", () => c.posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  try {
    check("grantpt", () => c.grantpt(master));
    check("unlockpt", () => c.unlockpt(master));
    const name = new Uint8Array(128);
    // ptsname_r returns the error number itself rather than -1.
    const rc = c.ptsname_r(master, name, name.byteLength);
    if (rc !== 0) throw new SyscallError("ptsname_r", rc);
    const path = new TextDecoder().decode(name.subarray(0, name.indexOf(0)));
    setNonblocking(master, true);
    setWinsize(master, cols, rows);
    const slave = check("open", () => c.open(name, O_RDWR | O_NOCTTY | O_CLOEXEC, 0));
    return { master, slave, path };
  } catch (e) {
    close(master);
    throw e;
  }
}

/** TIOCSWINSZ: the kernel sends SIGWINCH to the terminal's foreground process group when the size changes. */
export function setWinsize(fd: number, cols: number, rows: number): void {
  const ws = new Uint16Array([rows, cols, 0, 0]); // struct winsize { ws_row, ws_col, ws_xpixel, ws_ypixel }
  check("ioctl", () => libc().ioctl(fd, TIOCSWINSZ, ws));
}

/** TIOCSCTTY: makes the terminal on `fd` the controlling terminal of this process, a session leader without one. */
export function setControllingTty(fd: number): void {
  check("ioctl", () => libc().ioctl(fd, TIOCSCTTY, null));
}

/** Sets or clears O_NONBLOCK on the open file description behind `fd` (shared by every dup of it). */
export function setNonblocking(fd: number, on: boolean): void {
  const c = libc();
  const cur = check("fcntl", () => c.fcntl(fd, F_GETFL, 0));
  const next = on ? cur | O_NONBLOCK : cur & ~O_NONBLOCK;
  if (next !== cur) check("fcntl", () => c.fcntl(fd, F_SETFL, next));
}
