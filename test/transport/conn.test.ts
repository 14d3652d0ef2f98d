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

/** Our side and a paused peer that reads once `startReading` is called. */
interface Pair {
  conn: Conn;
  startReading(): void;
  /** Everything the peer has read so far. */
  received(): Buffer;
}

/** SocketConn (Bun sockets, the agent's), with a node:net client as the peer. */
async function socketConnPair(prefix: string): Promise<Pair> {
  dir = tempDir(prefix);
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
  return { conn: await conn, startReading: () => client.resume(), received: () => Buffer.concat(chunks) };
}

/** NetConn (node:net, the host's), with a node:net server as the peer. */
async function netConnPair(prefix: string): Promise<Pair> {
  dir = tempDir(prefix);
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
  const conn = await connectUnixNet(path);
  await accepted;
  cleanups.push(() => peer.destroy());
  const chunks: Buffer[] = [];
  peer.on("data", (d: Buffer) => chunks.push(d));
  return { conn, startReading: () => peer.resume(), received: () => Buffer.concat(chunks) };
}

test("SocketConn (Bun sockets, the agent's): unsent grows while the peer does not read; drained waits for it", async () => {
  const p = await socketConnPair("vge-conn-");
  await checkBackPressure(p.conn, p.startReading, () => p.received().byteLength);
  p.conn.close();
  expect(await settled(p.conn.drained(0), 100)).toBe(true);
});

test("NetConn (node:net, the host's): the same contract", async () => {
  const p = await netConnPair("vge-netconn-");
  await checkBackPressure(p.conn, p.startReading, () => p.received().byteLength);
  p.conn.close();
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
  const p = await socketConnPair("vge-conn-reuse-");
  await checkBufferReuse(p.conn, p.startReading, p.received);
  p.conn.close();
});

test("NetConn: a buffer refilled as soon as write() resolves never changes bytes on the wire", async () => {
  const p = await netConnPair("vge-netconn-reuse-");
  await checkBufferReuse(p.conn, p.startReading, p.received);
  p.conn.close();
});
