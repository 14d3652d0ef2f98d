// Job control over detached executions (PROTOCOL.md §5.1): LIST/LISTING, ATTACH/ATTACHED, KILL, DETACHED.
// What a host sends is decoded into checked values for the agent; what an agent sends is validated for the
// host, every string bounded and every number in range, as messages.ts does for the other frames.
import { printable } from "../printable.ts";
import { ProtocolError } from "./frame.ts";
import { TAG, checker, message, token, validateExit, type ExitResult } from "./messages.ts";
import type { Signal } from "./signals.ts";

/** A detached execution named by its tag or by the job number the agent gave it. */
export type JobRef = { tag: string } | { job: number };

/** ATTACH: which job, and from which byte of each stream to replay (default 0: all that is kept). */
export interface AttachRequest {
  ref: JobRef;
  from: { stdout: number; stderr: number };
}

export interface KillRequest {
  ref: JobRef;
  signal: Signal;
}

/** Where a replay starts per stream: `from` (the byte offset sent first) and `dropped` bytes the agent no longer had. */
export interface ReplayStart {
  from: number;
  dropped: number;
}

export interface Attached {
  job: number;
  tag: string | null;
  pid: number | null;
  state: "running" | "exited";
  stdout: ReplayStart;
  stderr: ReplayStart;
  /**
   * STDIN bytes this follower may send before a WINDOW: what is left of the job's one window (earlier
   * followers' stdin may still be queued). Absent from older agents: a whole window.
   */
  stdin?: number;
}

/** One LISTING entry. */
export interface JobInfo {
  job: number;
  tag: string | null;
  pid: number | null;
  /** The command, cut to MAX_LIST_ARGV characters in all. */
  argv: string[];
  /** Milliseconds since the epoch. */
  startedAt: number;
  state: "running" | "exited";
  endedAt?: number;
  exit?: ExitResult;
  /** Whether a connection is attached now. */
  attached: boolean;
  /** Bytes the process wrote per stream, and how many of the last of them the agent still keeps. */
  stdout: { total: number; kept: number };
  stderr: { total: number; kept: number };
}

/** The agent cuts each job's argv to this many characters in a LISTING, so that an entry stays small. */
export const MAX_LIST_ARGV = 256;
/** Most entries a host accepts over the LISTING frames of one LIST. */
export const MAX_LIST_ENTRIES = 4096;
const MAX_OFFSET = Number.MAX_SAFE_INTEGER;
const MAX_U32 = 0xffffffff;

type Body = Record<string, unknown>;

function jobRef(kind: string, b: Body): JobRef {
  const { fail, int } = checker(kind);
  if ((b.tag === undefined) === (b.job === undefined)) fail("exactly one of tag and job is required");
  if (b.job !== undefined) return { job: int("job", b.job, 1, MAX_U32) };
  if (typeof b.tag !== "string" || !TAG.test(b.tag)) fail("tag must be 1..64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)");
  return { tag: b.tag as string };
}

export function decodeAttach(b: Body): AttachRequest {
  const { fail, int } = checker("ATTACH");
  const ref = jobRef("ATTACH", b);
  const from = { stdout: 0, stderr: 0 };
  if (b.from !== undefined) {
    const f = b.from as Body;
    if (typeof f !== "object" || f === null || Array.isArray(f)) fail("from must be an object {stdout?, stderr?}");
    if (f.stdout !== undefined) from.stdout = int("from.stdout", f.stdout, 0, MAX_OFFSET);
    if (f.stderr !== undefined) from.stderr = int("from.stderr", f.stderr, 0, MAX_OFFSET);
  }
  return { ref, from };
}

export function decodeKill(b: Body): KillRequest {
  return { ref: jobRef("KILL", b), signal: checker("KILL").signal("signal", b.signal) };
}

/** The wire form of a JobRef, for the host to send. */
export function refBody(ref: string | number): Body {
  return typeof ref === "number" ? { job: ref } : { tag: ref };
}

// --- what the host accepts from the agent ---

function bad(what: string, msg: string): never {
  throw new ProtocolError(`${what} frame: ${msg}`);
}

const uint = (what: string, v: unknown, field: string, max = MAX_OFFSET): number =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max ? v : bad(what, `${field} must be an integer 0..${max}`);

function tagOf(what: string, v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== "string" || !TAG.test(v)) bad(what, `tag must be a tag (1..64 of A-Z a-z 0-9 . _ -), got ${printable(JSON.stringify(v) ?? "?", 80)}`);
  return v;
}

const pidOf = (what: string, v: unknown): number | null => (v === null || v === undefined ? null : uint(what, v, "pid", MAX_U32));
const stateOf = (what: string, v: unknown): "running" | "exited" => (v === "running" || v === "exited" ? v : bad(what, 'state must be "running" or "exited"'));

function replay(what: string, v: unknown, field: string): ReplayStart {
  if (typeof v !== "object" || v === null) bad(what, `${field} must be an object {from, dropped}`);
  const r = v as Body;
  return { from: uint(what, r.from, `${field}.from`), dropped: uint(what, r.dropped, `${field}.dropped`) };
}

export function validateAttached(b: Body): Attached {
  const w = "ATTACHED";
  const a: Attached = { job: uint(w, b.job, "job", MAX_U32), tag: tagOf(w, b.tag), pid: pidOf(w, b.pid), state: stateOf(w, b.state), stdout: replay(w, b.stdout, "stdout"), stderr: replay(w, b.stderr, "stderr") };
  if (b.stdin !== undefined) a.stdin = uint(w, b.stdin, "stdin", MAX_U32);
  return a;
}

/** DETACHED: the id follows no job (any more). errno absent: a KILL was delivered. */
export function validateDetached(b: Body): { errno?: string; message?: string } {
  if (b.errno === undefined) return {};
  return { errno: token("DETACHED", b.errno, "errno"), message: b.message === undefined ? "" : message("DETACHED", b.message, "message") };
}

function counts(what: string, v: unknown, field: string): { total: number; kept: number } {
  if (typeof v !== "object" || v === null) bad(what, `${field} must be an object {total, kept}`);
  const c = v as Body;
  return { total: uint(what, c.total, `${field}.total`), kept: uint(what, c.kept, `${field}.kept`) };
}

function jobInfo(v: unknown): JobInfo {
  const w = "LISTING";
  if (typeof v !== "object" || v === null || Array.isArray(v)) bad(w, "each job must be an object");
  const j = v as Body;
  const argv = j.argv;
  // A little slack over what the agent sends (MAX_LIST_ARGV), for the cut item's marker.
  if (!Array.isArray(argv) || argv.length > MAX_LIST_ARGV || !argv.every((a) => typeof a === "string") || argv.join("").length > MAX_LIST_ARGV + 16) bad(w, `argv must be strings of at most ${MAX_LIST_ARGV} characters in all`);
  const info: JobInfo = {
    job: uint(w, j.job, "job", MAX_U32),
    tag: tagOf(w, j.tag),
    pid: pidOf(w, j.pid),
    argv: argv as string[],
    startedAt: uint(w, j.startedAt, "startedAt"),
    state: stateOf(w, j.state),
    attached: typeof j.attached === "boolean" ? j.attached : bad(w, "attached must be a boolean"),
    stdout: counts(w, j.stdout, "stdout"),
    stderr: counts(w, j.stderr, "stderr"),
  };
  if (j.endedAt !== undefined) info.endedAt = uint(w, j.endedAt, "endedAt");
  if (j.exit !== undefined) info.exit = validateExit(j.exit as Body);
  return info;
}

/** One LISTING frame: some jobs, and whether more frames follow. */
export function validateListing(b: Body): { jobs: JobInfo[]; more: boolean } {
  if (!Array.isArray(b.jobs)) bad("LISTING", "jobs must be an array");
  if (typeof b.more !== "boolean") bad("LISTING", "more must be a boolean");
  return { jobs: (b.jobs as unknown[]).map(jobInfo), more: b.more };
}
