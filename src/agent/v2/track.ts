// Best-effort containment without cgroups: the agent is the child subreaper (sys/proc.ts), so every
// process that an execution's tree orphans (a double fork, a setsid'd daemon whose parent exited) is
// reparented to the agent instead of init. Each execution's descendants are snapshotted through
// /proc/PID/task/*/children while it runs (every FAST_MS at first, less often as it ages; pid reuse ruled out by the start time), and an
// orphan the agent adopts is given to every running execution that had started before it. On a timeout,
// a kill, the end of its connection or the agent's SIGTERM, what is known to be an execution's and no
// other running one's is SIGKILLed, and the agent reaps what it adopted (it is their parent now: nobody
// else would, and they would stay zombies). As for its process group (groups.ts), what is left when the
// leader exits normally is the connection's until it ends (a detached job's: the agent's until it stops).
//
// What this cannot do (SECURITY.md "Without cgroups"): an orphan adopted while several executions run
// lives until the last of them ends; a process that left the tree between two snapshots and was adopted
// while no execution that could own it still runs is killed at the next sweep, not at once; a process
// that is reparented to another subreaper below the agent, or that the tree hands to a process outside it
// (e.g. through a service manager), is never seen; no limits, no usage beyond rusage.
// All /proc access goes through ProcFs, so that the logic is tested with a fake process table.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { reapChild } from "../../sys/index.ts";

export interface ProcStat {
  ppid: number;
  pgid: number;
  sid: number;
  /** R, S, D, Z, ... */
  state: string;
  /** Clock ticks after boot (field 22): with the pid, names one process for good. */
  start: number;
}

/** What the tracker needs of /proc and of the kernel; `nodeProcFs` is the real one. */
export interface ProcFs {
  readonly self: number;
  stat(pid: number): ProcStat | undefined;
  /** Children of every thread of `pid`. */
  children(pid: number): number[];
  /** SIGKILL; a process that is gone is no error. */
  kill(pid: number): void;
  /** waitpid(pid, WNOHANG) of a zombie child: true when reaped. */
  reap(pid: number): boolean;
  /** Now, in the clock ticks of ProcStat.start. */
  nowTicks(): number;
}

/** /proc/PID/stat: "pid (comm) state ppid pgrp session ...", comm may hold spaces and parentheses. */
export function parseStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const f = text.slice(close + 2).split(" ");
  // f[0] is field 3 (state); field 22 (starttime) is f[19].
  const [ppid, pgid, sid, start] = [f[1], f[2], f[3], f[19]].map(Number);
  if (!f[0] || [ppid, pgid, sid, start].some((n) => !Number.isSafeInteger(n))) return undefined;
  return { state: f[0], ppid: ppid!, pgid: pgid!, sid: sid!, start: start! };
}

/** USER_HZ: the unit of /proc's start times, 100 on every Linux ABI the agent is built for. */
const TICKS_PER_S = 100;
let childrenFiles: boolean | undefined;

export const nodeProcFs: ProcFs = {
  self: process.pid,
  stat(pid) {
    try {
      return parseStat(readFileSync(`/proc/${pid}/stat`, "latin1"));
    } catch {
      return undefined;
    }
  },
  children(pid) {
    // A kernel without CONFIG_PROC_CHILDREN has no children files: then every process's parent is read
    // instead. Decided once, on the agent's own main thread (a process that ended meanwhile is ENOENT too).
    childrenFiles ??= existsSync(`/proc/self/task/${process.pid}/children`);
    if (childrenFiles) {
      const out: number[] = [];
      try {
        for (const tid of readdirSync(`/proc/${pid}/task`)) {
          try {
            for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, "latin1").split(" ")) if (c) out.push(Number(c));
          } catch {
            // That thread ended while we looked.
          }
        }
      } catch {
        // The process ended.
      }
      return out;
    }
    const out: number[] = [];
    for (const name of readdirSync("/proc")) {
      if (/^\d+$/.test(name) && nodeProcFs.stat(Number(name))?.ppid === pid) out.push(Number(name));
    }
    return out;
  },
  kill(pid) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone already.
    }
  },
  reap(pid) {
    try {
      return reapChild(pid);
    } catch {
      return false;
    }
  },
  nowTicks() {
    return Math.ceil(Number(readFileSync("/proc/uptime", "latin1").split(" ")[0]) * TICKS_PER_S) + 1;
  },
};

/** While executions run: a snapshot of their trees this often at first (see Tracking.schedule). */
export const FAST_MS = 50;
/** The slowest pace: long-running executions, and adopted orphans (of legacy commands, say) to reap. */
export const SLOW_MS = 1000;
/** Ended executions remembered (their lifetimes), to kill an orphan that escaped them. */
const WINDOWS = 256;

/** One execution's known processes, pid → start time; the leader among them. */
export class Tracked {
  readonly known = new Map<number, number>();
  private open = true;
  /** Set once its leader has exited: whose its leftovers are (a connection; undefined for a detached job). */
  leftoverOf: { owner: object | undefined } | undefined;
  /** Leftover walks in a row that found nothing alive (Tracking.sweep). */
  emptyWalks = 0;
  /** When its leader exited (Tracking's clock, ms), once it has. */
  leaderEndedAt: number | undefined;
  readonly startedAt = performance.now();

  constructor(
    private readonly t: Tracking,
    readonly leader: number,
    readonly leaderStart: number,
  ) {
    this.known.set(leader, leaderStart);
  }

  /** Adds every live descendant of what is known; forgets what has ended. */
  walk(): void {
    const fs = this.t.fs;
    const queue = [...this.known.keys()];
    const seen = new Set(queue);
    for (let i = 0; i < queue.length; i++) {
      const pid = queue[i]!;
      const st = fs.stat(pid);
      // Gone, its pid reused, or a zombie (it runs nothing; its children went to the agent).
      if (!st || st.start !== this.known.get(pid) || st.state === "Z") {
        this.known.delete(pid);
        continue;
      }
      for (const c of fs.children(pid)) {
        if (seen.has(c)) continue;
        const cs = fs.stat(c);
        if (!cs) continue;
        seen.add(c);
        this.known.set(c, cs.start);
        queue.push(c);
      }
    }
  }

  /**
   * SIGKILLs what is known to be this execution's and no other running one's, orphans adopted since the
   * last snapshot included; the count killed.
   */
  killAll(): number {
    if (!this.open) return 0;
    this.walk();
    this.t.adopt();
    let n = 0;
    for (const [pid, start] of this.known) {
      const st = this.t.fs.stat(pid);
      if (!st || st.start !== start || st.state === "Z" || this.t.sharedWithOthers(this, pid, start)) continue;
      this.t.fs.kill(pid);
      n++;
    }
    return n;
  }

  /**
   * The execution has ended: its processes are killed, twice (a child forked while its parent was killed
   * is caught by the second pass, or, once adopted, by the sweep that follows). `sweep` false: the
   * caller sweeps once after closing many.
   */
  close(sweep = true): void {
    if (!this.open) return;
    if (this.killAll() > 0) this.killAll();
    this.open = false;
    this.t.closed(this, sweep);
  }

  /** Ended with nothing left to kill (sweep()). */
  forget(): void {
    this.open = false;
  }

  get running(): boolean {
    return this.open;
  }
}

/** The agent's executions and the orphans it adopted. */
export class Tracking {
  private readonly live = new Set<Tracked>();
  /** Children the runtime spawned and waits for itself (execution leaders, legacy commands): never reaped here. */
  private readonly own = new Set<number>();
  private readonly windows: { from: number; to: number }[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerMs = 0;
  private leftoversWalked = -Infinity;
  private adopted = 0;
  /** Executions ended so far: an end is followed by a fast sweep. */
  private endedSince = 0;

  constructor(
    readonly fs: ProcFs,
    private readonly fastMs = FAST_MS,
    private readonly slowMs = SLOW_MS,
    /** The clock leaders' ends are read on (tests pass one in step with their fake ticks). */
    private readonly nowMs = () => performance.now(),
  ) {}

  /** A child the runtime spawned: never reaped here, not an orphan; `exited` when the runtime has reaped it. */
  spawned(pid: number, exited: Promise<unknown>): void {
    this.own.add(pid);
    void exited.finally(() => this.own.delete(pid));
    this.schedule();
  }

  /** Starts tracking an execution whose leader (spawned()) is `leader`. */
  track(leader: number): Tracked {
    const t = new Tracked(this, leader, this.fs.stat(leader)?.start ?? 0);
    this.live.add(t);
    this.schedule();
    return t;
  }

  /** True if another running execution also knows this process (an orphan adopted while both ran). */
  sharedWithOthers(me: Tracked, pid: number, start: number): boolean {
    for (const t of this.live) if (t !== me && t.known.get(pid) === start) return true;
    return false;
  }

  /**
   * The leader has exited: what it left running is `owner`'s until killLeftovers(owner) (the connection
   * ends) or killLeftovers() (the agent stops), as for its process group (groups.ts); it stays tracked.
   */
  handOver(t: Tracked, owner: object | undefined): void {
    if (!t.running) return;
    t.leftoverOf = { owner };
    t.leaderEndedAt = this.nowMs();
  }

  /** Kills and reaps the leftovers of `owner`, or with no argument all of them. */
  killLeftovers(...owner: [object] | []): void {
    let n = 0;
    for (const t of [...this.live]) {
      if (!t.leftoverOf || (owner.length > 0 && t.leftoverOf.owner !== owner[0])) continue;
      t.close(false);
      n++;
    }
    if (n > 0) this.sweep();
  }

  closed(t: Tracked, sweep: boolean): void {
    this.live.delete(t);
    this.windows.push({ from: t.leaderStart, to: this.fs.nowTicks() });
    if (this.windows.length > WINDOWS) this.windows.shift();
    this.endedSince++;
    if (sweep) this.sweep();
    this.schedule(true);
  }

  /**
   * One pass: each running execution's tree is snapshotted; each orphan the agent adopted is reaped if
   * it ended, given to the running executions that could have started it, or killed if only ended
   * executions could have; an orphan older than all of them (not from an execution) is left alone.
   */
  sweep(): void {
    // Leftovers (leader gone) are walked at the slow pace: they are many after a busy connection.
    const now = performance.now();
    const leftovers = now - this.leftoversWalked >= this.slowMs;
    if (leftovers) this.leftoversWalked = now;
    for (const t of this.live) if (!t.leftoverOf || leftovers) t.walk();
    this.adopt();
    if (!leftovers) return;
    for (const t of [...this.live]) {
      // Leftovers that have all ended on their own, at two walks in a row (an orphan their last process
      // made is adopted in between): nothing left to kill, stop following them.
      if (!t.leftoverOf) continue;
      t.emptyWalks = t.known.size === 0 ? t.emptyWalks + 1 : 0;
      if (t.emptyWalks >= 2) {
        this.live.delete(t);
        t.forget();
      }
    }
  }

  /**
   * Whether `t` may have started a process that started at tick `start` as pid `pid`: its leader started
   * before. Start times are in ticks of 10 ms; within one tick, pids (handed out in increasing order until
   * they wrap) decide.
   */
  private startedBefore(t: Tracked, pid: number, start: number): boolean {
    return t.leaderStart < start || (t.leaderStart === start && t.leader < pid);
  }

  /**
   * Whether `t` may still have made a process that started at tick `start`: its leader runs, or it ended at
   * most a tick (start times are rounded to 10 ms) before that, or something of its tree is alive.
   */
  private mayHaveMade(t: Tracked, start: number): boolean {
    if (t.leaderEndedAt === undefined) return true;
    const endTicks = this.fs.nowTicks() - Math.floor((this.nowMs() - t.leaderEndedAt) / (1000 / TICKS_PER_S));
    if (start <= endTicks + 1) return true;
    t.walk();
    return t.known.size > 0;
  }

  /** The orphans part of sweep(): reaped, attributed, or killed. */
  adopt(): void {
    let adopted = 0;
    for (const pid of this.fs.children(this.fs.self)) {
      if (this.own.has(pid)) continue;
      const st = this.fs.stat(pid);
      if (!st) continue;
      if (st.state === "Z") {
        this.fs.reap(pid);
        continue;
      }
      adopted++;
      if ([...this.live].some((t) => t.known.get(pid) === st.start)) continue;
      // Seen by no snapshot: it left its execution's tree between two. Any execution that ran when it
      // started may own it; it is killed only when the last of them has ended. Those whose leader still
      // runs come first: a tree whose leader is gone (leftovers) seldom orphans anything more.
      // A tree whose leader had exited before the orphan started, and in which nothing is left alive (walked
      // now), cannot have made it: without that, every short command of a busy connection that ended in the
      // last second or two would share the orphan and keep it alive until that connection ends too.
      const could = [...this.live].filter((t) => this.startedBefore(t, pid, st.start) && this.mayHaveMade(t, st.start));
      const running = could.filter((t) => !t.leftoverOf);
      const owners = running.length > 0 ? running : could;
      for (const t of owners) t.known.set(pid, st.start);
      if (!owners.length && this.windows.some((w) => w.from <= st.start && st.start <= w.to)) this.fs.kill(pid);
    }
    this.adopted = adopted;
  }

  /**
   * Sweeps every fastMs while executions run or one has just ended (what it left is reaped at once), every
   * slowMs while only adopted orphans or own children live, not at all when there is nothing.
   */
  private schedule(soon = false): void {
    // While executions run: every fastMs at first (a daemon is made in an execution's first moments),
    // then a quarter of the youngest one's age, up to slowMs: a long job costs about 1 wake-up a second,
    // and an orphan it makes later is still attributed when adopted (adopt()).
    let youngest = Infinity;
    for (const t of this.live) if (!t.leftoverOf) youngest = Math.min(youngest, performance.now() - t.startedAt);
    const running = youngest < Infinity ? Math.min(this.slowMs, Math.max(this.fastMs, youngest / 4)) : 0;
    const next = soon ? this.fastMs : running || (this.live.size > 0 || this.adopted > 0 || this.own.size > 0 ? this.slowMs : 0);
    if (this.timer && (next === 0 || this.timerMs <= next)) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!next) return;
    this.timerMs = next;
    const ended = this.endedSince;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sweep();
      // One more fast sweep after an execution ended: its killed processes are zombies to reap by then.
      this.schedule(this.endedSince !== ended);
    }, next);
    // The agent's life does not hang on it; what keeps the agent up (its connection, its executions) does.
    this.timer.unref();
  }
}
