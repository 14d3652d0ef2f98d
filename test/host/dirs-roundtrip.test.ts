// putDir / getDir against the compiled agent (listening on a Unix socket; the "guest" is another
// directory on this machine): 10,000 small files, one 256 MiB file, symlinks, varied modes and mtimes go
// host → guest → host and come back identical, while the agent's RSS stays bounded.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { createReadStream, lstatSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, utimesSync, writeFileSync, chmodSync, openSync, writeSync, closeSync, lutimesSync } from "node:fs";
import { join } from "node:path";
import { connect, type Guest } from "../../src/host/index.ts";
import type { RunningAgent } from "../helpers/agent.ts";
import { vmRssKiB } from "../helpers/proc.ts";
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

function makeSource(root: string): void {
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
  // 256 MiB of varied bytes, written a MiB at a time (never whole in memory).
  const fd = openSync(join(root, "big.bin"), "w", 0o644);
  const block = new Uint8Array(1024 * 1024);
  for (let m = 0; m < BIG / block.byteLength; m++) {
    crypto.getRandomValues(block.subarray(0, 65536));
    block.copyWithin(65536, 0, 65536 * 15);
    block[0] = m & 0xff;
    writeSync(fd, block);
  }
  closeSync(fd);
  utimesSync(join(root, "big.bin"), 1_500_000_000, 1_500_000_000);
  mkdirSync(join(root, "links"));
  symlinkSync("../d0/f1.txt", join(root, "links", "rel"));
  symlinkSync("/etc/hostname", join(root, "links", "abs"));
  symlinkSync("nowhere", join(root, "links", "dangling"));
  lutimesSync(join(root, "links", "rel"), 1_400_000_000, 1_400_000_000);
  mkdirSync(join(root, "locked"));
  writeFileSync(join(root, "locked", "inside"), "still written\n");
  chmodSync(join(root, "locked"), 0o555);
  chmodSync(join(root, "d3"), 0o750);
  chmodSync(join(root, "big.bin"), 0o604);
  // Directory mtimes last: creating entries above changed them.
  for (const [i, d] of ["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "links", "locked"].entries()) utimesSync(join(root, d), 1_300_000_000 + i, 1_300_000_000 + i);
}

test("10,000 files, 256 MiB, symlinks, modes and mtimes: host → guest → host identical; agent RSS bounded", async () => {
  const src = dir.file("src");
  makeSource(src);
  const want = await describeTree(src);
  expect(want.size).toBe(10 + 10_000 + 1 + 1 + 3 + 1 + 1);

  let peak = 0;
  const before = vmRssKiB(agent.proc.pid)!;
  const sampler = setInterval(() => (peak = Math.max(peak, vmRssKiB(agent.proc.pid) ?? 0)), 50);
  const t0 = performance.now();
  const put = await guest.putDir(src, dir.file("guest"));
  const t1 = performance.now();
  const got = await guest.getDir(dir.file("guest"), dir.file("back"), { preserveMode: true });
  const t2 = performance.now();
  clearInterval(sampler);
  console.log(`putDir ${((t1 - t0) / 1000).toFixed(1)} s, getDir ${((t2 - t1) / 1000).toFixed(1)} s; agent RSS ${before} KiB before, peak ${peak} KiB`);

  const counts = { files: 10_002, dirs: 12, symlinks: 3, skipped: 0 };
  expect(put).toMatchObject(counts);
  expect(got).toMatchObject(counts);
  expect(put.bytes).toBe(got.bytes);
  expect(put.bytes).toBeGreaterThan(BIG);
  expect(await describeTree(dir.file("guest"))).toEqual(want);
  expect(await describeTree(dir.file("back"))).toEqual(want);
  // 256 MiB went through the agent twice; it held about a window of it, not the file.
  expect(peak - before).toBeLessThan(64 * 1024);
}, 600_000);
