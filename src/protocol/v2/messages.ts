// JSON bodies of v2 control frames (PROTOCOL.md §4–8), with the agent's validation of what hosts send
// and the host's of what agents send.
import { printable } from "../printable.ts";
import { ProtocolError } from "./frame.ts";

export const PROTOCOL_VERSION = 2;
export const CAPABILITIES = ["exec", "pty", "signal", "timeout", "files", "ping", "flow"] as const;

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

/** A GET without maxSize is refused beyond this (PROTOCOL.md §8); the host holds the agent to it too. */
export const DEFAULT_MAX_GET = 1024 ** 3;

export interface GetRequest {
  path: string;
  maxSize?: number;
}

export type FileResult = { ok: true; size: number; mode?: number; mtime?: number } | { ok: false; errno: string; message: string };

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

// What the host accepts from an agent. Every field is checked before the host keeps it: a hostile guest
// gets no say over how much the host holds (strings are bounded) nor over what its terminal shows (free
// text is escaped with `printable`, names must be plain tokens).

/** Longest hostname/kernel/agent string the host keeps from a WELCOME. */
export const MAX_FACT = 256;
/** Largest window a WELCOME may announce: more would let the host queue absurd amounts for the agent. */
export const MAX_WINDOW = 64 * 1024 * 1024;
/** Longest free-text message the host keeps from EXIT, RESULT or ERROR. */
export const MAX_MESSAGE = 1024;

/** An errno or signal name: "ENOENT", "SIGKILL", "SIGRTMIN+3". */
const TOKEN = /^[A-Z][A-Z0-9_+-]{0,31}$/;

function bad(what: string, msg: string): never {
  throw new ProtocolError(`${what} frame: ${msg}`);
}

const isUint = (v: unknown, max: number): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;

function boundedStr(what: string, v: unknown, field: string, max: number): string {
  if (typeof v !== "string") bad(what, `${field} must be a string`);
  if (v.length > max) bad(what, `${field} is ${v.length} characters long; at most ${max} are accepted`);
  return v;
}

export function token(what: string, v: unknown, field: string): string {
  if (typeof v !== "string" || !TOKEN.test(v)) bad(what, `${field} must be a name like ENOENT or SIGKILL, got ${typeof v === "string" ? printable(JSON.stringify(v), 64) : typeof v}`);
  return v;
}

/** Free text from the agent, escaped and cut to MAX_MESSAGE characters. */
export function message(what: string, v: unknown, field: string): string {
  if (typeof v !== "string") bad(what, `${field} must be a string`);
  return printable(v, MAX_MESSAGE);
}

/** A WELCOME body as the host keeps it: every field typed and bounded, else a ProtocolError. */
export function validateWelcome(b: Record<string, unknown>): Welcome {
  const w = "WELCOME";
  if (b.version !== PROTOCOL_VERSION) bad(w, `the agent chose version ${printable(String(b.version), 32)}; this host speaks ${PROTOCOL_VERSION}`);
  const caps = b.capabilities;
  if (!Array.isArray(caps) || caps.length > 64 || !caps.every((c) => typeof c === "string" && /^[a-z0-9_-]{1,32}$/.test(c))) bad(w, "capabilities must be at most 64 short lowercase names");
  if (typeof b.initrd !== "boolean") bad(w, "initrd must be a boolean");
  if (!isUint(b.pid, 0xffffffff)) bad(w, "pid must be a u32");
  if (!isUint(b.maxPayload, 0xffffffff) || b.maxPayload === 0) bad(w, "maxPayload must be a positive u32");
  if (!isUint(b.window, MAX_WINDOW) || b.window === 0) bad(w, `window must be 1..${MAX_WINDOW} bytes`);
  return {
    version: PROTOCOL_VERSION,
    agent: boundedStr(w, b.agent, "agent", 64),
    capabilities: caps as string[],
    hostname: boundedStr(w, b.hostname, "hostname", MAX_FACT),
    kernel: boundedStr(w, b.kernel, "kernel", MAX_FACT),
    arch: boundedStr(w, b.arch, "arch", 32),
    initrd: b.initrd,
    pid: b.pid,
    maxPayload: b.maxPayload,
    window: b.window,
  };
}

/** An EXIT body: known status, codes in range, names as tokens, the message escaped. */
export function validateExit(b: Record<string, unknown>): ExitResult {
  const w = "EXIT";
  const signal = () => ({ signal: token(w, b.signal, "signal"), signo: isUint(b.signo, 127) ? b.signo : bad(w, "signo must be 0..127") });
  switch (b.status) {
    case "exited":
      return { status: "exited", code: isUint(b.code, 255) ? b.code : bad(w, "code must be 0..255") };
    case "signaled":
      return { status: "signaled", ...signal() };
    case "timeout": {
      if (b.code !== undefined && b.code !== null && !isUint(b.code, 255)) bad(w, "code must be 0..255 or null");
      return { status: "timeout", ...signal(), ...(b.code !== undefined ? { code: b.code as number | null } : {}) };
    }
    case "error":
      return { status: "error", errno: token(w, b.errno, "errno"), message: message(w, b.message, "message") };
    default:
      return bad(w, `unknown status ${printable(JSON.stringify(b.status) ?? "undefined", 64)}`);
  }
}

/** A RESULT body: size/mode in range (mtime, seconds since the epoch, if the agent sends it). */
export function validateFileResult(b: Record<string, unknown>): FileResult {
  const w = "RESULT";
  if (b.ok === false) return { ok: false, errno: token(w, b.errno, "errno"), message: message(w, b.message, "message") };
  if (b.ok !== true) bad(w, "ok must be a boolean");
  if (!isUint(b.size, Number.MAX_SAFE_INTEGER)) bad(w, "size must be a byte count");
  if (b.mode !== undefined && !isUint(b.mode, 0o7777)) bad(w, "mode must be permission bits 0..0o7777");
  if (b.mtime !== undefined && (typeof b.mtime !== "number" || !Number.isFinite(b.mtime) || b.mtime < 0)) bad(w, "mtime must be seconds since the epoch");
  return { ok: true, size: b.size, ...(b.mode !== undefined ? { mode: b.mode as number } : {}), ...(b.mtime !== undefined ? { mtime: b.mtime as number } : {}) };
}
