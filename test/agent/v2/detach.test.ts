// Detached executions (PROTOCOL.md §5.1) against the compiled agent, with hand-made frames: a job survives
// its host's connection, a later connection attaches and gets every byte (or the count of what was
// dropped) and the exit status; the rings are bounded in memory (measured); a hostile host's bad tags,
// keeps and offsets are refused with EPROTO; LIST is bounded.
import { describe, expect, test } from "bun:test";
import { createServer, type Server } from "node:net";
import { MAGIC, T, encodeJson } from "../../../src/protocol/v2/frame.ts";
import { tempDir } from "../../helpers/tmp.ts";
import { dialingAgent } from "./_agent.ts";
import { V2Host, json, type Json } from "./_host.ts";
import { AgentFixture, attach, list, seq, stdout } from "./_jobs.ts";
import { groupGone, isAlive, vmRssKiB } from "../../helpers/proc.ts";

const fx = new AgentFixture();

describe("a hostile host's detach, ATTACH, KILL and LIST fields: ERROR EPROTO, the agent serves on", () => {
  const exec = (detach: unknown) => encodeJson(T.EXEC, 1, { argv: ["true"], detach });
  const cases: [string, Uint8Array][] = [
    ["detach not an object", exec("yes")],
    ["tag empty", exec({ tag: "" })],
    ["tag with a space", exec({ tag: "a b" })],
    ["tag with an escape sequence", exec({ tag: "a\u001b[2J" })],
    ["tag of 65 characters", exec({ tag: "a".repeat(65) })],
    ["tag starting with a dot", exec({ tag: ".x" })],
    ["tag a number", exec({ tag: 7 })],
    ["keep -1", exec({ keep: -1 })],
    ["keep 1.5", exec({ keep: 1.5 })],
    ["keep over 64 MiB", exec({ keep: 64 * 1048576 + 1 })],
    ["keep a string", exec({ keep: "1M" })],
    ["ATTACH with tag and job", encodeJson(T.ATTACH, 2, { tag: "x", job: 1 })],
    ["ATTACH with neither", encodeJson(T.ATTACH, 2, {})],
    ["ATTACH job 0", encodeJson(T.ATTACH, 2, { job: 0 })],
    ["ATTACH from.stdout -1", encodeJson(T.ATTACH, 2, { tag: "x", from: { stdout: -1 } })],
    ["ATTACH from.stderr 2^53", encodeJson(T.ATTACH, 2, { tag: "x", from: { stderr: 2 ** 53 } })],
    ["ATTACH from.stdout 0.5", encodeJson(T.ATTACH, 2, { tag: "x", from: { stdout: 0.5 } })],
    ["ATTACH from a number", encodeJson(T.ATTACH, 2, { tag: "x", from: 5 })],
    ["KILL SIGFOO", encodeJson(T.KILL, 3, { tag: "x", signal: "SIGFOO" })],
    ["KILL without a job", encodeJson(T.KILL, 3, { signal: "SIGTERM" })],
    ["LIST id 0", encodeJson(T.LIST, 0, {})],
  ];
  test.each(cases)("%s", async (_name, frame) => {
    const path = await fx.listening("vge-detach-bad-");
    const h = await fx.host(path);
    await h.write(frame);
    const err = await h.until((f) => f.type === T.ERROR, 5000, "ERROR");
    expect(json(err).code).toBe("EPROTO");
    expect(await h.closedWithin(2000)).toBe(true);
    expect(h.frames.filter((f) => f.type === T.EXIT || f.type === T.STARTED)).toEqual([]);
    const again = await fx.host(path);
    expect((await again.run(1, { argv: ["echo", "still here"] })).stdout).toBe("still here\n");
  });
});

test("ATTACH and KILL of an unknown tag or job: DETACHED ENOENT naming it; an offset beyond the output: ERANGE; the connection goes on", async () => {
  const path = await fx.listening("vge-detach-unknown-");
  const h = await fx.host(path);
  const a = await attach(h, 1, { tag: "nosuch" });
  expect(a).toMatchObject({ type: T.DETACHED, errno: "ENOENT" });
  expect(a.message).toContain('"nosuch"');
  await h.sendJson(T.KILL, 2, { job: 99, signal: "TERM" });
  expect(json(await h.until((f) => f.id === 2 && f.type === T.DETACHED))).toMatchObject({ errno: "ENOENT" });
  await h.run(3, { argv: ["echo", "hi"], detach: { tag: "short" } } as never);
  const r = await attach(h, 4, { tag: "short", from: { stdout: 4 } });
  expect(r).toMatchObject({ type: T.DETACHED, errno: "ERANGE" });
  expect((await h.run(5, { argv: ["echo", "on"] })).stdout).toBe("on\n");
});

test("a detached job survives its host's close; a new connection attaches and gets every byte in order, then the exit status", async () => {
  const path = await fx.listening("vge-detach-survive-");
  const first = await fx.host(path);
  // About 3 s of output, a line every 10 ms.
  await first.sendJson(T.EXEC, 1, { shell: "for i in $(seq 1 300); do echo $i; sleep 0.01; done; exit 7", detach: { tag: "counter" } });
  // Copied: bun's toMatchObject with expect.any() replaces the matched property of the object it checks.
  const started = { ...json(await first.until((f) => f.id === 1 && f.type === T.STARTED)) };
  expect({ ...started }).toMatchObject({ job: expect.any(Number), tag: "counter" });
  await first.waitFor(() => stdout(first, 1).split("\n").length > 20, 5000, "some output");
  const seen = Buffer.byteLength(stdout(first, 1));
  first.close();
  await Bun.sleep(500);
  expect(isAlive(started.pid)).toBe(true);

  const second = await fx.host(path);
  const jobs = await list(second, 1);
  expect(jobs).toHaveLength(1);
  expect(jobs[0]).toMatchObject({ job: started.job, tag: "counter", pid: started.pid, state: "running", attached: false, argv: ["/bin/sh", "-c", expect.stringContaining("seq 1 300")] });
  // From where the first host stopped: the two halves together are the whole output, nothing twice.
  const a = await attach(second, 2, { tag: "counter", from: { stdout: seen } });
  expect(a).toMatchObject({ type: T.ATTACHED, job: started.job, pid: started.pid, state: "running", stdout: { from: seen, dropped: 0 }, stderr: { from: 0, dropped: 0 } });
  const r = await second.exit(2, 10_000);
  expect(r.exit).toEqual({ status: "exited", code: 7 });
  expect(stdout(first, 1) + r.stdout).toBe(seq(300));
  // Listed after its end, with its result.
  const after = await list(second, 3);
  expect(after[0]).toMatchObject({ state: "exited", exit: { status: "exited", code: 7 }, stdout: { total: seq(300).length } });
  // Attached again from 0: the whole output is still kept (1 MiB by default), and the EXIT again.
  await attach(second, 4, { job: started.job });
  expect((await second.exit(4)).stdout).toBe(seq(300));
});

test("output beyond keep while nobody is attached is dropped and counted; the replay is the last keep bytes exactly", async () => {
  const path = await fx.listening("vge-detach-drop-");
  const first = await fx.host(path);
  await first.sendJson(T.EXEC, 1, { argv: ["seq", "1", "20000"], detach: { tag: "many", keep: 4096 } });
  await first.until((f) => f.id === 1 && f.type === T.STARTED);
  first.close();
  const second = await fx.host(path);
  await second.waitFor(() => false, 1500).catch(() => {});
  const all = seq(20000);
  const a = await attach(second, 1, { tag: "many" });
  expect(a.stdout).toEqual({ from: all.length - 4096, dropped: all.length - 4096 });
  const r = await second.exit(1);
  expect(r.stdout).toBe(all.slice(all.length - 4096));
  expect(r.exit).toEqual({ status: "exited", code: 0 });
});

test("a second ATTACH takes the job over: the first attacher gets DETACHED EBUSY; stdin and signals follow the new one", async () => {
  const path = await fx.listening("vge-detach-takeover-");
  const h1 = await fx.host(path);
  await h1.sendJson(T.EXEC, 1, { argv: ["cat"], detach: { tag: "cat" } });
  const { pid } = json(await h1.until((f) => f.id === 1 && f.type === T.STARTED));
  const h2 = await fx.host(path);
  expect(await attach(h2, 9, { tag: "cat" })).toMatchObject({ type: T.ATTACHED, pid });
  expect(json(await h1.until((f) => f.id === 1 && f.type === T.DETACHED))).toMatchObject({ errno: "EBUSY" });
  await h2.stdin(9, new TextEncoder().encode("via the second host\n"));
  await h2.waitFor(() => stdout(h2, 9) === "via the second host\n", 5000, "echo");
  await h2.sendJson(T.SIGNAL, 9, { signal: "SIGTERM" });
  expect((await h2.exit(9)).exit).toMatchObject({ status: "signaled", signal: "SIGTERM" });
  expect(h1.of(1).some((f) => f.type === T.EXIT)).toBe(false);
});

test("tags are unique among running jobs; a finished job's tag may be reused; KILL signals the group", async () => {
  const path = await fx.listening("vge-detach-tags-");
  const h = await fx.host(path);
  await h.sendJson(T.EXEC, 1, { argv: ["sleep", "30"], detach: { tag: "dup" } });
  const { pid } = json(await h.until((f) => f.id === 1 && f.type === T.STARTED));
  const r = await h.run(2, { argv: ["true"], detach: { tag: "dup" } } as never);
  expect(r.exit).toMatchObject({ status: "error", errno: "EEXIST" });
  await h.sendJson(T.KILL, 3, { tag: "dup", signal: "KILL" });
  expect(json(await h.until((f) => f.id === 3 && f.type === T.DETACHED))).toEqual({});
  expect((await h.exit(1)).exit).toMatchObject({ status: "signaled", signal: "SIGKILL" });
  expect(await groupGone(pid)).toEqual([]);
  await h.sendJson(T.KILL, 4, { tag: "dup", signal: "KILL" });
  expect(json(await h.until((f) => f.id === 4 && f.type === T.DETACHED))).toMatchObject({ errno: "ESRCH" });
  expect((await h.run(5, { argv: ["echo", "reused"], detach: { tag: "dup" } } as never)).stdout).toBe("reused\n");
});

test("--max-detached: a running job over the limit gets EAGAIN; finished jobs give way; LIST keeps at most 256 finished", async () => {
  const path = await fx.listening("vge-detach-limit-", ["--max-detached", "2"]);
  const h = await fx.host(path);
  await h.sendJson(T.EXEC, 1, { argv: ["sleep", "30"], detach: {} });
  await h.sendJson(T.EXEC, 2, { argv: ["sleep", "30"], detach: {} });
  await h.until((f) => f.id === 2 && f.type === T.STARTED);
  expect((await h.run(3, { argv: ["true"], detach: {} } as never)).exit).toMatchObject({ status: "error", errno: "EAGAIN" });
  await h.sendJson(T.KILL, 4, { job: json(h.of(2).find((f) => f.type === T.STARTED)!).job, signal: "KILL" });
  await h.exit(2);
  // 260 short jobs through the one free slot: each finished one gives its output up to the next.
  for (let id = 10; id < 270; id++) expect((await h.run(id, { argv: ["true"], detach: {} } as never)).exit).toEqual({ status: "exited", code: 0 });
  const jobs = await list(h, 5);
  expect(jobs.filter((j) => j.state === "exited").length).toBe(256);
  expect(jobs.filter((j) => j.state === "running").length).toBe(1);
  expect(isAlive(fx.agent!.pid)).toBe(true);
}, 60_000);

test("a detached `yes` with nobody attached for 5 s: agent VmRSS grows by at most keep x 2 + 32 MiB; the dropped count is reported", async () => {
  const keep = 4 * 1048576;
  const path = await fx.listening("vge-detach-rss-");
  const h = await fx.host(path);
  expect((await h.run(1, { argv: ["echo", "warm"] })).stdout).toBe("warm\n"); // loads what every execution uses
  await Bun.sleep(300);
  const baseline = vmRssKiB(fx.agent!.pid)!;
  await h.sendJson(T.EXEC, 2, { argv: ["yes", "detached output line"], detach: { tag: "yes", keep } });
  const { pid } = json(await h.until((f) => f.id === 2 && f.type === T.STARTED));
  h.close();
  let peak = baseline;
  for (const end = performance.now() + 5000; performance.now() < end; ) {
    await Bun.sleep(50);
    peak = Math.max(peak, vmRssKiB(fx.agent!.pid) ?? 0);
  }
  const h2 = await fx.host(path);
  const [job] = await list(h2, 1);
  const growthMiB = (peak - baseline) / 1024;
  console.log(`detached yes, 5 s unattached: ${(job!.stdout.total / 2 ** 20).toFixed(0)} MiB written, ${job!.stdout.kept} kept; agent VmRSS ${Math.round(baseline / 1024)} MiB, peak +${growthMiB.toFixed(1)} MiB`);
  // The process was never blocked: far more than keep was written, and only keep is held.
  expect(job!.stdout.total).toBeGreaterThan(10 * keep);
  expect(job!.stdout.kept).toBe(keep);
  // keep x 2: both rings (stdout fills its own); 32 MiB: the heap's own slack while the pump runs flat out.
  // Reads are copied into the ring's one buffer and the pump reuses its own (no garbage per read, no
  // forced collections): +31..33 MiB in all with yes writing 1.3–2.6 GB/s. Before, each read was kept
  // in the ring as it came and a full GC was forced every 8 MiB: +32..41 MiB at 0.4 GB/s.
  expect(growthMiB).toBeLessThan((2 * keep) / 1048576 + 32);
  const a = await attach(h2, 2, { tag: "yes" });
  expect(a.stdout.dropped).toBeGreaterThan(9 * keep);
  await h2.sendJson(T.SIGNAL, 2, { signal: "SIGKILL" });
  expect((await h2.exit(2, 20_000)).exit).toMatchObject({ status: "signaled", signal: "SIGKILL" });
  expect(await groupGone(pid)).toEqual([]);
}, 60_000);

test("dial mode with --reconnect: the registry outlives the connection; the next connection attaches and gets every byte", async () => {
  fx.dir = tempDir("vge-detach-dial-");
  const path = fx.dir.file("host.sock");
  const queue: V2Host[] = [];
  const server: Server = createServer({ allowHalfOpen: true }, (sock) => {
    const h = new V2Host(sock);
    fx.hosts.push(h);
    queue.push(h);
  });
  await new Promise<void>((resolve) => server.listen(path, () => resolve()));
  fx.cleanups.push(() => server.close());
  const next = async () => {
    for (let t = 0; queue.length === 0; t += 20) {
      if (t > 15_000) throw new Error("agent did not dial");
      await Bun.sleep(20);
    }
    const h = queue.shift()!;
    await h.hello();
    return h;
  };
  fx.agent = dialingAgent(path, ["--reconnect", "persistent"]);
  const first = await next();
  await first.sendJson(T.EXEC, 1, { shell: "for i in $(seq 1 100); do echo $i; sleep 0.01; done", detach: { tag: "dialed" } });
  await first.until((f) => f.id === 1 && f.type === T.STARTED);
  first.close();
  const second = await next();
  await attach(second, 1, { tag: "dialed" });
  const r = await second.exit(1);
  expect(r.stdout).toBe(seq(100));
  expect(r.exit).toEqual({ status: "exited", code: 0 });
  void MAGIC;
});

test("a detached job on a PTY, and one with merge: the replay is the terminal's (or the merged) output, in order", async () => {
  const path = await fx.listening("vge-detach-pty-");
  const h = await fx.host(path);
  await h.sendJson(T.EXEC, 1, { shell: "echo one; sleep 0.5; echo two", pty: { cols: 80, rows: 24 }, detach: { tag: "tty" } });
  await h.sendJson(T.EXEC, 2, { shell: "echo out; echo err >&2; sleep 0.5; echo out2", merge: true, detach: { tag: "merged" } });
  await h.until((f) => f.id === 2 && f.type === T.STARTED);
  h.close();
  await Bun.sleep(1500);
  const h2 = await fx.host(path);
  await attach(h2, 1, { tag: "tty" });
  expect((await h2.exit(1)).stdout).toBe("one\r\ntwo\r\n");
  await attach(h2, 2, { tag: "merged" });
  const m = await h2.exit(2);
  expect(m.stdout).toBe("out\nerr\nout2\n");
  expect(m.exit).toEqual({ status: "exited", code: 0 });
});

test("SIGTERM to the agent kills its detached jobs too: nothing it started outlives it", async () => {
  const path = await fx.listening("vge-detach-term-");
  const h = await fx.host(path);
  await h.sendJson(T.EXEC, 1, { shell: "sleep 30 & sleep 30", detach: { tag: "orphan" } });
  const { pid } = json(await h.until((f) => f.id === 1 && f.type === T.STARTED));
  h.close();
  await Bun.sleep(300);
  expect(isAlive(pid)).toBe(true);
  fx.agent!.proc.kill("SIGTERM");
  expect(await fx.agent!.exited).toBe(143);
  expect(await groupGone(pid)).toEqual([]);
});
