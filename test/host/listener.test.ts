// A listener keeps serving: guests dial in one after another or together, a restarted agent is served
// again, and a peer that fails its hello is reported without stopping the others.
import { afterEach, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { GuestError, listen, ListenerClosedError, type Guest } from "../../src/host/index.ts";
import type { RunningAgent } from "../helpers/agent.ts";
import { dialingAgent, stop, tempDir } from "./_fixtures.ts";

const dir = tempDir("vge-listen-");
const agents: RunningAgent[] = [];
const spawnAgent = (path: string, extra: string[] = []) => {
  const a = dialingAgent(path, extra);
  agents.push(a);
  return a;
};

afterEach(() => {
  for (const a of agents.splice(0)) stop(a);
});

test("a restarted agent is served again by the same listener", async () => {
  const path = dir.file("restart.sock");
  const l = await listen(`unix-listen:${path}`);
  const first = spawnAgent(path);
  const g1 = await l.accept();
  expect((await g1.run(["echo", "one"])).stdoutText).toBe("one\n");
  const pending = g1.exec(["sleep", "30"], { stdin: "closed" });
  await pending.started;
  first.proc.kill("SIGKILL");
  const err = await pending.exited.catch((e) => e);
  expect(err).toBeInstanceOf(GuestError);
  expect(err.code).toBe("ECLOSED");
  expect(err.message).toContain("the agent closed the connection");
  expect(g1.error).toBe(err);

  const second = spawnAgent(path);
  const g2 = await l.accept();
  expect(g2.info.pid).toBe(second.proc.pid);
  expect((await g2.run(["echo", "two"])).stdoutText).toBe("two\n");
  g2.close();
  await l.close();
  expect(existsSync(path)).toBe(false);
}, 20_000);

test("an agent with --reconnect dials again after the host closes its connection", async () => {
  const path = dir.file("reconnect.sock");
  const l = await listen(`unix-listen:${path}`);
  const agent = spawnAgent(path, ["--reconnect"]);
  const g1 = await l.accept();
  g1.close();
  const g2 = await l.accept();
  expect(g2.info.pid).toBe(agent.proc.pid);
  expect((await g2.run(["echo", "again"])).stdoutText).toBe("again\n");
  g2.close();
  await l.close();
}, 20_000);

test("many guests at once, iterated with for await; a bad peer is reported and skipped", async () => {
  const path = dir.file("many.sock");
  const failures: string[] = [];
  const l = await listen(`unix-listen:${path}`, { onError: (e, peer) => failures.push(`${peer}: ${e.message}`), helloTimeoutMs: 2000 });
  // A peer that connects and hangs up without a word, like a port scanner.
  await new Promise<void>((resolve) => netConnect(path, function (this: import("node:net").Socket) {
    this.end();
    resolve();
  }));
  for (let i = 0; i < 3; i++) spawnAgent(path);
  const guests: Guest[] = [];
  for await (const g of l) {
    guests.push(g);
    if (guests.length === 3) break;
  }
  const pids = new Set(guests.map((g) => g.info.pid));
  expect(pids).toEqual(new Set(agents.map((a) => a.proc.pid)));
  const outs = await Promise.all(guests.map((g, i) => g.run(["sh", "-c", `echo ${i}`])));
  expect(outs.map((r) => r.stdoutText)).toEqual(["0\n", "1\n", "2\n"]);
  expect(failures).toHaveLength(1);
  expect(failures[0]).toMatch(/#1: .*closed the connection without answering the hello/);
  for (const g of guests) g.close();
  await l.close();
  expect(await l.accept().catch((e) => e)).toBeInstanceOf(ListenerClosedError);
}, 20_000);

test("a stale socket file is taken over; a live listener or a regular file is not", async () => {
  const stale = dir.file("stale.sock");
  const l1 = await listen(`unix-listen:${stale}`);
  const err = await listen(`unix-listen:${stale}`).catch((e) => e);
  expect(err.message).toMatch(/EADDRINUSE \(another process is listening there\)/);
  await l1.close();
  // A socket file nobody listens on, as a crashed host leaves it.
  Bun.spawnSync(["python3", "-c", `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(stale)})`]);
  expect(existsSync(stale)).toBe(true);
  const l2 = await listen(`unix-listen:${stale}`);
  await l2.close();
  const file = dir.file("plain-file");
  writeFileSync(file, "x");
  expect((await listen(`unix-listen:${file}`).catch((e) => e)).message).toMatch(/not a socket/);
});

test("fc-listen listens on UDS_PATH_PORT", async () => {
  const base = dir.file("v.sock");
  const l = await listen(`fc-listen:${base}:1024`);
  expect(existsSync(`${base}_1024`)).toBe(true);
  spawnAgent(`${base}_1024`);
  const g = await l.accept();
  expect((await g.run(["true"])).code).toBe(0);
  g.close();
  await l.close();
  expect(existsSync(`${base}_1024`)).toBe(false);
}, 20_000);
