// What every bench section gets: its temp folder, the sizes for this mode, the agent binary, a deadline.
import { join } from "node:path";
import { start, waitUnix } from "./_procs.ts";

export interface Ctx {
  dir: string;
  quick: boolean;
  agent: string;
  /** Repetitions of one cheap operation (an exec round trip). */
  reps: number;
  /** Bytes per streaming run and runs per streaming row. */
  bytes: number;
  runs: number;
  /** ms left before the bench's own deadline. */
  left(): number;
  log(msg: string): void;
}

let agents = 0;

/** The compiled agent in listen mode on a new Unix socket, ready for connections. */
export async function listeningAgent(ctx: Ctx, lifeMs = ctx.left() + 10_000, extra: string[] = []) {
  const sock = join(ctx.dir, `agent-${++agents}.sock`);
  const proc = start([ctx.agent, "--listen", "--unix", sock, ...extra], { timeoutMs: lifeMs });
  await waitUnix(sock, 10_000, 5);
  return { proc, sock, address: `unix:${sock}` };
}
