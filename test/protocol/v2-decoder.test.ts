// FrameDecoder beyond the vectors: any split of any stream gives the same frames; payloads inside one
// piece are views of it (no copy) unless small, so what a peer's frames keep alive is bounded by what
// they carry; a split frame is assembled in a buffer of its own size.
import { describe, expect, test } from "bun:test";
import { FrameDecoder, ownPayload } from "../../src/protocol/v2/decoder.ts";
import { MAX_PAYLOAD, ProtocolError, T, encodeFrame, type Frame } from "../../src/protocol/v2/frame.ts";
import { caseSeed, prng } from "../fuzz/_rng.ts";

function frames(seed: number, n: number): Frame[] {
  const r = prng(seed);
  return Array.from({ length: n }, (_, i) => {
    const size = r.pick([0, 1, r.int(2, 40), r.int(41, 70_000), r.int(70_001, MAX_PAYLOAD)]);
    const payload = new Uint8Array(size);
    for (let k = 0; k < size; k += 997) payload[k] = r.int(0, 255);
    return { type: r.pick([T.STDOUT, T.FILE_DATA, T.PING, T.DIR_END]), id: r.int(0, 0xffffffff), payload };
  });
}

const wireOf = (fs: Frame[]) => new Uint8Array(Buffer.concat(fs.map((f) => encodeFrame(f.type, f.id, f.payload))));

describe("any split of a stream", () => {
  test("300 seeded streams of 12 frames, cut at random points (1 byte to 300 KiB): the same frames, in order", () => {
    for (let c = 0; c < 300; c++) {
      const seed = caseSeed(0x5eed, c);
      const want = frames(seed, 12);
      const wire = wireOf(want);
      const r = prng(seed ^ 1);
      const dec = new FrameDecoder();
      const got: Frame[] = [];
      for (let off = 0; off < wire.byteLength; ) {
        const n = r.pick([1, r.int(2, 9), r.int(10, 4096), r.int(4097, 300_000)]);
        // Each piece in its own buffer, as a socket read would be.
        got.push(...dec.push(wire.slice(off, off + n)));
        off += n;
      }
      expect(dec.pending).toBe(0);
      expect(got.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) {
        expect({ seed, i, type: got[i]!.type, id: got[i]!.id }).toEqual({ seed, i, type: want[i]!.type, id: want[i]!.id });
        expect(Buffer.compare(got[i]!.payload, want[i]!.payload)).toBe(0);
      }
    }
  });

  test("a bad header after good frames in the same piece: the good ones first, the error on the next push", () => {
    const good = encodeFrame(T.STDOUT, 1, new Uint8Array([1, 2, 3]));
    const bad = new Uint8Array([0xff, 0xff, 0xff, 0x7f, T.STDOUT, 0, 0, 0, 0]);
    const dec = new FrameDecoder();
    const got = dec.push(new Uint8Array([...good, ...bad]));
    expect(got.map((f) => [...f.payload])).toEqual([[1, 2, 3]]);
    expect(() => dec.finish()).toThrow(ProtocolError);
    expect(() => dec.push(good)).toThrow(/outside 5\.\./);
  });
});

describe("frames(): only as far as the consumer takes", () => {
  test("the good frames come one at a time; a bad header throws only when reached, and on every later call", () => {
    const good = (i: number) => encodeFrame(T.STDOUT, i, new Uint8Array([i]));
    const bad = new Uint8Array([0xff, 0xff, 0xff, 0x7f, T.STDOUT, 0, 0, 0, 0]);
    const dec = new FrameDecoder();
    const it = dec.frames(new Uint8Array([...good(1), ...good(2), ...good(3), ...bad]));
    expect(it.next().value).toMatchObject({ id: 1 });
    expect(it.next().value).toMatchObject({ id: 2 });
    expect(it.next().value).toMatchObject({ id: 3 });
    expect(() => it.next()).toThrow(ProtocolError);
    expect(() => dec.frames(good(4)).next()).toThrow(/outside 5\.\./);
  });

  test("a consumer that stops after the first of 20,000 tiny frames in one read leaves the rest undecoded", () => {
    const one = encodeFrame(T.WINDOW, 1, new Uint8Array(4));
    const read = new Uint8Array(one.byteLength * 20_000);
    for (let i = 0; i < 20_000; i++) read.set(one, i * one.byteLength);
    // Every frame after the first is then broken: decoding any of them would throw.
    for (let i = 1; i < 20_000; i++) read[i * one.byteLength + 4] = 0xee;
    const dec = new FrameDecoder();
    for (const f of dec.frames(read)) {
      expect(f.type).toBe(T.WINDOW);
      break;
    }
    expect(() => dec.finish()).not.toThrow();
  });
});

describe("what a payload keeps alive", () => {
  test("a frame inside one piece: a large payload is a view of it (no copy), a small one a copy of its own", () => {
    const big = new Uint8Array(60_000).fill(7);
    const piece = new Uint8Array([...encodeFrame(T.STDOUT, 1, big), ...encodeFrame(T.STDOUT, 2, new Uint8Array([9]))]);
    const [a, b] = new FrameDecoder().push(piece);
    expect(a!.payload.buffer).toBe(piece.buffer);
    expect(b!.payload.buffer).not.toBe(piece.buffer);
    expect(b!.payload.buffer.byteLength).toBe(1);
  });

  test("a frame split across pieces: one buffer of exactly its payload's size", () => {
    const wire = encodeFrame(T.FILE_DATA, 3, new Uint8Array(100_000).fill(1));
    const dec = new FrameDecoder();
    expect(dec.push(wire.slice(0, 4))).toEqual([]);
    expect(dec.push(wire.slice(4, 50_000))).toEqual([]);
    expect(dec.pending).toBe(50_000);
    const [f] = dec.push(wire.slice(50_000));
    expect(f!.payload.byteLength).toBe(100_000);
    expect(f!.payload.buffer.byteLength).toBe(100_000);
  });

  test("hostile: a 1-byte frame at the end of each 64 KiB read keeps 1 byte alive, not the read", () => {
    const dec = new FrameDecoder();
    let kept = 0;
    let carried = 0;
    for (let i = 0; i < 256; i++) {
      const read = new Uint8Array([...encodeFrame(T.STDOUT, 1, new Uint8Array(64 * 1024 - 30)), ...encodeFrame(T.STDOUT, 2, new Uint8Array([i]))]);
      const [, tiny] = dec.push(read);
      kept += tiny!.payload.buffer.byteLength;
      carried += tiny!.payload.byteLength;
    }
    expect(carried).toBe(256);
    expect(kept).toBeLessThanOrEqual(2 * carried);
  });

  test("ownPayload: a view is kept when it is at least a quarter of its buffer (or the share asked for)", () => {
    const b = new Uint8Array(100);
    expect(ownPayload(b.subarray(0, 25)).buffer).toBe(b.buffer);
    expect(ownPayload(b.subarray(0, 24)).buffer).not.toBe(b.buffer);
    expect(ownPayload(b.subarray(0, 50), 2).buffer).toBe(b.buffer);
    expect(ownPayload(b.subarray(0, 49), 2).buffer).not.toBe(b.buffer);
  });

  test("ownPayload copies a small view of a Buffer too (Bun's sockets read into Buffers, whose slice() is a view)", () => {
    const b = Buffer.alloc(100, 7);
    const own = ownPayload(b.subarray(10, 20));
    expect(own.buffer).not.toBe(b.buffer);
    expect(own.buffer.byteLength).toBe(10);
    expect([...own]).toEqual(new Array(10).fill(7));
  });
});
