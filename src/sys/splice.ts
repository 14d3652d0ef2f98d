// Moving a pipe's bytes into a socket inside the kernel: FIONREAD says how many a pipe holds, splice(2)
// moves them (on a Unix socket the pipe's pages themselves, since Linux 6.5), never through a JS buffer.
import { libc } from "./_libc.ts";
import { check, checkOr } from "./_call.ts";
import { EAGAIN } from "./_errno.ts";
import { pipe } from "./pipe.ts";
import { setNonblocking } from "./pty.ts";

const FIONREAD = 0x541b;
const SPLICE_F_NONBLOCK = 2;

const count = new Int32Array(1);

/** Bytes that a read of the pipe (or terminal) `fd` would get now; 0 when empty or at end of file. */
export function readable(fd: number): number {
  check("ioctl(FIONREAD)", () => libc().ioctl(fd, FIONREAD, count));
  return count[0]!;
}

/** splice(2) of up to `n` bytes from the pipe `from` into `to`, neither blocking: the count moved, or null when `to` is full. */
export function splice(from: number, to: number, n: number): number | null {
  if (n === 0) return 0;
  const rc = checkOr("splice", [EAGAIN], () => libc().splice(from, null, to, null, n, SPLICE_F_NONBLOCK));
  return typeof rc === "bigint" ? Number(rc) : null;
}

const F_SETPIPE_SZ = 1031;

/**
 * A non-blocking pipe that holds a frame's header and a full chunk spliced behind it: the header takes a
 * buffer slot of its own, so the default 16 slots (a chunk of 4 KiB pages) are one short.
 */
export function jointPipe(): { read: number; write: number } {
  const p = pipe();
  setNonblocking(p.read, true);
  setNonblocking(p.write, true);
  check("fcntl(F_SETPIPE_SZ)", () => libc().fcntl(p.write, F_SETPIPE_SZ, 256 * 1024));
  return p;
}
