// The one libc symbol table. Opened on first use so that importing this module costs nothing.
import { dlopen, FFIType } from "bun:ffi";

const { i32, u32, i64, ptr, u64 } = FFIType;

const SYMBOLS = {
  __errno_location: { args: [], returns: ptr },
  socket: { args: [i32, i32, i32], returns: i32 },
  connect: { args: [i32, ptr, u32], returns: i32 },
  bind: { args: [i32, ptr, u32], returns: i32 },
  listen: { args: [i32, i32], returns: i32 },
  accept4: { args: [i32, ptr, ptr, i32], returns: i32 },
  getsockname: { args: [i32, ptr, ptr], returns: i32 },
  getpeername: { args: [i32, ptr, ptr], returns: i32 },
  getsockopt: { args: [i32, i32, i32, ptr, ptr], returns: i32 },
  setsockopt: { args: [i32, i32, i32, ptr, u32], returns: i32 },
  shutdown: { args: [i32, i32], returns: i32 },
  read: { args: [i32, ptr, u64], returns: i64 },
  write: { args: [i32, ptr, u64], returns: i64 },
  close: { args: [i32], returns: i32 },
  pipe2: { args: [ptr, i32], returns: i32 },
  poll: { args: [ptr, u64, i32], returns: i32 },
  fcntl: { args: [i32, i32, i32], returns: i32 },
  execve: { args: [ptr, ptr, ptr], returns: i32 },
  signal: { args: [i32, ptr], returns: ptr },
  sigprocmask: { args: [i32, ptr, ptr], returns: i32 },
  open: { args: [ptr, i32, u32], returns: i32 },
  // ioctl is variadic; every request used here takes one pointer (or 0) as its third argument.
  ioctl: { args: [i32, u64, ptr], returns: i32 },
  posix_openpt: { args: [i32], returns: i32 },
  grantpt: { args: [i32], returns: i32 },
  unlockpt: { args: [i32], returns: i32 },
  ptsname_r: { args: [i32, ptr, u64], returns: i32 },
  inotify_init1: { args: [i32], returns: i32 },
  inotify_add_watch: { args: [i32, ptr, u32], returns: i32 },
  // prctl is variadic; every option used here takes four unsigned longs.
  prctl: { args: [i32, u64, u64, u64, u64], returns: i32 },
  waitpid: { args: [i32, ptr, i32], returns: i32 },
} as const;

type Lib = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];
let lib: Lib | undefined;

export function libc(): Lib {
  // glibc's soname; the compiled agent is itself linked against glibc, so this is already mapped.
  lib ??= dlopen("libc.so.6", SYMBOLS).symbols;
  return lib;
}
