// What the codecs of `vsock-guest-exec/protocol` throw: a bad frame or body is always a ProtocolError with a
// `code` ("EPROTO", or a more specific one), never a TypeError or RangeError, so a library user (and the
// agent, which turns it into ERROR {code}) can tell a peer's bad frame from a bug. Misusing an encoder is a
// bug of the caller's and stays a RangeError. Seeded, so a failure reproduces.
import { describe, expect, test } from "bun:test";
import * as protocol from "../../src/protocol/index.ts";
import { FrameDecoder, ProtocolError, T, encodeFrame, encodeHeader } from "../../src/protocol/index.ts";
import { authError, parseAuth, parseHelloAuth, parseWelcomeAuth } from "../../src/protocol/v2/auth.ts";
import { decodeAttach, decodeKill, validateAttached, validateDetached, validateListing } from "../../src/protocol/v2/jobs.ts";
import { decodeTcpClosed, decodeTcpOpen } from "../../src/protocol/v2/tcp.ts";

type Body = Record<string, unknown>;

/** Every decoder of a JSON body, agent side (decode*) and host side (validate*). */
const bodyDecoders: [string, (b: Body) => unknown][] = [
  ["decodeExec", protocol.decodeExec],
  ["validateExec", protocol.validateExec],
  ["decodeHello", protocol.decodeHello],
  ["decodeResize", protocol.decodeResize],
  ["decodeSignal", protocol.decodeSignal],
  ["decodePut", protocol.decodePut],
  ["decodeGet", protocol.decodeGet],
  ["validateWelcome", protocol.validateWelcome],
  ["validateExit", protocol.validateExit],
  ["validateFileResult", protocol.validateFileResult],
  ["decodeAttach", decodeAttach],
  ["decodeKill", decodeKill],
  ["validateAttached", validateAttached],
  ["validateDetached", validateDetached],
  ["validateListing", validateListing],
  ["decodeTcpOpen", decodeTcpOpen],
  ["decodeTcpClosed", decodeTcpClosed],
  ["parseAuth", parseAuth],
  ["parseHelloAuth", (b) => parseHelloAuth(b.auth)],
  ["parseWelcomeAuth", (b) => parseWelcomeAuth(b.auth)],
];

/** Decoders of a whole frame (JSON or binary payload). */
const frameDecoders: [string, number, (f: protocol.Frame) => unknown][] = [
  ["decodeJson", T.EXEC, (f) => protocol.decodeJson(f)],
  ["decodeWindow", T.WINDOW, protocol.decodeWindow],
  ["decodeEntry", T.DIR_ENTRY, protocol.decodeEntry],
  ["decodeDirRequest", T.PUTDIR, (f) => protocol.decodeDirRequest(f, "PUTDIR")],
  ["decodeDirResult", T.RESULT, protocol.decodeDirResult],
];

/** xorshift32: the same values on every run. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

// Values a hostile peer can put in JSON. Parsed, not built, so that keys such as "__proto__" and
// "toString" are own properties exactly as JSON.parse makes them from the wire.
const LEAVES = [
  "null", "0", "-1", "1.5", "4294967295", "4294967296", "1e308", "-0", "true", "false", '""', '"x"', '"\\u0000"', '"SIGFOO"',
  '"toString"', '"__proto__"', '"/a"', '"a/../b"', '"2\\u001b[31m"', "[]", "[1]", '["a"]', "{}",
  '{"toString":1}', '{"valueOf":"x","toString":null}', '{"__proto__":{"a":1}}', '{"length":5}',
];
const KEYS = [
  "argv", "shell", "env", "cwd", "user", "uid", "gid", "stdin", "pty", "cols", "rows", "term", "merge", "timeoutMs", "killSignal", "detach", "tag", "keep",
  "path", "size", "mode", "maxSize", "versions", "client", "signal", "job", "from", "stdout", "stderr", "host", "port", "ok", "errno", "message", "status",
  "code", "signo", "type", "mtime", "target", "version", "agent", "capabilities", "hostname", "kernel", "arch", "initrd", "pid", "maxPayload", "window",
  "jobs", "more", "state", "startedAt", "endedAt", "exit", "attached", "total", "kept", "dropped", "files", "dirs", "symlinks", "bytes", "skipped",
  "auth", "nonce", "proof", "__proto__", "toString", "constructor",
];

function jsonValue(r: () => number, depth: number): string {
  if (depth <= 0 || r() < 0.55) return LEAVES[Math.floor(r() * LEAVES.length)]!;
  if (r() < 0.3) return `[${Array.from({ length: Math.floor(r() * 3) }, () => jsonValue(r, depth - 1)).join(",")}]`;
  return jsonObject(r, depth - 1);
}

function jsonObject(r: () => number, depth: number): string {
  const parts: string[] = [];
  for (const k of KEYS) if (r() < 0.15) parts.push(`${JSON.stringify(k)}:${jsonValue(r, depth)}`);
  return `{${parts.join(",")}}`;
}

/** The first thrown value that is not a ProtocolError with a code, described; undefined if none. */
function strayError(fn: () => unknown, input: string): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtocolError && /^E[A-Z]+$/.test(e.code)) return undefined;
    return `${(e as Error)?.name}: ${(e as Error)?.message} (code ${(e as { code?: unknown })?.code}) for ${input.slice(0, 200)}`;
  }
  return undefined;
}

const text = new TextEncoder();

describe("decoding errors are ProtocolErrors with a code", () => {
  test("ProtocolError: code EPROTO unless a more specific one is given", () => {
    const plain = new ProtocolError("bad frame");
    expect(plain).toBeInstanceOf(Error);
    expect([plain.name, plain.code, plain.message]).toEqual(["ProtocolError", "EPROTO", "bad frame"]);
    expect(new ProtocolError("credit", "EFLOW").code).toBe("EFLOW");
    expect(authError("no proof").code).toBe("EAUTH");
    expect(authError("no proof")).toBeInstanceOf(ProtocolError);
  });

  test("a field out of range names the field and carries EPROTO", () => {
    let caught: unknown;
    try {
      protocol.decodeExec({ argv: ["true"], uid: -1 });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ProtocolError);
    expect((caught as ProtocolError).code).toBe("EPROTO");
    expect((caught as ProtocolError).message).toContain("uid");
  });

  test("a WELCOME whose version is {\"toString\":1} (String() of it throws TypeError): ProtocolError", () => {
    const b = JSON.parse('{"version":{"toString":1}}') as Body;
    expect(strayError(() => protocol.validateWelcome(b), "version {toString:1}")).toBeUndefined();
    expect(() => protocol.validateWelcome(b)).toThrow('the agent chose version {"toString":1}');
  });

  test("2,000 seeded hostile bodies through every body decoder: nothing but ProtocolError", () => {
    const r = rng(0x5eed1);
    const stray = new Map<string, string>();
    for (let i = 0; i < 2000; i++) {
      const src = jsonObject(r, 3);
      for (const [name, decode] of bodyDecoders) {
        const s = strayError(() => decode(JSON.parse(src) as Body), src);
        if (s && !stray.has(name)) stray.set(name, s);
      }
    }
    expect(Object.fromEntries(stray)).toEqual({});
  }, 30_000);

  test("hostile frame payloads through every frame decoder: nothing but ProtocolError", () => {
    const r = rng(0xf4a3e);
    const payloads: Uint8Array[] = [
      new Uint8Array(0),
      new Uint8Array([0xff, 0xfe]),
      new Uint8Array(3),
      new Uint8Array(5),
      text.encode("null"),
      text.encode("[]"),
      text.encode('"x"'),
      // Deep enough to overflow JSON.parse's stack (a RangeError inside it), and still under MAX_PAYLOAD.
      text.encode(`${"[".repeat(120_000)}${"]".repeat(120_000)}`),
      text.encode(`${'{"a":'.repeat(40_000)}1${"}".repeat(40_000)}`),
    ];
    for (let i = 0; i < 1000; i++) payloads.push(text.encode(jsonObject(r, 3)));
    const stray = new Map<string, string>();
    for (const payload of payloads) {
      for (const [name, type, decode] of frameDecoders) {
        const s = strayError(() => decode({ type, id: 1, payload }), new TextDecoder().decode(payload.subarray(0, 200)));
        if (s && !stray.has(name)) stray.set(name, s);
      }
    }
    expect(Object.fromEntries(stray)).toEqual({});
  }, 30_000);

  test("FrameDecoder over seeded random bytes, in random pieces: nothing but ProtocolError", () => {
    const r = rng(0xdec0de);
    let protocolErrors = 0;
    for (let i = 0; i < 20_000; i++) {
      const bytes = new Uint8Array(1 + Math.floor(r() * 64)).map(() => Math.floor(r() * 256));
      // Plausible headers too, so that frames are decoded and not only refused by length.
      if (r() < 0.5) bytes.set(encodeHeader(Object.values(T)[Math.floor(r() * 40) % Object.values(T).length]!, 1, Math.floor(r() * 8)).subarray(0, Math.min(9, bytes.byteLength)));
      const d = new FrameDecoder();
      try {
        for (let off = 0; off < bytes.byteLength; ) {
          const n = 1 + Math.floor(r() * 16);
          d.push(bytes.subarray(off, off + n));
          off += n;
        }
        d.finish();
      } catch (e) {
        expect(e).toBeInstanceOf(ProtocolError);
        expect((e as ProtocolError).code).toBe("EPROTO");
        protocolErrors++;
      }
    }
    // The inputs did exercise the error path.
    expect(protocolErrors).toBeGreaterThan(1000);
  });
});

describe("misusing an encoder is a bug of the caller's, not a bad frame", () => {
  test.each([
    ["payload over MAX_PAYLOAD", () => encodeFrame(T.STDOUT, 1, new Uint8Array(protocol.MAX_PAYLOAD + 1))],
    ["id over u32", () => encodeFrame(T.STDOUT, 2 ** 32)],
    ["id negative", () => encodeHeader(T.STDOUT, -1, 0)],
    ["legacy command over 2048 bytes", () => protocol.encodeLegacyFrame("x".repeat(2049))],
  ])("%s: RangeError", (_what, fn) => {
    expect(fn).toThrow(RangeError);
    try {
      fn();
    } catch (e) {
      expect(e).not.toBeInstanceOf(ProtocolError);
    }
  });
});
