// "A C agent of the original's formats, written for the bench" (legacy-agent.c beside this file; the
// original oomol-lab source is neither committed nor built). Compiled here at bench time with
// `gcc -static -Os -s`, static so that it runs in the busybox guest with nothing else, and cached by the
// source's hash. It dials vsock: the bench runs it only inside a guest (it refuses without
// LEGACY_AGENT_IN_GUEST=1).
import { spawnSync } from "bun";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { CACHE, which } from "../../scripts/qemu/deps.ts";

const SOURCE = join(import.meta.dir, "legacy-agent.c");
export const LEGACY_LABEL = "a C agent of the original's formats, written for the bench (bench/peers/legacy-agent.c)";

/** The static x86_64 binary's path; throws one line naming the fix when gcc is missing or fails. */
export function legacyAgentBinary(): string {
  const hash = new Bun.CryptoHasher("sha256").update(readFileSync(SOURCE)).digest("hex").slice(0, 16);
  const dir = join(CACHE, "peers");
  const out = join(dir, `legacy-agent-${hash}`);
  if (existsSync(out)) return out;
  if (!which("gcc")) throw new Error("gcc not found (run bench/deps.sh: it installs gcc and libc6-dev)");
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync(["gcc", "-static", "-Os", "-s", "-Wall", "-o", tmp, SOURCE], { stdout: "pipe", stderr: "pipe", timeout: 120_000 });
  if (r.exitCode !== 0) throw new Error(`gcc -static legacy-agent.c failed (exit ${r.exitCode}): ${r.stderr.toString().trim()}`);
  renameSync(tmp, out);
  return out;
}
