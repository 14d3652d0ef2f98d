// The agent's detached executions (PROTOCOL.md §5.1), one registry for the whole process: a job started on
// one connection can be listed, attached to and signalled from any later one, also after the agent dialed
// the host again (--reconnect). Bounded three ways: jobs holding output (--max-detached), the output they
// may keep (--detach-memory, each job reserving keep × its streams), and finished jobs remembered for LIST
// (EXITED_KEPT, for EXITED_TTL_MS, on the monotonic clock). A finished job keeps its output, and its slot,
// until a new job needs the slot or the memory, until its tag is reused, or until it is forgotten; never
// while a connection is attached to it: a job forgotten meanwhile (its tag reused) is no longer listed but
// keeps its output, and its slot, until its follower is done.
import { T, encodeJson } from "../../protocol/v2/frame.ts";
import { MAX_LIST_ARGV, type AttachRequest, type JobInfo, type JobRef, type KillRequest } from "../../protocol/v2/jobs.ts";
import { DEFAULT_KEEP, type ExecSpec, type ExitResult } from "../../protocol/v2/messages.ts";
import { MAX_PAYLOAD } from "../../protocol/v2/frame.ts";
import { monotonicMs } from "../../common/clock.ts";
import { DEFAULT_LIMITS, type Limits } from "../limits.ts";
import type { Log } from "../log.ts";
import { Execution } from "./exec.ts";
import { JobOutput, type Attachment } from "./job-output.ts";
import { sharedQuotas } from "./quota.ts";

/** A finished job is listed for this long after its end. */
export const EXITED_TTL_MS = 10 * 60 * 1000;
/** At most this many finished jobs are remembered; the one that ended first is forgotten first. */
export const EXITED_KEPT = 256;

interface Job {
  job: number;
  tag: string | null;
  argv: string[];
  /** Wall-clock times, for LIST only: every deadline is on the monotonic clock (a guest's clock steps). */
  startedAt: number;
  endedAt?: number;
  /** monotonicMs() at the end, for the expiry. */
  endedMono?: number;
  /** Order of the ends: finished jobs are forgotten first-ended first. */
  endOrder?: number;
  output: JobOutput;
  exec: Execution;
  /** Holds one of --max-detached's slots: from its start until its output is freed (keep 0 too). */
  holds: boolean;
  /** Bytes of output this job may keep (keep × streams); 0 once its rings are freed. */
  reserved: number;
}

/** The argv as LIST shows it: MAX_LIST_ARGV characters in all at most. */
function cutArgv(argv: string[]): string[] {
  const out: string[] = [];
  let left = MAX_LIST_ARGV;
  for (const a of argv) {
    if (left <= 0) break;
    out.push(a.length <= left ? a : `${a.slice(0, Math.max(0, left - 1))}…`);
    left -= a.length;
  }
  return out;
}

export class DetachedJobs {
  private readonly jobs = new Map<number, Job>();
  /** Forgotten (tag reused) while attached: not listed, output and slot kept until the follower is done. */
  private readonly retired = new Set<Job>();
  private next = 1;
  private ends = 0;
  private reservedBytes = 0;

  constructor(private readonly limits: Limits) {}

  /** Starts a detached execution for `a` (an EXEC with `detach`), or answers EXIT error and returns undefined. */
  start(req: ExecSpec, a: Attachment, log: Log): Execution | undefined {
    this.expire();
    const refuse = (errno: string, message: string) => {
      log.error(`exec ${a.id} refused: ${message}`);
      void a.send(encodeJson(T.EXIT, a.id, { status: "error", errno, message })).catch(() => {});
      return undefined;
    };
    const tag = req.detach?.tag ?? null;
    const same = tag === null ? undefined : this.find({ tag });
    if (same && !same.output.result) return refuse("EEXIST", `a detached execution tagged "${tag}" is running (job ${same.job})`);
    const keep = req.detach?.keep ?? DEFAULT_KEEP;
    const reserve = keep * (req.pty || req.merge ? 1 : 2);
    if (reserve > this.limits.detachMemory) return refuse("EAGAIN", `keep of ${keep} bytes per stream is over the agent's ${this.limits.detachMemory}-byte budget for detached output (see --detach-memory)`);
    // Nothing is freed before every check has passed: a refused EXEC leaves other jobs' output alone.
    const victims = this.makeRoom(reserve, same);
    if (!victims) return refuse("EAGAIN", `too many detached executions keep output (limit ${this.limits.detached} jobs, ${this.limits.detachMemory} bytes; see --max-detached, --detach-memory)`);
    const shared = sharedQuotas(this.limits);
    if (!shared.execs.take()) return refuse("EAGAIN", `too many executions running in the agent (limit ${shared.execs.max}, see --max-execs)`);
    if (req.pty && !shared.ptys.take()) {
      shared.execs.give();
      return refuse("EAGAIN", `too many pseudo-terminals open in the agent (limit ${shared.ptys.max}, see --max-ptys)`);
    }
    if (same) this.forget(same);
    for (const v of victims) this.freeOutput(v);
    const number = this.nextNumber();
    const output = new JobOutput(number, tag, keep, a);
    const job: Job = { job: number, tag, argv: cutArgv(req.argv ?? ["/bin/sh", "-c", req.shell!]), startedAt: Date.now(), output, holds: true, reserved: reserve, exec: undefined as never };
    this.reservedBytes += reserve;
    job.exec = new Execution(a.id, req, output, (r) => {
      shared.execs.give();
      if (req.pty) shared.ptys.give();
      this.exited(job, r, log);
    });
    this.jobs.set(number, job);
    log.info(`exec ${a.id}: detached as job ${number}${tag ? ` (${tag})` : ""}, keeping ${keep} bytes per stream`);
    job.exec.start();
    return job.exec;
  }

  /** ATTACH: the execution `a` now follows, or undefined after answering DETACHED with the reason. */
  attach(req: AttachRequest, a: Attachment): Execution | undefined {
    this.expire();
    const job = this.find(req.ref);
    const refuse = (errno: string, message: string) => {
      void a.send(encodeJson(T.DETACHED, a.id, { errno, message })).catch(() => {});
      return undefined;
    };
    if (!job) return refuse("ENOENT", `no detached execution ${describe(req.ref)}`);
    const r = job.output.attach(a, req.from);
    if (typeof r === "string") return refuse("ERANGE", `job ${job.job}: ${r}`);
    return job.exec;
  }

  /** KILL: signals a running job's process group; the answer is DETACHED, with an errno if it was not sent. */
  kill(req: KillRequest, a: Attachment): void {
    this.expire();
    const job = this.find(req.ref);
    let body: Record<string, string> = {};
    if (!job) body = { errno: "ENOENT", message: `no detached execution ${describe(req.ref)}` };
    else if (job.output.result) body = { errno: "ESRCH", message: `job ${job.job} has already ended` };
    else job.exec.signalGroup(req.signal.signo);
    void a.send(encodeJson(T.DETACHED, a.id, body)).catch(() => {});
  }

  /** LISTING bodies for every job known, each under MAX_PAYLOAD; the last one says more:false. */
  listing(): { jobs: JobInfo[]; more: boolean }[] {
    this.expire();
    const pages: { jobs: JobInfo[]; more: boolean }[] = [];
    let page: JobInfo[] = [];
    let size = 0;
    for (const j of this.jobs.values()) {
      const info = this.info(j);
      // Each entry is small (argv is cut), so a page is cut well before MAX_PAYLOAD.
      const n = JSON.stringify(info).length * 3;
      if (size + n > MAX_PAYLOAD / 2 && page.length > 0) {
        pages.push({ jobs: page, more: true });
        page = [];
        size = 0;
      }
      page.push(info);
      size += n;
    }
    pages.push({ jobs: page, more: false });
    return pages;
  }

  /** The agent is stopping: nothing it started outlives it. */
  abortAll(): void {
    for (const j of this.jobs.values()) if (!j.output.result) j.exec.abort();
  }

  private info(j: Job): JobInfo {
    const o = j.output;
    const counts = (t: number) => ({ total: o.rings.get(t)!.total, kept: o.rings.get(t)!.kept });
    return {
      job: j.job,
      tag: j.tag,
      pid: o.pid,
      argv: j.argv,
      startedAt: j.startedAt,
      state: o.result ? "exited" : "running",
      ...(j.endedAt !== undefined ? { endedAt: j.endedAt } : {}),
      ...(o.result ? { exit: o.result } : {}),
      attached: o.attached,
      stdout: counts(T.STDOUT),
      stderr: counts(T.STDERR),
    };
  }

  /**
   * The finished jobs that give up their output so that a job reserving `reserve` bytes fits (first-ended
   * first; never one a connection is attached to), or undefined when it cannot fit. Frees nothing. The
   * finished job whose tag the new one reuses (`same`) is forgotten anyway: its place counts as free.
   */
  private makeRoom(reserve: number, same: Job | undefined): Job[] | undefined {
    const holders = [...this.jobs.values(), ...this.retired].filter((j) => j.holds);
    let slots = holders.length;
    let bytes = this.reservedBytes;
    if (same?.holds && !same.output.attached) {
      slots--;
      bytes -= same.reserved;
    }
    const fits = () => slots < this.limits.detached && bytes + reserve <= this.limits.detachMemory;
    const victims: Job[] = [];
    for (const j of this.endedOldestFirst(holders)) {
      if (fits()) break;
      if (j === same || j.output.attached) continue;
      victims.push(j);
      slots--;
      bytes -= j.reserved;
    }
    return fits() ? victims : undefined;
  }

  private exited(job: Job, r: ExitResult, log: Log): void {
    job.endedAt = Date.now();
    job.endedMono = monotonicMs();
    job.endOrder = ++this.ends;
    log.info(`job ${job.job}${job.tag ? ` (${job.tag})` : ""}: ${r.status === "exited" ? `exited ${r.code}` : r.status === "error" ? `failed to start: ${r.errno}` : `${r.status} ${r.signal}`}`);
    this.expire();
  }

  /** The finished ones among `jobs`, in the order they ended. */
  private endedOldestFirst(jobs: Iterable<Job>): Job[] {
    return [...jobs].filter((j) => j.endOrder !== undefined).sort((a, b) => a.endOrder! - b.endOrder!);
  }

  private find(ref: JobRef): Job | undefined {
    if ("job" in ref) return this.jobs.get(ref.job);
    // Newest first: a tag can belong to one running job, and to finished ones only until it is reused.
    return [...this.jobs.values()].reverse().find((j) => j.tag === ref.tag);
  }

  /**
   * Forgets finished jobs past EXITED_TTL_MS or beyond the EXITED_KEPT that ended last, and frees what
   * retired jobs held once their follower is done. A job a connection is attached to is kept: it is
   * forgotten at a later call, after its follower is done.
   */
  private expire(): void {
    for (const j of this.retired) if (!j.output.attached) this.forget(j);
    const now = monotonicMs();
    const ended = this.endedOldestFirst(this.jobs.values());
    let over = ended.length - EXITED_KEPT;
    for (const j of ended) {
      if (j.output.attached) continue;
      if (over > 0 || now - j.endedMono! > EXITED_TTL_MS) {
        this.forget(j);
        over--;
      }
    }
  }

  private freeOutput(j: Job): void {
    for (const r of j.output.rings.values()) r.clear();
    this.reservedBytes -= j.reserved;
    j.reserved = 0;
    j.holds = false;
  }

  /** No longer listed; its output is freed now, or once the connection attached to it is done. */
  private forget(j: Job): void {
    this.jobs.delete(j.job);
    if (j.output.attached) this.retired.add(j);
    else {
      this.retired.delete(j);
      this.freeOutput(j);
    }
  }

  private nextNumber(): number {
    while (this.next === 0 || this.jobs.has(this.next)) this.next = (this.next + 1) >>> 0;
    const n = this.next;
    this.next = (this.next + 1) >>> 0;
    return n;
  }
}

function describe(ref: JobRef): string {
  return "job" in ref ? `with job number ${ref.job}` : `tagged "${ref.tag}"`;
}

let registry: DetachedJobs | undefined;

/** The process's registry, made on first use from the configured limits. */
export function detachedJobs(limits: Limits = DEFAULT_LIMITS): DetachedJobs {
  registry ??= new DetachedJobs(limits);
  return registry;
}

/** For the shutdown path: the registry if one was made. */
export function existingDetachedJobs(): DetachedJobs | undefined {
  return registry;
}
