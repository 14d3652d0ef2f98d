// Processes of an execution's group that outlive its leader (issue 14, defect 9). What the agent enforces
// (PROTOCOL.md §5.1, SECURITY.md): a timeout's SIGKILL follow-up reaches the group whatever the leader
// did; members still running after the leader's EXIT are killed when the connection ends or the agent
// stops. A process that left the group (setsid) is not contained: the test shows that too, as documented.
import { afterEach, expect, test } from "bun:test";
import { tempDir, type TempDir } from "../../helpers/tmp.ts";
import { childrenOf, isAlive, ppid } from "../../helpers/proc.ts";
import { listeningAgent, type Agent } from "./_agent.ts";
import { V2Host } from "./_host.ts";
import { T } from "../../../src/protocol/v2/frame.ts";

let dir: TempDir | undefined;
let agent: Agent | undefined;
let host: V2Host | undefined;
/** Pids the tests caused; any still alive at the end are killed by pid (never by name). */
const strays: number[] = [];

afterEach(async () => {
  host?.close();
  await agent?.stop();
  dir?.remove();
  for (const pid of strays.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone, as it should be.
    }
  }
});

async function start(): Promise<void> {
  dir = tempDir("vge-leftover-");
  agent = await listeningAgent(dir.file("agent.sock"));
  host = await V2Host.connect(dir.file("agent.sock"));
  await host.hello();
}

/** Polls until `pid` is gone; true if it went within `ms`. */
async function goneWithin(pid: number, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (isAlive(pid)) {
    if (performance.now() > end) return false;
    await Bun.sleep(20);
  }
  return true;
}

/** Runs `shell`, whose stdout's first line is a pid it left behind; returns that pid and the EXIT. */
async function leaveBehind(id: number, req: object): Promise<{ pid: number; exit: Record<string, unknown> }> {
  const r = await host!.run(id, req as never);
  const pid = Number(r.stdout.trim().split("\n")[0]);
  expect(pid).toBeGreaterThan(1);
  strays.push(pid);
  return { pid, exit: r.exit as never };
}

test("timeout with SIGTERM: the leader traps it and exits 0, its child ignores it; the SIGKILL after the grace still reaches the child", async () => {
  await start();
  const t0 = performance.now();
  const { pid, exit } = await leaveBehind(1, {
    shell: "(trap '' TERM; exec sleep 60 >/dev/null 2>&1) & echo $!; trap 'exit 0' TERM; wait",
    timeoutMs: 300,
    killSignal: "SIGTERM",
  });
  expect(exit).toMatchObject({ status: "timeout", signal: "SIGTERM", code: 0 });
  // It ignored the TERM: still there when the EXIT came.
  expect(isAlive(pid)).toBe(true);
  // The grace is 5 s from the timeout; the connection stays open, so only the follow-up can kill it.
  expect(await goneWithin(pid, 9000)).toBe(true);
  expect(performance.now() - t0).toBeGreaterThan(4500);
}, 20_000);

test("a group member left after the leader's normal EXIT is killed when the connection ends", async () => {
  await start();
  const { pid, exit } = await leaveBehind(1, { shell: "sleep 60 >/dev/null 2>&1 & echo $!" });
  expect(exit).toEqual({ status: "exited", code: 0 });
  // While the connection is open it runs on (a host may start something and use it).
  await Bun.sleep(300);
  expect(isAlive(pid)).toBe(true);
  host!.close();
  expect(await goneWithin(pid, 3000)).toBe(true);
  // The agent serves on.
  host = await V2Host.connect(dir!.file("agent.sock"));
  await host.hello();
  expect((await host.run(1, { shell: "echo ok" })).stdout).toBe("ok\n");
}, 20_000);

test("... and when the agent is stopped (SIGTERM) with the connection still open", async () => {
  await start();
  const { pid } = await leaveBehind(1, { shell: "sleep 60 >/dev/null 2>&1 & echo $!" });
  expect(isAlive(pid)).toBe(true);
  agent!.proc.kill("SIGTERM");
  expect(await agent!.exited).toBe(143);
  expect(await goneWithin(pid, 3000)).toBe(true);
}, 20_000);

test("many executions leaving members behind: all of them are killed when the connection ends", async () => {
  await start();
  const pids: number[] = [];
  for (let id = 1; id <= 100; id++) pids.push((await leaveBehind(id, { shell: "sleep 60 >/dev/null 2>&1 & echo $!" })).pid);
  // Half of them end on their own before the connection does: pruning them must not lose the others.
  for (const pid of pids.slice(0, 50)) process.kill(pid, "SIGKILL");
  for (const pid of pids.slice(0, 50)) expect(await goneWithin(pid, 3000)).toBe(true);
  for (let id = 101; id <= 200; id++) pids.push((await leaveBehind(id, { shell: "sleep 60 >/dev/null 2>&1 & echo $!" })).pid);
  host!.close();
  const end = performance.now() + 5000;
  let left = pids.filter(isAlive);
  while (left.length > 0 && performance.now() < end) {
    await Bun.sleep(50);
    left = left.filter(isAlive);
  }
  expect(left).toEqual([]);
}, 60_000);

// Without --cgroup the agent is the child subreaper and tracks each execution's processes (v2/track.ts):
// a setsid'd, double-forked daemon is reparented to the agent and ends with its execution, and the agent
// reaps it (no zombie among its children). Before, such a daemon outlived everything.
/** A daemon out of the group and session (setsid) and away from its parent (double fork); prints its pid. */
const DAEMON = "setsid sh -c 'sleep 60 >/dev/null 2>&1 & echo $!'";

/** The agent's children that are not the runtime's: zombies left for it to reap, or adopted orphans. */
function agentChildren(): { pid: number; state: string }[] {
  return childrenOf(agent!.pid).map((c) => ({ pid: c.pid, state: c.state }));
}

/** EXEC `shell` as `id` without waiting for its end; the first line of its stdout (the daemon's pid). */
async function startDaemon(h: V2Host, id: number, shell: string): Promise<number> {
  await h.sendJson(T.EXEC, id, { shell });
  await h.until(() => h.result(id).stdout.includes("\n"), 10_000, `the daemon's pid from ${id}`);
  const pid = Number(h.result(id).stdout.split("\n")[0]);
  strays.push(pid);
  return pid;
}

/** Polls until the agent has no child but `except`; what is left then. */
async function noChildrenWithin(ms: number, except: number[] = []): Promise<{ pid: number; state: string }[]> {
  const end = performance.now() + ms;
  const others = () => agentChildren().filter((c) => !except.includes(c.pid));
  let left = others();
  while (left.length > 0 && performance.now() < end) {
    await Bun.sleep(20);
    left = others();
  }
  return left;
}

test("without --cgroup: a setsid'd double-forked daemon ends with its execution (timeout, kill, connection end, SIGTERM; after a normal exit with the connection) and is reaped", async () => {
  await start();
  // The leader exits normally: what it left is the connection's, as its group's members are.
  const exited = await leaveBehind(1, { shell: DAEMON });
  expect(exited.exit).toEqual({ status: "exited", code: 0 });
  // A timeout.
  const timedOut = await leaveBehind(2, { shell: `${DAEMON}; sleep 60`, timeoutMs: 500 });
  expect(timedOut.exit).toMatchObject({ status: "timeout", signal: "SIGKILL" });
  expect(await goneWithin(timedOut.pid, 3000)).toBe(true);
  // SIGKILL from the host.
  const killedPid = await startDaemon(host!, 3, `${DAEMON}; sleep 60`);
  expect(isAlive(killedPid)).toBe(true);
  await host!.sendJson(T.SIGNAL, 3, { signal: "SIGKILL" });
  expect((await host!.exit(3)).exit).toMatchObject({ status: "signaled", signal: "SIGKILL" });
  expect(await goneWithin(killedPid, 3000)).toBe(true);
  // None of them left a zombie behind: the agent reaped what it adopted; the first one's daemon runs on.
  expect(await noChildrenWithin(3000, [exited.pid])).toEqual([]);
  expect(isAlive(exited.pid)).toBe(true);
  // The connection ends.
  const connPid = await startDaemon(host!, 4, `${DAEMON}; sleep 60`);
  // Adopted by the agent: its parent exited at once.
  expect({ exited: ppid(exited.pid), running: ppid(connPid) }).toEqual({ exited: agent!.pid, running: agent!.pid });
  host!.close();
  expect(await goneWithin(connPid, 3000)).toBe(true);
  expect(await goneWithin(exited.pid, 3000)).toBe(true);
  expect(await noChildrenWithin(3000)).toEqual([]);
  // The agent's SIGTERM.
  host = await V2Host.connect(dir!.file("agent.sock"));
  await host.hello();
  const termPid = await startDaemon(host, 5, `${DAEMON}; sleep 60`);
  agent!.proc.kill("SIGTERM");
  expect(await agent!.exited).toBe(143);
  expect(await goneWithin(termPid, 3000)).toBe(true);
}, 30_000);
