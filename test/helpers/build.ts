// The compiled binaries (agent, vge), each rebuilt once per test run when missing or older than its sources.
import { spawnSync } from "bun";
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

export const ROOT = join(import.meta.dir, "..", "..");
export const AGENT_BINARY = join(ROOT, "dist", `vsock_guest_exec-linux-${process.arch === "arm64" ? "arm64" : "x64"}`);

/** What the binary is built from: a change to any of these means a rebuild. */
const SOURCES = ["src", "package.json", "build.ts", "bun.lock"];

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

function isStale(binary: string): boolean {
  let built: number;
  try {
    built = statSync(binary).mtimeMs;
  } catch {
    return true;
  }
  const sources = SOURCES.map((p) => newestMtime(join(ROOT, p)));
  return Math.max(...sources) > built;
}

const checked = new Set<string>();

/**
 * Path of the agent binary for this machine, built first if needed. The build runs under flock(1) so that
 * test runs started side by side (other engineers, --parallel workers) do not write the file together,
 * and staleness is checked again inside the lock so only the first of them builds.
 */
export function agentBinary(): string {
  // Testing a binary built elsewhere (a release, or an older commit to show a test catches a bug).
  const given = process.env.VGE_AGENT_BINARY;
  if (given) return given;
  return distBinary(AGENT_BINARY.slice(AGENT_BINARY.lastIndexOf("/") + 1));
}

/** dist/NAME (one of build.ts's outputs, e.g. "vge-linux-arm64"), built first if missing or stale. */
export function distBinary(name: string): string {
  const binary = join(ROOT, "dist", name);
  if (checked.has(binary)) return binary;
  if (isStale(binary)) {
    const script = `[ ! -e "$1" ] || [ -n "$(find ${SOURCES.join(" ")} -newer "$1" | head -n 1)" ] || exit 0; exec bun build.ts ${name}`;
    mkdirSync(join(ROOT, "dist"), { recursive: true });
    const r = spawnSync(["flock", join(ROOT, "dist", ".build.lock"), "sh", "-c", script, "sh", binary], { cwd: ROOT, stdout: "pipe", stderr: "pipe", timeout: 120_000 });
    if (r.exitCode !== 0) throw new Error(`building ${name} failed (exit ${r.exitCode}):\n${r.stdout.toString()}${r.stderr.toString()}`);
  }
  checked.add(binary);
  return binary;
}
