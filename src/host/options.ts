// What a caller asks of an execution, and its translation into the EXEC body (PROTOCOL.md §5). Checked
// here with the agent's own validator, so a mistake is a TypeError at the call, not a lost connection.
import { ProtocolError } from "../protocol/v2/frame.ts";
import { validateExec, type ExecLimits, type ExecRequest } from "../protocol/v2/messages.ts";
import { GuestError } from "./errors.ts";
import { signalName } from "./_signals.ts";

/** argv (run directly, PATH searched) or a command line for `/bin/sh -c`. */
export type Command = string[] | { shell: string };

export interface ExecOptions {
  /** Variables to set; null or undefined removes one. Applied over the agent's environment unless clearEnv. */
  env?: Record<string, string | null | undefined>;
  clearEnv?: boolean;
  cwd?: string;
  /** A user name or uid in the guest; its primary group unless gid is given. */
  user?: string | number;
  uid?: number;
  gid?: number;
  /** "pipe" (default for exec): `stdin` is a WritableStream. "closed": the process gets /dev/null. */
  stdin?: "pipe" | "closed";
  /** Run on a pseudo-terminal (output arrives on stdout only). `true` means 80x24. */
  pty?: true | { cols?: number; rows?: number; term?: string };
  /** stderr goes to stdout, in write order. */
  merge?: boolean;
  /** After this many milliseconds the process group gets killSignal (default SIGKILL); status "timeout". */
  timeoutMs?: number;
  killSignal?: string | number;
  /**
   * Keep running when this connection ends (PROTOCOL.md §5.1): reattach later with guest.attach(tag or
   * job number). `keep`: bytes of output kept per stream for that replay (default 1 MiB, at most 64 MiB).
   */
  detach?: true | { tag?: string; keep?: number };
  /**
   * Limits of the execution's own cgroup (PROTOCOL.md §5.2): memoryBytes (memory.max), pids (pids.max),
   * cpu (CPUs, cpu.max). An agent without --cgroup refuses them: status "error", errno ENOTSUP.
   */
  limits?: ExecLimits;
  /** Ask for `usage` (CPU time, peak memory) and `oom` in the result; implied by `limits`. */
  usage?: boolean;
}

export function toExecRequest(cmd: Command, o: ExecOptions = {}): ExecRequest {
  const req: ExecRequest = Array.isArray(cmd) ? { argv: cmd } : { shell: cmd.shell };
  if (o.env) req.env = Object.fromEntries(Object.entries(o.env).map(([k, v]) => [k, v ?? null]));
  if (o.clearEnv !== undefined) req.clearEnv = o.clearEnv;
  if (o.cwd !== undefined) req.cwd = o.cwd;
  if (o.user !== undefined) req.user = String(o.user);
  if (o.uid !== undefined) req.uid = o.uid;
  if (o.gid !== undefined) req.gid = o.gid;
  if (o.stdin !== undefined) req.stdin = o.stdin;
  if (o.pty) {
    const p = o.pty === true ? {} : o.pty;
    req.pty = { cols: p.cols ?? 80, rows: p.rows ?? 24, ...(p.term ? { term: p.term } : {}) };
  }
  if (o.merge !== undefined) req.merge = o.merge;
  if (o.timeoutMs !== undefined) req.timeoutMs = Math.ceil(o.timeoutMs);
  if (o.killSignal !== undefined) req.killSignal = signalName(o.killSignal);
  if (o.detach) req.detach = o.detach === true ? {} : { ...(o.detach.tag !== undefined ? { tag: o.detach.tag } : {}), ...(o.detach.keep !== undefined ? { keep: o.detach.keep } : {}) };
  if (o.limits !== undefined) req.limits = { ...o.limits };
  if (o.usage !== undefined) req.usage = o.usage;
  try {
    return validateExec(req as Record<string, unknown>);
  } catch (e) {
    if (e instanceof ProtocolError) throw new GuestError("EINVAL", e.message.replace(/^EXEC: /, "exec: "));
    throw e;
  }
}
