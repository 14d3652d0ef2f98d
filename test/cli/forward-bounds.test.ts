// `vge forward` held to its bounds: a long transfer to a slow local reader waits for `drain` thousands of
// times on one socket, and must not leave a listener behind each time (it did: a `close` listener per
// wait, and a MaxListenersExceededWarning on stderr); a hostile agent that closes a stream it never opened
// must not leave the accepted local socket open for ever.
import { expect, test } from "bun:test";
import { connect as tcpConnect, createServer, type Socket } from "node:net";
import { pumpToSocket } from "../../src/cli/vge/_pump.ts";
import { T, encodeJson } from "../../src/protocol/index.ts";
import { GOOD_WELCOME, hostileAgents } from "../host/_hostile.ts";
import { MiB, sendAll, tcpServers } from "../helpers/tcp.ts";
import { startForward, vgeAgent } from "./_vge.ts";

const fx = vgeAgent("vge-fwdb-");
const servers = tcpServers();
const hostile = hostileAgents(fx.dir);

/** `vge forward ADDR 0:127.0.0.1:PORT`. */
const forward = (addr: string, port: number) => startForward(addr, `0:127.0.0.1:${port}`, 60_000);

/** Reads a connection to its end at about `kibPerMs` KiB/ms (a pause after every chunk); resolves with the byte count. */
function slowRead(port: number, kibPerMs = 64): Promise<number> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    const s = tcpConnect({ host: "127.0.0.1", port, allowHalfOpen: true }, () => s.end());
    s.on("data", (d: Buffer) => {
      bytes += d.length;
      s.pause();
      setTimeout(() => s.resume(), Math.ceil(d.length / (kibPerMs * 1024)));
    });
    s.on("end", () => resolve(bytes));
    s.on("error", reject);
  });
}

test("pumpToSocket: 100 drain waits on one socket leave at most one drain and one close listener", async () => {
  const accepted = Promise.withResolvers<Socket>();
  const srv = createServer({ allowHalfOpen: true }, (s) => accepted.resolve(s));
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  servers.keep(srv);
  const reading = slowRead((srv.address() as { port: number }).port);
  const sock = await accepted.promise;
  // Looked at on every drain, while the pump's own listeners for that wait are still there.
  let waits = 0;
  const peak = { drain: 0, close: 0 };
  sock.on("drain", () => {
    waits++;
    peak.drain = Math.max(peak.drain, sock.listenerCount("drain") - 1);
    peak.close = Math.max(peak.close, sock.listenerCount("close"));
  });
  const base = { close: sock.listenerCount("close") };
  // Each chunk is bigger than the socket's buffer: every write asks for a drain.
  const CHUNK = 128 * 1024;
  // Until 100 drain waits (the kernel takes some writes whole), or 10,000 chunks at most.
  const WAITS = 100;
  let sent = 0;
  const src = new ReadableStream<Uint8Array>({ pull: (c) => (waits >= WAITS || sent === 10_000 ? c.close() : (sent++, c.enqueue(new Uint8Array(CHUNK)))) }, { highWaterMark: 0 });
  await pumpToSocket(src, sock);
  expect(await reading).toBe(CHUNK * sent);
  console.log(`pumpToSocket: ${sent} chunks of 128 KiB, ${waits} drain waits; the pump's listeners at most: drain ${peak.drain}, close ${peak.close - base.close}`);
  expect(waits).toBeGreaterThanOrEqual(WAITS);
  expect(peak.drain).toBeLessThanOrEqual(1);
  expect(peak.close - base.close).toBeLessThanOrEqual(1);
}, 60_000);

test("64 MiB through vge forward to a slow reader (20 MiB/s), then 20 more connections: no MaxListenersExceededWarning", async () => {
  const source = await servers.listen((s) => void sendAll((function* () { for (let i = 0; i < 64; i++) yield new Uint8Array(MiB).fill(i); })())(s));
  const f = await forward(fx.addr, source);
  try {
    expect(await slowRead(f.port, 20)).toBe(64 * MiB);
    const small = await servers.listen((s) => s.end("hi"));
    const g = await forward(fx.addr, small);
    try {
      const got = await Promise.all(Array.from({ length: 20 }, () => slowRead(g.port)));
      expect(got).toEqual(Array(20).fill(2));
    } finally {
      g.proc.kill("SIGINT");
      await g.proc.exited;
    }
    expect(await g.stderrEnd).not.toContain("MaxListeners");
  } finally {
    f.proc.kill("SIGINT");
    await f.proc.exited;
  }
  const err = await f.stderrEnd;
  expect(err).not.toContain("MaxListeners");
  expect(err).not.toContain("Warning");
}, 90_000);

test("an agent that closes a stream it never opened (TCP_CLOSED ok:true): the local socket is closed, vge ends with EPROTO", async () => {
  const agent = await hostile({
    welcome: { ...GOOD_WELCOME, capabilities: ["exec", "tcp"] },
    onFrame: (f, sock) => f.type === T.TCP_OPEN && sock.write(encodeJson(T.TCP_CLOSED, f.id, { ok: true })),
  });
  const f = await forward(agent.addr, 9);
  try {
    const t0 = performance.now();
    const ended = await new Promise<string>((resolve) => {
      const s = tcpConnect({ host: "127.0.0.1", port: f.port }, () => s.resume());
      s.on("error", (e) => resolve(`error ${(e as { code?: string }).code}`));
      s.on("close", () => resolve("closed"));
      setTimeout(() => resolve("still open after 10 s"), 10_000);
    });
    expect(ended).toMatch(/^(closed|error ECONNRESET)$/);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(await f.proc.exited).toBe(255);
    // The connection's end and that connection's own failure, each said once, in either order.
    const lines = (await f.stderrEnd).split("\n").filter((l) => l.startsWith("vge: ") && !l.startsWith("vge: forwarding"));
    expect(lines.sort()).toEqual([
      expect.stringMatching(/^vge: error: the guest connection ended: .*: TCP_CLOSED ok:true before TCP_OPENED$/),
      expect.stringMatching(/^vge: warning: 127\.0\.0\.1:\d+: guest 127\.0\.0\.1:9: .*: TCP_CLOSED ok:true before TCP_OPENED$/),
    ]);
  } finally {
    f.proc.kill("SIGKILL");
  }
}, 30_000);
