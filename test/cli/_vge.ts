// Runs `vge` as a user would: a separate process, under a hard deadline, killed by its own pid; and the
// listening agent a test file points it at.
import { afterAll, beforeAll } from "bun:test";
import { join } from "node:path";
import type { RunningAgent } from "../helpers/agent.ts";
import { ROOT } from "../helpers/build.ts";
import { listeningAgent, stop, tempDir, type TempDir } from "../host/_fixtures.ts";

export const VGE = join(ROOT, "src/cli/vge.ts");

export interface VgeResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface VgeOptions {
  stdin?: string | Uint8Array | "ignore";
  env?: Record<string, string>;
  timeoutMs?: number;
  /** A command vge runs under, as a user would type it before vge (`setpriv --reuid=65534 ...`). */
  prefix?: string[];
}

export function startVge(args: string[], opts: VgeOptions = {}) {
  const t0 = performance.now();
  const stdin = opts.stdin === undefined || opts.stdin === "ignore" ? "ignore" : new Blob([opts.stdin]);
  const proc = Bun.spawn([...(opts.prefix ?? []), "bun", VGE, ...args], {
    stdin,
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1", ...opts.env },
    timeout: opts.timeoutMs ?? 20_000,
    killSignal: "SIGKILL",
  });
  const done = (async (): Promise<VgeResult> => {
    const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    await proc.exited;
    return { code: proc.exitCode, stdout, stderr, ms: performance.now() - t0 };
  })();
  return { proc, done };
}

export function vge(args: string[], opts: VgeOptions = {}): Promise<VgeResult> {
  return startVge(args, opts).done;
}

/** vge's own stderr lines (`vge: ...`), without the command's output. */
export const vgeLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("vge: "));

export interface VgeAgent {
  /** This file's temporary directory; the agent's socket is in it. */
  readonly dir: TempDir;
  /** The agent's address as vge takes it: `unix:PATH`. */
  readonly addr: string;
  /** Running once beforeAll has run. */
  readonly agent: RunningAgent;
}

/** One listening agent for a test file's vge commands. Call at module scope: it registers the hooks. */
export function vgeAgent(prefix: string): VgeAgent {
  const dir = tempDir(prefix);
  let agent: RunningAgent | undefined;

  beforeAll(async () => {
    agent = await listeningAgent(dir.file("agent.sock"), 180_000);
  });

  afterAll(() => {
    stop(agent);
    dir.remove();
  });

  return {
    dir,
    addr: `unix:${dir.file("agent.sock")}`,
    get agent() {
      if (!agent) throw new Error("vgeAgent: the agent starts in beforeAll; use it inside a test");
      return agent;
    },
  };
}

/**
 * Starts `vge forward ADDR SPEC` as a user runs it and resolves once it reports its local port. `stderr()` is
 * what it said so far; `stderrEnd` resolves with all of it once vge has ended.
 */
export async function startForward(addr: string, spec: string, timeoutMs = 120_000) {
  const proc = Bun.spawn(["bun", VGE, "forward", addr, spec], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH!, NO_COLOR: "1" }, timeout: timeoutMs, killSignal: "SIGKILL" });
  let stderr = "";
  const announced = Promise.withResolvers<number>();
  const reading = (async () => {
    const dec = new TextDecoder();
    for await (const c of proc.stderr) {
      stderr += dec.decode(c, { stream: true });
      const m = /forwarding 127\.0\.0\.1:(\d+) → /.exec(stderr);
      if (m) announced.resolve(Number(m[1]));
    }
    announced.reject(new Error(`vge forward ended without announcing a port: ${stderr}`));
  })();
  return { proc, port: await announced.promise, stderr: () => stderr, stderrEnd: reading.then(() => stderr) };
}
