// The receiving end of a window (src/protocol/v2/receive-window.ts): what arrives counts against the grant,
// an overrun is EFLOW and counts nothing, credit goes back only for what was consumed, in batches that
// never stall a stream, and the grant never exceeds the window.
import { describe, expect, test } from "bun:test";
import { ProtocolError, T } from "../../src/protocol/v2/frame.ts";
import { ReceiveWindow } from "../../src/protocol/v2/receive-window.ts";
import { prng } from "../fuzz/_rng.ts";

const overrun = (w: ReceiveWindow, type: number, n: number): ProtocolError => {
  try {
    w.receive(type, n);
  } catch (e) {
    return e as ProtocolError;
  }
  throw new Error(`receive(${n}) was accepted`);
};

describe("the overrun rule", () => {
  test("exactly the window is accepted; one byte more is EFLOW naming the stream, the frame and the numbers", () => {
    const w = new ReceiveWindow(100, "execution 3");
    w.receive(T.STDOUT, 60);
    w.receive(T.STDERR, 40);
    expect(w.available).toBe(0);
    const e = overrun(w, T.STDOUT, 1);
    expect(e).toBeInstanceOf(ProtocolError);
    expect(e.code).toBe("EFLOW");
    expect(e.message).toBe("execution 3: STDOUT: 1 bytes exceed the 0 bytes of credit");
  });

  test("an overrun counts nothing: the window is as it was", () => {
    const w = new ReceiveWindow(100, "GET 7");
    w.receive(T.FILE_DATA, 30);
    expect(overrun(w, T.FILE_DATA, 71).message).toBe("GET 7: FILE_DATA: 71 bytes exceed the 70 bytes of credit");
    expect(w.available).toBe(70);
    expect(w.pending).toBe(30);
    w.receive(T.FILE_DATA, 70);
    expect(w.available).toBe(0);
  });

  test.each([
    ["an empty frame", 0, true],
    ["a whole window at once", 256 * 1024, true],
    ["a window and a byte", 256 * 1024 + 1, false],
    ["2^32 - 1", 0xffffffff, false],
  ])("%s", (_, n, ok) => {
    const w = new ReceiveWindow(256 * 1024, "PUT 1");
    if (ok) w.receive(T.FILE_DATA, n);
    else expect(overrun(w, T.FILE_DATA, n).code).toBe("EFLOW");
  });

  test("credit given back lets the peer send again, and only that much", () => {
    const w = new ReceiveWindow(10, "PUT 2");
    w.receive(T.FILE_DATA, 10);
    expect(w.consume(4)).toBe(4);
    expect(w.available).toBe(4);
    expect(overrun(w, T.FILE_DATA, 5).code).toBe("EFLOW");
    w.receive(T.FILE_DATA, 4);
  });
});

describe("giving credit back", () => {
  test("without a batch, every consumed chunk goes back at once (an empty one sends nothing)", () => {
    const w = new ReceiveWindow(100, "PUT 1");
    w.receive(T.FILE_DATA, 30);
    expect(w.consume(0)).toBe(0);
    expect(w.consume(10)).toBe(10);
    expect(w.consume(20)).toBe(20);
    expect(w.available).toBe(100);
    expect(w.pending).toBe(0);
  });

  test("with a batch, nothing goes back until that much is owed, then all of it in one WINDOW", () => {
    const w = new ReceiveWindow(100, "execution 1", 50);
    w.receive(T.STDOUT, 100);
    expect(w.consume(20)).toBe(0);
    expect(w.consume(29)).toBe(0);
    expect(w.available).toBe(0);
    expect(w.consume(2)).toBe(51);
    expect(w.available).toBe(51);
    expect(w.consume(49)).toBe(0); // owed 49: held back
    expect(w.pending).toBe(0);
  });

  test("consuming more than arrived is the caller's bug: RangeError, nothing changes", () => {
    const w = new ReceiveWindow(100, "GET 1", 10);
    w.receive(T.FILE_DATA, 5);
    expect(() => w.consume(6)).toThrow(RangeError);
    expect(() => w.consume(-1)).toThrow(RangeError);
    expect(() => w.consume(0.5)).toThrow(RangeError);
    expect(w.pending).toBe(5);
    expect(w.available).toBe(95);
  });

  test.each([
    [0, "a zero size", 0],
    [-1, "a negative size", 0],
    [2 ** 53, "a size past 2^53", 0],
    [100, "a batch over half the window", 51],
    [100, "a negative batch", -1],
  ])("refuses %s (%s)", (size, _, batch) => {
    expect(() => new ReceiveWindow(size, "x", batch)).toThrow(RangeError);
  });
});

describe("invariants over random traffic (seeded)", () => {
  for (const [size, batch] of [
    [256 * 1024, 128 * 1024],
    [256 * 1024, 0],
    [1000, 500],
    [7, 3],
    [1, 0],
  ] as const) {
    test(`window ${size}, batch ${batch}: grant + held + owed is the window, and a blocked sender always leaves the reader half a window`, () => {
      const rng = prng(size * 31 + batch);
      const w = new ReceiveWindow(size, "s", batch);
      let peerCredit = size; // what a well-behaved peer thinks it may send
      for (let step = 0; step < 20_000; step++) {
        if (rng.chance(0.5) && peerCredit > 0) {
          const n = rng.int(0, Math.min(peerCredit, 65536));
          w.receive(T.STDOUT, n);
          peerCredit -= n;
        } else if (w.pending > 0) {
          peerCredit += w.consume(rng.int(0, w.pending));
        } else if (rng.chance(0.01)) {
          expect(overrun(w, T.STDOUT, peerCredit + 1).code).toBe("EFLOW");
        }
        // The peer's view and ours agree: what it may send is exactly what we accept.
        expect(w.available).toBe(peerCredit);
        expect(w.available).toBeLessThanOrEqual(size);
        expect(w.pending).toBeLessThanOrEqual(size - w.available);
        // Never a stall: when the sender has nothing left to send with, the reader holds at least half the
        // window (more than `batch` unconsumed), so reading it pays the debt.
        if (w.available === 0) expect(w.pending).toBeGreaterThanOrEqual(size - batch);
      }
    });
  }
});
