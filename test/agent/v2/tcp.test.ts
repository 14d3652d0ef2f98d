// TCP streams (PROTOCOL.md §13) against the compiled agent, with hand-made frames: the agent connects to
// servers this test runs on 127.0.0.1, carries bytes both ways within the windows, passes half-closes on,
// refuses bad targets per stream (or, for malformed frames, ends the connection), and holds its limit.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readlinkSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { v2Fixture } from "./_fixture.ts";
import { T, V2Host, json } from "./_host.ts";
import { vmRssKiB } from "../../helpers/proc.ts";
import { pyHost } from "./_pyhost.ts";
import { encodeFrame, encodeJson, type Frame } from "../../../src/protocol/v2/frame.ts";

const WINDOW = 262144;
const fx = v2Fixture("vge-v2t-");
/** Sockets the agent holds: its listener, each host connection, each TCP stream. */
const agentSockets = () => readdirSync(`/proc/${fx.agent.pid}/fd`).filter((n) => { try { return readlinkSync(`/proc/${fx.agent.pid}/fd/${n}`).startsWith("socket:"); } catch { return false; } }).length;
const sha256 = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");

/** A server on 127.0.0.1:0 for one behaviour; every socket it accepted is kept for the test to inspect. */
async function server(onConn: (s: Socket) => void): Promise<{ port: number; server: Server; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const srv = createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on("error", () => {});
    onConn(s);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  return { port: (srv.address() as { port: number }).port, server: srv, sockets };
}

let echo: Awaited<ReturnType<typeof server>>;
/** Reads everything up to the peer's half-close, then answers "<bytes> <sha256>" and closes. */
let digest: Awaited<ReturnType<typeof server>>;
const servers: Server[] = [];

beforeAll(async () => {
  echo = await server((s) => {
    s.pipe(s);
  });
  digest = await server((s) => {
    const h = new Bun.CryptoHasher("sha256");
    let n = 0;
    s.on("data", (d) => {
      n += d.length;
      h.update(d);
    });
    s.on("end", () => s.end(`${n} ${h.digest("hex")}`));
  });
  servers.push(echo.server, digest.server);
});

afterAll(() => {
  for (const s of servers) s.close();
});

const bytesOf = (h: V2Host, id: number) => Buffer.concat(h.of(id).filter((f) => f.type === T.TCP_DATA).map((f) => f.payload));
const closedOf = (h: V2Host, id: number, ms = 10_000) => h.until((f) => f.id === id && f.type === T.TCP_CLOSED, ms, `TCP_CLOSED of ${id}`).then(json);

async function open(h: V2Host, id: number, port: number, host = "127.0.0.1"): Promise<Frame> {
  await h.sendJson(T.TCP_OPEN, id, { host, port });
  return h.until((f) => f.id === id && (f.type === T.TCP_OPENED || f.type === T.TCP_CLOSED), 10_000, `answer to TCP_OPEN ${id}`);
}

/** Sends `data` as TCP_DATA frames, never beyond the credit the agent has given for `id`. */
async function sendData(h: V2Host, id: number, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.byteLength; ) {
    await h.waitFor(() => h.inputCredit(id) > 0, 10_000, `TCP credit for ${id}`);
    const n = Math.min(h.inputCredit(id), 65536, data.byteLength - off);
    h.spend(id, n);
    await h.send(T.TCP_DATA, id, data.subarray(off, off + n));
    off += n;
  }
}

test("WELCOME lists the tcp capability", () => {
  expect(fx.host.welcome!.capabilities).toContain("tcp");
});

test("echo: OPENED, bytes back, our half-close reaches the server, its close comes back as EOF and CLOSED", async () => {
  const id = fx.id();
  const opened = await open(fx.host, id, echo.port);
  expect(opened.type).toBe(T.TCP_OPENED);
  expect(json(opened)).toMatchObject({ address: "127.0.0.1", port: echo.port });
  await sendData(fx.host, id, new TextEncoder().encode("hello over tcp\n"));
  await fx.host.waitFor(() => bytesOf(fx.host, id).byteLength === 15, 5000, "the echo");
  await fx.host.send(T.TCP_EOF, id);
  expect(await closedOf(fx.host, id)).toEqual({ ok: true });
  expect(bytesOf(fx.host, id).toString()).toBe("hello over tcp\n");
  // In order: OPENED, data, the server's FIN as TCP_EOF, then CLOSED, and nothing after it.
  const kinds = fx.host.of(id).filter((f) => f.type !== T.WINDOW).map((f) => f.type);
  expect(kinds).toEqual([T.TCP_OPENED, T.TCP_DATA, T.TCP_EOF, T.TCP_CLOSED]);
});

test("half-close host → guest: 3 MiB, then TCP_EOF; the server's answer after its end arrives intact", async () => {
  const id = fx.id();
  const data = new Uint8Array(3 * 1024 * 1024 + 7).map((_, i) => (i * 31 + (i >> 9)) & 255);
  expect((await open(fx.host, id, digest.port)).type).toBe(T.TCP_OPENED);
  await sendData(fx.host, id, data);
  await fx.host.send(T.TCP_EOF, id);
  expect(await closedOf(fx.host, id)).toEqual({ ok: true });
  expect(bytesOf(fx.host, id).toString()).toBe(`${data.byteLength} ${sha256(data)}`);
  // Every byte's credit came back, and only after it was written.
  const returned = fx.host.of(id).filter((f) => f.type === T.WINDOW).reduce((s, f) => s + Buffer.from(f.payload).readUInt32LE(0), 0);
  expect(returned).toBe(data.byteLength);
});

test("half-close guest → host: the server ends first, the stream stays writable, then both ends close", async () => {
  let serverGot = "";
  let serverEnded!: () => void;
  const ended = new Promise<void>((r) => (serverEnded = r));
  const first = await server((s) => {
    s.end("from the server, then FIN\n");
    s.on("data", (d) => (serverGot += d));
    s.on("end", () => serverEnded());
  });
  servers.push(first.server);
  const id = fx.id();
  expect((await open(fx.host, id, first.port)).type).toBe(T.TCP_OPENED);
  await fx.host.until((f) => f.id === id && f.type === T.TCP_EOF, 5000, "TCP_EOF");
  expect(bytesOf(fx.host, id).toString()).toBe("from the server, then FIN\n");
  expect(fx.host.of(id).some((f) => f.type === T.TCP_CLOSED)).toBe(false);
  await sendData(fx.host, id, new TextEncoder().encode("and the host answers after it"));
  await fx.host.send(T.TCP_EOF, id);
  expect(await closedOf(fx.host, id)).toEqual({ ok: true });
  await ended;
  expect(serverGot).toBe("and the host answers after it");
});

test("a refused port fails that stream only (ECONNREFUSED, no OPENED); the connection and other streams go on", async () => {
  const gone = await server(() => {});
  const port = gone.port;
  await new Promise((r) => gone.server.close(r));
  const other = fx.id();
  expect((await open(fx.host, other, echo.port)).type).toBe(T.TCP_OPENED);
  const id = fx.id();
  const answer = await open(fx.host, id, port);
  expect(answer.type).toBe(T.TCP_CLOSED);
  expect(json(answer)).toMatchObject({ ok: false, errno: "ECONNREFUSED" });
  expect(json(answer).message).toContain(`127.0.0.1:${port}`);
  // The other stream still echoes, and a ping is answered.
  await sendData(fx.host, other, new TextEncoder().encode("still here"));
  await fx.host.waitFor(() => bytesOf(fx.host, other).toString() === "still here", 5000, "echo on the other stream");
  const ping = fx.id();
  await fx.host.send(T.PING, ping, new Uint8Array([1, 2]));
  await fx.host.until((f) => f.id === ping && f.type === T.PONG);
  await fx.host.send(T.TCP_RESET, other);
  expect(await closedOf(fx.host, other)).toMatchObject({ ok: false, errno: "ECONNRESET" });
});

test("an unknown host name fails that stream with the resolver's errno", async () => {
  const id = fx.id();
  const answer = await open(fx.host, id, 80, "no-such-host.invalid");
  expect(answer.type).toBe(T.TCP_CLOSED);
  expect(json(answer)).toMatchObject({ ok: false });
  expect(json(answer).errno).toMatch(/^E[A-Z]+$/);
});

test("50 streams at once, 200 KiB each both ways through the echo server, all intact", async () => {
  const ids = Array.from({ length: 50 }, () => fx.id());
  const datas = ids.map((id) => new Uint8Array(200 * 1024).map((_, i) => (i ^ id) & 255));
  await Promise.all(ids.map((id) => open(fx.host, id, echo.port)));
  await Promise.all(ids.map((id, k) => sendData(fx.host, id, datas[k]!).then(() => fx.host.send(T.TCP_EOF, id))));
  const closed = await Promise.all(ids.map((id) => closedOf(fx.host, id, 20_000)));
  expect(closed.every((c) => c.ok === true)).toBe(true);
  ids.forEach((id, k) => expect(sha256(bytesOf(fx.host, id))).toBe(sha256(datas[k]!)));
}, 30_000);

test("guest → host within credit: a stream without credit stops at one window, then resumes", async () => {
  const big = new Uint8Array(4_000_000).map((_, i) => i % 253);
  const source = await server((s) => s.end(big));
  servers.push(source.server);
  const id = fx.id();
  fx.host.held.add(id);
  expect((await open(fx.host, id, source.port)).type).toBe(T.TCP_OPENED);
  await fx.host.waitFor(() => bytesOf(fx.host, id).byteLength >= WINDOW, 5000, "one window");
  await Bun.sleep(300);
  expect(bytesOf(fx.host, id).byteLength).toBe(WINDOW);
  await fx.host.release(id);
  // The server's FIN comes after its last byte; the stream stays open until our side ends too.
  await fx.host.until((f) => f.id === id && f.type === T.TCP_EOF, 10_000, "TCP_EOF");
  expect(sha256(bytesOf(fx.host, id))).toBe(sha256(big));
  await fx.host.send(T.TCP_EOF, id);
  expect(await closedOf(fx.host, id)).toEqual({ ok: true });
});

describe("limit", () => {
  test("the 129th open stream (the default limit) is refused with EAGAIN; after one closes, a new one opens", async () => {
    const h = await V2Host.connect(fx.sock);
    await h.hello();
    try {
      const ids = Array.from({ length: 128 }, (_, i) => i + 1);
      const answers = await Promise.all(ids.map((id) => open(h, id, echo.port)));
      expect(answers.every((f) => f.type === T.TCP_OPENED)).toBe(true);
      const refused = await open(h, 129, echo.port);
      expect(refused.type).toBe(T.TCP_CLOSED);
      expect(json(refused)).toMatchObject({ ok: false, errno: "EAGAIN" });
      expect(json(refused).message).toBe("too many TCP streams open on this connection (limit 128, see --max-tcp-per-conn)");
      // The refused id was never in use: it may be opened again at once (and is refused again, still at the limit).
      expect(json(await open(h, 129, echo.port))).toMatchObject({ ok: false, errno: "EAGAIN" });
      await h.send(T.TCP_RESET, 1);
      await closedOf(h, 1);
      expect((await open(h, 130, echo.port)).type).toBe(T.TCP_OPENED);
    } finally {
      h.close();
    }
  }, 30_000);
});

describe("hostile host: malformed TCP frames end that connection with EPROTO", () => {
  const long = "a".repeat(63) + "." + "b".repeat(63) + "." + "c".repeat(63) + "." + "d".repeat(63);
  const cases: [string, unknown][] = [
    ["empty host", { host: "", port: 80 }],
    ["host with NUL", { host: "127.0.0.1\0evil", port: 80 }],
    ["host of 255 characters", { host: long, port: 80 }],
    ["host with a space", { host: "bad host", port: 80 }],
    ["host with a slash", { host: "a/b", port: 80 }],
    ["IPv4 out of range", { host: "256.0.0.1", port: 80 }],
    ["broken IPv6", { host: "1:::2", port: 80 }],
    ["host a number", { host: 127001, port: 80 }],
    ["no host", { port: 80 }],
    ["port 0", { host: "127.0.0.1", port: 0 }],
    ["port 65536", { host: "127.0.0.1", port: 65536 }],
    ["port 1.5", { host: "127.0.0.1", port: 1.5 }],
    ["port as a string", { host: "127.0.0.1", port: "80" }],
    ["no port", { host: "127.0.0.1" }],
  ];
  test.each(cases)("%s", async (_name, body) => {
    const h = await V2Host.connect(fx.sock);
    await h.hello();
    await h.write(encodeJson(T.TCP_OPEN, 1, body));
    const err = await h.until((f) => f.type === T.ERROR);
    expect(json(err).code).toBe("EPROTO");
    expect(json(err).message).toContain("TCP_OPEN");
    expect(await h.closedWithin(2000)).toBe(true);
    // Nothing was opened: no OPENED or CLOSED for the id.
    expect(h.of(1)).toEqual([]);
  });

  test("TCP_OPEN on id 0 or on an open id", async () => {
    for (const frames of [[encodeJson(T.TCP_OPEN, 0, { host: "127.0.0.1", port: echo.port })], [encodeJson(T.TCP_OPEN, 7, { host: "127.0.0.1", port: echo.port }), encodeJson(T.TCP_OPEN, 7, { host: "127.0.0.1", port: echo.port })]]) {
      const h = await V2Host.connect(fx.sock);
      await h.hello();
      for (const f of frames) await h.write(f);
      expect(json(await h.until((f) => f.type === T.ERROR)).code).toBe("EPROTO");
      expect(await h.closedWithin(2000)).toBe(true);
    }
  });

  test("TCP_DATA after the host's own TCP_EOF", async () => {
    const h = await V2Host.connect(fx.sock);
    await h.hello();
    expect((await open(h, 1, echo.port)).type).toBe(T.TCP_OPENED);
    await h.send(T.TCP_EOF, 1);
    await h.send(T.TCP_DATA, 1, new Uint8Array([1]));
    // The echo server may close first (its answer to our EOF); either the stream ended or EPROTO came.
    const f = await h.until((f) => f.type === T.ERROR || (f.id === 1 && f.type === T.TCP_CLOSED));
    if (f.type === T.ERROR) expect(json(f).code).toBe("EPROTO");
    h.close();
  });

  test("data beyond credit → EFLOW; until then the agent held at most one window for a server that does not read", async () => {
    const stuck = await server((s) => s.pause());
    servers.push(stuck.server);
    // The connections the tests before ended with an ERROR are still lingering (linger.ts, up to 0.5 s):
    // the baseline is taken once they are gone.
    let sockets0 = agentSockets();
    for (let t = 0; t < 3000; t += 100) {
      await Bun.sleep(100);
      const now = agentSockets();
      if (now === sockets0 && t >= 700) break;
      sockets0 = now;
    }
    const h = await V2Host.connect(fx.sock);
    await h.hello();
    expect((await open(h, 1, stuck.port)).type).toBe(T.TCP_OPENED);
    const rss0 = vmRssKiB(fx.agent.pid)!;
    // Send within credit until the kernel's buffers are full and credit stops coming back.
    const chunk = new Uint8Array(65536).fill(0x5a);
    let sent = 0;
    for (;;) {
      const ok = await h.waitFor(() => h.inputCredit(1) >= chunk.byteLength, 1000, "credit").then(
        () => true,
        () => false,
      );
      if (!ok) break;
      h.spend(1, chunk.byteLength);
      await h.send(T.TCP_DATA, 1, chunk);
      sent += chunk.byteLength;
      if (sent > 256 * 1024 * 1024) throw new Error("credit never ran out: the agent is not bounding its buffer");
    }
    const rss1 = vmRssKiB(fx.agent.pid)!;
    // What the agent holds unwritten is what it has not given back: at most one window.
    expect(h.inputCredit(1)).toBeGreaterThanOrEqual(0);
    expect(h.inputCredit(1)).toBeLessThan(chunk.byteLength);
    expect(rss1 - rss0).toBeLessThan(32 * 1024);
    // Now one byte more than the credit left.
    await h.send(T.TCP_DATA, 1, new Uint8Array(h.inputCredit(1) + 1));
    const err = await h.until((f) => f.type === T.ERROR);
    expect(json(err).code).toBe("EFLOW");
    expect(await h.closedWithin(2000)).toBe(true);
    // The agent dropped that connection and its TCP socket: its socket count is back where it was.
    await fx.host.waitFor(() => true);
    let left = -1;
    for (let i = 0; i < 100 && left !== sockets0; i++, await Bun.sleep(20)) left = agentSockets();
    expect(left).toBe(sockets0);
  }, 30_000);
});

test("frames for an unknown stream id are ignored (TCP_DATA racing with TCP_CLOSED)", async () => {
  await fx.host.send(T.TCP_DATA, 99999, new Uint8Array([1, 2, 3]));
  await fx.host.send(T.TCP_EOF, 99999);
  await fx.host.write(encodeFrame(T.TCP_RESET, 99998));
  const ping = fx.id();
  await fx.host.send(T.PING, ping, new Uint8Array([9]));
  await fx.host.until((f) => f.id === ping && f.type === T.PONG);
});

test("Python host: 2 MiB up through a stream, the digest back, and a refused port on another id", async () => {
  const gone = await server(() => {});
  await new Promise((r) => gone.server.close(r));
  const rep = await pyHost("connect", fx.sock, {
    timeout_s: 20,
    ops: [
      { op: "tcp", id: 1, host: "127.0.0.1", port: digest.port, gen: { size: 2 * 1024 * 1024, seed: 7 } },
      { op: "tcp", id: 2, host: "127.0.0.1", port: gone.port },
    ],
  }).report;
  expect(rep.error).toBeNull();
  const [up, refused] = [rep.ops["1"], rep.ops["2"]];
  expect(up.order).toEqual(["TCP_OPENED", "TCP_DATA", "TCP_EOF", "TCP_CLOSED"]);
  expect(up.closed).toEqual({ ok: true });
  expect(up.data.text).toBe(`${2 * 1024 * 1024} ${up.sent.sha256}`);
  expect(refused.order).toEqual(["TCP_CLOSED"]);
  expect(refused.closed).toMatchObject({ ok: false, errno: "ECONNREFUSED" });
}, 30_000);

test("IPv6: a server on ::1 is reached by its literal, and OPENED names it", async () => {
  const srv = createServer((s) => s.end("six"));
  const listening = await new Promise<boolean>((r) => srv.once("error", () => r(false)).listen(0, "::1", () => r(true)));
  if (!listening) return console.warn("skipped: no ::1 on this machine");
  servers.push(srv);
  const port = (srv.address() as { port: number }).port;
  const id = fx.id();
  const answer = await open(fx.host, id, port, "::1");
  expect(answer.type).toBe(T.TCP_OPENED);
  expect(json(answer).address).toBe("::1");
  await fx.host.until((f) => f.id === id && f.type === T.TCP_EOF);
  expect(bytesOf(fx.host, id).toString()).toBe("six");
  await fx.host.send(T.TCP_EOF, id);
  expect(await closedOf(fx.host, id)).toEqual({ ok: true });
});
