// execve(2) and the process state that must be cleaned before it.
import { ptr } from "bun:ffi";
import { libc } from "./_libc.ts";
import { errno } from "./_call.ts";
import { SyscallError } from "./_errno.ts";
import { cString } from "./_cstring.ts";

const SIG_SETMASK = 2;
const SIGPIPE = 13;
const SIGXFSZ = 25;

/**
 * Of a signal's state only "ignored" and the mask survive execve (handlers reset themselves). The runtime
 * ignores SIGPIPE and SIGXFSZ for its own sake; a shell started with SIGPIPE ignored behaves differently in
 * pipelines (`yes | head` never ends). Only those two are touched: the runtime's threads still use other
 * signals until the very moment of execve.
 */
export function resetSignals(): void {
  const c = libc();
  c.signal(SIGPIPE, null);
  c.signal(SIGXFSZ, null);
  c.sigprocmask(SIG_SETMASK, new Uint8Array(128), null);
}

/** Replaces this process. Returns only by throwing `execve: ERRNO`. */
export function execve(path: string, argv: (string | Uint8Array)[], env: Record<string, string | undefined>): never {
  // Keep every buffer referenced until the call: the pointer arrays hold only raw addresses.
  const strings = [cString(path), ...argv.map(cString), ...Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => cString(`${k}=${v}`))];
  const argvPtrs = new BigUint64Array(argv.length + 1);
  argv.forEach((_, i) => (argvPtrs[i] = BigInt(ptr(strings[i + 1]!))));
  const envCount = strings.length - 1 - argv.length;
  const envPtrs = new BigUint64Array(envCount + 1);
  for (let i = 0; i < envCount; i++) envPtrs[i] = BigInt(ptr(strings[1 + argv.length + i]!));
  libc().execve(strings[0]!, argvPtrs, envPtrs);
  const e = errno();
  void strings; // keep alive past the call
  throw new SyscallError("execve", e);
}
