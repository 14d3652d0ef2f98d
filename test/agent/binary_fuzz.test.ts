// Persistent mode under random input: the agent must never crash (exit 0 or 3, never a signal) and must
// run exactly the frames it fully received, checked against an independent model of the format.
//
// Safety: random bytes end up as shell commands. Garbage is drawn only from control characters and bytes
// >= 0x7f, which can form no builtin, path, redirection or expansion; PATH points nowhere; the only ASCII
// text is our own `echo K >> ran` markers. At worst a shifted fragment of a marker runs in the temp dir.
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { startAgent } from "../helpers/agent.ts";
import { binaryTests } from "../helpers/binary.ts";
import { listenUnix } from "../helpers/host.ts";
import { prng, type Rng } from "../fuzz/_rng.ts";

const INPUTS = Number(process.env.VGE_FUZZ_INPUTS ?? 300);
const SEED = Number(process.env.VGE_FUZZ_SEED ?? 0x5eed_1e6a);
const PARALLEL = 4;
const MAX_COMMAND = 2048;
const V2_MAGIC = Buffer.from([0xff, 0xff, 0x56, 0x47, 0x45, 0x32, 0x0d, 0x0a]);

const root = binaryTests();


/** Bytes that cannot spell anything a shell would act on. */
function garbage(rng: Rng, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    const b = rng.int(0, 0x20 + 0x81 - 1); // 0x00..0x1f, then 0x7f..0xff
    out[i] = b < 0x20 ? b : b - 0x20 + 0x7f;
  }
  return out;
}

const le16 = (n: number) => Buffer.from([n & 0xff, n >> 8]);

interface Input {
  stream: Buffer;
  /** How the host sends it: in this many writes, this far apart, then half-close or close. */
  writes: number;
  gapMs: number;
  close: "half" | "full";
}

function makeInput(rng: Rng, idx: number): Input {
  const parts: Buffer[] = [];
  if (rng.next() < 0.15) {
    parts.push(garbage(rng, rng.int(0, 3000))); // nothing but garbage
  } else {
    const segments = rng.int(1, 12);
    for (let k = 0; k < segments; k++) {
      const r = rng.next();
      if (r < 0.4) {
        // A marker command, sometimes with a NUL and garbage after it inside the frame.
        let body = Buffer.from(`echo ${idx}.${k} >> ran`);
        if (rng.next() < 0.25) body = Buffer.concat([body, Buffer.from([0]), garbage(rng, rng.int(0, 40))]);
        parts.push(le16(body.length), body);
      } else if (r < 0.5) {
        parts.push(le16(0));
      } else if (r < 0.6) {
        const n = rng.pick([2048, 2049, rng.int(1, 2048), rng.int(2049, 65535), 65535]);
        parts.push(le16(n), garbage(rng, rng.next() < 0.6 ? n : Math.min(n, 4096))); // whole, or likely cut
      } else if (r < 0.8) {
        const n = rng.int(1, 200);
        parts.push(le16(n), garbage(rng, n)); // a frame of garbage: runs, and fails harmlessly
      } else {
        parts.push(garbage(rng, rng.int(1, 16))); // loose bytes: the stream may fall out of step
      }
    }
  }
  let stream = Buffer.concat(parts);
  if (rng.next() < 0.3) stream = stream.subarray(0, rng.int(0, stream.length)); // cut anywhere
  if (stream.subarray(0, V2_MAGIC.length).equals(V2_MAGIC)) stream = stream.subarray(1); // stay legacy
  return { stream, writes: rng.int(1, 4), gapMs: rng.pick([0, 0, 5, 15]), close: rng.next() < 0.3 ? "full" : "half" };
}

interface Expected {
  /** [frame number, command length] of every command that must run, in order. */
  runs: [number, number][];
  /** The commands' texts. */
  bodies: Buffer[];
  oversize: number;
  exit: 0 | 3;
}

/** The persistent format, written from the spec rather than from src/protocol. */
function model(stream: Buffer): Expected {
  const out: Expected = { runs: [], bodies: [], oversize: 0, exit: 0 };
  let at = 0;
  for (let n = 1; at < stream.length; n++) {
    if (stream.length - at < 2) return { ...out, exit: 3 };
    const len = stream[at]! | (stream[at + 1]! << 8);
    at += 2;
    if (stream.length - at < len) return { ...out, exit: 3 };
    const body = stream.subarray(at, at + len);
    at += len;
    if (len > MAX_COMMAND) out.oversize++;
    else if (len > 0) {
      const nul = body.indexOf(0);
      const cmd = nul < 0 ? body : body.subarray(0, nul);
      if (cmd.length > 0) {
        out.runs.push([n, cmd.length]);
        out.bodies.push(cmd);
      }
    }
  }
  return out;
}

async function runOne(idx: number, input: Input) {
  const dir = mkdtempSync(join(root.path, "f"));
  const host = await listenUnix(join(dir, "h.sock"));
  const agent = startAgent(["--unix", host.path, "persistent"], { cwd: dir, env: { PATH: "/nonexistent" }, timeoutMs: 5_000 });
  const conn = await host.accepted;
  const step = Math.ceil(input.stream.length / input.writes) || 1;
  for (let off = 0; off < input.stream.length; off += step) {
    if (off > 0 && input.gapMs) await Bun.sleep(input.gapMs);
    await conn.send(input.stream.subarray(off, off + step));
  }
  if (input.close === "full") conn.close();
  else conn.shutdownWrite();
  const r = await agent.done;
  await host.close();
  const ran = existsSync(join(dir, "ran")) ? readFileSync(join(dir, "ran"), "utf8") : "";
  return { idx, r, ran };
}

test(`${INPUTS} random persistent streams (seed ${SEED}): no crash, exactly the complete frames run`, async () => {
  const rng = prng(SEED);
  const inputs = Array.from({ length: INPUTS }, (_, i) => makeInput(rng, i));
  const failures: string[] = [];
  // What the corpus covered, so that a generator that stopped producing some case is noticed.
  const seen = { cut: 0, clean: 0, oversize: 0, commands: 0, garbageRan: 0 };
  let next = 0;
  const worker = async () => {
    // Stop after a few failures: a hang costs the agent's whole deadline per input.
    for (let i = next++; i < inputs.length && failures.length < 5; i = next++) {
      const input = inputs[i]!;
      const want = model(input.stream);
      const { r, ran } = await runOne(i, input);
      const got = [...r.stderr.matchAll(/^vsock_guest_exec: command (\d+) \((\d+) bytes\) /gm)].map((m) => [Number(m[1]), Number(m[2])]);
      seen[want.exit === 3 ? "cut" : "clean"]++;
      seen.oversize += want.oversize;
      seen.commands += want.runs.length;
      seen.garbageRan += want.bodies.filter((b) => !/^echo \d+\.\d+ >> ran$/.test(b.toString("latin1"))).length;
      const problems: string[] = [];
      if (r.signal !== null || (r.code !== 0 && r.code !== 3)) problems.push(`ended by ${r.signal ?? `exit ${r.code}`}`);
      if (r.code !== want.exit) problems.push(`exit ${r.code}, model says ${want.exit}`);
      if (JSON.stringify(got) !== JSON.stringify(want.runs)) problems.push(`ran ${JSON.stringify(got)}, model says ${JSON.stringify(want.runs)}`);
      const oversize = (r.stderr.match(/over the 2048-byte limit/g) ?? []).length;
      if (oversize !== want.oversize) problems.push(`${oversize} oversize lines, model says ${want.oversize}`);
      // Markers: every whole marker frame left its line; no line came from anything that did not run.
      const texts = want.bodies.map((b) => b.toString("latin1"));
      for (const t of texts) if (/^echo \d+\.\d+ >> ran$/.test(t) && !ran.includes(`${t.slice(5, -7)}\n`)) problems.push(`marker "${t}" ran but left nothing`);
      for (const line of ran.split("\n").filter(Boolean)) if (!texts.some((t) => t.includes(`echo ${line} >> ran`))) problems.push(`"${line}" in ran, but no command that ran says so`);
      if (problems.length) failures.push(`input ${i} (${input.stream.length} bytes, ${input.writes} writes ${input.gapMs} ms apart, ${input.close} close): ${problems.join("; ")}\n  stream: ${input.stream.toString("hex").slice(0, 200)}\n  stderr: ${r.stderr.slice(0, 600)}`);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  expect(failures).toEqual([]);
  if (INPUTS >= 100) expect(Object.entries(seen).filter(([, n]) => n <= 20)).toEqual([]);
}, 120_000);
