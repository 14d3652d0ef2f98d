// Real agents for the host tests: the compiled binary, always on a Unix socket (never AF_VSOCK here),
// always under a deadline, and always killed by the pid we started.
import { existsSync } from "node:fs";
import { startAgent, type RunningAgent } from "../helpers/agent.ts";
import { tempDir, type TempDir } from "../helpers/tmp.ts";

export { tempDir, type TempDir };

/** An agent that dials `path` (where the host listens) and serves v2 there. */
export function dialingAgent(path: string, extra: string[] = [], timeoutMs = 30_000): RunningAgent {
  return startAgent(["--unix", path, "--retry", "10", ...extra, "persistent"], { timeoutMs });
}

/** An agent that listens on `path` (the host connects); resolves once the socket file is there. */
export async function listeningAgent(path: string, timeoutMs = 30_000): Promise<RunningAgent> {
  const agent = startAgent(["--listen", "--unix", path], { timeoutMs });
  const deadline = Date.now() + 10_000;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`agent did not listen on ${path} within 10 s: ${JSON.stringify(await Promise.race([agent.done, Bun.sleep(100)]))}`);
    await Bun.sleep(20);
  }
  return agent;
}

export function stop(agent: RunningAgent | undefined): void {
  if (agent && agent.proc.exitCode === null && agent.proc.signalCode === null) agent.proc.kill("SIGKILL");
}

/**
 * Live processes (zombies left out) whose process group is `pgid`: an execution runs as its own group.
 * Killed children of a killed shell are reparented to PID 1, which may take a moment to reap them.
 */
export async function groupMembers(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of new Bun.Glob("[0-9]*").scanSync({ cwd: "/proc", onlyFiles: false })) {
    try {
      const stat = await Bun.file(`/proc/${name}/stat`).text();
      // Fields after the ")" that ends the command name: state ppid pgrp ...
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid && fields[0] !== "Z") out.push(Number(name));
    } catch {
      // Gone while we looked.
    }
  }
  return out;
}

export const sha256 = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");
