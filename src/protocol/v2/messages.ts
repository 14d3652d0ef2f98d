// JSON bodies of v2 control frames (PROTOCOL.md §4–8), with the agent's validation of what hosts send.
import { ProtocolError } from "./frame.ts";

export const PROTOCOL_VERSION = 2;
export const CAPABILITIES = ["exec", "pty", "signal", "timeout", "files", "ping", "flow", "dirs"] as const;

export interface Hello {
  versions: number[];
  client?: string;
}

export interface Welcome {
  version: number;
  agent: string;
  capabilities: string[];
  hostname: string;
  kernel: string;
  arch: string;
  initrd: boolean;
  pid: number;
  maxPayload: number;
  window: number;
}

export interface ExecRequest {
  /** Program and arguments, run directly (PATH is searched). Exactly one of argv and shell. */
  argv?: string[];
  /** A command line for `/bin/sh -c`. */
  shell?: string;
  /** Variables to set (string) or remove (null), applied over the agent's environment (or none, with clearEnv). */
  env?: Record<string, string | null>;
  clearEnv?: boolean;
  cwd?: string;
  /** A user name or numeric uid; its primary group unless gid is given. */
  user?: string;
  uid?: number;
  gid?: number;
  /** "pipe" (default): STDIN frames feed the process. "closed": stdin is /dev/null. */
  stdin?: "pipe" | "closed";
  /** Run on a new pseudo-terminal; output arrives as STDOUT only. */
  pty?: { cols: number; rows: number; term?: string };
  /** Send stderr as STDOUT frames, in the order written. */
  merge?: boolean;
  /** Milliseconds; then the process group gets killSignal (default SIGKILL) and the result is "timeout". */
  timeoutMs?: number;
  killSignal?: string;
}

export type ExitResult =
  | { status: "exited"; code: number }
  | { status: "signaled"; signal: string; signo: number }
  | { status: "timeout"; signal: string; signo: number; code?: number | null }
  | { status: "error"; errno: string; message: string };

export interface PutRequest {
  path: string;
  size: number;
  mode?: number;
  uid?: number;
  gid?: number;
}

export interface GetRequest {
  path: string;
  maxSize?: number;
}

export type FileResult = { ok: true; size: number; mode?: number } | { ok: false; errno: string; message: string };

function fail(msg: string): never {
  throw new ProtocolError(`EXEC: ${msg}`);
}

const isU32 = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isStr = (v: unknown): v is string => typeof v === "string";

/** Checks an EXEC body field by field; anything malformed is a ProtocolError naming the field. */
export function validateExec(b: Record<string, unknown>): ExecRequest {
  const r = b as ExecRequest;
  if ((r.argv === undefined) === (r.shell === undefined)) fail("exactly one of argv and shell is required");
  if (r.argv !== undefined && (!Array.isArray(r.argv) || r.argv.length === 0 || !r.argv.every(isStr))) fail("argv must be a non-empty array of strings");
  if (r.shell !== undefined && !isStr(r.shell)) fail("shell must be a string");
  if ([...(r.argv ?? []), r.shell ?? ""].some((s) => s.includes("\0"))) fail("arguments cannot contain NUL");
  if (r.env !== undefined) {
    if (typeof r.env !== "object" || r.env === null || Array.isArray(r.env)) fail("env must be an object");
    for (const [k, v] of Object.entries(r.env)) {
      if (k === "" || k.includes("=") || k.includes("\0")) fail(`env name ${JSON.stringify(k)} is invalid`);
      if (v !== null && !isStr(v)) fail(`env ${k} must be a string or null`);
    }
  }
  if (r.clearEnv !== undefined && typeof r.clearEnv !== "boolean") fail("clearEnv must be a boolean");
  if (r.cwd !== undefined && !isStr(r.cwd)) fail("cwd must be a string");
  if (r.user !== undefined && (!isStr(r.user) || r.user === "")) fail("user must be a non-empty string");
  if (r.uid !== undefined && !isU32(r.uid)) fail("uid must be a u32");
  if (r.gid !== undefined && !isU32(r.gid)) fail("gid must be a u32");
  if (r.stdin !== undefined && r.stdin !== "pipe" && r.stdin !== "closed") fail('stdin must be "pipe" or "closed"');
  if (r.pty !== undefined) {
    const p = r.pty;
    if (typeof p !== "object" || p === null || !isU32(p.cols) || !isU32(p.rows) || p.cols > 65535 || p.rows > 65535) fail("pty needs cols and rows 0..65535");
    if (p.term !== undefined && !isStr(p.term)) fail("pty.term must be a string");
  }
  if (r.merge !== undefined && typeof r.merge !== "boolean") fail("merge must be a boolean");
  if (r.timeoutMs !== undefined && (!isU32(r.timeoutMs) || r.timeoutMs === 0)) fail("timeoutMs must be a positive u32");
  if (r.killSignal !== undefined && !isStr(r.killSignal)) fail("killSignal must be a signal name");
  return r;
}
