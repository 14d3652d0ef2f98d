// Friendly socket helpers: { cid, port } and paths in, fds out. Each closes its fd on any partial failure.
import { AF_UNIX, AF_VSOCK, SOCKADDR_UN_SIZE, SOCKADDR_VM_SIZE, packSockaddrUn, packSockaddrVm, unpackSockaddrVm, type VsockAddr } from "./sockaddr.ts";
import { POLLIN, POLLOUT, accept, bind, close, connectStart, getpeername, getsockname, listen, poll, socket, socketError } from "./socket.ts";
import { SyscallError } from "./_errno.ts";

function guarded<T>(fd: number, body: () => T): T {
  try {
    return body();
  } catch (e) {
    close(fd);
    throw e;
  }
}

async function guardedAsync<T>(fd: number, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    close(fd);
    throw e;
  }
}

export interface WaitOptions {
  /** Give up after this many milliseconds (default: wait forever). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Longest sleep between polls (default 20 ms); idle listeners use more to wake less often. */
  maxNapMs?: number;
}

/**
 * Waits until `fd` is ready for `events` without blocking the event loop: poll(2) with a zero timeout,
 * then a short sleep that grows to `maxNapMs` while nothing happens. Returns revents, or 0 on timeout.
 */
export async function waitFd(fd: number, events: number, opts: WaitOptions = {}): Promise<number> {
  // Monotonic, as every deadline: a wall-clock step would end the wait early or never.
  const deadline = opts.timeoutMs === undefined ? Infinity : performance.now() + opts.timeoutMs;
  let nap = 1;
  for (;;) {
    opts.signal?.throwIfAborted();
    const [revents] = poll([{ fd, events }], 0);
    if (revents) return revents;
    if (performance.now() >= deadline) return 0;
    await Bun.sleep(Math.min(nap, Math.max(0, deadline - performance.now())));
    nap = Math.min(nap * 2, opts.maxNapMs ?? 20);
  }
}

async function connectFd(domain: number, addr: Uint8Array, len: number, opts: WaitOptions): Promise<number> {
  const fd = socket(domain, undefined, { nonblock: true });
  return guardedAsync(fd, async () => {
    if (connectStart(fd, addr, len)) return fd;
    const revents = await waitFd(fd, POLLOUT, opts);
    if (revents === 0) throw new SyscallError("connect", 110 /* ETIMEDOUT */);
    const err = socketError(fd);
    if (err !== 0) throw new SyscallError("connect", err);
    return fd;
  });
}

/**
 * Starts a non-blocking connect and returns at once: the fd, and whether it is connected already. When not,
 * the caller waits for POLLOUT and reads the outcome with connectOutcome(). Throws (fd closed) when the
 * attempt fails at once, as a Unix socket path nobody listens on does.
 */
export function connectBegin(target: { kind: "vsock"; cid: number; port: number } | { kind: "unix"; path: string }): { fd: number; connected: boolean } {
  const { domain, addr, len } = target.kind === "vsock" ? { domain: AF_VSOCK, addr: packSockaddrVm(target), len: SOCKADDR_VM_SIZE } : { domain: AF_UNIX, ...packSockaddrUn(target.path) };
  const fd = socket(domain, undefined, { nonblock: true });
  return guarded(fd, () => ({ fd, connected: connectStart(fd, addr, len) }));
}

/** The outcome of a started connect once its fd polled writable: throws SyscallError("connect", …) on failure. */
export function connectOutcome(fd: number): void {
  const err = socketError(fd);
  if (err !== 0) throw new SyscallError("connect", err);
}

/** A connected, non-blocking, close-on-exec AF_VSOCK stream socket. */
export function vsockConnect(addr: VsockAddr, opts: WaitOptions = {}): Promise<number> {
  return connectFd(AF_VSOCK, packSockaddrVm(addr), SOCKADDR_VM_SIZE, opts);
}

/** A connected, non-blocking, close-on-exec AF_UNIX stream socket. */
export function unixConnect(path: string, opts: WaitOptions = {}): Promise<number> {
  const { addr, len } = packSockaddrUn(path);
  return connectFd(AF_UNIX, addr, len, opts);
}

/** A non-blocking AF_VSOCK listener bound to `addr` (cid VMADDR_CID_ANY to take any local CID). */
export function vsockListen(addr: VsockAddr, backlog = 128): number {
  const fd = socket(AF_VSOCK, undefined, { nonblock: true });
  return guarded(fd, () => {
    bind(fd, packSockaddrVm(addr));
    listen(fd, backlog);
    return fd;
  });
}

/** A non-blocking AF_UNIX listener at `path` (the path must not exist). */
export function unixListen(path: string, backlog = 128): number {
  const fd = socket(AF_UNIX, undefined, { nonblock: true });
  return guarded(fd, () => {
    const { addr, len } = packSockaddrUn(path);
    bind(fd, addr, len);
    listen(fd, backlog);
    return fd;
  });
}

/** Accepts one pending AF_VSOCK connection (non-blocking fd) with its peer address; null if none. */
export function vsockAccept(fd: number): { fd: number; peer: VsockAddr } | null {
  const got = accept(fd, SOCKADDR_VM_SIZE, { nonblock: true });
  if (!got) return null;
  return guarded(got.fd, () => ({ fd: got.fd, peer: unpackSockaddrVm(got.addr) }));
}

/** Accepts one pending AF_UNIX connection (non-blocking fd); null if none. */
export function unixAccept(fd: number): number | null {
  return accept(fd, SOCKADDR_UN_SIZE, { nonblock: true })?.fd ?? null;
}

export function vsockLocalAddr(fd: number): VsockAddr {
  return unpackSockaddrVm(getsockname(fd, SOCKADDR_VM_SIZE));
}

export function vsockPeerAddr(fd: number): VsockAddr {
  return unpackSockaddrVm(getpeername(fd, SOCKADDR_VM_SIZE));
}

