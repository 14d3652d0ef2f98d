// The compiled agent for v2 tests, as a user runs it: listening on a Unix socket (hosts dial in) or
// dialing one. Never AF_VSOCK: this machine is a VM itself, and every start names --unix.
import type { Subprocess } from "bun";
import { existsSync } from "node:fs";
import { agentBinary } from "../../helpers/build.ts";

export interface Agent {
  proc: Subprocess<"ignore", "ignore", "pipe">;
  pid: number;
  /** What the agent logged so far (stderr). */
  log(): string;
  /** SIGKILL, then wait for the exit. Safe to call twice. */
  stop(): Promise<void>;
  exited: Promise<number | null>;
}

function spawnAgent(args: string[], timeoutMs: number, cwd?: string): Agent {
  const i = args.indexOf("--unix");
  if (i < 0 || !args[i + 1]) throw new Error(`refusing to start the agent without --unix PATH: ${JSON.stringify(args)}`);
  const proc = Bun.spawn([agentBinary(), ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/root", VGE_TEST_INHERITED: "yes" },
    cwd,
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    timeout: timeoutMs,
    killSignal: "SIGKILL",
  });
  let text = "";
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr) text += dec.decode(chunk, { stream: true });
  })().catch(() => {});
  const exited = proc.exited.then(() => proc.exitCode);
  return {
    proc,
    pid: proc.pid,
    log: () => text,
    exited,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

/**
 * `--listen --unix PATH`: resolves once the socket exists. Bounded by `timeoutMs` (SIGKILL after). `extra`
 * are more agent options; `cwd` is where its commands start by default.
 */
export async function listeningAgent(path: string, timeoutMs = 120_000, extra: string[] = [], cwd?: string): Promise<Agent> {
  const agent = spawnAgent(["--listen", "--unix", path, "-v", ...extra], timeoutMs, cwd);
  // The socket file appears at bind(), a moment before listen(): a connect in between is refused. The
  // agent logs "listening on" once it listens.
  for (let t = 0; !existsSync(path) || !agent.log().includes("listening on"); t += 20) {
    if (t > 10_000 || agent.proc.exitCode !== null) throw new Error(`agent did not listen on ${path}: ${agent.log()}`);
    await Bun.sleep(20);
  }
  return agent;
}

/** `--unix PATH [mode]`: the agent dials a host that listens on PATH. */
export function dialingAgent(path: string, extra: string[] = [], timeoutMs = 60_000): Agent {
  return spawnAgent(["--unix", path, "--retry", "10", "-v", ...extra], timeoutMs);
}
