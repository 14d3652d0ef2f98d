// Process groups: the timeout and SIGNAL reach every process an execution started, and nothing of the
// group is left afterwards. STARTED's pid leads the group, so /proc tells who is still there.
import { describe, expect, test } from "bun:test";
import { v2Fixture } from "./_fixture.ts";
import { T, V2Host, json } from "./_host.ts";
import { groupGone, groupMembers, isAlive, ppid } from "../../helpers/proc.ts";

const fx = v2Fixture("vge-v2s-");

/** EXEC, then STARTED's pid once the group has `members` processes. */
async function started(n: number, req: object, members: number): Promise<number> {
  await fx.host.sendJson(T.EXEC, n, req);
  const pgid = (json(await fx.host.until((f) => f.id === n && f.type === T.STARTED)) as { pid: number }).pid;
  const end = performance.now() + 3000;
  while (groupMembers(pgid).length < members && performance.now() < end) await Bun.sleep(10);
  expect(groupMembers(pgid).length).toBeGreaterThanOrEqual(members);
  return pgid;
}

describe("timeout", () => {
  test("sh -c 'sleep 100 & sleep 100' with timeoutMs 500: EXIT timeout promptly, the whole group gone", async () => {
    const n = fx.id();
    const t0 = performance.now();
    const pgid = await started(n, { argv: ["sh", "-c", "sleep 100 & sleep 100"], timeoutMs: 500 }, 3);
    const r = await fx.host.exit(n, 5000);
    const ms = performance.now() - t0;
    expect(r.exit).toMatchObject({ status: "timeout", signal: "SIGKILL", signo: 9 });
    expect(ms).toBeGreaterThanOrEqual(450);
    expect(ms).toBeLessThan(3000);
    expect(await groupGone(pgid, 500)).toEqual([]);
  });

  test("killSignal SIGTERM: the result names it", async () => {
    const n = fx.id();
    const pgid = await started(n, { shell: "sleep 100", timeoutMs: 300, killSignal: "SIGTERM" }, 1);
    const r = await fx.host.exit(n, 5000);
    expect(r.exit).toMatchObject({ status: "timeout", signal: "SIGTERM", signo: 15 });
    expect(await groupGone(pgid, 500)).toEqual([]);
  });

  test("a catchable kill signal that is ignored still ends in SIGKILL after the grace period", async () => {
    const n = fx.id();
    const t0 = performance.now();
    // The shell and its child ignore SIGTERM; the agent must not wait forever.
    const pgid = await started(n, { shell: "trap '' TERM; sleep 100 & wait", timeoutMs: 200, killSignal: "SIGTERM" }, 2);
    const r = await fx.host.exit(n, 10_000);
    expect(r.exit.status).toBe("timeout");
    expect(performance.now() - t0).toBeLessThan(8000);
    expect(await groupGone(pgid, 1000)).toEqual([]);
  }, 15_000);

  test("a command that finishes first is not a timeout", async () => {
    const r = await fx.host.run(fx.id(), { argv: ["true"], timeoutMs: 5000 });
    expect(r.exit).toEqual({ status: "exited", code: 0 });
  });
});

describe("SIGNAL", () => {
  test("SIGTERM goes to the whole process group", async () => {
    const n = fx.id();
    const pgid = await started(n, { shell: "sleep 100 & sleep 100 & wait" }, 3);
    const members = groupMembers(pgid);
    await fx.host.sendJson(T.SIGNAL, n, { signal: "SIGTERM" });
    const r = await fx.host.exit(n, 3000);
    expect(r.exit).toEqual({ status: "signaled", signal: "SIGTERM", signo: 15 });
    expect(await groupGone(pgid, 1000)).toEqual([]);
    for (const pid of members) expect(isAlive(pid)).toBe(false);
  });

  test("a kill reaches grandchildren (a shell that runs a shell that runs sleep)", async () => {
    const n = fx.id();
    // Outer shell → inner shell → sleep: the sleep is the leader's grandchild.
    const pgid = await started(n, { shell: "sh -c 'sleep 100 & wait' & wait" }, 3);
    const members = groupMembers(pgid);
    const grandchild = members.find((pid) => ppid(pid) !== pgid && pid !== pgid);
    expect(grandchild).toBeDefined();
    await fx.host.sendJson(T.SIGNAL, n, { signal: "SIGKILL" });
    const r = await fx.host.exit(n, 3000);
    expect(r.exit).toEqual({ status: "signaled", signal: "SIGKILL", signo: 9 });
    expect(await groupGone(pgid, 1000)).toEqual([]);
    for (const pid of members) expect(isAlive(pid)).toBe(false);
  });

  test("a signal the process handles: it decides the result", async () => {
    const n = fx.id();
    await started(n, { shell: "trap 'echo got-usr1; exit 7' USR1; sleep 100 & wait" }, 2);
    await fx.host.sendJson(T.SIGNAL, n, { signal: "SIGUSR1" });
    const r = await fx.host.exit(n, 3000);
    expect(r.stdout).toBe("got-usr1\n");
    expect(r.exit).toEqual({ status: "exited", code: 7 });
  });

  // PROTOCOL.md names signals like "SIGTERM"; the agent also accepts "INT" (signalNumber tries SIG+name).
  // An accepted name must then be delivered, not dropped silently.
  test("the name without SIG works too", async () => {
    const n = fx.id();
    await started(n, { argv: ["sleep", "100"] }, 1);
    await fx.host.sendJson(T.SIGNAL, n, { signal: "INT" });
    expect((await fx.host.exit(n, 3000)).exit).toMatchObject({ status: "signaled", signal: "SIGINT" });
  });
});

describe("connection loss", () => {
  test("closing the connection kills that connection's executions", async () => {
    const h = await V2Host.connect(fx.sock);
    await h.hello();
    await h.sendJson(T.EXEC, 1, { shell: "sleep 100 & sleep 100 & wait" });
    const pgid = json(await h.until((f) => f.type === T.STARTED)).pid as number;
    const end = performance.now() + 3000;
    while (groupMembers(pgid).length < 3 && performance.now() < end) await Bun.sleep(10);
    h.close();
    expect(await groupGone(pgid, 2000)).toEqual([]);
  });
});
