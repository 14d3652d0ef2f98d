// The agent's data path byte for byte: many executions at once on one connection, each writing its own
// random bytes to stdout and stderr in varied sizes, GETs of random files beside them, read by hosts of
// varied speeds (some fast, some pausing between chunks, so that the connection's queue and the windows
// fill). Whatever the agent does to send faster (read buffers reused once the kernel has a chunk), every
// stream must arrive complete, in order, and unmixed with any other.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { connect, type Guest } from "../../../src/host/index.ts";
import { tempDir, type TempDir } from "../../helpers/tmp.ts";
import { listeningAgent, type Agent } from "./_agent.ts";

let dir: TempDir;
let agent: Agent;
let guest: Guest;

beforeAll(async () => {
  dir = tempDir("vge-integrity-");
  agent = await listeningAgent(dir.file("agent.sock"));
  guest = await connect(`unix:${dir.file("agent.sock")}`);
}, 90_000);

afterAll(async () => {
  guest?.close();
  await agent?.stop();
  dir?.remove();
});

/** A small seeded generator: a failure can be replayed from the seed it prints. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

function randomBytes(r: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 4) {
    const v = (r() * 2 ** 32) >>> 0;
    b[i] = v;
    b[i + 1] = v >>> 8;
    b[i + 2] = v >>> 16;
    b[i + 3] = v >>> 24;
  }
  return b;
}

/** Reads `s` to its end, pausing `pauseMs` after some chunks (a slow host), and returns all of it. */
async function readAll(s: ReadableStream<Uint8Array>, r: () => number, pauseMs: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of s) {
    parts.push(c.slice());
    n += c.byteLength;
    if (pauseMs > 0 && r() < 0.3) await Bun.sleep(pauseMs);
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

function same(what: string, got: Uint8Array, want: Uint8Array): void {
  if (got.byteLength !== want.byteLength) throw new Error(`${what}: ${got.byteLength} bytes, not ${want.byteLength}`);
  for (let i = 0; i < want.byteLength; i++) if (got[i] !== want[i]) throw new Error(`${what}: differs at byte ${i} of ${want.byteLength}`);
}

/** Sizes that straddle the agent's chunk (64 KiB), half of it, its window (256 KiB), and tiny ones. */
function size(r: () => number): number {
  const pick = r();
  if (pick < 0.2) return Math.floor(r() * 100);
  if (pick < 0.5) return 32768 + Math.floor(r() * 65536);
  if (pick < 0.8) return 262144 + Math.floor(r() * 4) - 2;
  return Math.floor(r() * 3 * 1024 * 1024);
}

test("concurrent stdout, stderr and GET streams arrive byte for byte, whatever the sizes and read speeds", async () => {
  const seed = Number(process.env.VGE_INTEGRITY_SEED ?? Date.now() % 1_000_000);
  console.log(`seed ${seed} (VGE_INTEGRITY_SEED to replay)`);
  const r = rng(seed);
  const deadline = performance.now() + 20_000;
  let rounds = 0;
  let streams = 0;
  let bytes = 0;
  while (performance.now() < deadline && rounds < 40) {
    rounds++;
    const jobs: Promise<void>[] = [];
    const pending = new Set<string>();
    const concurrent = 4 + Math.floor(r() * 9);
    for (let j = 0; j < concurrent; j++) {
      const tag = `r${rounds}-j${j}`;
      const out = randomBytes(r, size(r));
      const outFile = dir.file(`${tag}.out`);
      writeFileSync(outFile, out);
      const pause = r() < 0.4 ? 1 + Math.floor(r() * 5) : 0;
      const reader = rng(Math.floor(r() * 1e9));
      pending.add(tag);
      const say = (what: string) => process.env.VGE_INTEGRITY_VERBOSE && console.log(`${tag}: ${what}, ${out.byteLength} bytes, pause ${pause} ms`);
      if (r() < 0.3) {
        // A GET of the same bytes beside the executions.
        say("GET");
        jobs.push(
          (async () => {
            const f = guest.getFile(outFile);
            const [got] = await Promise.all([readAll(f.stream, reader, pause), f.done]);
            same(`${tag} GET`, got, out);
            pending.delete(tag);
          })(),
        );
      } else {
        const err = randomBytes(r, size(r) >>> 2);
        const errFile = dir.file(`${tag}.err`);
        writeFileSync(errFile, err);
        // Both streams written at once, in pieces of varied sizes (dd's blocks), so that their chunks interleave.
        // (One byte per write(2) only for small streams: a few MiB of those take minutes on a loaded machine.)
        const bs = [out.byteLength + err.byteLength > 300_000 ? 64 : 1, 512, 4096, 65536, 200000][Math.floor(r() * 5)];
        say(`exec, stderr ${err.byteLength} bytes, dd bs=${bs}`);
        jobs.push(
          (async () => {
            const p = guest.exec(["sh", "-c", `dd if=${errFile} bs=${bs} status=none >&2 & dd if=${outFile} bs=${bs} status=none; wait`], { stdin: "closed" });
            const [gotOut, gotErr, status] = await Promise.all([readAll(p.stdout, reader, pause), readAll(p.stderr, reader, 0), p.exited]);
            expect(status).toBe(0);
            same(`${tag} stdout (dd bs=${bs})`, gotOut, out);
            same(`${tag} stderr (dd bs=${bs})`, gotErr, err);
            bytes += err.byteLength;
            pending.delete(tag);
          })(),
        );
      }
      streams++;
      bytes += out.byteLength;
    }
    // A stream that stops arriving is a failure of its own (named, with the seed), not the test's timeout.
    let stall: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<never>((_, reject) => {
      stall = setTimeout(() => reject(new Error(`seed ${seed}, round ${rounds}: not complete after 45 s: ${[...pending].join(", ")}`)), 45_000);
    });
    try {
      await Promise.race([Promise.all(jobs), stalled]);
    } finally {
      clearTimeout(stall);
    }
  }
  console.log(`${rounds} rounds, ${streams} streams, ${(bytes / 2 ** 20).toFixed(1)} MiB checked`);
  expect(rounds).toBeGreaterThan(2);
}, 90_000);
