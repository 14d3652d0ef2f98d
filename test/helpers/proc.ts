// What /proc says about processes the tests started: their state, children, process groups, fds and
// resident memory. Tests that promise a bound (no leak, no zombie, memory within N MiB) measure it here.
import { readFileSync, readdirSync, readlinkSync } from "node:fs";

/** The fields of /proc/PID/stat the tests use; undefined once the process is gone. */
export function procStat(pid: number | string): { state: string; ppid: number; pgrp: number; comm: string } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may hold anything; the fields after it are: state, ppid, pgrp, ...
  const close = stat.lastIndexOf(")");
  const f = stat.slice(close + 2).split(" ");
  return { state: f[0]!, ppid: Number(f[1]), pgrp: Number(f[2]), comm: stat.slice(stat.indexOf("(") + 1, close) };
}

/** Every process there is, as pid and stat. */
function* processes(): Generator<{ pid: number; stat: NonNullable<ReturnType<typeof procStat>> }> {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = procStat(name);
    if (stat) yield { pid: Number(name), stat }; // else: gone while we looked
  }
}

const live = (state: string) => state !== "Z" && state !== "X";

/** Live (non-zombie) pids whose process group is `pgid`. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const p of processes()) if (p.stat.pgrp === pgid && live(p.stat.state)) out.push(p.pid);
  return out;
}

/** Polls until the group is empty; returns what is left after `ms`. */
export async function groupGone(pgid: number, ms = 2000): Promise<number[]> {
  const end = performance.now() + ms;
  for (;;) {
    const left = groupMembers(pgid);
    if (left.length === 0 || performance.now() > end) return left;
    await Bun.sleep(20);
  }
}

export function isAlive(pid: number): boolean {
  const s = procStat(pid);
  return !!s && live(s.state);
}

export function ppid(pid: number): number | undefined {
  return procStat(pid)?.ppid;
}

/** Resident set size in KiB, from /proc/PID/status; null once the process is gone. */
export function vmRssKiB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Voluntary context switches of `pid`'s main thread and its JS worker threads (Bun names them "Worker"),
 * summed: how often the program went to sleep and was woken. A timer-driven poll shows up here however
 * little CPU it takes; an fd wait in the kernel does not. The runtime's housekeeping threads (allocator
 * scavenger, GC helpers) wake on their own schedule and are left out, being no part of the program's design.
 */
export function wakeups(pid: number | "self"): number {
  const main = pid === "self" ? String(process.pid) : String(pid);
  let n = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      if (tid !== main && comm !== "Worker") continue;
      const m = /^voluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8"));
      n += m ? Number(m[1]) : 0;
    } catch {
      // the thread ended while we looked
    }
  }
  return n;
}

export interface Child {
  pid: number;
  /** One-letter state from /proc/PID/stat: "Z" is a zombie nobody has reaped. */
  state: string;
  comm: string;
}

export interface Footprint {
  fds: number;
  rssKiB: number;
  children: Child[];
}

/** Open fds of `pid`, counted in /proc/PID/fd. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** What readlink says each fd of `pid` is (socket:[…], pipe:[…], /dev/null…), for a failure message. */
export function fdTargets(pid: number): string[] {
  const out: string[] = [];
  for (const name of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(`${name} -> ${readlinkSync(`/proc/${pid}/fd/${name}`)}`);
    } catch {
      // closed while we looked
    }
  }
  return out;
}

/** Direct children of `pid`, zombies included (they are what a missing waitpid leaves behind). */
export function childrenOf(pid: number): Child[] {
  const out: Child[] = [];
  for (const p of processes()) if (p.stat.ppid === pid) out.push({ pid: p.pid, state: p.stat.state, comm: p.stat.comm });
  return out;
}

export function footprint(pid: number): Footprint {
  const rss = vmRssKiB(pid);
  if (rss === null) throw new Error(`process ${pid} is gone`);
  return { fds: fdCount(pid), rssKiB: rss, children: childrenOf(pid) };
}

/**
 * Polls until `pid` has no children and its fd count is at most `fds` (executions and connections wind
 * down asynchronously), or `ms` have passed; returns the footprint either way, for the caller to judge.
 */
export async function settled(pid: number, fds: number, ms = 3000): Promise<Footprint> {
  const end = performance.now() + ms;
  for (;;) {
    const fp = footprint(pid);
    if ((fp.children.length === 0 && fp.fds <= fds) || performance.now() > end) return fp;
    await Bun.sleep(50);
  }
}

/**
 * The footprint of `pid` once its fd count and children have held still for `quietMs` (at most `maxMs`):
 * a baseline taken while a connection that was just closed is still winding down in `pid` would be one
 * fd too high.
 */
export async function steady(pid: number, quietMs = 1000, maxMs = 10_000): Promise<Footprint> {
  const end = performance.now() + maxMs;
  let last = footprint(pid);
  let since = performance.now();
  for (;;) {
    await Bun.sleep(50);
    const fp = footprint(pid);
    if (fp.fds !== last.fds || fp.children.length !== last.children.length) since = performance.now();
    last = fp;
    if (performance.now() - since >= quietMs || performance.now() > end) return fp;
  }
}

/**
 * The lowest VmRSS of `pid`, sampled every 100 ms for `ms`; then on, up to `maxMs` in all, while it is
 * still above `belowKiB`. What a process gives back once idle (the runtime collects late): a leak stays.
 */
export async function lowestRss(pid: number, ms: number, opts: { belowKiB?: number; maxMs?: number } = {}): Promise<number> {
  const start = performance.now();
  let low = vmRssKiB(pid) ?? Infinity;
  for (;;) {
    const spent = performance.now() - start;
    if (spent >= ms && (opts.belowKiB === undefined || low <= opts.belowKiB || spent >= (opts.maxMs ?? ms))) return low;
    await Bun.sleep(100);
    low = Math.min(low, vmRssKiB(pid) ?? low);
  }
}
