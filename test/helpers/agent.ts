// Runs the compiled agent as a user would, always against a Unix socket and always under a deadline.
import type { Subprocess } from "bun";
import { agentBinary } from "./build.ts";

export interface AgentResult {
  /** Exit status, or null when a signal ended the agent. */
  code: number | null;
  signal: NodeJS.Signals | number | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
}

export interface AgentOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Hard deadline: the agent is SIGKILLed after this long (default 20 s). */
  timeoutMs?: number;
}

export interface RunningAgent {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  done: Promise<AgentResult>;
}

/**
 * This machine is itself a VM: the agent must never dial AF_VSOCK here. Every invocation therefore names
 * a Unix socket, so that even a parsing bug that ignored some other argument would still dial a file.
 */
function assertUnix(args: string[]): void {
  const i = args.findIndex((a) => a === "--unix" || a.startsWith("--unix="));
  const path = i < 0 ? undefined : args[i] === "--unix" ? args[i + 1] : args[i]!.slice("--unix=".length);
  if (!path) throw new Error(`refusing to run the agent without --unix PATH (it would dial AF_VSOCK): ${JSON.stringify(args)}`);
}

/** Agents still running: the deadline is kept by this process, so they must not outlive it. */
const live = new Set<Subprocess>();

/**
 * Kills every agent still running. binaryTests() (binary.ts) calls it in afterAll: a test that fails
 * early may leave an agent behind (a hung one spins forever), and bun test runs no exit handlers.
 */
export function stopAgents(): void {
  for (const p of live) p.kill("SIGKILL");
  live.clear();
}

export function startAgent(args: string[], opts: AgentOptions = {}): RunningAgent {
  assertUnix(args);
  const started = performance.now();
  const proc = Bun.spawn([agentBinary(), ...args], {
    cwd: opts.cwd,
    env: opts.env ?? { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: opts.timeoutMs ?? 20_000,
    killSignal: "SIGKILL",
  });
  live.add(proc);
  const done = (async () => {
    const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    await proc.exited;
    live.delete(proc);
    return { code: proc.exitCode, signal: proc.signalCode, stdout, stderr, ms: performance.now() - started };
  })();
  return { proc, done };
}

export function runAgent(args: string[], opts: AgentOptions = {}): Promise<AgentResult> {
  return startAgent(args, opts).done;
}

/** The agent's stderr as lines, without the trailing empty one. */
export function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}
