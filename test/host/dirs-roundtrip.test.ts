// putDir / getDir against the compiled agent (listening on a Unix socket; the "guest" is another
// directory on this machine): one 256 MiB file, and 10,000 small files with symlinks, varied modes and
// mtimes, go host → guest → host and come back identical, while the agent's RSS stays bounded.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { createReadStream, lstatSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, utimesSync, writeFileSync, chmodSync, openSync, writeSync, closeSync, lutimesSync } from "node:fs";
import { join } from "node:path";
import { connect, type Guest } from "../../src/host/index.ts";
import type { RunningAgent } from "../helpers/agent.ts";
import { fdCount, lowestRss, vmRssKiB } from "../helpers/proc.ts";
import { listeningAgent, stop, tempDir } from "./_fixtures.ts";

const dir = tempDir("vge-dirs-");
let agent: RunningAgent;
let guest: Guest;
const BIG = 256 * 1024 * 1024;

beforeAll(async () => {
  agent = await listeningAgent(dir.file("agent.sock"), 600_000);
  guest = await connect(`unix:${dir.file("agent.sock")}`);
});

afterAll(() => {
  guest?.close();
  stop(agent);
  dir.remove();
});

async function fileHash(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** Everything under `root` that a copy must keep: type, permission bits, mtime (ms), content hash or target. */
async function describeTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(root, path);
      const st = lstatSync(abs);
      const mtime = Math.round(st.mtimeMs);
      if (st.isSymbolicLink()) out.set(path, `symlink ${readlinkSync(abs)} ${mtime}`);
      else if (st.isDirectory()) {
        out.set(path, `dir ${(st.mode & 0o7777).toString(8)} ${mtime}`);
        await walk(path);
      } else out.set(path, `file ${(st.mode & 0o7777).toString(8)} ${mtime} ${st.size} ${await fileHash(abs)}`);
    }
  };
  await walk("");
  return out;
}

/** 10,000 small files in 10 directories, varied modes and mtimes, three kinds of symlink, a read-only directory. */
function makeMany(root: string): void {
  mkdirSync(root);
  const modes = [0o644, 0o600, 0o755, 0o400, 0o640, 0o700];
  for (let d = 0; d < 10; d++) {
    const sub = join(root, `d${d}`);
    mkdirSync(sub);
    for (let i = 0; i < 1000; i++) {
      const p = join(sub, `f${i}.txt`);
      writeFileSync(p, `file ${d}/${i}\n`.repeat(i % 7));
      chmodSync(p, modes[i % modes.length]!);
      utimesSync(p, 1_600_000_000 + i, 1_600_000_000 + d * 1000 + i + (i % 3) * 0.25);
    }
  }
  mkdirSync(join(root, "links"));
  symlinkSync("../d0/f1.txt", join(root, "links", "rel"));
  symlinkSync("/etc/hostname", join(root, "links", "abs"));
  symlinkSync("nowhere", join(root, "links", "dangling"));
  lutimesSync(join(root, "links", "rel"), 1_400_000_000, 1_400_000_000);
  mkdirSync(join(root, "locked"));
  writeFileSync(join(root, "locked", "inside"), "still written\n");
  chmodSync(join(root, "locked"), 0o555);
  chmodSync(join(root, "d3"), 0o750);
  // Directory mtimes last: creating entries above changed them.
  for (const [i, d] of ["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "links", "locked"].entries()) utimesSync(join(root, d), 1_300_000_000 + i, 1_300_000_000 + i);
}

/** One 256 MiB file of varied bytes, written a MiB at a time (never whole in memory). */
function makeBig(root: string): void {
  mkdirSync(root);
  const fd = openSync(join(root, "big.bin"), "w", 0o644);
  const block = new Uint8Array(1024 * 1024);
  for (let m = 0; m < BIG / block.byteLength; m++) {
    crypto.getRandomValues(block.subarray(0, 65536));
    block.copyWithin(65536, 0, 65536 * 15);
    block[0] = m & 0xff;
    writeSync(fd, block);
  }
  closeSync(fd);
  chmodSync(join(root, "big.bin"), 0o604);
  utimesSync(join(root, "big.bin"), 1_500_000_000, 1_500_000_000);
}

/** Runs `work` while sampling the agent's RSS every 50 ms; returns its result and the peak growth. */
async function sampled<R>(work: () => Promise<R>): Promise<{ result: R; beforeKiB: number; peakKiB: number; s: number }> {
  const pid = agent.proc.pid;
  const beforeKiB = vmRssKiB(pid)!;
  let peakKiB = beforeKiB;
  const sampler = setInterval(() => (peakKiB = Math.max(peakKiB, vmRssKiB(pid) ?? 0)), 50);
  const t0 = performance.now();
  try {
    return { result: await work(), beforeKiB, peakKiB, s: (performance.now() - t0) / 1000 };
  } finally {
    clearInterval(sampler);
  }
}

/** A change in KiB as signed MiB: "+27.4", "-3.0". */
const mib = (kib: number) => `${kib < 0 ? "" : "+"}${(kib / 1024).toFixed(1)}`;

// The agent's resident memory also holds what its runtime has not yet collected: JSC collects the
// socket buffers and fs requests of a busy transfer late, and the 10,000 small files leave up to ~40 MiB
// of such garbage that an idle agent gives back within seconds (measured). So the window claim is measured
// on the big file alone, against the file's size, and the many-files copy is held to giving back what it grew.
test("a 256 MiB file host → guest → host: identical; the agent holds about a window of it, not the file", async () => {
  const src = dir.file("big");
  makeBig(src);
  const want = await describeTree(src);
  const put = await sampled(() => guest.putDir(src, dir.file("guest-big")));
  const got = await sampled(() => guest.getDir(dir.file("guest-big"), dir.file("back-big"), { preserveMode: true }));
  console.log(`256 MiB: putDir ${put.s.toFixed(1)} s, agent ${mib(put.peakKiB - put.beforeKiB)} MiB at peak; getDir ${got.s.toFixed(1)} s, ${mib(got.peakKiB - got.beforeKiB)} MiB`);
  expect(put.result).toMatchObject({ files: 1, bytes: BIG });
  expect(got.result).toMatchObject({ files: 1, bytes: BIG });
  expect(await describeTree(dir.file("guest-big"))).toEqual(want);
  expect(await describeTree(dir.file("back-big"))).toEqual(want);
  // Holding the file would be 256 MiB; a quarter of it is the bound (measured: +27..37 MiB in, +2.5..14 out).
  expect(put.peakKiB - put.beforeKiB).toBeLessThan(BIG / 4 / 1024);
  expect(got.peakKiB - got.beforeKiB).toBeLessThan(BIG / 4 / 1024);
}, 600_000);

test("10,000 files, symlinks, modes and mtimes host → guest → host: identical; two rounds leave the agent within 40 MiB of its start once idle, and no fd", async () => {
  const src = dir.file("many");
  makeMany(src);
  const want = await describeTree(src);
  expect(want.size).toBe(10 + 10_000 + 1 + 3 + 1 + 1);
  const pid = agent.proc.pid;
  const fds = fdCount(pid);
  const counts = { files: 10_001, dirs: 12, symlinks: 3, skipped: 0 };
  /** One copy in and back out; the lowest RSS over 3 s of idle after it (the runtime collects late). */
  const round = async (n: number) => {
    const put = await sampled(() => guest.putDir(src, dir.file(`guest-many${n}`)));
    const got = await sampled(() => guest.getDir(dir.file(`guest-many${n}`), dir.file(`back-many${n}`), { preserveMode: true }));
    expect(put.result).toMatchObject(counts);
    expect(got.result).toMatchObject(counts);
    expect(put.result.bytes).toBe(got.result.bytes);
    expect(await describeTree(dir.file(`guest-many${n}`))).toEqual(want);
    expect(await describeTree(dir.file(`back-many${n}`))).toEqual(want);
    const idle = await lowestRss(pid, 3000);
    console.log(`10,000 files, round ${n}: putDir ${put.s.toFixed(1)} s (${mib(put.peakKiB - put.beforeKiB)} MiB at peak), getDir ${got.s.toFixed(1)} s (${mib(got.peakKiB - got.beforeKiB)} MiB); lowest once idle ${mib(idle - put.beforeKiB)} MiB from its start`);
    return idle;
  };
  const start = vmRssKiB(pid)!;
  await round(1);
  const after = await round(2);
  // Either round may be the one that grows the heaps to their working size (+15..25 MiB in CI, once in
  // round 1, once in round 2); a leak adds with every round. 40 MiB over two rounds in and out leaves that
  // room, and a leak of 1 KiB per file and direction (40 MiB over the two rounds) fails it.
  console.log(`10,000 files: after two rounds the agent is ${mib(after - start)} MiB from where it began, once idle`);
  expect(after - start).toBeLessThan(40 * 1024);
  expect(fdCount(pid)).toBeLessThanOrEqual(fds);
}, 600_000);
