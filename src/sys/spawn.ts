// posix_spawn(3) of a session leader that gets the fds it is given as 0, 1, 2 and nothing else, and a pidfd
// to learn of its exit: what Bun.spawn does for an execution, without its per-call JavaScript (options,
// the Subprocess object, its streams), which was ~41% of the agent's CPU per exec (bench/README.md).
// glibc's posix_spawn is clone(CLONE_VM|CLONE_VFORK) + exec: the parent resumes once the child has exec'd
// or failed, and a failure (ENOENT, EACCES, a bad cwd) comes back as the return value, the child reaped.
// glibc 2.39 adds posix_spawnattr_setcgroup_np (CLONE_INTO_CGROUP) and pidfd_spawn: where to place a
// child in a cgroup leaf without a window, when that is wanted.
import { ptr } from "bun:ffi";
import { spawnLibc } from "./_libc.ts";
import { errno } from "./_call.ts";
import { EINTR, SyscallError, errnoName } from "./_errno.ts";
import { close } from "./socket.ts";

const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
const O_RDWR = 0o2;
const WNOHANG = 1;
/** glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336 on x86_64 and arm64: room to spare. */
const OPAQUE = 512;
/** sigset_t: 1024 bits in glibc. */
const SIGSET = 128;
const NO_SIGNALS = new Uint8Array(SIGSET);
/** Every signal back to its default in the child: a handler the runtime installed, or an ignored SIGPIPE. */
const ALL_SIGNALS = new Uint8Array(SIGSET).fill(0xff);
const DEV_NULL = cString("/dev/null");

function cString(s: string): Uint8Array {
  const bytes = new TextEncoder().encode(`${s}\0`);
  if (bytes.indexOf(0) !== bytes.length - 1) throw new RangeError("argument contains a NUL byte");
  return bytes;
}

let usable: boolean | undefined;

/**
 * True when this libc has every call used here and the kernel has pidfd_open (Linux 5.3): probed once,
 * with a pidfd of our own process. Otherwise callers spawn another way (Bun.spawn).
 */
export function canSpawn(): boolean {
  if (usable === undefined) {
    const c = spawnLibc();
    usable = false;
    if (c) {
      const fd = c.pidfd_open(process.pid, 0);
      if (fd >= 0) {
        close(fd);
        usable = true;
      }
    }
  }
  return usable;
}

export interface SpawnSpec {
  /** The program's path, with a slash: PATH is the caller's to search (in the child's environment). */
  path: string;
  argv: string[];
  env: Record<string, string>;
  cwd?: string;
  /** The child's 0, 1 and 2: an fd of ours (3 or above), or null for /dev/null. */
  stdio: [number | null, number | null, number | null];
}

export interface Spawned {
  pid: number;
  /** Close-on-exec; readable (POLLIN) once the process has exited. Close it after reap() returns a status. */
  pidfd: number;
}

/** An error as Bun.spawn words it ("ENOENT: no such file or directory, posix_spawn '/x'"), with `code`. */
function spawnError(e: number, path: string): Error {
  const words: Record<string, string> = { ENOENT: "no such file or directory", EACCES: "permission denied", ENOEXEC: "exec format error", ENOTDIR: "not a directory", E2BIG: "argument list too long" };
  const code = errnoName(e);
  const err = new SyscallError("posix_spawn", e);
  err.message = `${code}: ${words[code] ?? "failed"}, posix_spawn '${path}'`;
  return err;
}

/**
 * Starts the program in a new session (its pid leads its process group: signals to -pid reach all it
 * starts) with an empty signal mask, every signal at its default, the working directory `cwd`, and no fd of
 * ours but the three given. Throws with `code` (ENOENT, EACCES, …) when it cannot run; nothing is left open.
 */
export function spawnProcess(spec: SpawnSpec): Spawned {
  const c = spawnLibc();
  if (!c || !canSpawn()) throw new Error("spawnProcess: not available here (see canSpawn)");
  for (const fd of spec.stdio) if (fd !== null && fd < 3) throw new RangeError(`spawnProcess: fd ${fd} would be overwritten by another dup2`);
  // Keep every buffer referenced until the call: the pointer arrays hold only raw addresses.
  const path = cString(spec.path);
  const args = spec.argv.map(cString);
  const envs = Object.entries(spec.env).map(([k, v]) => cString(`${k}=${v}`));
  const argvPtrs = new BigUint64Array(args.length + 1);
  for (let i = 0; i < args.length; i++) argvPtrs[i] = BigInt(ptr(args[i]!));
  const envPtrs = new BigUint64Array(envs.length + 1);
  for (let i = 0; i < envs.length; i++) envPtrs[i] = BigInt(ptr(envs[i]!));
  const cwd = spec.cwd === undefined ? undefined : cString(spec.cwd);

  const fa = new Uint8Array(OPAQUE);
  const attr = new Uint8Array(OPAQUE);
  const pid = new Int32Array(1);
  const must = (name: string, rc: number) => {
    if (rc !== 0) throw new SyscallError(name, rc);
  };
  must("posix_spawn_file_actions_init", c.posix_spawn_file_actions_init(fa));
  try {
    must("posix_spawnattr_init", c.posix_spawnattr_init(attr));
    try {
      spec.stdio.forEach((fd, target) => {
        if (fd === null) must("posix_spawn_file_actions_addopen", c.posix_spawn_file_actions_addopen(fa, target, DEV_NULL, O_RDWR, 0));
        else must("posix_spawn_file_actions_adddup2", c.posix_spawn_file_actions_adddup2(fa, fd, target));
      });
      if (cwd) must("posix_spawn_file_actions_addchdir_np", c.posix_spawn_file_actions_addchdir_np(fa, cwd));
      // Every fd of the agent is close-on-exec already; this makes sure of it (a socket Bun opened, an fd
      // a library leaked) without walking them: close_range(3, ~0) in the child.
      must("posix_spawn_file_actions_addclosefrom_np", c.posix_spawn_file_actions_addclosefrom_np(fa, 3));
      must("posix_spawnattr_setflags", c.posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));
      must("posix_spawnattr_setsigmask", c.posix_spawnattr_setsigmask(attr, NO_SIGNALS));
      must("posix_spawnattr_setsigdefault", c.posix_spawnattr_setsigdefault(attr, ALL_SIGNALS));
      const rc = c.posix_spawn(pid, path, fa, attr, argvPtrs, envPtrs);
      void args;
      void envs;
      if (rc !== 0) throw spawnError(rc, spec.argv[0] ?? spec.path);
    } finally {
      c.posix_spawnattr_destroy(attr);
    }
  } finally {
    c.posix_spawn_file_actions_destroy(fa);
  }
  const pidfd = c.pidfd_open(pid[0]!, 0);
  if (pidfd < 0) {
    // Cannot happen for our own unreaped child short of EMFILE; without a pidfd nobody would learn of its end.
    const e = errno();
    process.kill(-pid[0]!, 9);
    reapBlocking(pid[0]!);
    throw new SyscallError("pidfd_open", e);
  }
  return { pid: pid[0]!, pidfd };
}

export interface ExitStatus {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal number that ended it, or null. */
  signal: number | null;
}

/** waitpid(pid, WNOHANG): the status once the child has exited (it is reaped then), null while it runs. */
export function reap(pid: number): ExitStatus | null {
  const c = spawnLibc()!;
  const st = new Int32Array(1);
  for (;;) {
    const rc = c.waitpid(pid, st, WNOHANG);
    if (rc === 0) return null;
    if (rc > 0) return decodeStatus(st[0]!);
    const e = errno();
    if (e !== EINTR) throw new SyscallError("waitpid", e);
  }
}

function reapBlocking(pid: number): void {
  const st = new Int32Array(1);
  while (spawnLibc()!.waitpid(pid, st, 0) < 0 && errno() === EINTR);
}

/** A wait status as the W* macros read it (a stopped child is not reported: WUNTRACED is never asked). */
export function decodeStatus(st: number): ExitStatus {
  const sig = st & 0x7f;
  if (sig === 0) return { code: (st >> 8) & 0xff, signal: null };
  return { code: null, signal: sig };
}
