// The agent re-executed as `vsock_guest_exec __pty-exec -- PROGRAM ARGS...`: the first moments of a PTY
// execution's process. Spawned detached (so setsid has made it a session leader) with the terminal's slave
// as fds 0-2 and a status pipe as fd 3, it takes the terminal as its controlling tty and execs PROGRAM,
// searching PATH as execvp does. A failure is written to the status pipe as "ERRNO message" (exit 127);
// success closes the pipe (close-on-exec), which is how the agent learns the program started.
import { existsSync } from "node:fs";
import { SyscallError, execve, resetSignals, setCloexec, setControllingTty, setNonblocking, write } from "../sys/index.ts";

export const PTY_EXEC_ARG = "__pty-exec";
export const STATUS_FD = 3;
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The command line and environment that start this mode for `cmd`. The compiled agent is its own
 * executable; from source, bun needs the script. Variables that change how the runtime itself starts
 * (BUN_BE_BUN=1 turns the agent into the bun CLI) are kept out of the helper's environment and handed
 * over as `KEY=VALUE` arguments before `--`, to be put back for the program.
 */
export function ptyExecCommand(cmd: string[], env: Record<string, string>): { argv: string[]; env: Record<string, string> } {
  const compiled = import.meta.url.includes("$bunfs") || import.meta.url.includes("~BUN");
  const self = compiled ? [process.execPath] : [process.execPath, new URL("./main.ts", import.meta.url).pathname];
  const own: Record<string, string> = {};
  const passed: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith("BUN_")) passed.push(`${k}=${v}`);
    else own[k] = v;
  }
  return { argv: [...self, PTY_EXEC_ARG, ...passed, "--", ...cmd], env: own };
}

/**
 * execvp(3)'s search: each PATH entry in turn; other errors than ENOENT/ENOTDIR stop it. EACCES is
 * remembered only for a file that is there: a PATH directory this user may not search (/root/... for
 * `user: nobody`) means "not found", as Bun.spawn reports it for a program without a terminal.
 */
function execPath(cmd: string[], env: Record<string, string | undefined>): never {
  const prog = cmd[0]!;
  if (prog.includes("/")) execve(prog, cmd, env);
  let denied: SyscallError | undefined;
  for (const dir of (env.PATH ?? DEFAULT_PATH).split(":")) {
    try {
      execve(`${dir || "."}/${prog}`, cmd, env);
    } catch (e) {
      if (!(e instanceof SyscallError)) throw e;
      if (e.code === "EACCES" && existsSync(`${dir || "."}/${prog}`)) denied = e;
      else if (e.code !== "EACCES" && e.code !== "ENOENT" && e.code !== "ENOTDIR") throw e;
    }
  }
  throw denied ?? new SyscallError("execve", 2 /* ENOENT */);
}

export function ptyExecMain(args: string[]): never {
  const dash = args.indexOf("--");
  const cmd = args.slice(dash + 1);
  const env: Record<string, string | undefined> = { ...process.env };
  for (const kv of args.slice(0, Math.max(dash, 0))) env[kv.slice(0, kv.indexOf("="))] = kv.slice(kv.indexOf("=") + 1);
  try {
    if (cmd.length === 0) throw new Error("no program");
    setCloexec(STATUS_FD, true);
    setControllingTty(0);
    // fds 0-2 share one open file description; the runtime may have made it non-blocking, which most
    // programs do not expect of a terminal.
    setNonblocking(0, false);
    resetSignals();
    execPath(cmd, env);
  } catch (e) {
    const err = e as { code?: string; message?: string };
    const code = typeof err.code === "string" && /^E[A-Z0-9]+$/.test(err.code) ? err.code : "EIO";
    // The words Bun.spawn uses, so a missing program reads the same with or without a terminal.
    const message = code === "ENOENT" ? `program not found: ${cmd[0]}` : (err.message ?? String(e));
    try {
      write(STATUS_FD, new TextEncoder().encode(`${code} ${message}`));
    } catch {
      // The agent is gone; the exit status is all there is.
    }
    process.exit(127);
  }
}
