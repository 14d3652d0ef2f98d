// The host side of the guest fuzzer, in its own process so that its memory, fds and children can be read
// from /proc: for each case, Guest.open over a fresh Unix connection to the fuzzed agent (the case number
// in the HELLO's client), then a few operations at once (exec with stdin, attach, list, kill, putFile,
// getFile, putDir, getDir, connectTcp, ping), each consumed as a user would. Prints one JSON line per case:
// which operations had settled by the deadline, which only once the host closed, which never did, every
// exception that escaped (uncaughtException, unhandledRejection), and whether anything landed outside the
// case's directory. At `measure` points it waits for the parent (a line on stdin) to read /proc.
//
//   bun _host-driver.ts SOCKET ROOT SEED FIRST_CASE SECONDS|once
import { mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Guest, connect, connectRaw, parseAddress } from "../../src/host/index.ts";
import { caseSeed, prng, type Rng } from "./_rng.ts";

const [sock, root, seedArg, firstArg, secondsArg] = process.argv.slice(2) as [string, string, string, string, string];
const SEED = Number(seedArg) >>> 0;
const FIRST = Number(firstArg);
const ONCE = secondsArg === "once";
const SECONDS = ONCE ? 0 : Number(secondsArg);
/** Everything a case does should have settled this long after it started, if the agent ended every request. */
const SETTLE_MS = 2500;
/** After guest.close(), everything must have settled within this. */
const CLOSE_MS = 3000;
/** Operations measured per case: the judge reads these names. */
const OPS = ["exec", "execPty", "run", "attach", "list", "kill", "putFile", "getFile", "readFile", "putDir", "getDir", "connectTcp", "ping"] as const;

const uncaught: string[] = [];
process.on("uncaughtException", (e) => void uncaught.push(`uncaughtException: ${(e as Error)?.stack ?? e}`));
process.on("unhandledRejection", (e) => void uncaught.push(`unhandledRejection: ${(e as Error)?.stack ?? e}`));

const src = join(root, "src");
const outside = join(root, "outside");
mkdirSync(join(src, "sub"), { recursive: true });
mkdirSync(outside, { recursive: true });
writeFileSync(join(src, "small"), "small file\n");
writeFileSync(join(src, "sub", "big"), new Uint8Array(300_000).fill(0x62));
symlinkSync("small", join(src, "link"));

const stdinLines = (async function* () {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of Bun.stdin.stream()) {
    buf += dec.decode(chunk, { stream: true });
    for (let i; (i = buf.indexOf("\n")) >= 0; buf = buf.slice(i + 1)) yield buf.slice(0, i);
  }
})();

async function measure(what: string): Promise<void> {
  Bun.gc(true);
  await Bun.sleep(100);
  console.log(JSON.stringify({ measure: what }));
  await stdinLines.next();
}

/** Reads a stream to its end (or cancels it after a while, as an impatient consumer does); never throws. */
async function drain(s: ReadableStream<Uint8Array>, rng: Rng): Promise<void> {
  const reader = s.getReader();
  try {
    for (;;) {
      if (rng.chance(0.03)) return void (await reader.cancel().catch(() => {}));
      const { done } = await reader.read();
      if (done) return;
    }
  } catch {
    // the stream's error is the operation's outcome; judged by `settled`, not here
  } finally {
    reader.releaseLock();
  }
}

async function op(name: (typeof OPS)[number], g: Guest, rng: Rng, dir: string): Promise<void> {
  switch (name) {
    case "exec":
    case "execPty": {
      const p = g.exec(["cat"], name === "execPty" ? { pty: { cols: 80, rows: 24 } } : rng.chance(0.3) ? { detach: { tag: "t1" } } : {});
      const writer = p.stdin!.getWriter();
      const feed = (async () => {
        for (let i = rng.int(0, 3); i > 0; i--) await writer.write(new Uint8Array(rng.pick([1, 1000, 300_000])));
        if (rng.chance(0.3)) p.kill("SIGTERM");
        if (name === "execPty") p.resize(rng.int(1, 200), rng.int(1, 200));
        await writer.close();
      })().catch(() => {});
      await Promise.all([drain(p.stdout, rng), drain(p.stderr, rng), feed, p.exited.catch(() => {})]);
      return;
    }
    case "run":
      await g.run(["echo", "hi"], { input: "x" }).catch(() => {});
      return;
    case "attach": {
      const p = g.attach(rng.chance(0.5) ? "t1" : rng.int(1, 9), rng.chance(0.5) ? { from: { stdout: 10 } } : {});
      await Promise.all([drain(p.stdout, rng), drain(p.stderr, rng), p.exited.catch(() => {})]);
      return;
    }
    case "list":
      await g.list(1500).catch(() => {});
      return;
    case "kill":
      await g.kill(rng.chance(0.5) ? "t1" : 3, "SIGTERM", 1500).catch(() => {});
      return;
    case "putFile":
      await g.putFile("/tmp/fz-put", rng.chance(0.5) ? new Uint8Array(rng.pick([0, 10, 600_000])) : { localPath: join(src, "sub", "big") }).catch(() => {});
      return;
    case "getFile": {
      const f = g.getFile("/tmp/fz-get", rng.chance(0.3) ? { maxSize: 50 } : {});
      await Promise.all([drain(f.stream, rng), f.done.catch(() => {})]);
      return;
    }
    case "readFile":
      await g.readFile("/tmp/fz-read").catch(() => {});
      return;
    case "putDir":
      await g.putDir(src, "/tmp/fz-tree").catch(() => {});
      return;
    case "getDir":
      await g.getDir("/tmp/fz-tree", join(dir, "got")).catch(() => {});
      return;
    case "connectTcp": {
      const s = await g.connectTcp("127.0.0.1", 80).catch(() => undefined);
      if (!s) return;
      const w = s.writable.getWriter();
      const feed = (async () => {
        await w.write(new Uint8Array(rng.pick([1, 100_000])));
        if (rng.chance(0.2)) s.reset();
        else await w.close();
      })().catch(() => {});
      await Promise.all([drain(s.readable, rng), feed, s.closed.catch(() => {})]);
      return;
    }
    case "ping":
      await g.ping(1500).catch(() => {});
      return;
  }
}

/** connect(), or Guest.open over a connection made first: both ways a user starts. */
async function open(n: number, rng: Rng): Promise<Guest> {
  const opts = { client: `vge-fuzz-case-${n}`, helloTimeoutMs: 1500, name: `fuzz case ${n}` };
  if (rng.chance(0.5)) return connect(`unix:${sock}`, { ...opts, connectTimeoutMs: 2000 });
  return Guest.open(await connectRaw(parseAddress(`unix:${sock}`), { timeoutMs: 2000 }), opts);
}

async function runCase(n: number): Promise<Record<string, unknown>> {
  const rng = prng((caseSeed(SEED, n) ^ 0x40571e) >>> 0);
  const dir = join(root, `case-${n}`);
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const before = uncaught.length;
  let g: Guest;
  try {
    g = await open(n, rng);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return { case: n, hello: (e as { code?: string }).code ?? (e as Error).message, ms: Math.round(performance.now() - t0), uncaught: uncaught.slice(before) };
  }
  const picked = Array.from({ length: rng.int(1, 4) }, () => rng.pick(OPS));
  const state = picked.map(() => "pending" as "pending" | "settled" | "afterClose");
  let closing = false;
  const all = picked.map((name, i) =>
    op(name, g, rng, dir).then(
      () => void (state[i] = state[i] === "pending" && !closing ? "settled" : "afterClose"),
      (e) => {
        state[i] = state[i] === "pending" && !closing ? "settled" : "afterClose";
        // A GuestError (exec on a connection that has already failed throws one at once) is the library's
        // documented answer; anything else escaping an operation is a bug.
        if (typeof (e as { code?: unknown })?.code !== "string") uncaught.push(`op ${name} threw: ${(e as Error)?.stack ?? e}`);
      },
    ),
  );
  const everything = Promise.all(all);
  await Promise.race([everything, g.closed.then(() => Promise.race([everything, Bun.sleep(CLOSE_MS)])), Bun.sleep(SETTLE_MS)]);
  const settledBeforeClose = state.map((s) => s === "settled");
  closing = true;
  g.close();
  await Promise.race([everything, Bun.sleep(CLOSE_MS)]);
  const hung = picked.filter((_, i) => state[i] === "pending");
  const escaped = readdirSync(outside);
  // Open fds after the case, for a leak to be traced to the case that made it (judged over the run).
  const fds = readdirSync("/proc/self/fd").length;
  rmSync(dir, { recursive: true, force: true });
  for (const e of escaped) rmSync(join(outside, e), { recursive: true, force: true });
  return {
    case: n,
    ops: picked,
    settled: settledBeforeClose,
    hung,
    closedByAgent: g.error !== undefined && (g.error as { code?: string }).code !== "ECLOSED" ? (g.error as { code?: string }).code : undefined,
    escaped,
    fds,
    ms: Math.round(performance.now() - t0),
    uncaught: uncaught.slice(before),
  };
}

const t0 = performance.now();
for (let n = FIRST; ONCE ? n === FIRST : performance.now() - t0 < SECONDS * 1000; n++) {
  console.log(JSON.stringify(await runCase(n)));
  if (!ONCE && n === FIRST + 5) await measure("baseline");
}
// Late rejections of the last case count too.
await Bun.sleep(200);
if (uncaught.length) console.log(JSON.stringify({ case: -1, uncaught: uncaught.splice(0) }));
await measure("end");
process.exit(0);
