// Mutations of valid v2 sessions into hostile ones: frame fields, JSON values, ordering, ids, truncation and
// byte flips. Deterministic for a given Rng. Safety: every absolute path in any JSON body is forced inside
// the fuzz directory, and byte-level mutations never touch the payload of a PUT or GET, so no mutation can
// name a file outside it. Commands stay those of the seeds (true, echo, cat, short sleeps) or strings from
// VOCAB below, none of which is a program.
import { MAGIC, MAX_PAYLOAD, T, decodeJson, encodeFrame, typeName, type Frame } from "../../src/protocol/v2/frame.ts";
import { FrameDecoder } from "../../src/protocol/v2/decoder.ts";
import { decodeTcpOpen } from "../../src/protocol/v2/tcp.ts";
import type { Rng } from "./_rng.ts";
import type { Session, Step } from "./_seeds.ts";

export interface Case {
  /** Written in order, each as a separate write, after the pause at the same index. */
  chunks: Uint8Array[];
  gapsMs: number[];
  /** What was done, for a failure report. */
  notes: string[];
  seedName: string;
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/** JSON text cannot spell these through JSON.stringify: a string "@@RAW:x@@" is written as the bare literal x. */
const RAW_LITERALS = ["1e309", "-1e309", "123456789012345678901234567890", "-0.0", "1.0", "1E-400", "0.1e1"];
const rawLiteral = (s: string) => `@@RAW:${s}@@`;

/** A hostile JSON value: type confusion, numbers at every edge, NaN-ish and very long strings, NUL bytes. */
export function vocab(rng: Rng, dir: string): unknown {
  const numbers = [-1, 0, 1, -0, 0.5, -2.5, 1e-300, 1e308, 65535, 65536, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), Number.MAX_VALUE];
  const strings = [
    "",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e309",
    "0x7fffffff",
    "-1",
    "65536",
    "SIGKILL",
    "SIGTERM",
    "SIGNOPE",
    "sigkill",
    "9",
    "KILL",
    "\u0000",
    "a\u0000b",
    "\ud800",
    "\uffff",
    "é☃💥",
    "A=B",
    "../..",
    "%s%n%x",
    "\r\n",
    `${dir}/put-v`,
    `${dir}/sub`,
    `${dir}/get-me`,
    `${dir}/nodir/x`,
  ];
  const r = rng.next();
  if (r < 0.3) return rng.pick(numbers);
  if (r < 0.55) return rng.pick(strings);
  if (r < 0.6) return rawLiteral(rng.pick(RAW_LITERALS));
  if (r < 0.67) return "x".repeat(rng.pick([255, 4096, 65537, 200_000])); // the last one makes the frame close to MAX_PAYLOAD
  if (r < 0.72) return rng.pick([true, false, null]);
  if (r < 0.8) return rng.pick([[], [1], ["true"], [null], [[]], {}, { cols: 1 }, { signal: 9 }]);
  if (r < 0.84) return rng.chance(0.5) ? nest(rng.int(10, 3000)) : Object.fromEntries(Array.from({ length: rng.int(100, 5000) }, (_, i) => [`k${i}`, i]));
  if (r < 0.92) return rng.int(-(2 ** 31), 2 ** 32);
  return (rng.next() - 0.5) * 2 ** rng.int(0, 60);
}

function nest(depth: number): unknown {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/** Values at the edge of what each known field accepts, by field name: where validation bugs live. */
function fieldEdges(dir: string): Record<string, unknown[]> {
  const u32 = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, -1, 0.5];
  return {
    argv: [[""], ["true", "\u0000"], ["echo", "x".repeat(131072)], Array.from({ length: 5000 }, () => "a"), ["true", 1]],
    shell: ["", " ", "true\u0000echo"],
    env: [{ A: "a\u0000b" }, { "A\u0000": "x" }, { "": "x" }, { "A=B": "x" }, { A: null }, { A: 1 }, Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`V${i}`, "x"]))],
    clearEnv: [true, "true", 1],
    cwd: ["", "a\u0000b", `${dir}/nodir`, `${dir}/get-me`, `${dir}/sub`],
    user: ["", "nobody", "nosuchuser-vge", "0", "4294967295", "-1", "root\u0000"],
    uid: u32,
    gid: u32,
    stdin: ["closed", "pipe", "tty", ""],
    pty: [{ cols: -1, rows: 24 }, { cols: 0, rows: 0 }, { cols: 65535, rows: 65535 }, { cols: 65536, rows: 1 }, { cols: 2 ** 31, rows: 1 }, { cols: 80 }, { cols: 80, rows: 24, term: "\u0000" }, { cols: 80, rows: 24, term: "x".repeat(5000) }],
    merge: [true, "yes", 1],
    timeoutMs: [1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 0, -1, 0.5, 1e-300],
    killSignal: ["SIGNOPE", "", "SIGKILL", "KILL", "9", "sigterm", "SIGRTMIN+1", "SIGSTOP", "SIGCONT"],
    signal: ["SIGNOPE", "", "SIGKILL", "9", 9, "SIGSTOP", "SIGCONT", "SIGRTMIN"],
    cols: [-1, 0, 65535, 65536, 2 ** 31, 2 ** 32, 0.5, 1e-300],
    rows: [-1, 0, 65535, 65536, 2 ** 31, 2 ** 32, 0.5, 1e-300],
    term: ["", "\u0000", "x".repeat(5000)],
    size: [0, 1, 4, 6, 2 ** 31, 2 ** 53 - 1, 2 ** 53, -1, 0.5],
    maxSize: [0, 1, 2 ** 53 - 1, -1, 0.5],
    mode: [0, 0o777, 0o4755, 0o7777, 0o10000, 2 ** 32 - 1, -1],
    versions: [[], [1], [3], [2, 2], ["2"], [2 ** 53], 2],
    client: ["", "x".repeat(100000), 2],
  };
}

const EXEC_OPTIONS = ["argv", "shell", "env", "clearEnv", "cwd", "user", "uid", "gid", "stdin", "pty", "merge", "timeoutMs", "killSignal"];

const UNKNOWN_KEYS = ["x", "", "__proto__", "constructor", "toString", "argv", "shell", "path", "size", "cols", "rows", "signal", "versions", "timeoutMs", "k".repeat(1000), "\u0000"];

/** Every absolute path must be inside `dir`: anything else (a flip or a vocabulary value) becomes one that is. */
function confine(v: unknown, dir: string): unknown {
  if (typeof v === "string") return v.startsWith("/") && !(v.startsWith(`${dir}/`) && !v.includes("/..")) ? `${dir}/confined` : v;
  if (Array.isArray(v)) return v.map((x) => confine(x, dir));
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) Object.defineProperty(out, k, { value: confine(x, dir), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}

type Slot = { parent: Record<string, unknown> | unknown[] | null; key: string | number };

/** All places a value sits in a JSON body: the root, each object member, each array element. */
function slots(root: unknown): Slot[] {
  const out: Slot[] = [{ parent: null, key: 0 }];
  const walk = (v: unknown, depth: number) => {
    if (depth > 6 || v === null || typeof v !== "object") return;
    if (Array.isArray(v)) v.slice(0, 20).forEach((x, i) => (out.push({ parent: v, key: i }), walk(x, depth + 1)));
    else for (const [k, x] of Object.entries(v).slice(0, 20)) out.push({ parent: v as Record<string, unknown>, key: k }), walk(x, depth + 1);
  };
  walk(root, 0);
  return out;
}

function mutateJson(rng: Rng, body: unknown, dir: string, notes: string[]): unknown {
  const root = structuredClone(body);
  const show = (v: unknown) => {
    const s = JSON.stringify(v) ?? String(v);
    return s.length > 40 ? `${s.slice(0, 40)}…(${s.length})` : s;
  };
  const edges = fieldEdges(dir);
  if (root && typeof root === "object" && !Array.isArray(root) && rng.chance(0.3)) {
    // A known field with an edge value: for EXEC any option (added or replaced), else one the body has.
    const keys = "argv" in root || "shell" in root ? EXEC_OPTIONS : Object.keys(root).filter((k) => k in edges);
    if (keys.length) {
      const k = rng.pick(keys);
      (root as Record<string, unknown>)[k] = structuredClone(rng.pick(edges[k] ?? [null]));
      notes.push(`json: ${show(k)} = ${show((root as Record<string, unknown>)[k])} (edge)`);
      return root;
    }
  }
  const all = slots(root);
  // Mostly a member that is there already (a known field with a hostile value); sometimes the body itself.
  const slot = all.length > 1 && rng.chance(0.8) ? rng.pick(all.slice(1)) : rng.pick(all);
  const value = vocab(rng, dir);
  if (slot.parent === null) {
    const r = rng.next();
    if (r < 0.5 && root && typeof root === "object" && !Array.isArray(root)) {
      const k = rng.pick(UNKNOWN_KEYS);
      Object.defineProperty(root, k, { value, enumerable: true, writable: true, configurable: true });
      notes.push(`json: add key ${show(k)} = ${show(value)}`);
      return root;
    }
    notes.push(`json: body = ${show(value)}`);
    return value;
  }
  if (!Array.isArray(slot.parent) && rng.chance(0.25)) {
    delete slot.parent[slot.key as string];
    notes.push(`json: delete ${show(slot.key)}`);
    return root;
  }
  (slot.parent as Record<string | number, unknown>)[slot.key] = value;
  notes.push(`json: ${show(slot.key)} = ${show(value)}`);
  return root;
}

/** Payload bytes of a step, JSON written with the raw literals put in. */
function payloadOf(step: Step): Uint8Array {
  if (step.json === undefined) return step.data ?? new Uint8Array(0);
  const text = (JSON.stringify(step.json) ?? "null").replace(/"@@RAW:([^"@]*)@@"/g, "$1");
  return utf8(text);
}

/** Header and payload; past MAX_PAYLOAD (or with an id that is no u32) the header is written by hand, as a hostile host would. */
export function encodeStep(step: Step): Uint8Array {
  if (step.raw) return step.raw;
  const payload = payloadOf(step);
  const type = step.type & 0xff;
  if (payload.byteLength <= MAX_PAYLOAD && Number.isInteger(step.id) && step.id >= 0 && step.id <= 0xffffffff) return encodeFrame(type, step.id, payload);
  const out = new Uint8Array(9 + payload.byteLength);
  const v = new DataView(out.buffer);
  v.setUint32(0, 5 + payload.byteLength, true);
  v.setUint8(4, type);
  v.setUint32(5, step.id >>> 0, true);
  out.set(payload, 9);
  return out;
}

const KNOWN_TYPES = Object.values(T);
/** Every frame type a host sends (PROTOCOL.md): a type mutation mostly turns one host frame into another. */
export const SENT_TYPES = [
  T.HELLO, T.AUTH, T.EXEC, T.STDIN, T.STDIN_EOF, T.SIGNAL, T.RESIZE, T.WINDOW, T.LIST, T.ATTACH, T.KILL, T.PUT, T.GET, T.FILE_DATA, T.FILE_END,
  T.PUTDIR, T.GETDIR, T.DIR_ENTRY, T.DIR_END, T.PING, T.TCP_OPEN, T.TCP_DATA, T.TCP_EOF, T.TCP_RESET,
];
const SPECIAL_IDS = [0, 1, 0xffffffff, 0x80000000, 0x7fffffff, 2];
const SPECIAL_LENGTHS = [0, 1, 4, 5, 6, 5 + MAX_PAYLOAD, 6 + MAX_PAYLOAD, 0x7fffffff, 0xffffffff];

/** Bytes that spell nothing a shell or a path could act on (control characters and >= 0x7f), for data payloads. */
function garbage(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const b = rng.int(0, 0x20 + 0x81 - 1);
    out[i] = b < 0x20 ? b : b - 0x20 + 0x7f;
  }
  return out;
}

/** Steps-level mutations: ordering, duplication, ids, types, JSON values, data sizes, splicing from another seed. */
function mutateSteps(rng: Rng, steps: Step[], seeds: Session[], dir: string, notes: string[]): Step[] {
  const out = steps.map((s) => ({ ...s }));
  // Mostly one mutation, so that most cases get past the first error and reach deeper states.
  const n = rng.chance(0.5) ? 1 : rng.int(2, 4);
  for (let k = 0; k < n && out.length > 0; k++) {
    const i = rng.int(0, out.length - 1);
    const step = out[i]!;
    const r = rng.next();
    if (r < 0.35) {
      // HELLO is in every session: past it more often, where the operations are.
      const frames = out.filter((s) => s.json !== undefined && (s.type !== T.HELLO || rng.chance(0.2)));
      if (frames.length === 0) continue;
      const f = rng.pick(frames);
      f.json = mutateJson(rng, f.json, dir, notes);
    } else if (r < 0.42) {
      out.splice(i, 1);
      notes.push(`drop step ${i}`);
    } else if (r < 0.49) {
      out.splice(rng.int(0, out.length), 0, { ...step });
      notes.push(`duplicate step ${i}`);
    } else if (r < 0.56) {
      const j = rng.int(0, out.length - 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
      notes.push(`swap steps ${i} and ${j}`);
    } else if (r < 0.6) {
      // A frame before HELLO (or before the magic).
      const [s] = out.splice(i, 1);
      out.splice(rng.int(0, 1), 0, s!);
      notes.push(`move step ${i} to the front`);
    } else if (r < 0.7) {
      if (step.raw) continue;
      step.id = rng.chance(0.5) ? rng.pick(SPECIAL_IDS) : rng.pick(out).id;
      notes.push(`step ${i}: id ${step.id}`);
    } else if (r < 0.76) {
      if (step.raw) continue;
      step.type = rng.chance(0.7) ? rng.pick(SENT_TYPES) : rng.chance(0.5) ? rng.pick(KNOWN_TYPES) : rng.int(0, 255);
      notes.push(`step ${i}: type 0x${step.type.toString(16)}`);
    } else if (r < 0.84) {
      if (step.raw || step.json !== undefined) continue;
      const size = rng.pick([0, 1, 65, 4096, 65536, 65537, MAX_PAYLOAD, MAX_PAYLOAD + 1, 300_000]);
      step.data = garbage(rng, size);
      notes.push(`step ${i}: ${size} data bytes`);
    } else if (r < 0.9) {
      const donor = rng.pick(seeds);
      const s = rng.pick(donor.steps.filter((s) => !s.raw && s.type !== T.HELLO));
      if (!s) continue;
      out.splice(rng.int(0, out.length), 0, { ...s });
      notes.push(`insert a step from "${donor.name}"`);
    } else if (r < 0.95) {
      step.gapMs = rng.pick([1, 5, 30]);
      notes.push(`step ${i}: ${step.gapMs} ms pause before`);
    } else {
      // An id reused while its operation is open: a second EXEC or PUT on the same id.
      const open = out.filter((s) => s.type === T.EXEC || s.type === T.PUT);
      if (open.length === 0) continue;
      out.splice(rng.int(0, out.length), 0, { ...rng.pick(open) });
      notes.push(`reuse an open id`);
    }
  }
  for (const s of out) if (s.json !== undefined) s.json = confine(s.json, dir);
  return out;
}

/** Byte-level mutations of encoded frames: length, type and id fields, flips, garbage, truncation, odd splits. */
export function mutateBytes(rng: Rng, frames: { bytes: Uint8Array; protect: boolean; gapMs: number }[], notes: string[]): { chunks: Uint8Array[]; gapsMs: number[] } {
  const fs: { bytes: Uint8Array; protect: boolean; gapMs: number }[] = frames.map((f) => ({ ...f, bytes: new Uint8Array(f.bytes) }));
  const n = rng.chance(0.65) ? 0 : rng.int(1, 3);
  for (let k = 0; k < n && fs.length > 0; k++) {
    const i = rng.int(0, fs.length - 1);
    const f = fs[i]!;
    const v = new DataView(f.bytes.buffer);
    const r = rng.next();
    if (r < 0.25 && f.bytes.byteLength >= 9) {
      const len = v.getUint32(0, true);
      const nl = rng.chance(0.6) ? rng.pick(SPECIAL_LENGTHS) : len + rng.pick([-2, -1, 1, 2, 100]);
      v.setUint32(0, nl >>> 0, true);
      notes.push(`frame ${i}: length ${nl >>> 0} (was ${len})`);
    } else if (r < 0.35 && f.bytes.byteLength >= 9) {
      const t = rng.int(0, 255);
      v.setUint8(4, t);
      notes.push(`frame ${i}: type byte 0x${t.toString(16)}`);
    } else if (r < 0.45 && f.bytes.byteLength >= 9) {
      const id = rng.chance(0.5) ? rng.pick(SPECIAL_IDS) : rng.int(0, 0xffffffff);
      v.setUint32(5, id, true);
      notes.push(`frame ${i}: id bytes ${id}`);
    } else if (r < 0.75) {
      // Flips anywhere in the frame, except inside a PUT's or GET's payload (its path must stay confined).
      const end = f.protect ? Math.min(9, f.bytes.byteLength) : f.bytes.byteLength;
      if (end === 0) continue;
      const flips = rng.int(1, 4);
      for (let j = 0; j < flips; j++) {
        const at = rng.int(0, end - 1);
        f.bytes[at] = f.bytes[at]! ^ (1 << rng.int(0, 7));
      }
      notes.push(`frame ${i}: ${flips} bit flips`);
    } else if (r < 0.85) {
      fs.splice(i, 0, { bytes: garbage(rng, rng.int(1, 20)), protect: false, gapMs: 0 });
      notes.push(`garbage before frame ${i}`);
    } else {
      const cut = rng.int(0, f.bytes.byteLength);
      f.bytes = f.bytes.slice(0, cut);
      fs.splice(i + 1);
      notes.push(`truncate at frame ${i} byte ${cut}`);
    }
  }
  let chunks = fs.map((f) => f.bytes);
  let gapsMs = fs.map((f) => f.gapMs);
  if (rng.chance(0.2)) {
    // Re-split the whole stream at odd places: frames cut across writes, a byte at a time at the start.
    const all = concat(chunks);
    chunks = [];
    gapsMs = [];
    for (let at = 0; at < all.byteLength; ) {
      const take = rng.chance(0.3) ? 1 : rng.int(1, 64);
      chunks.push(all.subarray(at, at + take));
      gapsMs.push(rng.chance(0.1) ? 1 : 0);
      at += take;
    }
    notes.push(`re-split into ${chunks.length} writes`);
  }
  return { chunks, gapsMs };
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.byteLength);
  return out;
}

/** Programs the seeds run; any other word a mutated command holds must not be a program at all. */
const SAFE_WORDS = new Set(["true", "echo", "cat", "sleep", "out", "err", "a", "b", "0.3", "1", "2"]);

/** A seed's word, a file in the fuzz directory (we wrote it: no shell words in it), or no program at all. */
function harmlessWord(word: string, dir: string): boolean {
  const w = word.split("\0")[0]!; // the agent refuses a NUL; were it not to, execve would see only this much
  if (SAFE_WORDS.has(w) || w.length > 255) return true; // longer than NAME_MAX: no program has that name
  if (w.startsWith(`${dir}/`) && !w.includes("/..")) return true;
  return !w.includes("/") && !w.startsWith(".") && Bun.which(w) === null;
}

/**
 * Why the agent could do harm with this case, or undefined. Decodes the stream exactly as the agent does
 * (the same FrameDecoder, so length and type mutations are seen as the agent sees them) and checks each
 * PUT/GET path and each EXEC command. The mutator is built not to produce these; this makes it a guarantee.
 */
export function hazard(c: Case, dir: string, echoPort?: number): string | undefined {
  const first = c.chunks[0];
  if (!first || first.byteLength !== MAGIC.byteLength || !first.every((b, i) => b === MAGIC[i])) return "the stream must start with the intact magic, or the agent runs it as a shell command (original formats)";
  const frames: Frame[] = [];
  const dec = new FrameDecoder();
  try {
    for (const ch of c.chunks.slice(1)) frames.push(...dec.push(ch));
  } catch {
    // The agent stops at the bad frame too; the frames before it count.
  }
  for (const f of frames) {
    // A well-formed TCP_OPEN makes the agent connect (or resolve a name): only the fuzz run's own echo
    // listener on 127.0.0.1 (`echoPort`) may be reached; anything else would be traffic to whatever
    // listens on this machine, or off it. Malformed ones stay in: the agent must refuse them.
    if (f.type === T.TCP_OPEN) {
      try {
        const t = decodeTcpOpen(decodeJson(f));
        if (echoPort !== undefined && t.host === "127.0.0.1" && t.port === echoPort) continue;
        return `TCP_OPEN would connect to ${JSON.stringify(t.host)}:${t.port}`;
      } catch {
        continue;
      }
    }
    if (f.type === T.DIR_ENTRY) {
      // The agent refuses entries that climb out (test/agent/v2/dirs.test.ts proves it by hand); the
      // fuzzer does not bet this machine's files on it.
      let e: Record<string, unknown>;
      try {
        e = decodeJson(f);
      } catch {
        continue;
      }
      for (const v of [e.path, e.target]) if (typeof v === "string" && (v.startsWith("/") || v.split("/").includes(".."))) return `DIR_ENTRY names ${JSON.stringify(v)}`;
      continue;
    }
    if (f.type !== T.PUT && f.type !== T.GET && f.type !== T.EXEC && f.type !== T.PUTDIR && f.type !== T.GETDIR) continue;
    let b: Record<string, unknown>;
    try {
      b = decodeJson(f);
    } catch {
      continue; // refused by the agent
    }
    if (f.type === T.EXEC) {
      const words = [...(Array.isArray(b.argv) ? b.argv.slice(0, 1) : []), ...(typeof b.shell === "string" ? b.shell.split(/[\s;&|<>()]+/) : [])];
      if (typeof b.shell === "string" && /[*?[`$~]/.test(b.shell)) return `EXEC shell ${JSON.stringify(b.shell)} could expand`;
      for (const w of words) if (typeof w === "string" && w !== "" && !harmlessWord(w, dir)) return `EXEC runs ${JSON.stringify(w)}`;
      continue;
    }
    const p = b.path;
    if (typeof p === "string" && p.startsWith("/") && !(p.startsWith(`${dir}/`) && !p.includes("/.."))) return `${typeName(f.type)} path ${JSON.stringify(p)} is outside ${dir}`;
  }
  return undefined;
}

/** One hostile case from one of the seed sessions. The magic is never mutated: see `hazard`. */
export function makeCase(rng: Rng, seeds: Session[], dir: string): Case {
  const seed = rng.pick(seeds);
  const notes: string[] = [];
  const body = seed.steps.filter((s) => !s.raw);
  const steps = rng.chance(0.85) ? mutateSteps(rng, body, seeds, dir, notes) : body;
  const frames = steps.map((s) => {
    const bytes = encodeStep(s);
    // Flips stay out of any payload that names a path (or could, after a flip of a neighbouring byte).
    const protect = s.type === T.PUT || s.type === T.GET || s.type === T.PUTDIR || s.type === T.GETDIR || s.type === T.DIR_ENTRY || bytes.includes(0x2f);
    return { bytes, protect, gapMs: s.gapMs ?? 0 };
  });
  const { chunks, gapsMs } = mutateBytes(rng, frames, notes);
  if (notes.length === 0) notes.push("unmutated");
  return { chunks: [MAGIC, ...chunks], gapsMs: [0, ...gapsMs], notes, seedName: seed.name };
}
