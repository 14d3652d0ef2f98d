// bun-ffi-vsock: AF_VSOCK (and AF_UNIX) sockets for Bun through libc. Knows nothing of any protocol.
export * from "./sockaddr.ts";
export * from "./socket.ts";
export * from "./vsock.ts";
export * from "./inotify.ts";
export { execve, resetSignals } from "./exec.ts";
export { SyscallError, errnoName } from "./_errno.ts";
export { pipe } from "./pipe.ts";
export { openPty, setWinsize, setControllingTty, setNonblocking, type Pty } from "./pty.ts";
export { setChildSubreaper, reapChild } from "./proc.ts";
