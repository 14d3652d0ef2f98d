// The library's detached executions against the compiled agent (listening on a Unix socket): exec with
// detach, the connection closed, list() and attach() from a new one, every byte and the status; kill();
// the clear errors for an unknown job and for bad arguments; a takeover reaches the first follower.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { GuestError, connect, type Guest } from "../../src/host/index.ts";
import { collect } from "../../src/host/_inbox.ts";
import type { RunningAgent } from "../helpers/agent.ts";
import { listeningAgent, stop, tempDir } from "./_fixtures.ts";

const dir = tempDir("vge-host-detach-");
const addr = `unix:${dir.file("agent.sock")}`;
let agent: RunningAgent;
const guests: Guest[] = [];
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const seq = (n: number) => Array.from({ length: n }, (_, i) => `${i + 1}\n`).join("");

async function open(): Promise<Guest> {
  const g = await connect(addr);
  guests.push(g);
  return g;
}

beforeAll(async () => {
  agent = await listeningAgent(dir.file("agent.sock"), 120_000);
});

afterAll(() => {
  for (const g of guests) g.close();
  stop(agent);
  dir.remove();
});

test("exec with detach survives close(); attach from a new connection continues at offsets; list shows it running, then its result", async () => {
  const g1 = await open();
  const p = g1.exec({ shell: "for i in $(seq 1 200); do echo $i; sleep 0.01; done; echo bye >&2; exit 4" }, { detach: { tag: "lib-job" }, stdin: "closed" });
  expect(await p.started).toBeGreaterThan(0);
  expect(p.job).toBeGreaterThan(0);
  expect(p.tag).toBe("lib-job");
  const reader = p.stdout.getReader();
  let head = "";
  while (head.split("\n").length < 10) head += text((await reader.read()).value!);
  const from = { ...p.offsets };
  expect(from.stdout).toBe(Buffer.byteLength(head));
  g1.close();

  const g2 = await open();
  const listed = await g2.list();
  expect(listed.find((j) => j.tag === "lib-job")).toMatchObject({ state: "running", pid: p.pid });
  const q = g2.attach("lib-job", { from });
  expect(await q.started).toBe(p.pid!);
  expect(q.replay).toEqual({ stdout: { from: from.stdout, dropped: 0 }, stderr: { from: 0, dropped: 0 } });
  const [out, err, status] = await Promise.all([collect(q.stdout), collect(q.stderr), q.exited]);
  expect(head + text(out)).toBe(seq(200));
  expect(text(err)).toBe("bye\n");
  expect(status).toBe(4);
  expect(q.offsets).toEqual({ stdout: seq(200).length, stderr: 4 });
  const after = (await g2.list()).find((j) => j.job === p.job);
  expect(after).toMatchObject({ state: "exited", exit: { status: "exited", code: 4 }, attached: false });
});

test("attach to an unknown tag rejects with ENOENT naming it; bad arguments are EINVAL before anything is sent", async () => {
  const g = await open();
  const q = g.attach("no-such-job");
  const err = await q.exited.catch((e) => e);
  expect(err).toBeInstanceOf(GuestError);
  expect(err.code).toBe("ENOENT");
  expect(err.message).toContain('"no-such-job"');
  expect(() => g.attach("bad tag")).toThrow(GuestError);
  expect(() => g.attach("x", { from: { stdout: -1 } })).toThrow(/from.stdout/);
  expect(() => g.exec(["true"], { detach: { keep: 2 ** 40 } })).toThrow(/detach.keep/);
  await expect(g.kill("no-such-job")).rejects.toMatchObject({ code: "ENOENT" });
  // The connection is still good.
  expect((await g.run(["echo", "ok"])).stdoutText).toBe("ok\n");
});

test("kill() signals a running job; a second attacher takes over and the first is told EBUSY", async () => {
  const g1 = await open();
  const p = g1.exec(["sleep", "30"], { detach: { tag: "sleeper" } });
  await p.started;
  const g2 = await open();
  const q = g2.attach("sleeper");
  await q.started;
  await expect(p.exited).rejects.toMatchObject({ code: "EBUSY" });
  await g1.kill("sleeper", "SIGTERM");
  expect(await q.result).toMatchObject({ status: "signaled", signal: "SIGTERM" });
  await expect(g1.kill("sleeper")).rejects.toMatchObject({ code: "ESRCH" });
});

test("a follower's stdin credit is what the job has left: a second attacher writes after the first one's queued stdin, no EFLOW, every byte in order", async () => {
  const g1 = await open();
  // Reads nothing for a second: the first connection's window of stdin is still queued when g2 attaches.
  const p = g1.exec({ shell: "sleep 1; exec cat" }, { detach: { tag: "lib-stdin" } });
  await p.started;
  const w1 = p.stdin!.getWriter();
  await w1.write(new Uint8Array(256 * 1024).fill(0x61));
  const g2 = await open();
  const q = g2.attach("lib-stdin");
  await q.started;
  await expect(p.exited).rejects.toMatchObject({ code: "EBUSY" });
  const w2 = q.stdin!.getWriter();
  await w2.write(new Uint8Array(100_000).fill(0x62));
  await w2.close();
  const [out, status] = await Promise.all([collect(q.stdout), q.exited]);
  expect(status).toBe(0);
  expect(text(out)).toBe("a".repeat(256 * 1024) + "b".repeat(100_000));
}, 30_000);
