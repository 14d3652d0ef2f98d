// Detached executions' bounds and bookkeeping (PROTOCOL.md §5.1) against the compiled agent, with hand-made
// frames: stdin credit belongs to the job, not to each follower (agent RSS measured over 120 takeovers);
// finished jobs are forgotten by end time and never while attached; every job counts against
// --max-detached, keep 0 too; a refused EXEC leaves other jobs' output alone; a tag's own job gives way.
import { expect, test } from "bun:test";
import { T } from "../../../src/protocol/v2/frame.ts";
import { vmRssKiB } from "../../helpers/proc.ts";
import { V2Host, json, type Json } from "./_host.ts";
import { AgentFixture, WINDOW, attach, list, seq, stdout } from "./_jobs.ts";

const fx = new AgentFixture();

/** Runs a detached job to its end on `h` and returns its job number. */
async function finished(h: V2Host, id: number, req: Json): Promise<number> {
  const r = await h.run(id, req as never);
  expect(r.exit).toEqual({ status: "exited", code: 0 });
  return json(h.of(id).find((f) => f.type === T.STARTED)!).job;
}

test("stdin credit belongs to the job: 120 takeovers of a job that never reads stdin queue at most one window (agent VmRSS measured)", async () => {
  const path = await fx.listening("vge-detach-stdin-");
  const h = await fx.host(path);
  expect((await h.run(1, { argv: ["echo", "warm"] })).stdout).toBe("warm\n");
  await h.sendJson(T.EXEC, 2, { argv: ["sleep", "60"], detach: { tag: "deaf" } });
  await h.until((f) => f.id === 2 && f.type === T.STARTED);
  const chunk = new Uint8Array(WINDOW).fill(0x61);
  // The starting connection's whole window: queued for a process that never reads it.
  await h.stdin(2, chunk);
  await Bun.sleep(300);
  const baseline = vmRssKiB(fx.agent!.pid)!;
  let granted = 0;
  for (let i = 0; i < 120; i++) {
    const id = 100 + i;
    const a = await attach(h, id, { tag: "deaf" });
    expect(a.type).toBe(T.ATTACHED);
    // Everything this follower may send, as a host that honours its credit does.
    const n = h.inputCredit(id);
    granted += n;
    if (n > 0) await h.stdin(id, chunk.subarray(0, n));
  }
  await Bun.sleep(500);
  const growthMiB = (vmRssKiB(fx.agent!.pid)! - baseline) / 1024;
  console.log(`120 takeovers of a job not reading stdin: ${(granted / 1024).toFixed(0)} KiB of stdin credit granted after the first window; agent VmRSS ${Math.round(baseline / 1024)} MiB, +${growthMiB.toFixed(1)} MiB`);
  // Before: every ATTACH granted a fresh window, 120 × 256 KiB = 30 MiB queued; VmRSS +37 MiB.
  // What the pipe took (64 KiB) came back as credit once; nothing more, however many followers came.
  expect(granted).toBeLessThanOrEqual(WINDOW);
  expect(growthMiB).toBeLessThan(12);
  // The last follower sending beyond the credit it was given: EFLOW, the job goes on.
  await h.send(T.STDIN, 219, new Uint8Array(1));
  expect(json(await h.until((f) => f.type === T.ERROR, 5000, "ERROR"))).toMatchObject({ code: "EFLOW" });
  const again = await fx.host(path);
  expect((await list(again, 1)).find((j) => j.tag === "deaf")).toMatchObject({ state: "running" });
  await again.sendJson(T.KILL, 2, { tag: "deaf", signal: "KILL" });
  expect(json(await again.until((f) => f.id === 2 && f.type === T.DETACHED))).toEqual({});
}, 60_000);

test("stdin credit moves to the new follower: what the old one queued is read, the new one is given the credit back and its bytes follow in order", async () => {
  const path = await fx.listening("vge-detach-stdin-move-");
  const h1 = await fx.host(path);
  // Reads nothing for a second, then echoes stdin.
  await h1.sendJson(T.EXEC, 1, { shell: "sleep 1; exec cat", detach: { tag: "slowcat" } });
  await h1.until((f) => f.id === 1 && f.type === T.STARTED);
  const first = new Uint8Array(WINDOW).fill(0x31);
  await h1.stdin(1, first);
  const h2 = await fx.host(path);
  const a = await attach(h2, 1, { tag: "slowcat" });
  expect(a.type).toBe(T.ATTACHED);
  expect(a.stdin).toBeLessThan(WINDOW);
  const second = new Uint8Array(WINDOW + 1000).fill(0x32);
  // Sent within the credit, which comes back to h2 as cat reads what h1 queued.
  await h2.stdin(1, second);
  await h2.send(T.STDIN_EOF, 1);
  const r = await h2.exit(1, 20_000);
  expect(r.exit).toEqual({ status: "exited", code: 0 });
  expect(r.stdout).toBe("1".repeat(WINDOW) + "2".repeat(WINDOW + 1000));
  expect(h1.of(1).some((f) => f.type === T.DETACHED)).toBe(true);
}, 30_000);

test("finished jobs are forgotten in the order they ended: a long job that ends after 260 short ones is listed and attachable", async () => {
  const path = await fx.listening("vge-detach-endorder-");
  const h1 = await fx.host(path);
  await h1.sendJson(T.EXEC, 1, { shell: "echo long; exec sleep 60", detach: { tag: "long" } });
  const { job } = json(await h1.until((f) => f.id === 1 && f.type === T.STARTED));
  await h1.waitFor(() => stdout(h1, 1) === "long\n", 5000, "output");
  h1.close();
  const h = await fx.host(path);
  for (let id = 10; id < 270; id++) await finished(h, id, { argv: ["true"], detach: {} });
  await h.sendJson(T.KILL, 2, { job, signal: "TERM" });
  expect(json(await h.until((f) => f.id === 2 && f.type === T.DETACHED))).toEqual({});
  let jobs: Json[] = [];
  for (let id = 1000; id < 1100; id++) {
    jobs = await list(h, id);
    if (jobs.find((j) => j.job === job)?.state !== "running") break;
    await Bun.sleep(100);
  }
  expect(jobs.filter((j) => j.state === "exited").length).toBe(256);
  expect(jobs.find((j) => j.job === job)).toMatchObject({ state: "exited", exit: { status: "signaled", signal: "SIGTERM" } });
  expect(await attach(h, 4, { job })).toMatchObject({ type: T.ATTACHED, stdout: { from: 0, dropped: 0 } });
  expect((await h.exit(4)).stdout).toBe("long\n");
}, 90_000);

/** A finished job with more output than one window, attached with the credit held: its replay is under way. */
async function replaying(path: string, tag: string): Promise<{ h: V2Host; id: number; all: string }> {
  const h = await fx.host(path);
  const all = seq(80_000);
  await finished(h, 1, { argv: ["seq", "1", "80000"], detach: { tag } });
  const id = 2;
  h.held.add(id);
  expect(await attach(h, id, { tag })).toMatchObject({ type: T.ATTACHED, stdout: { from: 0, dropped: 0 } });
  await h.waitFor(() => h.outputBytes(id) === WINDOW, 5000, "a window of replay");
  return { h, id, all };
}

test("a job being replayed keeps its output when its tag is reused: the follower gets every byte, then the EXIT", async () => {
  const path = await fx.listening("vge-detach-replay-tag-");
  const { h, id, all } = await replaying(path, "t");
  const other = await fx.host(path);
  const r = await other.run(1, { argv: ["echo", "new"], detach: { tag: "t" } } as never);
  expect(r.stdout).toBe("new\n");
  await h.release(id);
  const got = await h.exit(id);
  // Before: the old job's ring was freed; the rest of the replay came as empty frames, then the EXIT.
  expect(got.stdout.length).toBe(all.length);
  expect(got.stdout).toBe(all);
  expect(got.frames.filter((f) => f.type === T.STDOUT && f.payload.byteLength === 0)).toEqual([]);
}, 30_000);

test("a job being replayed is not forgotten when 260 newer jobs end: the follower gets every byte; it is listed until its follower is done", async () => {
  const path = await fx.listening("vge-detach-replay-kept-");
  const { h, id, all } = await replaying(path, "old");
  const other = await fx.host(path);
  for (let i = 10; i < 270; i++) await finished(other, i, { argv: ["true"], detach: {} });
  expect((await list(other, 1)).find((j) => j.tag === "old")).toMatchObject({ state: "exited", attached: true });
  await h.release(id);
  const got = await h.exit(id);
  expect(got.stdout.length).toBe(all.length);
  expect(got.stdout).toBe(all);
}, 90_000);

test("--max-detached counts every job, keep 0 too: the third of three keep-0 jobs with a limit of 2 gets EAGAIN", async () => {
  const path = await fx.listening("vge-detach-keep0-", ["--max-detached", "2"]);
  const h = await fx.host(path);
  for (const id of [1, 2]) {
    await h.sendJson(T.EXEC, id, { argv: ["sleep", "30"], detach: { keep: 0 } });
    await h.until((f) => f.id === id && f.type === T.STARTED);
  }
  const r = await h.run(3, { argv: ["sleep", "30"], detach: { keep: 0 } } as never);
  expect(r.exit).toMatchObject({ status: "error", errno: "EAGAIN" });
  expect((await list(h, 4)).length).toBe(2);
});

test("an EXEC refused for another quota (--max-execs) leaves finished jobs' output alone", async () => {
  const path = await fx.listening("vge-detach-refused-", ["--max-detached", "1", "--max-execs", "1"]);
  const h = await fx.host(path);
  const job = await finished(h, 1, { argv: ["seq", "1", "1000"], detach: { tag: "kept" } });
  // The one execution the agent may run.
  await h.sendJson(T.EXEC, 2, { argv: ["sleep", "30"] });
  await h.until((f) => f.id === 2 && f.type === T.STARTED);
  expect((await h.run(3, { argv: ["true"], detach: {} } as never)).exit).toMatchObject({ status: "error", errno: "EAGAIN" });
  expect(await attach(h, 4, { job })).toMatchObject({ type: T.ATTACHED, stdout: { from: 0, dropped: 0 } });
  expect((await h.exit(4)).stdout).toBe(seq(1000));
});

test("a tag's finished job gives its slot to the job that reuses the tag: no EAGAIN with every other slot running", async () => {
  const path = await fx.listening("vge-detach-tagslot-", ["--max-detached", "2"]);
  const h = await fx.host(path);
  await h.sendJson(T.EXEC, 1, { argv: ["sleep", "30"], detach: {} });
  await h.until((f) => f.id === 1 && f.type === T.STARTED);
  await finished(h, 2, { argv: ["echo", "one"], detach: { tag: "t" } });
  const r = await h.run(3, { argv: ["echo", "two"], detach: { tag: "t" } } as never);
  expect(r.exit).toEqual({ status: "exited", code: 0 });
  expect(r.stdout).toBe("two\n");
  const jobs = await list(h, 4);
  expect(jobs.filter((j) => j.tag === "t").map((j) => j.state)).toEqual(["exited"]);
  expect(jobs.length).toBe(2);
});
