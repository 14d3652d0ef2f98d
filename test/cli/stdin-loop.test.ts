// The first thing a user does: `tar c . | vge run ADDR -- tar x -C /srv`. vge used to lose the end of its
// stdin about one run in ten (Bun's process.stdin under pause()/resume()), so the remote `wc -c` never saw
// EOF and vge hung. Hundreds of runs here, of every size, from pipes, sockets and regular files, fed fast
// and in slow uneven chunks, through the compiled vge, `bun src/cli/vge.ts` and the Node bundle: every run
// must end, promptly, with the right count.
import { beforeAll, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, distBinary } from "../helpers/build.ts";
import { VGE, vgeAgent } from "./_vge.ts";

const { dir, addr: ADDR } = vgeAgent("vge-stdin-");

const KIB = 1024;
const MIB = 1024 * KIB;
const SIZES = [0, 1, 4095, 64 * KIB, MIB, 4 * MIB];
/** A run that has not ended by then is a hang (4 MiB takes well under a second on an idle machine). */
const RUN_DEADLINE_MS = 15_000;

type Feed = "pipe" | "file" | "slow-pipe" | "socket";
type Runner = "binary" | "bun" | "node";

const node = Bun.which("node");
let nodeBundle = "";
const files = new Map<number, string>();

beforeAll(async () => {
  distBinary("vge-linux-x64");
  for (const size of [...SIZES, 32 * MIB]) {
    const path = dir.file(`in-${size}`);
    writeFileSync(path, new Uint8Array(size).fill(0x61));
    files.set(size, path);
  }
  if (!node) return;
  // The CLI as the npm package ships it (scripts/build-pkg.ts): ESM for Node, bun:ffi only in a lazy chunk.
  const entrypoints = ["src/host/index.ts", "src/protocol/index.ts", "src/cli/vge.ts"].map((p) => join(ROOT, p));
  const built = await Bun.build({ entrypoints, root: join(ROOT, "src"), target: "node", format: "esm", splitting: true, outdir: dir.file("node"), naming: { entry: "[dir]/[name].js", chunk: "_chunks/[name]-[hash].js" } });
  if (!built.success) throw new Error(`bundling vge for Node failed: ${built.logs.join("\n")}`);
  nodeBundle = dir.file("node/cli/vge.js");
}, 180_000);

function argv(runner: Runner): string[] {
  if (runner === "binary") return [distBinary("vge-linux-x64")];
  if (runner === "bun") return ["bun", VGE];
  return [node!, nodeBundle];
}

/** A small seeded generator: the same chunk sizes and pauses every run of the file. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** Writes `size` bytes in uneven chunks (1 byte to 64 KiB), pausing now and then, then closes. */
async function slowWriter(sink: { write(b: Uint8Array): unknown; flush(): unknown; end(): unknown }, size: number, rand: () => number): Promise<void> {
  const chunk = new Uint8Array(64 * KIB).fill(0x62);
  for (let left = size; left > 0; ) {
    const n = Math.min(left, 1 + Math.floor(rand() ** 3 * chunk.length));
    sink.write(chunk.subarray(0, n));
    await sink.flush();
    left -= n;
    if (rand() < 0.2) await Bun.sleep(Math.floor(rand() * 4));
  }
  await sink.end();
}

interface Outcome {
  what: string;
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

async function once(runner: Runner, feed: Feed, size: number, rand: () => number): Promise<Outcome> {
  // timeout(1) kills vge itself: behind `sh -c "... | exec vge"`, killing the shell would leave vge running.
  const vge = ["timeout", "-s", "KILL", String(RUN_DEADLINE_MS / 1000), ...argv(runner), "run", "-q", ADDR, "--", "wc", "-c"];
  // A real pipe (what a shell gives) from head, or from cat relaying our uneven writes; a socketpair is
  // what Bun.spawn's own "pipe" is (and what a Bun or Node parent hands its child).
  const cmd =
    feed === "pipe" ? ["sh", "-c", `head -c ${size} /dev/zero | exec "$@"`, "sh", ...vge] : feed === "slow-pipe" ? ["sh", "-c", `cat | exec "$@"`, "sh", ...vge] : vge;
  const t0 = performance.now();
  const proc = Bun.spawn(cmd, {
    stdin: feed === "file" ? Bun.file(files.get(size)!) : feed === "pipe" ? "ignore" : "pipe",
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1" },
    timeout: RUN_DEADLINE_MS + 5000,
    killSignal: "SIGKILL",
  });
  const writing = proc.stdin && typeof proc.stdin === "object" ? slowWriter(proc.stdin, size, rand).catch(() => {}) : undefined;
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  await writing;
  return { what: `${runner} ${feed} ${size}`, code: proc.exitCode, stdout, stderr, ms: performance.now() - t0 };
}

/** Runs every plan, `width` at a time; returns those that did not end with `SIZE\n` and status 0. */
async function loop(plans: [Runner, Feed, number][], width: number): Promise<{ bad: Outcome[]; slowest: number }> {
  const rand = lcg(14);
  const bad: Outcome[] = [];
  let slowest = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < plans.length) {
        const [runner, feed, size] = plans[next++]!;
        const r = await once(runner, feed, size, rand);
        slowest = Math.max(slowest, r.ms);
        if (r.code !== 0 || r.stdout.trim() !== String(size)) bad.push(r);
      }
    }),
  );
  return { bad, slowest };
}

/** `rounds` × every size × every feed, and one 32 MiB run per feed. */
function plans(runner: Runner, rounds: number, feeds: Feed[]): [Runner, Feed, number][] {
  const out: [Runner, Feed, number][] = [];
  for (let i = 0; i < rounds; i++) for (const size of SIZES) for (const feed of feeds) out.push([runner, feed, size]);
  for (const feed of feeds) out.push([runner, feed, 32 * MIB]);
  return out;
}

const ALL: Feed[] = ["pipe", "file", "slow-pipe", "socket"];

test("the compiled vge: 245 runs, pipes, files and sockets, fast and uneven; every one ends with the right count", async () => {
  // And one of 256 MiB (3 of 12 such runs hung).
  const { bad, slowest } = await loop([...plans("binary", 10, ALL), ["binary", "pipe", 256 * MIB]], 3);
  expect(bad.map((b) => `${b.what}: code ${b.code}, stdout ${JSON.stringify(b.stdout)} after ${Math.round(b.ms)} ms ${b.stderr}`)).toEqual([]);
  expect(slowest).toBeLessThan(RUN_DEADLINE_MS);
}, 150_000);

test("bun src/cli/vge.ts: 76 runs of every size and feed", async () => {
  const { bad } = await loop(plans("bun", 3, ALL), 3);
  expect(bad.map((b) => `${b.what}: code ${b.code}, stdout ${JSON.stringify(b.stdout)} after ${Math.round(b.ms)} ms ${b.stderr}`)).toEqual([]);
}, 120_000);

test.skipIf(!node)("the CLI bundled for Node: 76 runs of every size and feed", async () => {
  const { bad } = await loop(plans("node", 3, ALL), 3);
  expect(bad.map((b) => `${b.what}: code ${b.code}, stdout ${JSON.stringify(b.stdout)} after ${Math.round(b.ms)} ms ${b.stderr}`)).toEqual([]);
}, 120_000);

/**
 * `FEED | vge run ADDR -- CMD` in a shell that says when vge has ended; timed to that line, not to the
 * pipeline's end (which waits for FEED). `cat` relays the test's own stdin, held open and silent here.
 */
async function fedBy(runner: Runner, feed: "yes" | "cat", cmd: string[]): Promise<{ stdout: string; ms: number }> {
  const t0 = performance.now();
  const vge = ["timeout", "-s", "KILL", "15", ...argv(runner), "run", "-q", ADDR, "--", ...cmd];
  const proc = Bun.spawn(["sh", "-c", `${feed} | { "$@"; echo "vge-status=$?"; }`, "sh", ...vge], { stdin: "pipe", stdout: "pipe", stderr: "inherit", timeout: 25_000, killSignal: "SIGKILL" });
  let stdout = "";
  const dec = new TextDecoder();
  for await (const chunk of proc.stdout) {
    stdout += dec.decode(chunk, { stream: true });
    if (stdout.includes("vge-status=") && stdout.endsWith("\n")) break;
  }
  const ms = performance.now() - t0;
  proc.stdin.end();
  await proc.exited;
  return { stdout, ms };
}

const RUNNERS: Runner[] = node ? ["binary", "bun", "node"] : ["binary", "bun"];

// The read of stdin still pending when the command is over must not hold vge (Node's process.exit() waits
// for its thread pool, where an fs.read on a pipe nobody writes would sit forever).
test.each(RUNNERS)("%s: the command ends before its stdin does (yes | head, a silent writer): vge returns at once", async (runner) => {
  for (let i = 0; i < 5; i++) {
    const yes = await fedBy(runner, "yes", ["head", "-c", "2"]);
    expect(yes.stdout).toBe("y\nvge-status=0\n");
    expect(yes.ms).toBeLessThan(5000);
    const silent = await fedBy(runner, "cat", ["echo", "done"]);
    expect(silent.stdout).toBe("done\nvge-status=0\n");
    expect(silent.ms).toBeLessThan(5000);
  }
}, 120_000);

test.each(RUNNERS)("%s: a directory on stdin is refused before anything runs: exit 2, one line", async (runner) => {
  const proc = Bun.spawn(["sh", "-c", 'exec "$@" < /', "sh", ...argv(runner), "run", ADDR, "--", "sh", "-c", `echo ran > ${dir.file("ran")}`], { stdout: "pipe", stderr: "pipe", timeout: 20_000, killSignal: "SIGKILL" });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  expect({ code: await proc.exited, stdout, stderr }).toEqual({ code: 2, stdout: "", stderr: "vge: error: stdin is a directory; give a file or a pipe, or --no-stdin (see vge --help)\n" });
  expect(existsSync(dir.file("ran"))).toBe(false);
});

test.each(RUNNERS)("%s: a stdin that fails to read (open for writing only): one error line, the command sees EOF, exit 255", async (runner) => {
  const proc = Bun.spawn(["sh", "-c", `exec "$@" 0>>${dir.file("write-only")}`, "sh", ...argv(runner), "run", ADDR, "--", "wc", "-c"], { stdout: "pipe", stderr: "pipe", timeout: 20_000, killSignal: "SIGKILL" });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  expect({ code: await proc.exited, stdout }).toEqual({ code: 255, stdout: "0\n" });
  expect(stderr).toMatch(/^vge: error: stdin: EBADF: .*; the command's stdin was closed there\n$/);
});
