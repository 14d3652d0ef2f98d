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

  test("read is bounded by max and by what is kept; offsets outside start..total are refused; clear frees all", () => {
    const r = new Ring(100);
    r.push(bytes(0, 10));
    r.push(bytes(10, 10));
    expect(r.read(5, 3)).toEqual(bytes(5, 3));
    expect(r.read(8, 100)).toEqual(bytes(8, 12));
    expect(r.read(20, 5).byteLength).toBe(0);
    expect(() => r.read(21, 1)).toThrow(RangeError);
    r.clear();
    expect({ start: r.start, kept: r.kept, total: r.total }).toEqual({ start: 20, kept: 0, total: 20 });
    expect(() => r.read(0, 1)).toThrow(RangeError);
  });

  test("a read is a copy: bytes handed out stay as they were while the ring wraps over them", () => {
    const r = new Ring(8);
    r.push(bytes(0, 8));
    const out = r.read(0, 8);
    r.push(bytes(8, 8));
    r.push(bytes(16, 8));
    expect(out).toEqual(bytes(0, 8));
    expect(held(r)).toEqual(bytes(16, 8));
  });

  test("seeded random pushes, protects and trims against a model that keeps every byte", () => {
    let seed = 12345;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let round = 0; round < 200; round++) {
      const keep = rnd(300);
      const r = new Ring(keep);
      let total = 0;
      let protect = Infinity;
      for (let step = 0; step < 60; step++) {
        if (rnd(4) === 0) protect = rnd(3) === 0 ? Infinity : Math.max(r.start, total - rnd(50));
        const n = rnd(120);
        r.push(bytes(total, n), protect);
        total += n;
        if (rnd(5) === 0) r.trim(protect);
        // The last keep bytes are always there, and so is everything from protect on.
        const mustFrom = Math.max(0, Math.min(total - keep, protect));
        expect(r.start).toBeLessThanOrEqual(mustFrom);
        expect(r.total).toBe(total);
        expect(held(r)).toEqual(bytes(r.start, r.kept));
        const at = r.start + rnd(r.kept + 1);
        expect(r.read(at, 37)).toEqual(bytes(at, Math.min(37, total - at)));
      }
    }
  });
});
