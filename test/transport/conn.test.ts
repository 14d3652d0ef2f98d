// The outbound side of both Conn classes: `unsent` counts what the peer has not taken yet, and
// `drained(highWater)` waits until it is below the mark, which is what the agent's session waits on
// before it reads more frames (back-pressure instead of an unbounded queue).
import { afterEach, expect, test } from "bun:test";
import { createConnection, createServer, type Socket } from "node:net";
import { serverHandlers, type Conn } from "../../src/transport/conn.ts";
import { connectUnixNet } from "../../src/transport/netconn.ts";
import { tempDir, type TempDir } from "../helpers/tmp.ts";

let dir: TempDir | undefined;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
  dir?.remove();
});

const MiB = 1 << 20;
const settled = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true), Bun.sleep(ms).then(() => false)]);

/** Writes 8 MiB without waiting, checks it queues while the peer does not read, and drains once it does. */
async function checkBackPressure(conn: Conn, startReading: () => void, received: () => number): Promise<void> {
  const chunk = new Uint8Array(64 * 1024);
  for (let i = 0; i < 128; i++) void conn.write(chunk).catch(() => {});
  await Bun.sleep(100);
  expect(conn.unsent).toBeGreaterThan(256 * 1024);
  const drained = conn.drained(256 * 1024);
  expect(await settled(drained, 300)).toBe(false);
  startReading();
  expect(await settled(drained, 5000)).toBe(true);
  expect(await settled(conn.drained(0), 5000)).toBe(true);
  expect(conn.unsent).toBe(0);
  for (let t = 0; received() < 8 * MiB && t < 5000; t += 20) await Bun.sleep(20);
  expect(received()).toBe(8 * MiB);
}

test("SocketConn (Bun sockets, the agent's): unsent grows while the peer does not read; drained waits for it", async () => {
  dir = tempDir("vge-conn-");
  const path = dir.file("s.sock");
  let accepted!: (c: Conn) => void;
  const conn = new Promise<Conn>((r) => (accepted = r));
  const server = Bun.listen({ unix: path, allowHalfOpen: true, data: undefined as never, socket: serverHandlers((c) => accepted(c)) } as never);
  cleanups.push(() => server.stop(true));
  const client: Socket = createConnection({ path });
  cleanups.push(() => client.destroy());
  client.pause();
  let got = 0;
  client.on("data", (d: Buffer) => (got += d.byteLength));
  const c = await conn;
  await checkBackPressure(c, () => client.resume(), () => got);
  c.close();
  expect(await settled(c.drained(0), 100)).toBe(true);
});

test("NetConn (node:net, the host's): the same contract", async () => {
  dir = tempDir("vge-netconn-");
  const path = dir.file("s.sock");
  let peer!: Socket;
  const accepted = new Promise<void>((resolve) => {
    const server = createServer((s) => {
      peer = s;
      s.pause();
      resolve();
    }).listen(path);
    cleanups.push(() => server.close());
  });
  const c = await connectUnixNet(path);
  await accepted;
  cleanups.push(() => peer.destroy());
  let got = 0;
  peer.on("data", (d: Buffer) => (got += d.byteLength));
  await checkBackPressure(c, () => peer.resume(), () => got);
  c.close();
});

/**
 * The Conn contract both ends' zero-copy senders rely on (sendWithin, the directory walker): write()
 * resolves once the bytes are in the kernel, so a caller may refill its one buffer right after. 4 KiB
 * writes into a peer that does not read yet: node:net's buffer takes them below its high-water mark,
 * and a write that resolved then would let the refill change bytes not yet sent.
 */
async function checkBufferReuse(conn: Conn, startReading: () => void, received: () => Buffer): Promise<void> {
  const buf = new Uint8Array(4096);
  const blocks = 2048; // 8 MiB: more than the socket buffers hold, so writes wait on the reader
  let done = false;
  const writer = (async () => {
    for (let i = 0; i < blocks; i++) {
      buf.fill(i & 0xff);
      buf[0] = i >> 8;
      await conn.write(buf);
    }
    done = true;
  })();
  await Bun.sleep(200);
  expect(done).toBe(false);
  startReading();
  await writer;
  for (let t = 0; received().byteLength < blocks * 4096 && t < 5000; t += 20) await Bun.sleep(20);
  const got = received();
  expect(got.byteLength).toBe(blocks * 4096);
  const bad: number[] = [];
  for (let i = 0; i < blocks && bad.length < 5; i++) {
    const b = got.subarray(i * 4096, (i + 1) * 4096);
    if (b[0] !== i >> 8 || b[1] !== (i & 0xff) || b[4095] !== (i & 0xff)) bad.push(i);
  }
  expect(bad).toEqual([]);
}

test("SocketConn: a buffer refilled as soon as write() resolves never changes bytes on the wire", async () => {
  dir = tempDir("vge-conn-reuse-");
  const path = dir.file("s.sock");
  let accepted!: (c: Conn) => void;
  const conn = new Promise<Conn>((r) => (accepted = r));
  const server = Bun.listen({ unix: path, allowHalfOpen: true, data: undefined as never, socket: serverHandlers((c) => accepted(c)) } as never);
  cleanups.push(() => server.stop(true));
  const client: Socket = createConnection({ path });
  cleanups.push(() => client.destroy());
  client.pause();
  const chunks: Buffer[] = [];
  client.on("data", (d: Buffer) => chunks.push(d));
  const c = await conn;
  await checkBufferReuse(c, () => client.resume(), () => Buffer.concat(chunks));
  c.close();
});

test("NetConn: a buffer refilled as soon as write() resolves never changes bytes on the wire", async () => {
  dir = tempDir("vge-netconn-reuse-");
  const path = dir.file("s.sock");
  let peer!: Socket;
  const accepted = new Promise<void>((resolve) => {
    const server = createServer((s) => {
      peer = s;
      s.pause();
      resolve();
    }).listen(path);
    cleanups.push(() => server.close());
  });
  const c = await connectUnixNet(path);
  await accepted;
  cleanups.push(() => peer.destroy());
  const chunks: Buffer[] = [];
  peer.on("data", (d: Buffer) => chunks.push(d));
  await checkBufferReuse(c, () => peer.resume(), () => Buffer.concat(chunks));
  c.close();
});
