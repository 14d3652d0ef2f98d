// The TypeScript codec against the committed byte-exact vectors (test/vectors/v2.json), and the Python
// implementation (test/hosts/v2_host.py) against the same file: two codecs, one reference.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { MAGIC, MAX_PAYLOAD, ProtocolError, T, decodeJson, decodeWindow, encodeFrame, encodeJson, encodeWindow } from "../../src/protocol/v2/frame.ts";
import { FrameDecoder } from "../../src/protocol/v2/decoder.ts";
import { decodeEntry } from "../../src/protocol/v2/dirs.ts";
import vectors from "../vectors/v2.json" with { type: "json" };

type Vector = { name: string; type: string; id: number; hex: string; json?: unknown; data_hex?: string; credit?: number };
const ROOT = join(import.meta.dir, "..", "..");
const fromHex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const all = vectors.vectors as Vector[];

test("magic and limits match the spec", () => {
  expect(toHex(MAGIC)).toBe(vectors.magic_hex);
  expect(vectors.magic_hex).toBe("ffff564745320d0a");
  expect(MAX_PAYLOAD).toBe(vectors.max_payload);
});

test("every frame type of the spec has a vector", () => {
  expect(new Set(all.map((v) => v.type))).toEqual(new Set(Object.keys(T)));
});

describe("vectors decode and re-encode byte-exact", () => {
  test.each(all.map((v) => [v.name, v] as const))("%s", (_name, v) => {
    const wire = fromHex(v.hex);
    const frames = new FrameDecoder().push(wire);
    expect(frames).toHaveLength(1);
    const f = frames[0]!;
    expect(f.type).toBe(T[v.type as keyof typeof T]);
    expect(f.id).toBe(v.id);
    let again: Uint8Array;
    if (v.json !== undefined) {
      expect(decodeJson(f)).toEqual(v.json as Record<string, unknown>);
      again = encodeJson(f.type, v.id, v.json);
    } else if (v.credit !== undefined) {
      expect(decodeWindow(f)).toBe(v.credit);
      again = encodeWindow(v.id, v.credit);
    } else {
      expect(toHex(f.payload)).toBe(v.data_hex!);
      again = encodeFrame(f.type, v.id, fromHex(v.data_hex!));
    }
    expect(toHex(again)).toBe(v.hex);
  });
});

describe("FrameDecoder fed byte by byte", () => {
  test.each(all.map((v) => [v.name, v] as const))("%s", (_name, v) => {
    const wire = fromHex(v.hex);
    const dec = new FrameDecoder();
    for (let i = 0; i < wire.byteLength - 1; i++) {
      expect(dec.push(wire.subarray(i, i + 1))).toEqual([]);
      expect(dec.pending).toBe(i + 1);
    }
    const [f] = dec.push(wire.subarray(wire.byteLength - 1));
    expect(toHex(encodeFrame(f!.type, f!.id, f!.payload))).toBe(v.hex);
    expect(dec.pending).toBe(0);
  });

  test("all vectors back to back, in one stream cut at every 7th byte", () => {
    const stream = Buffer.concat(all.map((v) => fromHex(v.hex)));
    const dec = new FrameDecoder();
    const got = [];
    for (let i = 0; i < stream.byteLength; i += 7) got.push(...dec.push(new Uint8Array(stream.subarray(i, i + 7))));
    expect(got.map((f) => toHex(encodeFrame(f.type, f.id, f.payload)))).toEqual(all.map((v) => v.hex));
  });
});

describe("invalid frames throw ProtocolError", () => {
  test.each(vectors.invalid.map((v) => [v.name, v] as const))("%s", (_name, v) => {
    expect(() => new FrameDecoder().push(fromHex(v.hex))).toThrow(ProtocolError);
    // Byte by byte too: the header alone is enough to refuse, before any body is buffered.
    const dec = new FrameDecoder();
    const wire = fromHex(v.hex);
    expect(() => {
      for (let i = 0; i < wire.byteLength; i++) dec.push(wire.subarray(i, i + 1));
    }).toThrow(ProtocolError);
  });

  test("a bad length is refused without waiting for its body", () => {
    // Length 0xFFFFFFFF: a decoder that waited for 4 GiB would hang or allocate; ours must throw at once.
    expect(() => new FrameDecoder().push(fromHex("ffffffff1001000000"))).toThrow(ProtocolError);
  });

  test("JSON payloads that are not objects, or not UTF-8, throw", () => {
    for (const payload of ["[1]", "null", "42", "{", ""].map((s) => new TextEncoder().encode(s)).concat([fromHex("ff")])) {
      expect(() => decodeJson({ type: T.EXEC, id: 1, payload })).toThrow(ProtocolError);
    }
  });

  test("WINDOW payloads other than 4 bytes throw", () => {
    for (const n of [0, 3, 5]) expect(() => decodeWindow({ type: T.WINDOW, id: 1, payload: new Uint8Array(n) })).toThrow(ProtocolError);
  });
});

describe("DIR_ENTRY headers (PROTOCOL.md §12)", () => {
  test.each(all.filter((v) => v.type === "DIR_ENTRY").map((v) => [v.name, v] as const))("%s decodes to the typed entry", (_name, v) => {
    const [f] = new FrameDecoder().push(fromHex(v.hex));
    expect(decodeEntry(f!)).toEqual(v.json as never);
  });

  test.each(vectors.invalid_entries.map((v) => [v.name, v] as const))("refused at decode: %s", (_name, v) => {
    const frames = new FrameDecoder().push(fromHex(v.hex));
    expect(frames).toHaveLength(1);
    expect(() => decodeEntry(frames[0]!)).toThrow(ProtocolError);
  });

  test("the mode keeps only the permission bits", () => {
    const f = { type: T.DIR_ENTRY, id: 1, payload: new TextEncoder().encode(JSON.stringify({ type: "dir", path: "d", mode: 0o170755, mtime: 0 })) };
    expect(decodeEntry(f)).toEqual({ type: "dir", path: "d", mode: 0o755, mtime: 0 });
  });
});

test("encodeFrame refuses what no peer may accept", () => {
  expect(() => encodeFrame(T.STDOUT, 1, new Uint8Array(MAX_PAYLOAD + 1))).toThrow(RangeError);
  expect(() => encodeFrame(T.STDOUT, -1)).toThrow(RangeError);
  expect(() => encodeFrame(T.STDOUT, 2 ** 32)).toThrow(RangeError);
  expect(encodeFrame(T.STDOUT, 1, new Uint8Array(MAX_PAYLOAD)).byteLength).toBe(9 + MAX_PAYLOAD);
});

test("the Python implementation agrees with the vectors", () => {
  const python = Bun.which("python3");
  if (!python) return console.warn("skipped: python3 is not installed");
  const r = Bun.spawnSync([python, join(ROOT, "test/hosts/v2_host.py"), "vectors", join(ROOT, "test/vectors/v2.json")], { timeout: 20_000 });
  const report = JSON.parse(r.stdout.toString());
  expect(report.failures).toEqual([]);
  expect(report.vectors).toBe(all.length);
  expect(report.invalid).toBe(vectors.invalid.length);
  expect(report.invalid_entries).toBe(vectors.invalid_entries.length);
  expect(r.exitCode).toBe(0);
});
