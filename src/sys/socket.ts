// One typed wrapper per socket syscall. Every fd is created close-on-exec; callers that want an fd to
// survive execve say so with setCloexec(fd, false).
import { libc } from "./_libc.ts";
import { check, checkOr } from "./_call.ts";
import { EAGAIN, EINPROGRESS } from "./_errno.ts";

export const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;

export interface OpenOptions {
  /** O_NONBLOCK on the new fd. Default false. */
  nonblock?: boolean;
}

function flags(o: OpenOptions | undefined): number {
  return SOCK_CLOEXEC | (o?.nonblock ? SOCK_NONBLOCK : 0);
}

export function socket(domain: number, type = SOCK_STREAM, opts?: OpenOptions): number {
  return check("socket", () => libc().socket(domain, type | flags(opts), 0));
}

export function connect(fd: number, addr: Uint8Array, len = addr.byteLength): void {
  check("connect", () => libc().connect(fd, addr, len));
}

/** connect() on a non-blocking fd: true when connected at once, false when it goes on (EINPROGRESS). */
export function connectStart(fd: number, addr: Uint8Array, len = addr.byteLength): boolean {
  const rc = checkOr("connect", [EINPROGRESS], () => libc().connect(fd, addr, len));
  return typeof rc === "number";
}

/** SO_ERROR: the outcome of a non-blocking connect (0 on success). */
export function socketError(fd: number): number {
  const val = new Int32Array(1);
  const len = new Uint32Array([4]);
  check("getsockopt", () => libc().getsockopt(fd, SOL_SOCKET, SO_ERROR, val, len));
  return val[0]!;
}

export function bind(fd: number, addr: Uint8Array, len = addr.byteLength): void {
  check("bind", () => libc().bind(fd, addr, len));
}

export function listen(fd: number, backlog = 128): void {
  check("listen", () => libc().listen(fd, backlog));
}

/** accept4 with close-on-exec; null when a non-blocking listener has nothing pending. */
export function accept(fd: number, addrSize: number, opts?: OpenOptions): { fd: number; addr: Uint8Array } | null {
  const addr = new Uint8Array(addrSize);
  const len = new Uint32Array([addrSize]);
  const rc = checkOr("accept", [EAGAIN], () => libc().accept4(fd, addr, len, flags(opts)));
  if (typeof rc !== "number") return null;
  return { fd: rc, addr: addr.subarray(0, Math.min(len[0]!, addrSize)) };
}

export function getsockname(fd: number, addrSize: number): Uint8Array {
  const addr = new Uint8Array(addrSize);
  const len = new Uint32Array([addrSize]);
  check("getsockname", () => libc().getsockname(fd, addr, len));
  return addr.subarray(0, Math.min(len[0]!, addrSize));
}

export function getpeername(fd: number, addrSize: number): Uint8Array {
  const addr = new Uint8Array(addrSize);
  const len = new Uint32Array([addrSize]);
  check("getpeername", () => libc().getpeername(fd, addr, len));
  return addr.subarray(0, Math.min(len[0]!, addrSize));
}

/** read(2) into `buf`; 0 at EOF, null when a non-blocking fd has nothing yet. */
export function read(fd: number, buf: Uint8Array): number | null {
  if (buf.byteLength === 0) return 0;
  const rc = checkOr("read", [EAGAIN], () => libc().read(fd, buf, buf.byteLength));
  return typeof rc === "bigint" ? Number(rc) : null;
}

/** write(2) from `buf`; the count written, or null when a non-blocking fd is full. */
export function write(fd: number, buf: Uint8Array): number | null {
  if (buf.byteLength === 0) return 0;
  const rc = checkOr("write", [EAGAIN], () => libc().write(fd, buf, buf.byteLength));
  return typeof rc === "bigint" ? Number(rc) : null;
}

export function shutdown(fd: number, how: number): void {
  check("shutdown", () => libc().shutdown(fd, how));
}

/** close(2). EINTR is not retried: on Linux the fd is gone either way. */
export function close(fd: number): void {
  if (libc().close(fd) < 0) {
    // Nothing useful can be done about a failed close; the fd is released regardless.
  }
}

/** poll(2) over a set of fds; returns each fd's revents, in order. */
export function poll(fds: { fd: number; events: number }[], timeoutMs: number): number[] {
  const buf = new ArrayBuffer(8 * fds.length);
  const view = new DataView(buf);
  fds.forEach((p, i) => {
    view.setInt32(i * 8, p.fd, true);
    view.setInt16(i * 8 + 4, p.events, true);
  });
  const bytes = new Uint8Array(buf);
  check("poll", () => libc().poll(bytes, fds.length, timeoutMs));
  return fds.map((_, i) => view.getInt16(i * 8 + 6, true));
}

export function setCloexec(fd: number, on: boolean): void {
  const cur = check("fcntl", () => libc().fcntl(fd, F_GETFD, 0));
  check("fcntl", () => libc().fcntl(fd, F_SETFD, on ? cur | FD_CLOEXEC : cur & ~FD_CLOEXEC));
}
