// The STDIN queue of an execution (src/agent/v2/stdin-queue.ts) as a pure unit, with a sink the test lets
// take bytes when it wants: every byte reaches the process once and in order, every byte of credit comes
// back once, small frames are merged (a window of 1-byte frames is a handful of pieces), end of input
// closes a pipe and is Ctrl-D on a terminal, and STDIN_EOF without end is bounded.
import { expect, test } from "bun:test";
import { MAX_QUEUED_EOF, StdinQueue, type StdinSink } from "../../../src/agent/v2/stdin-queue.ts";

/** A sink whose writes wait until the test lets them through (`open`), or fail (`fail`). */
function sink() {
  const got: number[] = [];
  const writes: number[] = [];
  let ends = 0;
  let waiting: (() => void)[] = [];
  let open = false;
  let broken = false;
  const s: StdinSink = {
    write: (bytes) => {
      writes.push(bytes.byteLength);
      const copy = [...bytes];
      const take = () => void got.push(...copy);
      if (broken) return Promise.reject(new Error("EPIPE"));
      if (open) return Promise.resolve(take());
      return new Promise<void>((r) => waiting.push(() => (take(), r())));
    },
    end: async () => void ends++,
  };
  return {
    s,
    got,
    writes,
    ends: () => ends,
    open: async () => {
      open = true;
      for (const w of waiting.splice(0)) w();
      for (let i = 0; i < 20; i++) await Promise.resolve();
      await Bun.sleep(0);
    },
    fail: () => {
      broken = true;
      for (const w of waiting.splice(0)) w();
    },
  };
}

test("a window of 1-byte frames while the process reads nothing: a handful of pieces, then every byte in order and every byte of credit back", async () => {
  const k = sink();
  let back = 0;
  const q = new StdinQueue(k.s, false, (n) => (back += n));
  const N = 256 * 1024;
  for (let i = 0; i < N; i++) q.push(new Uint8Array([i & 0xff]));
  // One write in flight (the first byte), the rest merged into pieces of up to 64 KiB.
  expect((q as unknown as { pieces: unknown[] }).pieces.length).toBeLessThanOrEqual(6);
  await k.open();
  expect(k.got.length).toBe(N);
  expect(k.got.every((b, i) => b === (i & 0xff))).toBe(true);
  expect(back).toBe(N);
  expect(Math.max(...k.writes)).toBeLessThanOrEqual(64 * 1024);
});

test("pipe: STDIN_EOF closes it once, after the bytes before it; bytes after it are dropped with their credit back at once; empty frames are nothing", async () => {
  const k = sink();
  let back = 0;
  const q = new StdinQueue(k.s, false, (n) => (back += n));
  q.push(new TextEncoder().encode("abc"));
  q.push(new Uint8Array(0));
  q.end();
  q.end();
  q.push(new TextEncoder().encode("late"));
  expect(back).toBe(4);
  await k.open();
  expect(String.fromCharCode(...k.got)).toBe("abc");
  expect(k.ends()).toBe(1);
  expect(back).toBe(7);
});

test(`terminal: STDIN_EOF is Ctrl-D in order with the bytes, taking no credit; at most ${MAX_QUEUED_EOF} wait at once`, async () => {
  const k = sink();
  let back = 0;
  const q = new StdinQueue(k.s, true, (n) => (back += n));
  q.push(new TextEncoder().encode("a"));
  q.end();
  q.push(new TextEncoder().encode("b"));
  q.end();
  await k.open();
  expect(k.got).toEqual([0x61, 4, 0x62, 4]);
  expect(back).toBe(2);
  expect(k.ends()).toBe(0);
  // A host sending STDIN_EOF without end to a terminal that reads nothing.
  const k2 = sink();
  const q2 = new StdinQueue(k2.s, true, () => {});
  for (let i = 0; i < 100_000; i++) q2.end();
  await k2.open();
  expect(k2.got.length).toBe(MAX_QUEUED_EOF);
  // Once they are taken, more may come.
  q2.end();
  await k2.open();
  expect(k2.got.length).toBe(MAX_QUEUED_EOF + 1);
});

test("a process that closed its stdin: the bytes are dropped and their credit still comes back", async () => {
  const k = sink();
  let back = 0;
  const q = new StdinQueue(k.s, false, (n) => (back += n));
  q.push(new Uint8Array(100_000));
  q.push(new Uint8Array(10));
  k.fail();
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await Bun.sleep(0);
  expect(back).toBe(100_010);
  expect(k.got.length).toBe(100_000);
});
