// A model-based test of a detached job's output (src/agent/v2/job-output.ts), in process: seeded random
// sequences of output, attach, takeover, leave, credit, stdin, slow and failing connections and the exit,
// each follower checked against a pure model of what it must receive:
// - ATTACHED says from where each stream is replayed and how much was dropped before it; the follower then
//   gets exactly the bytes the process wrote from there on, with no gap and nothing twice;
// - nothing after its EXIT or DETACHED; the follower still attached at the end gets everything, then EXIT;
// - the rings never hold more than `keep` (nobody attached) or `keep` plus one read (someone attached);
// - stdin: a host that sends within the credit it was told never overruns, and the job never holds more
//   than one window of stdin not yet taken by the process, however many followers came and went.
// A failure names its seed: VGE_MODEL_SEED=<seed> bun test test/agent/v2/job-output.model.test.ts replays it.
import { expect, test } from "bun:test";
import { DEFAULT_WINDOW, T, decodeJson, decodeWindow, type Frame } from "../../../src/protocol/v2/frame.ts";
import { FrameDecoder } from "../../../src/protocol/v2/decoder.ts";
import { JobOutput, type Attachment } from "../../../src/agent/v2/job-output.ts";

/** mulberry32: small, seedable, good enough to pick actions. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STREAMS = [T.STDOUT, T.STDERR] as const;
const name = (t: number) => (t === T.STDOUT ? "stdout" : "stderr");

/** One connection following the job under one id, as the model sees it. */
interface ModelFollower {
  n: number;
  id: number;
  frames: Frame[];
  decoder: FrameDecoder;
  /** Sends not yet "written to the kernel": resolved by flush, rejected when the connection goes. */
  pending: { resolve: () => void; reject: (e: Error) => void }[];
  /** This connection's writes are slow: each one waits for a flush. */
  slow: boolean;
  gone: boolean;
  /** ATTACH answered with an error: never followed the job. */
  refused: boolean;
  releases: number;
  /** Requested offsets, and the ATTACHED (undefined for the EXEC's own follower). */
  req: Record<string, number>;
  attached?: Record<string, any>;
  /** Output bytes received and not yet given back with a WINDOW. */
  unreturned: number;
  /** STDIN credit as this host believes it: the start, plus WINDOWs received, minus what it sent. */
  stdinCredit: number;
  windowsSeen: number;
}

async function run(seed: number, steps: number): Promise<{ log: string[]; error?: string }> {
  const rand = rng(seed);
  const pick = <X>(xs: readonly X[]): X => xs[Math.floor(rand() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const keep = pick([0, 1, 7, 100, 1000, 5000, 70_000]);
  const log: string[] = [`seed ${seed}: keep ${keep}`];
  /** Every byte the process wrote, per stream. */
  const written: Record<string, number[]> = { stdout: [], stderr: [] };
  let biggestWrite = 0;
  const followers: ModelFollower[] = [];
  /** STDIN accepted by the job and not yet taken by the process: its size, and the give-back. */
  const stdinQueue: { n: number; giveBack: () => void }[] = [];
  let ended = false;
  let error: string | undefined;
  const fail = (msg: string) => {
    error ??= msg;
  };

  const follower = (n: number, req: Record<string, number>): ModelFollower & { att: Attachment } => {
    const f: ModelFollower = { n, id: 100 + n, frames: [], decoder: new FrameDecoder(), pending: [], slow: rand() < 0.5, gone: false, refused: false, releases: 0, req, unreturned: 0, stdinCredit: DEFAULT_WINDOW, windowsSeen: 0 };
    const att: Attachment = {
      id: f.id,
      send: (bytes) => {
        if (f.gone) return Promise.reject(new Error("connection closed"));
        for (const fr of f.decoder.frames(bytes.slice())) onFrame(f, fr);
        if (!f.slow) return Promise.resolve();
        return new Promise<void>((resolve, reject) => f.pending.push({ resolve, reject }));
      },
      release: () => void f.releases++,
    };
    followers.push(f);
    return Object.assign(f, { att });
  };

  const onFrame = (f: ModelFollower, fr: Frame) => {
    const last = f.frames.at(-1);
    if (last && (last.type === T.EXIT || last.type === T.DETACHED)) fail(`follower ${f.n} got ${fr.type} after its ${last.type === T.EXIT ? "EXIT" : "DETACHED"}`);
    f.frames.push(fr);
    if (fr.type === T.STDOUT || fr.type === T.STDERR) {
      if (fr.payload.byteLength === 0) fail(`follower ${f.n} got an empty ${name(fr.type)} frame`);
      f.unreturned += fr.payload.byteLength;
      // The bytes must continue the stream exactly where ATTACHED (or the start) said.
      const s = name(fr.type);
      const at = (f.attached ? f.attached[s].from : 0) + received(f, fr.type) - fr.payload.byteLength;
      const want = written[s]!.slice(at, at + fr.payload.byteLength);
      if (want.length !== fr.payload.byteLength || want.some((b, i) => b !== fr.payload[i])) fail(`follower ${f.n}: ${s} bytes at ${at}..${at + fr.payload.byteLength} are not what the process wrote there`);
    }
    if (fr.type === T.WINDOW) {
      f.stdinCredit += decodeWindow(fr);
      f.windowsSeen++;
    }
  };

  const received = (f: ModelFollower, type: number) => f.frames.reduce((n, fr) => n + (fr.type === type ? fr.payload.byteLength : 0), 0);
  const current = () => {
    const live = followers.filter((f) => out.attached && !f.gone && !f.frames.some((fr) => fr.type === T.EXIT || fr.type === T.DETACHED));
    return live.at(-1);
  };

  const first = follower(0, { stdout: 0, stderr: 0 });
  const out = new JobOutput(1, "model", keep, first.att);
  out.started(4242);

  const checkRings = () => {
    for (const t of STREAMS) {
      const r = out.rings.get(t)!;
      if (!out.attached && r.kept > keep) fail(`${name(t)} ring holds ${r.kept} bytes with nobody attached (keep ${keep})`);
      if (r.kept > keep + biggestWrite) fail(`${name(t)} ring holds ${r.kept} bytes, over keep ${keep} + one read of ${biggestWrite}`);
      if (r.total !== written[name(t)]!.length) fail(`${name(t)} ring counts ${r.total} bytes, the process wrote ${written[name(t)]!.length}`);
    }
    const queued = stdinQueue.reduce((n, q) => n + q.n, 0);
    if (queued > DEFAULT_WINDOW) fail(`the job holds ${queued} bytes of stdin, over one window (${DEFAULT_WINDOW})`);
  };

  const actions: [number, () => void][] = [
    [30, () => {
      if (ended) return;
      const t = pick(STREAMS);
      const room = out.room(t);
      if (room <= 0) return;
      const n = Math.min(room, rand() < 0.7 ? int(1, 300) : int(1, 65536));
      const bytes = Uint8Array.from({ length: n }, () => int(0, 255));
      biggestWrite = Math.max(biggestWrite, n);
      written[name(t)]!.push(...bytes);
      log.push(`write ${name(t)} ${n}`);
      void out.write(t, bytes);
    }],
    [8, () => {
      const total = { stdout: written.stdout!.length, stderr: written.stderr!.length };
      const from = (s: "stdout" | "stderr") => pick([0, 0, total[s], int(0, total[s]), Math.max(0, total[s] - keep - int(0, 50)), total[s] + 1]);
      const req = { stdout: from("stdout"), stderr: rand() < 0.8 ? from("stderr") : 0 };
      const f = follower(followers.length, req);
      log.push(`attach ${f.n} from ${JSON.stringify(req)}`);
      const r = out.attach(f.att, req);
      const beyond = req.stdout > total.stdout || req.stderr > total.stderr;
      if (typeof r === "string") {
        if (!beyond) fail(`attach ${f.n} from ${JSON.stringify(req)} refused (${r}) with ${JSON.stringify(total)} written`);
        f.gone = f.refused = true;
        return;
      }
      if (beyond) fail(`attach ${f.n} from beyond the output was accepted`);
      const got = f.frames.find((fr) => fr.type === T.ATTACHED);
      if (!got) return fail(`attach ${f.n}: no ATTACHED frame`);
      f.attached = decodeJson(got) as Record<string, any>;
      if (typeof f.attached.stdin === "number") f.stdinCredit = f.attached.stdin;
      for (const s of ["stdout", "stderr"] as const) {
        const a = f.attached[s];
        if (a.from < req[s] || a.from > total[s]) fail(`attach ${f.n}: ${s}.from ${a.from} is outside ${req[s]}..${total[s]}`);
        if (a.dropped !== a.from - req[s]) fail(`attach ${f.n}: ${s}.dropped ${a.dropped}, from ${a.from} - requested ${req[s]}`);
        // At least the last `keep` bytes are always there to replay.
        if (a.from > Math.max(req[s], total[s] - keep)) fail(`attach ${f.n}: ${s} replay from ${a.from}, but the last ${keep} of ${total[s]} bytes must be kept`);
      }
    }],
    [4, () => {
      const f = current();
      if (!f) return;
      log.push(`leave ${f.n}`);
      out.leave((f as ModelFollower & { att: Attachment }).att.send);
      goneNow(f);
    }],
    [20, () => {
      const f = pick(followers);
      const k = int(1, f.pending.length);
      for (const p of f.pending.splice(0, k)) p.resolve();
    }],
    [2, () => {
      // A connection fails mid-write: its pending writes reject, later ones too.
      const f = pick(followers);
      if (f.gone) return;
      log.push(`connection of ${f.n} fails`);
      if (current() === f) out.leave((f as ModelFollower & { att: Attachment }).att.send);
      goneNow(f);
    }],
    [15, () => {
      const f = current();
      if (!f || f.unreturned === 0) return;
      const n = int(1, f.unreturned);
      f.unreturned -= n;
      out.onWindow(n);
    }],
    [1, () => {
      if (ended) return;
      ended = true;
      log.push("exit");
      out.end({ status: "exited", code: 3 });
    }],
    [6, () => {
      const f = current();
      if (!f || f.stdinCredit <= 0) return;
      const n = int(1, Math.min(f.stdinCredit, 70_000));
      log.push(`stdin from ${f.n}: ${n}`);
      try {
        out.spendStdin(n);
        stdinQueue.push({ n, giveBack: () => out.stdinTaken(n) });
        f.stdinCredit -= n;
      } catch (e) {
        fail(`follower ${f.n} sent ${n} bytes of stdin within the ${f.stdinCredit} it was told it has: ${(e as Error).message}`);
      }
    }],
    [5, () => {
      const q = stdinQueue.shift();
      q?.giveBack();
    }],
  ];
  const goneNow = (f: ModelFollower) => {
    f.gone = true;
    for (const p of f.pending.splice(0)) p.reject(new Error("connection closed"));
  };
  const weight = actions.reduce((n, [w]) => n + w, 0);
  const step = () => {
    let x = rand() * weight;
    for (const [w, act] of actions) if ((x -= w) < 0) return act();
  };
  try {
    for (let i = 0; i < steps && !error; i++) {
      step();
      for (let k = int(0, 3); k > 0; k--) await Promise.resolve();
      if (rand() < 0.2) await Bun.sleep(0);
      checkRings();
    }
    // The end: the process exits, everything is flushed, credit and stdin given back, until quiet.
    if (!ended) out.end({ status: "exited", code: 3 });
    for (let round = 0; round < 2000 && !error; round++) {
      let moved = false;
      for (const f of followers) for (const p of f.pending.splice(0)) (p.resolve(), (moved = true));
      const c = current();
      if (c && c.unreturned > 0) {
        out.onWindow(c.unreturned);
        c.unreturned = 0;
        moved = true;
      }
      for (const q of stdinQueue.splice(0)) (q.giveBack(), (moved = true));
      await Bun.sleep(0);
      checkRings();
      if (!moved && !followers.some((f) => f.pending.length > 0)) break;
    }
    // The newest follower that was not refused is the one attached at the end, unless its connection went.
    const last = followers.filter((f) => !f.refused).at(-1);
    for (const f of followers) {
      const end = f.frames.at(-1);
      const done = f.frames.filter((fr) => fr.type === T.EXIT || fr.type === T.DETACHED);
      if (done.length > 1) fail(`follower ${f.n} got ${done.length} EXIT/DETACHED frames`);
      // Released once after its last frame; an EXIT whose write failed leaves that to the session's close.
      const releases = done.length === 0 ? [0] : done[0]!.type === T.EXIT && f.gone ? [0, 1] : [1];
      if (!releases.includes(f.releases)) fail(`follower ${f.n} was released ${f.releases} times (${done.length === 0 ? "no EXIT or DETACHED" : done[0]!.type === T.EXIT ? "after its EXIT" : "after its DETACHED"})`);
      if (f.gone) continue;
      if (f === last && end?.type !== T.EXIT) fail(`follower ${f.n}, attached at the end, did not get the EXIT (last frame ${end?.type})`);
      if (end?.type !== T.EXIT && end?.type !== T.DETACHED) fail(`follower ${f.n}, taken over, did not end with DETACHED (frames: ${f.frames.map((fr) => fr.type).join(",")})`);
      if (end?.type === T.EXIT) {
        for (const t of STREAMS) {
          const from = f.attached ? f.attached[name(t)].from : 0;
          if (from + received(f, t) !== written[name(t)]!.length) fail(`follower ${f.n} got the EXIT after ${name(t)} up to ${from + received(f, t)} of ${written[name(t)]!.length}`);
        }
      }
    }
  } catch (e) {
    fail(`threw: ${(e as Error).stack}`);
  }
  return { log, error };
}

const FIXED = process.env.VGE_MODEL_SEED;

test("JobOutput against its model: seeded random attach / takeover / leave / output / credit / stdin / exit sequences", async () => {
  const seeds = FIXED ? [Number(FIXED)] : Array.from({ length: 400 }, (_, i) => 1 + i * 7919);
  const deadline = performance.now() + 40_000;
  let ran = 0;
  for (const seed of seeds) {
    if (performance.now() > deadline) break;
    const r = await run(seed, 250);
    ran++;
    if (r.error) throw new Error(`seed ${seed} (replay: VGE_MODEL_SEED=${seed}): ${r.error}\n  ${r.log[0]}; last steps: ${r.log.slice(FIXED ? 0 : -25).join("; ")}`);
  }
  console.log(`JobOutput model: ${ran} seeded sequences of up to 250 steps`);
  expect(ran).toBeGreaterThan(50);
}, 60_000);
