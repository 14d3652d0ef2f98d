// guest.connectTcp against a scripted hostile agent: frames out of order, malformed bodies and data beyond
// the credit the host gave each end the connection with EPROTO instead of being believed or buffered.
import { afterAll, expect, test } from "bun:test";
import { createServer, type Socket } from "node:net";
import { FrameDecoder, MAGIC, T, encodeFrame, encodeJson, type Frame } from "../../src/protocol/index.ts";
import { connect, GuestError } from "../../src/host/index.ts";
import { tempDir } from "./_fixtures.ts";

const dir = tempDir("vge-tcph-");
const servers: { close(): void }[] = [];
afterAll(() => {
  for (const s of servers) s.close();
  dir.remove();
});
const WELCOME = { version: 2, agent: "fake", capabilities: ["exec", "tcp"], hostname: "fake", kernel: "0", arch: "x64", initrd: false, pid: 1, maxPayload: 262144, window: 262144 };

/** A fake agent that greets, then answers each TCP_OPEN with `answer(id)`'s frames. */
async function fakeAgent(answer: (id: number) => Uint8Array[]): Promise<string> {
  const path = dir.file(`fake-${Math.random().toString(36).slice(2)}.sock`);
  const server = createServer((sock: Socket) => {
    const dec = new FrameDecoder();
    let skip = MAGIC.length;
    sock.on("error", () => {});
    sock.on("data", (d: Buffer) => {
      const n = Math.min(skip, d.length);
      skip -= n;
      for (const f of dec.push(new Uint8Array(d.subarray(n))) as Frame[]) {
        if (f.type === T.HELLO) sock.write(encodeJson(T.WELCOME, 0, WELCOME));
        else if (f.type === T.TCP_OPEN) for (const b of answer(f.id)) sock.write(b);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  servers.push(server);
  return `unix:${path}`;
}

const opened = (id: number) => encodeJson(T.TCP_OPENED, id, { address: "127.0.0.1", port: 80 });
const cases: [string, (id: number) => Uint8Array[], RegExp][] = [
  ["TCP_DATA before TCP_OPENED", (id) => [encodeFrame(T.TCP_DATA, id, new Uint8Array(3))], /TCP_DATA before TCP_OPENED/],
  ["TCP_OPENED twice", (id) => [opened(id), opened(id)], /TCP_OPENED twice/],
  ["TCP_CLOSED without ok", (id) => [encodeJson(T.TCP_CLOSED, id, { errno: "X" })], /TCP_CLOSED: needs ok/],
  ["TCP_CLOSED ok:false without errno", (id) => [encodeJson(T.TCP_CLOSED, id, { ok: false, message: "m" })], /TCP_CLOSED: needs ok/],
  ["an execution's frame on a stream", (id) => [opened(id), encodeJson(T.EXIT, id, { status: "exited", code: 0 })], /unexpected EXIT frame for a TCP stream/],
  // Five full chunks of 64 KiB: one byte more than the 256 KiB window that nobody has read yet.
  ["data beyond the credit", (id) => [opened(id), ...Array.from({ length: 4 }, () => encodeFrame(T.TCP_DATA, id, new Uint8Array(65536))), encodeFrame(T.TCP_DATA, id, new Uint8Array(1))], /exceed the 0 bytes of credit/],
];

test.each(cases)("%s: EPROTO (EFLOW past the credit), the connection ends", async (name, answer, message) => {
  const g = await connect(await fakeAgent(answer));
  const result = await g
    .connectTcp("127.0.0.1", 80)
    .then(async (s) => {
      // Opened: the failure arrives on the stream instead (nothing is read, so no credit goes back).
      await s.closed;
      return new Error("closed cleanly");
    })
    .catch((e) => e);
  expect(result).toBeInstanceOf(GuestError);
  // Past the credit is the one overrun rule (ReceiveWindow): EFLOW, as for output and GET data.
  expect(result.code).toBe(name === "data beyond the credit" ? "EFLOW" : "EPROTO");
  expect(result.message).toMatch(message);
  await g.closed;
  expect(g.error?.message).toMatch(message);
});
