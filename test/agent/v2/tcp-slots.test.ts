// The TCP stream limit (--max-tcp-per-conn) bounds sockets, not ids (issue 14, defect 5): a stream reset
// or abandoned while its connect is still pending must close its socket at once, and its slot comes back
// only then. The target is a listener whose backlog is full (listen(1), never accepting): connects to it
// hang for the kernel's SYN retries (~127 s), the worst case for a socket left behind.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readdirSync, readlinkSync } from "node:fs";
import type { Subprocess } from "bun";
import { tempDir, type TempDir } from "../../helpers/tmp.ts";
import { listeningAgent, type Agent } from "./_agent.ts";
import { T, V2Host, json } from "./_host.ts";

let dir: TempDir;
let agent: Agent;
let blackhole: Subprocess<"ignore", "pipe", "inherit">;
let port: number;

/** Socket fds the agent holds right now. */
function agentSockets(): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${agent.pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${agent.pid}/fd/${fd}`).startsWith("socket:")) n++;
    } catch {
      // Closed while we looked.
    }
  }
  return n;
}

/** Polls `cond` every 10 ms (the agent's fds change with no frame to wake on); throws after `ms`. */
async function pollUntil(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await Bun.sleep(10);
  }
}

async function settle(to: number, ms = 5000): Promise<number> {
  const end = performance.now() + ms;
  for (;;) {
    const n = agentSockets();
    if (n <= to || performance.now() > end) return n;
    await Bun.sleep(50);
  }
}

beforeAll(async () => {
  dir = tempDir("vge-tcpslots-");
  // Bounded by its own sleep: it goes away by itself if the test dies.
  blackhole = Bun.spawn(
    [
      "python3",
      "-c",
      `import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
fill = []
for _ in range(4):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(s.getsockname())
    except BlockingIOError: pass
    fill.append(c)
time.sleep(120)`,
    ],
    { stdin: "ignore", stdout: "pipe", stderr: "inherit" },
  );
  const first = await blackhole.stdout.getReader().read();
  port = Number(new TextDecoder().decode(first.value).trim());
  expect(port).toBeGreaterThan(0);
  await Bun.sleep(300); // the fillers' handshakes fill the accept queue
  agent = await listeningAgent(dir.file("agent.sock"), 120_000, ["--max-tcp-per-conn", "16"]);
}, 60_000);

afterAll(async () => {
  blackhole?.kill("SIGKILL");
  await agent?.stop();
  dir?.remove();
});

test("600 × (TCP_OPEN, TCP_RESET) to a full backlog: sockets stay within the limit, all answered, back to the baseline", async () => {
  const baseline = agentSockets(); // the listener only
  const h = await V2Host.connect(dir.file("agent.sock"));
  await h.hello();
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, agentSockets())), 10);
  try {
    const N = 600;
    for (let id = 1; id <= N; id++) {
      await h.sendJson(T.TCP_OPEN, id, { host: "127.0.0.1", port });
      await h.send(T.TCP_RESET, id);
    }
    await h.waitFor(() => h.frames.filter((f) => f.type === T.TCP_CLOSED).length === N, 20_000, `${N} TCP_CLOSED`);
    const closed = h.frames.filter((f) => f.type === T.TCP_CLOSED).map(json);
    // Each one is either reset (its connect abandoned) or refused at the limit; none connected.
    expect(closed.every((c) => c.errno === "ECONNRESET" || c.errno === "EAGAIN")).toBe(true);
    expect(h.frames.some((f) => f.type === T.TCP_OPENED)).toBe(false);
    // Right after the last TCP_CLOSED: no socket of a reset stream is left (baseline + this host).
    expect(await settle(baseline + 1, 1000)).toBe(baseline + 1);
  } finally {
    clearInterval(sampler);
    h.close();
  }
  // At most the 16 streams of the limit, this host and the listener, at any time.
  expect(peak).toBeLessThanOrEqual(baseline + 1 + 16);
  expect(await settle(baseline)).toBe(baseline);
}, 60_000);

test("a host that leaves with 16 connects pending takes their sockets with it", async () => {
  const baseline = agentSockets();
  const h = await V2Host.connect(dir.file("agent.sock"));
  await h.hello();
  for (let id = 1; id <= 16; id++) await h.sendJson(T.TCP_OPEN, id, { host: "127.0.0.1", port });
  await pollUntil(() => agentSockets() >= baseline + 1 + 16, "16 connects under way");
  // The limit holds while they are pending: the 17th is refused.
  await h.sendJson(T.TCP_OPEN, 17, { host: "127.0.0.1", port });
  expect(json(await h.until((f) => f.id === 17 && f.type === T.TCP_CLOSED))).toMatchObject({ ok: false, errno: "EAGAIN" });
  h.close();
  expect(await settle(baseline)).toBe(baseline);
}, 30_000);

test("600 streams reset while their connects are seen pending, 16 at a time: each round's sockets are gone by its last TCP_CLOSED", async () => {
  const baseline = agentSockets();
  const h = await V2Host.connect(dir.file("agent.sock"));
  await h.hello();
  try {
    for (let first = 1; first <= 600; first += 16) {
      const ids = Array.from({ length: 16 }, (_, i) => first + i);
      for (const id of ids) await h.sendJson(T.TCP_OPEN, id, { host: "127.0.0.1", port });
      await pollUntil(() => agentSockets() === baseline + 1 + 16, `round ${first}: 16 connects under way`);
      for (const id of ids) await h.send(T.TCP_RESET, id);
      for (const id of ids) expect(json(await h.until((f) => f.id === id && f.type === T.TCP_CLOSED))).toMatchObject({ ok: false, errno: "ECONNRESET" });
      expect(agentSockets()).toBe(baseline + 1);
    }
  } finally {
    h.close();
  }
  expect(await settle(baseline)).toBe(baseline);
}, 60_000);
