// One host, one agent, one private directory: the shape of every binary test against a legacy host.
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startAgent, type AgentOptions, type AgentResult } from "./agent.ts";
import { startPyHost, type HostReport, type Step } from "./pyhost.ts";

export interface Scenario {
  agent: AgentResult;
  host: HostReport;
  /** The agent's working directory, where commands leave marker files. */
  dir: string;
  /** A marker file's text, or null if the command that writes it never ran. */
  marker(name: string): string | null;
}

/**
 * Starts legacy_host.py with `steps`, then the agent with `--unix SOCKET ...args` in a fresh directory
 * under `root`, and waits for both.
 */
export async function scenario(root: string, steps: Step[], args: string[], opts: AgentOptions = {}): Promise<Scenario> {
  const dir = mkdtempSync(join(root, "s"));
  const sock = join(dir, "h.sock");
  const host = await startPyHost(sock, steps);
  const agent = startAgent(["--unix", sock, ...args], { cwd: dir, ...opts });
  const [a, h] = await Promise.all([agent.done, host.report]);
  return {
    agent: a,
    host: h,
    dir,
    marker: (name) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), "utf8") : null),
  };
}
