// Issue 15, fewer wake-ups per execution: a short execution's STARTED leaves with its EXIT in one write;
// a held STARTED is not held past a few ms, and frames keep the order they were made in, across ids. And
// the pipe pump's first wait (for the process's exit, not the poll thread) loses no output of a process
// that outlives it.
import { expect, test } from "bun:test";
import { Coalescer, HOLD_MS } from "../../../src/agent/v2/coalesce.ts";
import { DirectOutput } from "../../../src/agent/v2/output.ts";
import { pumpFd } from "../../../src/agent/v2/fd-pump.ts";
import { FrameDecoder } from "../../../src/protocol/v2/decoder.ts";
import { T, encodeJson } from "../../../src/protocol/v2/frame.ts";
import { close, pipe, setNonblocking, write } from "../../../src/sys/index.ts";

/** A connection that records its writes, and an execution's output on it as the session wires it. */
function wired(id = 7) {
  const writes: Uint8Array[] = [];
  const out = new Coalescer((b) => {
    writes.push(b.slice());
    return Promise.resolve();
  });
  const send = (f: Uint8Array) => out.send(f);
  const output = new DirectOutput(id, send, (f) => out.later(f));
  /** [type, id] of the frames in each write (a frame split over writes counts in the write that ends it). */
  const frames = () => {
    const d = new FrameDecoder();
    return writes.map((w) => [...d.frames(w)].map((f) => [f.type, f.id]));
  };
  return { writes, out, send, output, frames };
}

test("a short execution: STARTED and EXIT in one write, STARTED first", () => {
  const c = wired();
  c.output.started(1234);
  c.output.end({ status: "exited", code: 0 });
  expect(c.frames()).toEqual([[[T.STARTED, 7], [T.EXIT, 7]]]);
});

test("a held STARTED goes out on its own after a few ms, and before any output", async () => {
  const c = wired();
  c.output.started(1234);
  expect(c.writes.length).toBe(0);
  await Bun.sleep(HOLD_MS + 40);
  expect(c.frames()).toEqual([[[T.STARTED, 7]]]);

  const d = wired(8);
  d.output.started(1);
  await d.output.write(T.STDOUT, new Uint8Array(100_000));
  d.output.end({ status: "exited", code: 0 });
  await Bun.sleep(HOLD_MS + 20);
  // STARTED shares the first data frame's header write; the 64 KiB payload is written on its own.
  expect(d.frames().flat()).toEqual([[T.STARTED, 8], [T.STDOUT, 8], [T.STDOUT, 8], [T.EXIT, 8]]);
  expect(d.frames()[0]).toEqual([[T.STARTED, 8]]);
});

test("frames keep their order across ids: a refusal for one id does not overtake another's STARTED", () => {
  const c = wired(1);
  c.output.started(11);
  void c.send(encodeJson(T.EXIT, 4, { status: "error", errno: "EAGAIN", message: "limit" }));
  expect(c.frames()).toEqual([[[T.STARTED, 1], [T.EXIT, 4]]]);
});

test("a dropped coalescer sends nothing it held", async () => {
  const c = wired();
  c.output.started(1234);
  c.out.drop();
  await Bun.sleep(HOLD_MS + 20);
  expect(c.writes.length).toBe(0);
});

test("pumpFd: output written after the exit-first wait is still read, to EOF", async () => {
  const p = pipe();
  setNonblocking(p.read, true);
  const got: string[] = [];
  const never = new Promise(() => {});
  const gate = { ready: () => Promise.resolve(true), available: 65536 };
  const done = pumpFd(p.read, gate, async (c) => (got.push(new TextDecoder().decode(c)), true), new AbortController().signal, never);
  await Bun.sleep(30);
  write(p.write, new TextEncoder().encode("late"));
  await Bun.sleep(30);
  write(p.write, new TextEncoder().encode(" and later"));
  close(p.write);
  await done;
  close(p.read);
  expect(got.join("")).toBe("late and later");
});

test("a pump's chunk leaves as one frame in one write (header in the room before it), any other chunk as header + payload", async () => {
  const p = pipe();
  setNonblocking(p.read, true);
  const data = new Uint8Array(40_000).map((_, i) => i & 0xff);
  write(p.write, data);
  close(p.write);
  const c = wired(9);
  const gate = { ready: () => Promise.resolve(true), get available() { return c.output.room(); } };
  await pumpFd(p.read, gate, (chunk) => c.output.write(T.STDOUT, chunk), new AbortController().signal);
  close(p.read);
  expect(c.writes.length).toBe(1);
  const [f] = [...new FrameDecoder().frames(c.writes[0]!)];
  expect({ type: f!.type, id: f!.id }).toEqual({ type: T.STDOUT, id: 9 });
  expect(f!.payload).toEqual(data);
  expect(c.output.room()).toBe(256 * 1024 - data.byteLength);

  // A chunk from elsewhere: two writes, as before.
  const d = wired(10);
  await d.output.write(T.STDOUT, data);
  expect(d.writes.length).toBe(2);
  expect(d.frames().flat()).toEqual([[T.STDOUT, 10]]);
});
