// A local user who owns a directory inside a copy's target swaps it for a symlink to a directory outside
// while the copy writes 2,000 files there (PROTOCOL.md §12: "nothing is written outside the target").
// Both directions: putDir (the compiled agent writes) and getDir (this host library writes). The swapper
// is its own process (./dirs-swapper.ts): once on the first file that lands (inotify), or as fast as it
// can for the whole copy. The copy may succeed (into the directory it holds, wherever that was moved) or
// fail with one clear error; no file may ever appear in the victim directory.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, FileError, type DirInfo, type Guest } from "../../src/host/index.ts";
import type { RunningAgent } from "../helpers/agent.ts";
import { listeningAgent, stop, tempDir } from "./_fixtures.ts";

const dir = tempDir("vge-dirswap-");
let agent: RunningAgent;
let guest: Guest;
const FILES = 2000;
const ROUNDS = 3;

beforeAll(async () => {
  agent = await listeningAgent(dir.file("agent.sock"), 300_000);
  guest = await connect(`unix:${dir.file("agent.sock")}`);
  // The tree both directions copy: 2,000 files in sub/, then a deeper directory reached after them.
  const src = dir.file("src");
  mkdirSync(join(src, "sub", "zz", "deeper"), { recursive: true });
  for (let i = 0; i < FILES; i++) writeFileSync(join(src, "sub", `f${String(i).padStart(4, "0")}`), `file ${i}\n`);
  writeFileSync(join(src, "sub", "zz", "deeper", "last"), "last\n");
}, 120_000);

afterAll(() => {
  guest?.close();
  stop(agent);
  dir.remove();
});

/** Every regular file under `root`, without following symlinks. */
function filesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name));
}

async function startSwapper(mode: "once" | "toggle", target: string, victim: string) {
  const proc = Bun.spawn(["bun", join(import.meta.dir, "dirs-swapper.ts"), mode, join(target, "sub"), victim, "60000"], { stdout: "pipe", stderr: "pipe", timeout: 90_000, killSignal: "SIGKILL" });
  const reader = proc.stdout.getReader();
  let out = "";
  while (!out.includes("ready\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`swapper exited before it was ready: ${await new Response(proc.stderr).text()}`);
    out += new TextDecoder().decode(value);
  }
  return {
    /** Stops it (SIGTERM, by its pid) and returns how many swaps it made. */
    async stop(): Promise<number> {
      proc.kill("SIGTERM");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      await proc.exited;
      const m = /\{"swaps":(\d+)\}/.exec(out);
      if (!m) throw new Error(`swapper said ${JSON.stringify(out)}; stderr ${await new Response(proc.stderr).text()}`);
      return Number(m[1]);
    },
  };
}

for (const direction of ["putDir (the agent writes)", "getDir (the host library writes)"] as const) {
  for (const mode of ["once", "toggle"] as const) {
    test(`${direction}: a directory swapped for a symlink to outside (${mode}) during a ${FILES}-file copy: nothing lands outside`, async () => {
      const outcomes: string[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const base = mkdtempSync(join(dir.path, "case-"));
        const victim = join(base, "victim");
        const target = join(base, "target");
        mkdirSync(victim);
        mkdirSync(join(target, "sub"), { recursive: true });
        const swapper = await startSwapper(mode, target, victim);
        const copy = direction.startsWith("putDir") ? guest.putDir(dir.file("src"), target) : guest.getDir(dir.file("src"), target);
        const got = await copy.then(
          (i: DirInfo) => i,
          (e: Error) => e,
        );
        const swaps = await swapper.stop();
        expect(readdirSync(victim)).toEqual([]);
        expect(readdirSync(base).sort()).toEqual(["target", "victim"]);
        if (got instanceof Error) {
          // Refused where a symlink stood (or a directory was gone or replaced): one clear error, no crash.
          expect(got).toBeInstanceOf(FileError);
          expect(["ELOOP", "ENOTDIR", "ENOENT", "ESTALE"]).toContain((got as FileError).code);
          outcomes.push(`${(got as FileError).code} after ${swaps} swaps`);
        } else {
          expect(got).toMatchObject({ files: FILES + 1, dirs: 3 });
          // Everything is inside the target, in the directory the copy held wherever it was moved.
          expect(filesUnder(target).filter((p) => !p.includes(".vge-")).length).toBeGreaterThanOrEqual(FILES + 1);
          outcomes.push(`ok after ${swaps} swaps`);
        }
        if (mode === "once") expect(swaps).toBe(1);
      }
      console.log(`${direction} ${mode}: ${outcomes.join("; ")}`);
    }, 240_000);
  }
}
