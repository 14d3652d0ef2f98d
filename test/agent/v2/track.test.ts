// Process tracking without cgroups (src/agent/v2/track.ts) against a fake process table that behaves as
// the kernel does for a child subreaper: an exiting process's children are reparented to the agent, a dead
// child of the agent stays a zombie until it is reaped. No real process is signalled. The real kernel's
// behaviour is proven with the agent binary (track-binary.test.ts) and in a guest (test/guest/track.test.ts).
import { expect, test } from "bun:test";
import { parseStat, Tracking, type ProcFs, type ProcStat } from "../../../src/agent/v2/track.ts";

const AGENT = 1000;

class FakeProc implements ProcFs {
  readonly self = AGENT;
  readonly table = new Map<number, ProcStat>();
  private nextPid = AGENT + 1;
  ticks = 1;
  readonly killed: number[] = [];
  readonly reaped: number[] = [];

  /** A new process, child of `parent`, in the parent's session unless `setsid`. */
  fork(parent: number, setsid = false): number {
    const pid = this.nextPid++;
    const p = this.table.get(parent);
    const sid = setsid ? pid : (p?.sid ?? AGENT);
    this.table.set(pid, { ppid: parent, pgid: setsid ? pid : (p?.pgid ?? AGENT), sid, state: "S", start: this.ticks++ });
    return pid;
  }

  /** A process with a given (reused) pid. */
  reuse(pid: number, parent: number): void {
    this.table.set(pid, { ppid: parent, pgid: pid, sid: pid, state: "S", start: this.ticks++ });
  }

  /** The process ends: children to the agent (the subreaper); a zombie if the agent is its parent. */
  exit(pid: number): void {
    const p = this.table.get(pid);
    if (!p || p.state === "Z") return;
    for (const [c, s] of this.table) if (s.ppid === pid) s.ppid = AGENT;
    if (p.ppid === AGENT) p.state = "Z";
    else this.table.delete(pid);
  }

  stat(pid: number): ProcStat | undefined {
    const s = this.table.get(pid);
    return s ? { ...s } : undefined;
  }
  children(pid: number): number[] {
    return [...this.table].filter(([, s]) => s.ppid === pid).map(([p]) => p);
  }
  kill(pid: number): void {
    this.killed.push(pid);
    this.exit(pid);
  }
  reap(pid: number): boolean {
    const s = this.table.get(pid);
    if (!s || s.ppid !== AGENT || s.state !== "Z") return false;
    this.reaped.push(pid);
    this.table.delete(pid);
    return true;
  }
  nowTicks(): number {
    return this.ticks++;
  }
  alive(pid: number): boolean {
    return this.table.get(pid)?.state === "S";
  }
}

/** A leader spawned by the runtime (own: never reaped by the tracker), tracked. */
function spawnLeader(fs: FakeProc, t: Tracking) {
  const pid = fs.fork(AGENT, true);
  let exited!: () => void;
  t.spawned(pid, new Promise<void>((r) => (exited = r)));
  return { pid, tracked: t.track(pid), exited: () => exited() };
}

test("parseStat: fields after the last ')' (comm may hold spaces and parentheses); garbage is undefined", () => {
  const line = "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10 184467";
  expect(parseStat(line)).toEqual({ state: "S", ppid: 1, pgid: 4242, sid: 4242, start: 98765 });
  expect(parseStat("no parentheses")).toBeUndefined();
  expect(parseStat("1 (x) S 1 2")).toBeUndefined();
});

test("a double fork seen by a snapshot: killed at the execution's end, its zombie reaped; the leader is never reaped", () => {
  const fs = new FakeProc();
  const t = new Tracking(fs, 1e9, 1e9);
  const leader = spawnLeader(fs, t);
  const mid = fs.fork(leader.pid, true); // setsid sh
  const daemon = fs.fork(mid);
  t.sweep(); // the snapshot sees both
  fs.exit(mid); // the daemon is reparented to the agent
  expect(fs.stat(daemon)!.ppid).toBe(AGENT);
  fs.exit(leader.pid); // the leader: a zombie the runtime reaps
  leader.tracked.close();
  expect(fs.killed).toContain(daemon);
  expect(fs.table.has(daemon)).toBe(false);
  expect(fs.reaped).toEqual([daemon]);
  expect(fs.stat(leader.pid)!.state).toBe("Z");
});

test("an orphan adopted between two snapshots is the running execution's: killed at its end", () => {
  const fs = new FakeProc();
  const t = new Tracking(fs, 1e9, 1e9);
  const leader = spawnLeader(fs, t);
  const mid = fs.fork(leader.pid, true);
  const daemon = fs.fork(mid, true);
  fs.exit(mid); // before any snapshot
  t.sweep();
  expect(fs.alive(daemon)).toBe(true);
  leader.tracked.killAll();
  expect(fs.alive(daemon)).toBe(false);
});

test("an unseen orphan is not shared with a short command that had ended, empty, before it started: it dies with its own connection", () => {
  const fs = new FakeProc();
  // Ticks of 10 ms, as /proc's: the clock the tracker reads leaders' ends on follows the fake ticks.
  const t = new Tracking(fs, 1e9, 1e9, () => fs.ticks * 10);
  const connA = {};
  const connB = {};
  // Connection A: a short command that ran and ended, nothing left of it.
  const short = spawnLeader(fs, t);
  fs.exit(short.pid);
  t.handOver(short.tracked, connA);
  fs.ticks += 5;
  // Connection B: a leader that double-forks a daemon and exits before any snapshot.
  const b = spawnLeader(fs, t);
  const mid = fs.fork(b.pid, true);
  const daemon = fs.fork(mid);
  fs.exit(mid);
  fs.exit(b.pid);
  t.handOver(b.tracked, connB);
  fs.ticks += 5;
  t.sweep(); // adopts the daemon
  expect(fs.alive(daemon)).toBe(true);
  t.killLeftovers(connB);
  expect(fs.alive(daemon)).toBe(false);
});

test("two running executions: what one's snapshot saw ends with it; an unseen orphan lives until both have ended", () => {
  const fs = new FakeProc();
  const t = new Tracking(fs, 1e9, 1e9);
  const a = spawnLeader(fs, t);
  const b = spawnLeader(fs, t);
  const seenMid = fs.fork(b.pid);
  const seen = fs.fork(seenMid, true);
  t.sweep();
  fs.exit(seenMid);
  const unseenMid = fs.fork(b.pid);
  const unseen = fs.fork(unseenMid, true);
  fs.exit(unseenMid);
  t.sweep(); // `unseen` may be a's or b's: both keep it
  fs.exit(b.pid);
  b.tracked.close();
  expect({ seen: fs.alive(seen), unseen: fs.alive(unseen) }).toEqual({ seen: false, unseen: true });
  fs.exit(a.pid);
  a.tracked.close();
  expect(fs.alive(unseen)).toBe(false);
  expect(fs.children(AGENT).filter((p) => fs.stat(p)!.state === "Z").sort()).toEqual([a.pid, b.pid]);
});

test("pid reuse: a known pid now held by another process (another start time) is not killed", () => {
  const fs = new FakeProc();
  const t = new Tracking(fs, 1e9, 1e9);
  const leader = spawnLeader(fs, t);
  const child = fs.fork(leader.pid);
  t.sweep();
  fs.exit(child);
  fs.reuse(child, 1); // someone else's process, same pid
  leader.tracked.killAll();
  expect(fs.killed).not.toContain(child);
  expect(fs.alive(child)).toBe(true);
});

test("an orphan of an ended execution found later is killed; one older than every execution is left alone but reaped when it ends", () => {
  const fs = new FakeProc();
  const t = new Tracking(fs, 1e9, 1e9);
  const legacy = fs.fork(AGENT, true);
  const legacyDaemon = fs.fork(legacy, true);
  fs.exit(legacy); // adopted before any execution: a legacy command's daemon, say
  const leader = spawnLeader(fs, t);
  fs.exit(leader.pid);
  leader.tracked.close();
  // Started while the execution ran (a fork racing its end), it turns up as the agent's child only now.
  const late = fs.fork(AGENT, true);
  fs.table.get(late)!.start = leader.tracked.leaderStart + 1;
  t.sweep();
  expect(fs.alive(late)).toBe(false);
  t.sweep();
  expect(fs.table.has(late)).toBe(false);
  expect(fs.alive(legacyDaemon)).toBe(true);
  fs.exit(legacyDaemon);
  t.sweep();
  expect(fs.table.has(legacyDaemon)).toBe(false);
});

test("own children (leaders, legacy commands) are never reaped by the tracker, even as zombies", async () => {
  const fs = new FakeProc();
  const t = new Tracking(fs, 1e9, 1e9);
  const leader = spawnLeader(fs, t);
  fs.exit(leader.pid);
  t.sweep();
  leader.tracked.close();
  expect(fs.reaped).toEqual([]);
  leader.exited(); // the runtime reaped it
  await Bun.sleep(0);
  fs.table.delete(leader.pid);
});

test("a process forking while it is killed: its child is killed by the next pass", () => {
  const fs = new FakeProc();
  const t = new Tracking(fs, 1e9, 1e9);
  const leader = spawnLeader(fs, t);
  const parent = fs.fork(leader.pid, true);
  t.sweep();
  // The fake's kill of `parent` forks first: the child appears as the parent dies.
  const kill = fs.kill.bind(fs);
  let forked = 0;
  fs.kill = (pid: number) => {
    if (pid === parent) forked = fs.fork(parent);
    kill(pid);
  };
  leader.tracked.close();
  expect(forked).toBeGreaterThan(0);
  expect(fs.alive(forked)).toBe(false);
});

test("the sweep timer: snapshots while an execution runs, none once nothing is left", async () => {
  const fs = new FakeProc();
  const t = new Tracking(fs, 5, 20);
  let sweeps = 0;
  const sweep = t.sweep.bind(t);
  t.sweep = () => {
    sweeps++;
    sweep();
  };
  const leader = spawnLeader(fs, t);
  const mid = fs.fork(leader.pid, true);
  await Bun.sleep(60);
  const daemon = fs.fork(mid);
  await Bun.sleep(60);
  fs.exit(mid); // seen by a timed snapshot before this
  expect(sweeps).toBeGreaterThan(3);
  fs.exit(leader.pid);
  leader.tracked.close();
  expect(fs.alive(daemon)).toBe(false);
  leader.exited();
  await Bun.sleep(100);
  expect(fs.table.has(daemon)).toBe(false);
  const after = sweeps;
  await Bun.sleep(100);
  expect(sweeps).toBe(after);
});

test("leader exit: what it left is handed to its owner, killed with killLeftovers(owner) or killLeftovers(); others' stay", () => {
  const fs = new FakeProc();
  const t = new Tracking(fs, 1e9, 1e9);
  const connA = {};
  const connB = {};
  const a = spawnLeader(fs, t);
  const b = spawnLeader(fs, t);
  const c = spawnLeader(fs, t);
  const [da, db, dc] = [a, b, c].map((x) => fs.fork(x.pid));
  t.sweep();
  for (const [x, owner] of [[a, connA], [b, connB], [c, undefined]] as const) {
    fs.exit(x.pid);
    t.handOver(x.tracked, owner);
  }
  expect([da, db, dc].map((p) => fs.alive(p!))).toEqual([true, true, true]);
  t.killLeftovers(connA);
  expect([da, db, dc].map((p) => fs.alive(p!))).toEqual([false, true, true]);
  t.killLeftovers();
  expect([da, db, dc].map((p) => fs.alive(p!))).toEqual([false, false, false]);
  t.sweep();
  expect([da, db, dc].some((p) => fs.table.has(p!))).toBe(false);
});

test("leftovers that all end on their own stop being tracked (the tracker does not grow with finished executions)", () => {
  const fs = new FakeProc();
  // slowMs 0: leftovers are walked at every sweep.
  const t = new Tracking(fs, 1e9, 0);
  for (let i = 0; i < 100; i++) {
    const x = spawnLeader(fs, t);
    const d = fs.fork(x.pid);
    t.sweep();
    fs.exit(x.pid);
    t.handOver(x.tracked, {});
    fs.exit(d);
    fs.table.delete(x.pid); // the runtime reaped the leader
    t.sweep();
    expect(x.tracked.running).toBe(true); // an orphan of its last process may still turn up
    t.sweep();
    expect(x.tracked.running).toBe(false);
  }
  expect(fs.table.size).toBe(0);
});

test("an unseen orphan goes to the executions whose leader runs, not to leftovers of finished ones", () => {
  const fs = new FakeProc();
  const t = new Tracking(fs, 1e9, 1e9);
  const done = spawnLeader(fs, t);
  fs.exit(done.pid);
  t.handOver(done.tracked, {});
  const running = spawnLeader(fs, t);
  const mid = fs.fork(running.pid, true);
  const daemon = fs.fork(mid);
  fs.exit(mid);
  t.sweep();
  expect({ running: running.tracked.known.has(daemon), done: done.tracked.known.has(daemon) }).toEqual({ running: true, done: false });
  running.tracked.killAll();
  expect(fs.alive(daemon)).toBe(false);
});
