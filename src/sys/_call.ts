// Checked system calls: read errno right after a failed call and throw it with the call's name.
import { read } from "bun:ffi";
import { libc } from "./_libc.ts";
import { EINTR, SyscallError } from "./_errno.ts";

export function errno(): number {
  return read.i32(libc().__errno_location()!, 0);
}

/** Runs `call` until it does not fail with EINTR; throws SyscallError on any other failure. */
export function check<T extends number | bigint>(name: string, call: () => T): T {
  for (;;) {
    const rc = call();
    if (rc >= 0) return rc;
    const e = errno();
    if (e !== EINTR) throw new SyscallError(name, e);
  }
}

/** Like `check`, but returns the errno instead of throwing when it is one of `expected`. */
export function checkOr<T extends number | bigint>(name: string, expected: number[], call: () => T): T | { errno: number } {
  for (;;) {
    const rc = call();
    if (rc >= 0) return rc;
    const e = errno();
    if (e === EINTR) continue;
    if (expected.includes(e)) return { errno: e };
    throw new SyscallError(name, e);
  }
}
