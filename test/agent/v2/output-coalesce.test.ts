// Issue 15, fewer wake-ups per execution: a short execution's STARTED leaves with its EXIT in one write;
// STARTED of a longer one is not held past a few ms, and always precedes the output. And the pipe pump's
// first wait (for the process's exit, not the poll thread) loses no output of a process that outlives it.
import { expect, test } from "bun:test";
import { DirectOutput } from "../../../src/agent/v2/output.ts";
import { pumpFd } from "../../../src/agent/v2/fd-pump.ts";
import { FrameDecoder } from "../../../src/protocol/v2/decoder.ts";
import { T } from "../../../src/protocol/v2/frame.ts";
import { close, pipe, setNonblocking, write } from "../../../src/sys/index.ts";

function recorder() {
  const writes: Uint8Array[] = [];
  const send = (b: Uint8Array) => {
    writes.push(b.slice());
    return Promise.resolve();
  };
  /** The frame types in each write, in order (a frame split over writes counts in the write that ends it). */
  const types = () => {
    const d = new FrameDecoder();
    return writes.map((w) => [...d.frames(w)].map((f) => f.type));
  };
  return { send, writes, types };
}

test("a short execution: STARTED and EXIT in one write, STARTED first", () => {
  const r = recorder();
  const out = new DirectOutput(7, r.send);
  out.started(1234);
  out.end({ status: "exited", code: 0 });
  expect(r.types()).toEqual([[T.STARTED, T.EXIT]]);
});

test("STARTED goes out on its own after a few ms, and before any output", async () => {
  const r = recorder();
  const out = new DirectOutput(7, r.send);
  out.started(1234);
  expect(r.writes.length).toBe(0);
  await Bun.sleep(50);
  expect(r.types()).toEqual([[T.STARTED]]);

  const r2 = recorder();
  const out2 = new DirectOutput(8, r2.send);
  out2.started(1);
  await out2.write(T.STDOUT, new TextEncoder().encode("hi\n"));
  out2.end({ status: "exited", code: 0 });
  expect(r2.types().flat()).toEqual([T.STARTED, T.STDOUT, T.EXIT]);
  await Bun.sleep(20);
  expect(r2.types().flat()).toEqual([T.STARTED, T.STDOUT, T.EXIT]);
});

test("a closed connection gets no held STARTED", async () => {
  const r = recorder();
  const out = new DirectOutput(7, r.send);
  out.started(1234);
  out.close();
  await Bun.sleep(20);
  expect(r.writes.length).toBe(0);
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
