// The replay ring of a detached execution's stream (src/agent/v2/ring.ts), as a pure unit: what it keeps is
// exactly the last `keep` bytes at their stream offsets, never more, except what an attached host has not
// been sent yet.
import { describe, expect, test } from "bun:test";
import { Ring } from "../../../src/agent/v2/ring.ts";

const bytes = (from: number, n: number) => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);

/** Everything the ring holds, read back chunk by chunk from its start. */
function held(r: Ring): Uint8Array {
  const out: number[] = [];
  for (let at = r.start; at < r.total; ) {
    const c = r.read(at, 1 << 20);
    out.push(...c);
    at += c.byteLength;
  }
  return Uint8Array.from(out);
}

describe("Ring", () => {
  test.each([
    [10, [3, 4, 5, 6]],
    [10, [25]],
    [7, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]],
    [0, [5, 5]],
    [64, [10, 20]],
  ])("keep %d, chunks %j: the last keep bytes at their offsets, the rest counted as dropped", (keep, sizes) => {
    const r = new Ring(keep);
    let total = 0;
    for (const n of sizes) {
      r.push(bytes(total, n));
      total += n;
      expect(r.kept).toBeLessThanOrEqual(keep);
    }
    expect(r.total).toBe(total);
    expect(r.kept).toBe(Math.min(keep, total));
    expect(r.start).toBe(total - r.kept);
    expect(held(r)).toEqual(bytes(r.start, r.kept));
  });

  test("bytes at or after protectFrom are kept beyond keep; trim() gives them up once sent", () => {
    const r = new Ring(4);
    r.push(bytes(0, 4), 0);
    r.push(bytes(4, 4), 2);
    expect(r.start).toBe(2);
    expect(r.kept).toBe(6);
    r.trim(8);
    expect(r.start).toBe(4);
    expect(held(r)).toEqual(bytes(4, 4));
  });

  test("read is bounded by max and by the chunk; offsets outside start..total are refused; clear frees all", () => {
    const r = new Ring(100);
    r.push(bytes(0, 10));
    r.push(bytes(10, 10));
    expect(r.read(5, 3)).toEqual(bytes(5, 3));
    expect(r.read(8, 100)).toEqual(bytes(8, 2));
    expect(r.read(20, 5).byteLength).toBe(0);
    expect(() => r.read(21, 1)).toThrow(RangeError);
    r.clear();
    expect({ start: r.start, kept: r.kept, total: r.total }).toEqual({ start: 20, kept: 0, total: 20 });
    expect(() => r.read(0, 1)).toThrow(RangeError);
  });
});
