// The legacy wire formats over a ByteReader fed the way a socket feeds it: in pieces, with gaps, then EOF.
import { describe, expect, test } from "bun:test";
import { MAX_COMMAND, cutAtNul, encodeLegacyFrame, readDisposable, readFrame, type LegacyFrame } from "../../src/protocol/legacy.ts";
import { ByteReader } from "../../src/transport/reader.ts";
import { PYTHON } from "../helpers/pyhost.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const le16 = (n: number) => new Uint8Array([n & 0xff, n >> 8]);
const oneByOne = (b: Uint8Array) => [...b].map((x) => new Uint8Array([x]));
const cat = (...parts: (Uint8Array | string)[]) => Buffer.concat(parts.map((p) => (typeof p === "string" ? enc(p) : p)));

/** A piece of input: bytes, a gap in milliseconds, or the host's EOF. */
type Piece = Uint8Array | string | { gap: number } | "eof";

/** Feeds pieces into a fresh reader in the background, as socket callbacks would. */
function feed(pieces: Piece[]): ByteReader {
  const reader = new ByteReader();
  void (async () => {
    for (const p of pieces) {
      if (p === "eof") reader.end();
      else if (typeof p === "object" && "gap" in p) await Bun.sleep(p.gap);
      else reader.push(typeof p === "string" ? enc(p) : p);
      // Let the consumer run between pieces, as between two socket reads.
      await Promise.resolve();
    }
  })();
  return reader;
}

async function frames(reader: ByteReader, max = 100): Promise<LegacyFrame[]> {
  const out: LegacyFrame[] = [];
  for (let i = 0; i < max; i++) {
    const f = await readFrame(reader);
    out.push(f);
    if (f.kind === "eof" || f.kind === "cut") break;
  }
  return out;
}

/** Frames with command bodies as text, for readable expectations. */
const show = (fs: LegacyFrame[]) => fs.map((f) => (f.kind === "command" ? { kind: "command", text: dec(f.command) } : f));

describe("readFrame (persistent: u16 LE length + bytes)", () => {
  const cases: [string, Piece[], object[]][] = [
    ["one frame, then EOF", [cat(le16(3), "abc"), "eof"], [{ kind: "command", text: "abc" }, { kind: "eof" }]],
    ["EOF before any frame", ["eof"], [{ kind: "eof" }]],
    ["split byte by byte", [...oneByOne(cat(le16(3), "abc")), "eof"], [{ kind: "command", text: "abc" }, { kind: "eof" }]],
    ["header split across writes", [le16(3).subarray(0, 1), cat(le16(3).subarray(1), "a"), "bc", "eof"], [{ kind: "command", text: "abc" }, { kind: "eof" }]],
    ["several frames in one write", [cat(le16(1), "a", le16(2), "bb", le16(3), "ccc"), "eof"], [{ kind: "command", text: "a" }, { kind: "command", text: "bb" }, { kind: "command", text: "ccc" }, { kind: "eof" }]],
    ["length 0 runs nothing and the next frame follows", [cat(le16(0), le16(2), "ok"), "eof"], [{ kind: "empty" }, { kind: "command", text: "ok" }, { kind: "eof" }]],
    ["a NUL inside is kept whole (the agent cuts it, see cutAtNul)", [cat(le16(5), "ab\0cd"), "eof"], [{ kind: "command", text: "ab\0cd" }, { kind: "eof" }]],
    ["oversize 2049 is dropped and the stream stays in sync", [cat(le16(2049), "x".repeat(2049), le16(2), "ok"), "eof"], [{ kind: "too-long", length: 2049 }, { kind: "command", text: "ok" }, { kind: "eof" }]],
    ["oversize 65535 in small pieces is dropped, then a good frame", [le16(65535), ...Array.from({ length: 64 }, () => "y".repeat(1023)), "y".repeat(63), cat(le16(2), "ok"), "eof"], [{ kind: "too-long", length: 65535 }, { kind: "command", text: "ok" }, { kind: "eof" }]],
    ["cut in the header", [new Uint8Array([5]), "eof"], [{ kind: "cut", got: 1, wanted: 2 }]],
    ["cut right after the header", [le16(10), "eof"], [{ kind: "cut", got: 0, wanted: 10 }]],
    ["cut in the body", [cat(le16(10), "abcd"), "eof"], [{ kind: "cut", got: 4, wanted: 10 }]],
    ["cut in an oversize body", [cat(le16(3000), "z".repeat(100)), "eof"], [{ kind: "cut", got: 100, wanted: 3000 }]],
    ["cut after a good frame", [cat(le16(2), "ok", le16(9), "abc"), "eof"], [{ kind: "command", text: "ok" }, { kind: "cut", got: 3, wanted: 9 }]],
  ];
  test.each(cases)("%s", async (_, pieces, want) => {
    expect<unknown>(show(await frames(feed(pieces)))).toEqual(want);
  });

  test("exactly 2048 bytes is a command; 2049 is too long", async () => {
    const body = "a".repeat(MAX_COMMAND);
    const got = await frames(feed([cat(le16(2048), body, le16(2049), body, "b"), "eof"]));
    expect(got[0]).toEqual({ kind: "command", command: enc(body) });
    expect(got[1]).toEqual({ kind: "too-long", length: 2049 });
    expect(got[2]).toEqual({ kind: "eof" });
  });

  // Part of a header or body buffered, the rest still on its way: the reader must sleep, not spin. A spin
  // here starved the event loop, so the rest never arrived (the agent hung at 100% CPU).
  test("a frame split by real pauses, inside the header and the body, arrives whole", async () => {
    const reader = feed([new Uint8Array([4]), { gap: 20 }, cat(new Uint8Array([0]), "ab"), { gap: 20 }, "c", { gap: 20 }, "d", "eof"]);
    const started = performance.now();
    const got = await frames(reader);
    expect(performance.now() - started).toBeGreaterThanOrEqual(50);
    expect(show(got)).toEqual([{ kind: "command", text: "abcd" }, { kind: "eof" }]);
  });
});

describe("readDisposable (raw bytes until EOF, NUL or a pause)", () => {
  const PAUSE = 60;
  const SHORT = { gap: 5 };
  const LONG = { gap: 200 };
  // [name, pieces, expected: text and how it ended, or another kind]
  const cases: [string, Piece[], object][] = [
    ["whole, then EOF", ["echo hi", "eof"], { kind: "command", text: "echo hi", ended: "eof" }],
    ["three pieces with short gaps, then EOF", ["ec", SHORT, "ho h", SHORT, "i", "eof"], { kind: "command", text: "echo hi", ended: "eof" }],
    ["three pieces with short gaps, host keeps the socket open", ["ec", SHORT, "ho h", SHORT, "i"], { kind: "command", text: "echo hi", ended: "pause" }],
    ["a gap longer than the pause ends the command", ["echo a", LONG, "; echo b", "eof"], { kind: "command", text: "echo a", ended: "pause" }],
    ["waits for the first byte as long as it takes", [LONG, "late", "eof"], { kind: "command", text: "late", ended: "eof" }],
    ["NUL ends the command", ["echo a\0echo b", "eof"], { kind: "command", text: "echo a", ended: "nul" }],
    ["NUL in a later piece ends it without waiting for EOF", ["echo a", SHORT, "\0", LONG, "eof"], { kind: "command", text: "echo a", ended: "nul" }],
    ["NUL first: nothing to run", ["\0echo b", "eof"], { kind: "empty" }],
    ["EOF without a byte: nothing to run", ["eof"], { kind: "empty" }],
    ["exactly 2048 bytes, EOF", ["a".repeat(2048), "eof"], { kind: "command", text: "a".repeat(2048), ended: "eof" }],
    ["exactly 2048 bytes, pause", ["a".repeat(1000), SHORT, "a".repeat(1048)], { kind: "command", text: "a".repeat(2048), ended: "pause" }],
    ["2048 bytes then NUL", ["a".repeat(2048), "\0", "eof"], { kind: "command", text: "a".repeat(2048), ended: "nul" }],
    ["2049 bytes: too long, even with a NUL after", ["a".repeat(2049), "\0", "eof"], { kind: "too-long" }],
    ["2049 bytes in pieces, host keeps the socket open: refused at once", ["a".repeat(2000), SHORT, "a".repeat(49)], { kind: "too-long" }],
    ["5000 bytes in one write", ["a".repeat(5000), "eof"], { kind: "too-long" }],
  ];

  test.each(cases)("%s", async (_, pieces, want) => {
    const got = await readDisposable(feed(pieces), PAUSE);
    expect<unknown>(got.kind === "command" ? { kind: got.kind, text: dec(got.command), ended: got.ended } : got).toEqual(want);
  });

  test("the pause counts from the last byte, not from the first", async () => {
    // Ten pieces 30 ms apart: 270 ms in all, far over one 60 ms pause, yet one command.
    const pieces: Piece[] = [];
    for (let i = 0; i < 10; i++) pieces.push(String(i), { gap: 30 });
    const got = await readDisposable(feed(pieces), PAUSE);
    expect(got.kind === "command" && dec(got.command)).toBe("0123456789");
  });

  test("a refused command never comes back truncated", async () => {
    for (const n of [2049, 2050, 4096, 65536]) expect((await readDisposable(feed(["b".repeat(n), "eof"]), PAUSE)).kind).toBe("too-long");
  });
});

describe("cutAtNul", () => {
  test.each([
    ["abc", "abc"],
    ["ab\0c", "ab"],
    ["\0abc", ""],
    ["abc\0", "abc"],
    ["", ""],
  ])("%j → %j", (input, want) => {
    expect(dec(cutAtNul(enc(input)))).toBe(want);
  });
});

describe("encodeLegacyFrame", () => {
  // Test vectors: any host, in any language, must produce these bytes.
  const vectors: [string, string | Uint8Array, string][] = [
    ["echo hello world", "echo hello world", "1000" + Buffer.from("echo hello world").toString("hex")],
    ["empty", "", "0000"],
    ["one byte", "x", "010078"],
    ["UTF-8 counts bytes", "é", "0200c3a9"],
    ["256 bytes (low byte 0)", "a".repeat(256), "0001" + "61".repeat(256)],
    ["2048 bytes", "a".repeat(2048), "0008" + "61".repeat(2048)],
    ["raw bytes", new Uint8Array([0, 255]), "020000ff"],
  ];
  test.each(vectors)("%s", (_, input, hex) => {
    expect(Buffer.from(encodeLegacyFrame(input)).toString("hex")).toBe(hex);
  });

  test("more than 2048 bytes is a RangeError", () => {
    expect(() => encodeLegacyFrame("a".repeat(2049))).toThrow(RangeError);
  });

  test.skipIf(!PYTHON)("matches Python's struct.pack('<H') framing for the same commands", () => {
    const inputs = ["echo hello world", "", "é", "a".repeat(300), "a".repeat(2048)];
    const py = `import json,struct,sys\nfor s in json.load(sys.stdin): print((struct.pack("<H", len(s.encode())) + s.encode()).hex())`;
    const r = Bun.spawnSync([PYTHON!, "-c", py], { stdin: Buffer.from(JSON.stringify(inputs)), timeout: 10_000 });
    expect(r.stdout.toString().trim().split("\n")).toEqual(inputs.map((s) => Buffer.from(encodeLegacyFrame(s)).toString("hex")));
  });
});
