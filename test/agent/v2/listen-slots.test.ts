// Listen mode's connection slots (--max-conns) against silent hosts (issue 14, defect 10): a connection
// that has not finished its hello never keeps out one that would. At the limit the oldest connection still
// in its hello is dropped (ERROR EBUSY, closed) for the newcomer; a connection past its hello never is.
import { afterEach, expect, test } from "bun:test";
import { readdirSync, writeFileSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { tempDir, type TempDir } from "../../helpers/tmp.ts";
import { vmRssKiB } from "../../helpers/proc.ts";
import { listeningAgent, type Agent } from "./_agent.ts";
import { T, V2Host, json } from "./_host.ts";
import { connect } from "../../../src/host/index.ts";
import { MAGIC } from "../../../src/protocol/v2/frame.ts";
import { hostProof, toHex } from "../../../src/protocol/v2/auth.ts";

let dir: TempDir | undefined;
let agent: Agent | undefined;
const opened: Socket[] = [];
const hosts: V2Host[] = [];

afterEach(async () => {
  for (const s of opened.splice(0)) s.destroy();
  for (const h of hosts.splice(0)) h.close();
  await agent?.stop();
  dir?.remove();
});

const agentFds = () => readdirSync(`/proc/${agent!.pid}/fd`).length;

const listening = (path: string, extra: string[]): Promise<Agent> => listeningAgent(path, 120_000, extra);

async function start(extra: string[] = []): Promise<string> {
  dir = tempDir("vge-slots-");
  agent = await listening(dir.file("agent.sock"), extra);
  return dir.file("agent.sock");
}

/**
 * A connection that says nothing, ever; counts in `closed` once the agent has closed it. Resolves once
 * connected, or once it failed or 2 s passed (a full accept backlog): the flood goes on either way.
 */
function silent(path: string, closed: { n: number }): Promise<void> {
  return new Promise((resolve) => {
    const s = createConnection({ path }, () => resolve());
    opened.push(s);
    const t = setTimeout(resolve, 2000);
    s.on("error", () => {});
    s.on("data", () => {}); // the ERROR EBUSY, dropped
    s.on("close", () => {
      closed.n++;
      clearTimeout(t);
      resolve();
    });
  });
}

/**
 * A host served: connected, greeted, and an execution's output back; its time in ms. A connect refused
 * because the kernel's accept queue is full (a flood outran the agent's accepting) is retried, as hosts
 * retry a refused dial; the time counts from the first attempt.
 */
async function served(path: string): Promise<number> {
  const t0 = performance.now();
  let h: V2Host | undefined;
  while (!h) {
    h = await V2Host.connect(path).catch((e) => {
      if (performance.now() - t0 > 5000 || !/ECONNREFUSED|EAGAIN/.test(String(e))) throw e;
      return Bun.sleep(10).then(() => undefined);
    });
  }
  hosts.push(h);
  await h.hello();
  expect((await h.run(1, { shell: "echo served" })).stdout).toBe("served\n");
  return performance.now() - t0;
}

test("1,000 silent connections opened in a loop: a good host next to them is served within 1 s; agent fds and RSS stay bounded", async () => {
  const path = await start();
  // One host served first: the fds the runtime keeps from the first execution on count in the baseline.
  await served(path);
  hosts.splice(0).forEach((h) => h.close());
  await Bun.sleep(200);
  const fds0 = agentFds();
  const rss0 = vmRssKiB(agent!.pid)!;
  const closed = { n: 0 };
  let peakFds = 0;
  const sampler = setInterval(() => (peakFds = Math.max(peakFds, agentFds())), 20);
  try {
    for (let i = 0; i < 1000; i++) await silent(path, closed);
    const ms = await served(path);
    if (process.env.VGE_TEST_REPORT) console.log(`served in ${ms.toFixed(0)} ms after 1,000 silent`);
    expect(ms).toBeLessThan(1000);
    // The agent dropped the silent ones as the flood went on: all but the slots' worth.
    const end = performance.now() + 5000;
    while (closed.n < 1000 - 64 && performance.now() < end) await Bun.sleep(20);
    expect(closed.n).toBeGreaterThanOrEqual(1000 - 64);
  } finally {
    clearInterval(sampler);
  }
  // 64 slots and the listener, plus what the runtime keeps (a few), never 1,000.
  if (process.env.VGE_TEST_REPORT) console.log(`fds ${fds0} → peak ${peakFds}; RSS +${((vmRssKiB(agent!.pid)! - rss0) / 1024).toFixed(1)} MiB`);
  expect(peakFds).toBeLessThan(fds0 + 64 + 24);
  expect(vmRssKiB(agent!.pid)! - rss0).toBeLessThan(48 * 1024);
  // The rest are dropped too once a host closes and the flood is over: nothing left behind.
  for (const s of opened.splice(0)) s.destroy();
  for (const h of hosts.splice(0)) h.close();
  const end = performance.now() + 5000;
  while (agentFds() > fds0 && performance.now() < end) await Bun.sleep(50);
  expect(agentFds()).toBe(fds0);
}, 60_000);

test("a host that has spoken but not finished its hello (HELLO sent, AUTH not yet) survives 1,000 silent connections and then authenticates", async () => {
  dir = tempDir("vge-slots-");
  const TOKEN = "token-for-the-listen-slots-test-9d2f41";
  writeFileSync(dir.file("agent.token"), `${TOKEN}\n`, { mode: 0o600 });
  const path = dir.file("agent.sock");
  agent = await listening(path, ["--token-file", dir.file("agent.token")]);
  const h = await V2Host.connect(path);
  hosts.push(h);
  const hostNonce = new Uint8Array(32).fill(7);
  await h.write(MAGIC);
  await h.sendJson(T.HELLO, 0, { versions: [2], auth: { nonce: toHex(hostNonce) } });
  const challenge = json(await h.until((f) => f.type === T.WELCOME)) as { auth: { nonce: string } };
  const closed = { n: 0 };
  for (let i = 0; i < 1000; i++) await silent(path, closed);
  // The silent ones made room for each other; this host, in its hello too, was never the one dropped.
  expect(h.frames.some((f) => f.type === T.ERROR)).toBe(false);
  const agentNonce = Uint8Array.from(Buffer.from(challenge.auth.nonce, "hex"));
  await h.sendJson(T.AUTH, 0, { proof: toHex(hostProof(new TextEncoder().encode(TOKEN), hostNonce, agentNonce)) });
  await h.until((f) => f.type === T.WELCOME && (json(f) as { hostname?: string }).hostname !== undefined);
  expect((await h.run(1, { shell: "echo authed" })).stdout).toBe("authed\n");
}, 60_000);

test("hosts past their hello are never dropped: with all slots theirs, a newcomer gets EBUSY; silent ones make no room", async () => {
  const path = await start(["--max-conns", "8"]);
  const greeted: V2Host[] = [];
  for (let i = 0; i < 8; i++) {
    const h = await V2Host.connect(path);
    hosts.push(h);
    await h.hello();
    greeted.push(h);
  }
  const closed = { n: 0 };
  for (let i = 0; i < 50; i++) await silent(path, closed);
  const end = performance.now() + 5000;
  while (closed.n < 50 && performance.now() < end) await Bun.sleep(20);
  expect(closed.n).toBe(50);
  // Every greeted host still works.
  for (const [k, h] of greeted.entries()) {
    await h.send(T.PING, 100 + k, new Uint8Array([k]));
    await h.until((f) => f.id === 100 + k && f.type === T.PONG);
  }
  // And a good newcomer is refused: there is nobody in a hello to make room.
  const late = await V2Host.connect(path);
  hosts.push(late);
  await expect(late.hello()).rejects.toThrow();
  // Once one of them leaves, the next is served.
  greeted[0]!.close();
  await Bun.sleep(200);
  expect(await served(path)).toBeLessThan(1000);
}, 60_000);

test("with few slots, the oldest in its hello goes first: a host that finished its hello before the flood keeps its place", async () => {
  const path = await start(["--max-conns", "2"]);
  const early = await V2Host.connect(path);
  hosts.push(early);
  await early.hello();
  const closed = { n: 0 };
  for (let i = 0; i < 100; i++) await silent(path, closed);
  expect(await served(path)).toBeLessThan(1000);
  expect((await early.run(2, { shell: "echo still" })).stdout).toBe("still\n");
}, 60_000);

test("with a token, a host that sent HELLO but not its AUTH is still in its hello: it makes room for one that authenticates", async () => {
  dir = tempDir("vge-slots-");
  const TOKEN = "token-for-the-listen-slots-test-5b1e0c";
  writeFileSync(dir.file("agent.token"), `${TOKEN}\n`, { mode: 0o600 });
  const path = dir.file("agent.sock");
  agent = await listening(path, ["--token-file", dir.file("agent.token"), "--max-conns", "2"]);
  const stalled: V2Host[] = [];
  for (let i = 0; i < 2; i++) {
    const h = await V2Host.connect(path);
    hosts.push(h);
    await h.write(MAGIC);
    await h.sendJson(T.HELLO, 0, { versions: [2], auth: { nonce: String(i + 1).repeat(64) } });
    await h.until((f) => f.type === T.WELCOME); // the agent's challenge; no AUTH follows
    stalled.push(h);
  }
  const guest = await connect(`unix:${path}`, { token: TOKEN });
  try {
    const r = await guest.run(["sh", "-c", "echo authed"]);
    expect(new TextDecoder().decode(r.stdout)).toBe("authed\n");
  } finally {
    guest.close();
  }
  // The older of the two was dropped with EBUSY; the other keeps its slot (and its 30 s deadline).
  const err = await stalled[0]!.until((f) => f.type === T.ERROR);
  expect(json(err)).toMatchObject({ code: "EBUSY" });
  expect(stalled[1]!.frames.some((f) => f.type === T.ERROR)).toBe(false);
}, 60_000);
