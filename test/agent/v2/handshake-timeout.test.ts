// A host that connects and then stalls the hello (nothing at all, only the magic, HELLO without the AUTH a
// token requires, a HELLO cut short) is closed by the agent after --handshake-timeout, with ERROR
// ETIMEDOUT; the agent's fds come back to where they were and it goes on serving. Measured on the compiled
// agent: the time to the close, /proc/PID/fd. After the hello an idle connection is legitimate and stays.
// In dial mode the original formats keep their semantics: a host the agent dialed may take its time
// before its first byte; only the v2 hello, from its magic, is timed, and --reconnect dials again after.
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { connect as connectGuest } from "../../../src/host/index.ts";
import { MAGIC, T, encodeJson } from "../../../src/protocol/v2/frame.ts";
import { agentBinary } from "../../helpers/build.ts";
import { fdCount, fdTargets, isAlive } from "../../helpers/proc.ts";
import { tempDir, type TempDir } from "../../helpers/tmp.ts";
import { dialingAgent, listeningAgent, type Agent } from "./_agent.ts";
import { V2Host, json } from "./_host.ts";

const TIMEOUT_S = 1;
const TOKEN = "handshake-timeout-test-token-0123456789";

let dir: TempDir | undefined;
let agent: Agent | undefined;
const hosts: V2Host[] = [];
const closers: (() => void)[] = [];

afterEach(async () => {
  for (const h of hosts.splice(0)) h.close();
  for (const c of closers.splice(0)) c();
  await agent?.stop();
  agent = undefined;
  dir?.remove();
  dir = undefined;
});

/** A listening agent with the test's short --handshake-timeout, in a fresh folder; its socket path. */
async function listeningWithDeadline(): Promise<string> {
  dir = tempDir("vge-hs-");
  const path = dir.file("agent.sock");
  agent = await listeningAgent(path, 60_000, ["--handshake-timeout", String(TIMEOUT_S)]);
  return path;
}

async function connect(path: string): Promise<V2Host> {
  const h = await V2Host.connect(path);
  hosts.push(h);
  return h;
}

/** The agent still serves: a new connection runs a command to its end (through the host library with a token). */
async function stillServes(path: string, token?: string): Promise<void> {
  if (token) {
    const guest = await connectGuest(`unix:${path}`, { token });
    try {
      expect(new TextDecoder().decode((await guest.run(["echo", "still here"])).stdout)).toBe("still here\n");
    } finally {
      guest.close();
    }
    return;
  }
  const h = await connect(path);
  await h.hello();
  const r = await h.run(1, { argv: ["echo", "still here"] });
  expect(r.stdout).toBe("still here\n");
  h.close();
}

/** Polls until the agent holds at most `baseline` fds; returns the count then (or after `ms`). */
async function fdsBackTo(pid: number, baseline: number, ms = 3000): Promise<number> {
  const end = performance.now() + ms;
  for (;;) {
    const n = fdCount(pid);
    if (n <= baseline || performance.now() > end) return n;
    await Bun.sleep(50);
  }
}

const hello = (auth?: boolean) => encodeJson(T.HELLO, 0, { versions: [2], ...(auth ? { auth: { nonce: "11".repeat(32) } } : {}) });

// [what the stalled host sends, whether the agent has a token]
const stalls: [string, Uint8Array[], boolean][] = [
  ["nothing at all", [], false],
  ["only the magic", [MAGIC], false],
  ["the magic and half a HELLO frame", [MAGIC, hello().subarray(0, 12)], false],
  ["HELLO with auth, then no AUTH (token configured)", [MAGIC, hello(true)], true],
];

describe(`listen mode, --handshake-timeout ${TIMEOUT_S}`, () => {
  test.each(stalls)("a host that sends %s is closed after the deadline; fds back to baseline; the agent serves on", async (_what, bytes, withToken) => {
    dir = tempDir("vge-hs-");
    const path = dir.file("agent.sock");
    const extra = ["--handshake-timeout", String(TIMEOUT_S)];
    if (withToken) {
      writeFileSync(dir.file("token"), TOKEN, { mode: 0o600 });
      extra.push("--token-file", dir.file("token"));
    }
    agent = await listeningAgent(path, 60_000, extra);
    if (!withToken) await stillServes(path);
    await Bun.sleep(200);
    const baseline = fdCount(agent.pid);

    // Three at once: each is timed on its own, and each costs its fd only until then.
    const stalled = await Promise.all([0, 1, 2].map(() => connect(path)));
    const t0 = performance.now();
    for (const h of stalled) for (const b of bytes) await h.write(b);
    // They are held open meanwhile (accepted: an fd each), which is what the deadline bounds.
    for (let t = 0; fdCount(agent.pid) < baseline + 3 && t < 800; t += 20) await Bun.sleep(20);
    expect(fdCount(agent.pid)).toBeGreaterThanOrEqual(baseline + 3);
    for (const h of stalled) expect(await h.closedWithin(TIMEOUT_S * 1000 + 3000)).toBe(true);
    const elapsed = performance.now() - t0;
    // Not before the deadline, and not long after it (the close after ERROR lingers at most 0.5 s).
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_S * 1000 - 100);
    expect(elapsed).toBeLessThan(TIMEOUT_S * 1000 + 2500);
    for (const h of stalled) {
      const errors = h.frames.filter((f) => f.type === T.ERROR).map((f) => json(f));
      expect(errors.map((e) => e.code)).toEqual(["ETIMEDOUT"]);
      expect(errors[0]!.message).toContain("--handshake-timeout");
      // With a token, the stalled host got the minimal WELCOME and nothing more about the guest.
      for (const f of h.frames.filter((f) => f.type === T.WELCOME)) expect(Object.keys(json(f)).sort()).toEqual(["auth", "version"]);
    }
    const after = await fdsBackTo(agent.pid, baseline);
    if (after > baseline) console.log(fdTargets(agent.pid).join("\n"));
    expect(after).toBeLessThanOrEqual(baseline);
    expect(isAlive(agent.pid)).toBe(true);
    expect(agent.log()).toContain("--handshake-timeout");
    await stillServes(path, withToken ? TOKEN : undefined);
  }, 30_000);

  test("after the hello an idle connection is legitimate: still open well past the deadline, and it runs a command", async () => {
    const path = await listeningWithDeadline();
    const h = await connect(path);
    await h.hello();
    expect(await h.closedWithin(TIMEOUT_S * 1000 + 1500)).toBe(false);
    const r = await h.run(1, { argv: ["echo", "idle was fine"] });
    expect(r.stdout).toBe("idle was fine\n");
    expect(h.frames.filter((f) => f.type === T.ERROR)).toEqual([]);
  }, 30_000);

  test("a host that trickles its HELLO a byte at a time is still held to the deadline", async () => {
    const path = await listeningWithDeadline();
    const h = await connect(path);
    const t0 = performance.now();
    await h.write(MAGIC);
    const frame = encodeJson(T.HELLO, 0, { versions: [2], client: "x".repeat(200) });
    for (let i = 0; i < frame.byteLength && !(await h.closedWithin(100)); i++) await h.write(frame.subarray(i, i + 1)).catch(() => {});
    expect(await h.closedWithin(3000)).toBe(true);
    expect(performance.now() - t0).toBeLessThan(TIMEOUT_S * 1000 + 2500);
    expect(h.frames.map((f) => [f.type, json(f).code])).toEqual([[T.ERROR, "ETIMEDOUT"]]);
  }, 30_000);
});

/** A Unix listener that hands out each connection the dialing agent makes; closed after the test. */
async function hostListener(path: string): Promise<() => Promise<V2Host>> {
  const l = await V2Host.listenMany(path);
  closers.push(l.close);
  return l.next;
}

describe(`dial mode, --handshake-timeout ${TIMEOUT_S}`, () => {
  test("--reconnect: a host that stops after the magic is closed after the deadline and the agent dials again", async () => {
    dir = tempDir("vge-hs-dial-");
    const next = await hostListener(dir.file("host.sock"));
    agent = dialingAgent(dir.file("host.sock"), ["--reconnect", "--handshake-timeout", String(TIMEOUT_S), "persistent"]);
    const first = await next();
    const t0 = performance.now();
    await first.write(MAGIC);
    expect(await first.closedWithin(TIMEOUT_S * 1000 + 3000)).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(TIMEOUT_S * 1000 - 100);
    expect(first.frames.map((f) => json(f).code)).toEqual(["ETIMEDOUT"]);
    const second = await next();
    expect(isAlive(agent.pid)).toBe(true);
    await second.hello();
    const r = await second.run(1, { argv: ["echo", "again"] });
    expect(r.stdout).toBe("again\n");
  }, 30_000);

  test("without --reconnect the agent exits 1 (the connection failed) after the deadline", async () => {
    dir = tempDir("vge-hs-dial-");
    const next = await hostListener(dir.file("host.sock"));
    agent = dialingAgent(dir.file("host.sock"), ["--handshake-timeout", String(TIMEOUT_S)]);
    const first = await next();
    await first.write(MAGIC);
    await first.sendJson(T.HELLO, 0, { versions: [2] }).catch(() => {});
    // A HELLO completes the hello without a token: that connection is fine and stays.
    await first.until((f) => f.type === T.WELCOME);
    expect(await first.closedWithin(TIMEOUT_S * 1000 + 1000)).toBe(false);
    first.close();
    expect(await agent.exited).toBe(0);

    const again = await hostListener(dir.file("host2.sock"));
    agent = dialingAgent(dir.file("host2.sock"), ["--handshake-timeout", String(TIMEOUT_S)]);
    const stalled = await again();
    await stalled.write(MAGIC);
    expect(await agent.exited).toBe(1);
    expect(agent.log()).toContain("no HELLO from the host");
  }, 30_000);

  test("the original formats keep their semantics: a dialed host may stay silent past the deadline before its first byte", async () => {
    dir = tempDir("vge-hs-dial-");
    const next = await hostListener(dir.file("host.sock"));
    agent = dialingAgent(dir.file("host.sock"), ["--handshake-timeout", String(TIMEOUT_S), "persistent"]);
    const h = await next();
    expect(await h.closedWithin(TIMEOUT_S * 1000 + 1500)).toBe(false);
    // Then it speaks (v2 here, which must still be chosen after the silence) and is served.
    await h.hello();
    const r = await h.run(1, { argv: ["echo", "late but fine"] });
    expect(r.stdout).toBe("late but fine\n");
  }, 30_000);
});

describe("--handshake-timeout on the command line", () => {
  test.each([["abc"], ["-1"], ["1.5"], ["86401"], [""]])("%p: one line on stderr, exit 2", (value) => {
    dir = tempDir("vge-hs-cli-");
    const r = Bun.spawnSync([agentBinary(), "--listen", "--unix", dir.file("never.sock"), "--handshake-timeout", value], { timeout: 10_000 });
    expect(r.exitCode).toBe(2);
    const lines = r.stderr.toString().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("--handshake-timeout");
  });

  test("--help documents it", () => {
    const r = Bun.spawnSync([agentBinary(), "--help"], { timeout: 10_000 });
    expect(r.stdout.toString()).toContain("--handshake-timeout");
  });
});
