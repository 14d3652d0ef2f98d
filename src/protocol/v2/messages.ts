// JSON bodies of v2 control frames (PROTOCOL.md §4–8), and their decoding into checked, typed values.
// Every field a host sends is checked here, once; the agent uses only the decoded types, so nothing from
// the peer reaches a Bun or libc call unchecked. The host checks what agents send here too. Anything malformed is a ProtocolError naming the field.
import { printable } from "../printable.ts";
import { ProtocolError } from "./frame.ts";
import { lookupSignal, type Signal } from "./signals.ts";

export const PROTOCOL_VERSION = 2;
export const CAPABILITIES = ["exec", "pty", "signal", "timeout", "files", "ping", "flow", "dirs", "detach", "tcp"] as const;

export interface Hello {
  versions: number[];
  client?: string;
  /** The host's nonce, hex: the host authenticates (PROTOCOL.md §11). */
  auth?: { nonce: string };
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
  /** Survive the loss of the connection (PROTOCOL.md §5.1): reattach by tag or job number. */
  detach?: DetachRequest;
  /** Limits of this execution's cgroup (PROTOCOL.md §5.2); an agent without --cgroup answers EXIT error ENOTSUP. */
  limits?: ExecLimits;
  /** Ask for `usage` in the EXIT (CPU time, peak memory); always there when `limits` is given. */
  usage?: boolean;
}

/** Per-execution limits (PROTOCOL.md §5.2): each one a cgroup v2 control of the execution's own leaf. */
export interface ExecLimits {
  /** memory.max, bytes: over it the kernel reclaims, then OOM-kills inside the execution only. */
  memoryBytes?: number;
  /** pids.max: processes and threads at once; a fork over it fails with EAGAIN. */
  pids?: number;
  /** cpu.max as a number of CPUs (0.5 = half of one), over a 100 ms period. */
  cpu?: number;
}

/** Smallest memory limit: the agent's own spawn runs inside the leaf for a moment (contain.ts). */
export const MIN_MEMORY_LIMIT = 1024 * 1024;
/** Largest pids limit: the kernel's PID_MAX_LIMIT. */
export const MAX_PIDS_LIMIT = 4_194_304;
/** cpu limits, in CPUs: cpu.max takes a quota of at least 1 ms per 100 ms period. */
export const MIN_CPU_LIMIT = 0.01;
export const MAX_CPU_LIMIT = 4096;

/** What an execution used (PROTOCOL.md §5.2), in EXIT when asked for. */
export interface ExecUsage {
  /** CPU time in user and kernel mode, microseconds. */
  userUsec: number;
  systemUsec: number;
  /** Peak memory, bytes: the cgroup's memory.peak (the whole tree), else the leader's max RSS. */
  memoryPeak?: number;
  /** "cgroup": the whole tree, from its leaf; "rusage": the leader and the children it waited for. */
  from: "cgroup" | "rusage";
}

export interface DetachRequest {
  /** A name to attach by: 1..64 of [A-Za-z0-9._-], starting with a letter or digit; unique among running jobs. */
  tag?: string;
  /** Bytes of output kept per stream for replay (default DEFAULT_KEEP, at most MAX_KEEP). */
  keep?: number;
}

/** Output kept per stream of a detached execution unless `keep` says otherwise. */
export const DEFAULT_KEEP = 1024 * 1024;
/** Largest `keep`: the agent's memory for one job is bounded by this per stream. */
export const MAX_KEEP = 64 * 1024 * 1024;
/** A detached execution's tag: short, printable on any terminal, usable as a file name. */
export const TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export type ExitResult = (
  | { status: "exited"; code: number }
  | { status: "signaled"; signal: string; signo: number }
  | { status: "timeout"; signal: string; signo: number; code?: number | null }
  | { status: "error"; errno: string; message: string }
) & {
  /** Present when the EXEC asked for it (usage or limits). */
  usage?: ExecUsage;
  /** True when the kernel's OOM killer ended a process of the execution (known with the memory controller only). */
  oom?: boolean;
};

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

/** An EXEC request after decoding: the wire fields, checked, with the kill signal resolved. */
export interface ExecSpec extends Omit<ExecRequest, "killSignal"> {
  /** The timeout's signal (default SIGKILL). */
  killSignal: Signal;
}

/** Terminal sizes: what TIOCSWINSZ holds (u16), and 0 is no size at all. */
export const MIN_TTY_DIM = 1;
export const MAX_TTY_DIM = 65535;
/** Longest timeout: u32 milliseconds (about 49.7 days); the agent chains timers past setTimeout's 2^31-1. */
export const MAX_TIMEOUT_MS = 0xffffffff;
/**
 * Largest uid or gid a host may ask for. (uid_t)-1 = 4294967295 is not an id: chown(2) and setresuid(2)
 * read it as "leave unchanged", so a request for it would silently keep root.
 */
export const MAX_ID = 0xfffffffe;
/** Permission bits a PUT may set (with setuid, setgid, sticky); file-type bits are not the host's to give. */
export const MAX_MODE = 0o7777;

type Body = Record<string, unknown>;

const isU32 = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

export function checker(kind: string) {
  const fail = (msg: string): never => {
    throw new ProtocolError(`${kind}: ${msg}`);
  };
  /** A string without NUL (C strings end at NUL: a NUL would cut the value, or Bun refuses it). */
  const str = (name: string, v: unknown, nonEmpty = false): string => {
    if (typeof v !== "string") fail(`${name} must be a string`);
    const s = v as string;
    if (nonEmpty && s === "") fail(`${name} must not be empty`);
    if (s.includes("\0")) fail(`${name} cannot contain NUL`);
    return s;
  };
  const int = (name: string, v: unknown, min: number, max: number): number => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) fail(`${name} must be an integer ${min}..${max}`);
    return v as number;
  };
  const bool = (name: string, v: unknown): boolean => {
    if (typeof v !== "boolean") fail(`${name} must be a boolean`);
    return v as boolean;
  };
  const signal = (name: string, v: unknown): Signal => {
    if (typeof v !== "string") fail(`${name} must be a signal name`);
    const sig = lookupSignal(v as string);
    if (!sig) fail(`unknown signal ${JSON.stringify(v)}`);
    return sig!;
  };
  return { fail, str, int, bool, signal };
}

/** Decodes an EXEC body: every field checked, killSignal resolved to a number. */
export function decodeExec(b: Body): ExecSpec {
  const { fail, str, int, bool, signal } = checker("EXEC");
  if ((b.argv === undefined) === (b.shell === undefined)) fail("exactly one of argv and shell is required");
  const spec: ExecSpec = { killSignal: { name: "SIGKILL", signo: 9 } };
  if (b.argv !== undefined) {
    if (!Array.isArray(b.argv) || b.argv.length === 0) fail("argv must be a non-empty array of strings");
    spec.argv = (b.argv as unknown[]).map((a, i) => str(`argv[${i}]`, a));
  }
  if (b.shell !== undefined) spec.shell = str("shell", b.shell);
  if (b.env !== undefined) {
    if (typeof b.env !== "object" || b.env === null || Array.isArray(b.env)) fail("env must be an object");
    const env: Record<string, string | null> = {};
    for (const [k, v] of Object.entries(b.env as Body)) {
      if (k === "" || k.includes("=") || k.includes("\0")) fail(`env name ${JSON.stringify(k)} is invalid`);
      env[k] = v === null ? null : str(`env ${k}`, v);
    }
    spec.env = env;
  }
  if (b.clearEnv !== undefined) spec.clearEnv = bool("clearEnv", b.clearEnv);
  if (b.cwd !== undefined) spec.cwd = str("cwd", b.cwd, true);
  if (b.user !== undefined) spec.user = str("user", b.user, true);
  // A decimal user is a uid (users.ts): the same range as `uid`.
  if (spec.user !== undefined && /^\d+$/.test(spec.user) && !(Number(spec.user) <= MAX_ID)) fail(`user given as a number must be a uid 0..${MAX_ID}`);
  if (b.uid !== undefined) spec.uid = int("uid", b.uid, 0, MAX_ID);
  if (b.gid !== undefined) spec.gid = int("gid", b.gid, 0, MAX_ID);
  if (b.stdin !== undefined) {
    if (b.stdin !== "pipe" && b.stdin !== "closed") fail('stdin must be "pipe" or "closed"');
    spec.stdin = b.stdin as "pipe" | "closed";
  }
  if (b.pty !== undefined) {
    const p = b.pty as Body;
    if (typeof p !== "object" || p === null || Array.isArray(p)) fail("pty must be an object {cols, rows, term?}");
    spec.pty = { cols: int("pty.cols", p.cols, MIN_TTY_DIM, MAX_TTY_DIM), rows: int("pty.rows", p.rows, MIN_TTY_DIM, MAX_TTY_DIM) };
    if (p.term !== undefined) spec.pty.term = str("pty.term", p.term, true);
  }
  if (b.merge !== undefined) spec.merge = bool("merge", b.merge);
  if (b.timeoutMs !== undefined) spec.timeoutMs = int("timeoutMs", b.timeoutMs, 1, MAX_TIMEOUT_MS);
  if (b.killSignal !== undefined) spec.killSignal = signal("killSignal", b.killSignal);
  if (b.detach !== undefined) {
    const d = b.detach as Body;
    if (typeof d !== "object" || d === null || Array.isArray(d)) fail("detach must be an object {tag?, keep?}");
    spec.detach = {};
    if (d.tag !== undefined) {
      if (typeof d.tag !== "string" || !TAG.test(d.tag)) fail("detach.tag must be 1..64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)");
      spec.detach.tag = d.tag as string;
    }
    if (d.keep !== undefined) spec.detach.keep = int("detach.keep", d.keep, 0, MAX_KEEP);
  }
  if (b.limits !== undefined) {
    const l = b.limits as Body;
    if (typeof l !== "object" || l === null || Array.isArray(l)) fail("limits must be an object {memoryBytes?, pids?, cpu?}");
    for (const k of Object.keys(l)) if (!["memoryBytes", "pids", "cpu"].includes(k)) fail(`limits.${k} is not a known limit`);
    spec.limits = {};
    if (l.memoryBytes !== undefined) spec.limits.memoryBytes = int("limits.memoryBytes", l.memoryBytes, MIN_MEMORY_LIMIT, Number.MAX_SAFE_INTEGER);
    if (l.pids !== undefined) spec.limits.pids = int("limits.pids", l.pids, 1, MAX_PIDS_LIMIT);
    if (l.cpu !== undefined) {
      if (typeof l.cpu !== "number" || !Number.isFinite(l.cpu) || l.cpu < MIN_CPU_LIMIT || l.cpu > MAX_CPU_LIMIT) fail(`limits.cpu must be a number of CPUs ${MIN_CPU_LIMIT}..${MAX_CPU_LIMIT}`);
      spec.limits.cpu = l.cpu as number;
    }
  }
  if (b.usage !== undefined) spec.usage = bool("usage", b.usage);
  return spec;
}

/**
 * Checks an EXEC body as decodeExec does and returns it unchanged: what the host library sends, so that a
 * mistake is caught before it costs the connection.
 */
export function validateExec(b: Body): ExecRequest {
  decodeExec(b);
  return b as ExecRequest;
}

/** HELLO: the versions the host speaks. */
export function decodeHello(b: Body): Hello {
  const { fail, str } = checker("HELLO");
  if (!Array.isArray(b.versions) || !b.versions.every(isU32)) fail("versions must be an array of integers");
  const hello: Hello = { versions: b.versions as number[] };
  if (b.client !== undefined) hello.client = str("client", b.client);
  return hello;
}

/** RESIZE: a PTY window size. */
export function decodeResize(b: Body): { cols: number; rows: number } {
  const { int } = checker("RESIZE");
  return { cols: int("cols", b.cols, MIN_TTY_DIM, MAX_TTY_DIM), rows: int("rows", b.rows, MIN_TTY_DIM, MAX_TTY_DIM) };
}

/** SIGNAL: a known signal, resolved to its number. */
export function decodeSignal(b: Body): Signal {
  return checker("SIGNAL").signal("signal", b.signal);
}

function path(kind: string, v: unknown): string {
  const { fail, str } = checker(kind);
  const p = str("path", v, true);
  if (!p.startsWith("/")) fail("path must be an absolute path");
  return p;
}

export function decodePut(b: Body): PutRequest {
  const { int } = checker("PUT");
  const req: PutRequest = { path: path("PUT", b.path), size: int("size", b.size, 0, Number.MAX_SAFE_INTEGER) };
  if (b.mode !== undefined) req.mode = int("mode", b.mode, 0, MAX_MODE);
  if (b.uid !== undefined) req.uid = int("uid", b.uid, 0, MAX_ID);
  if (b.gid !== undefined) req.gid = int("gid", b.gid, 0, MAX_ID);
  return req;
}

export function decodeGet(b: Body): GetRequest {
  const { int } = checker("GET");
  const req: GetRequest = { path: path("GET", b.path) };
  if (b.maxSize !== undefined) req.maxSize = int("maxSize", b.maxSize, 0, Number.MAX_SAFE_INTEGER);
  return req;
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
  // String() of an object from JSON such as {"toString":1} throws a TypeError: objects are shown as JSON.
  if (b.version !== PROTOCOL_VERSION) bad(w, `the agent chose version ${printable(typeof b.version === "object" && b.version !== null ? JSON.stringify(b.version) : String(b.version), 32)}; this host speaks ${PROTOCOL_VERSION}`);
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

/** An EXIT body: known status, codes in range, names as tokens, the message escaped; usage and oom checked. */
export function validateExit(b: Record<string, unknown>): ExitResult {
  const r = validateExitStatus(b);
  if (b.usage !== undefined) r.usage = validateUsage(b.usage);
  if (b.oom !== undefined) {
    if (typeof b.oom !== "boolean") bad("EXIT", "oom must be a boolean");
    r.oom = b.oom;
  }
  return r;
}

function validateUsage(u: unknown): ExecUsage {
  const w = "EXIT";
  if (typeof u !== "object" || u === null || Array.isArray(u)) bad(w, "usage must be an object");
  const o = u as Record<string, unknown>;
  const count = (f: string) => (isUint(o[f], Number.MAX_SAFE_INTEGER) ? (o[f] as number) : bad(w, `usage.${f} must be an integer count`));
  if (o.from !== "cgroup" && o.from !== "rusage") bad(w, 'usage.from must be "cgroup" or "rusage"');
  return { userUsec: count("userUsec"), systemUsec: count("systemUsec"), ...(o.memoryPeak !== undefined ? { memoryPeak: count("memoryPeak") } : {}), from: o.from as ExecUsage["from"] };
}

function validateExitStatus(b: Record<string, unknown>): ExitResult {
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
