// Turning an EXEC request into Bun.spawn options: command line, environment, identity, stdio.
import type { ExecSpec } from "../../protocol/v2/messages.ts";
import { lookupUser } from "./users.ts";

export interface SpawnPlan {
  cmd: string[];
  /** Read only: when `inherited`, the agent's own environment object itself. */
  env: Record<string, string>;
  /**
   * The environment is the agent's own, unchanged: Bun.spawn can be given none and pass its own on, instead
   * of converting an object of every variable for each execution (~23 µs a spawn with 35 variables here).
   */
  inherited?: boolean;
  cwd?: string;
  uid?: number;
  gid?: number;
}

/**
 * The agent's own environment, read once: enumerating process.env (a view of the C environment) was ~3%
 * of the agent's CPU per execution (bench/profile.ts). The agent never changes its environment.
 */
let agentEnv: Record<string, string> | undefined;
function ownEnv(): Record<string, string> {
  if (!agentEnv) {
    agentEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) agentEnv[k] = v;
  }
  return agentEnv;
}

export function planSpawn(req: ExecSpec, baseEnv?: Record<string, string | undefined>): SpawnPlan {
  const cmd = req.argv ?? ["/bin/sh", "-c", req.shell!];
  if (!req.clearEnv && !baseEnv && req.user === undefined && !req.pty && (!req.env || Object.keys(req.env).length === 0)) {
    return { cmd, env: ownEnv(), inherited: true, cwd: req.cwd, uid: req.uid, gid: req.uid !== undefined && req.gid === undefined ? req.uid : req.gid };
  }
  let env: Record<string, string> = {};
  if (!req.clearEnv) {
    if (!baseEnv) env = { ...ownEnv() };
    else for (const [k, v] of Object.entries(baseEnv)) if (v !== undefined) env[k] = v;
  }
  let uid = req.uid;
  let gid = req.gid;
  if (req.user !== undefined) {
    const acct = lookupUser(req.user);
    uid ??= acct.uid;
    gid ??= acct.gid;
    // What login(1) would set, so that tools looking for a home or a name find the target user's.
    if (acct.home) env.HOME = acct.home;
    if (acct.name) env.USER = env.LOGNAME = acct.name;
  }
  if (uid !== undefined && gid === undefined) gid = uid;
  if (req.pty) env.TERM = req.pty.term ?? "xterm-256color";
  for (const [k, v] of Object.entries(req.env ?? {})) {
    if (v === null) delete env[k];
    else env[k] = v;
  }
  return { cmd, env, cwd: req.cwd, uid, gid };
}

/** A spawn failure as an errno name and a message for the EXIT frame. */
export function startError(e: unknown, cmd: string[]): { errno: string; message: string } {
  const err = e as { code?: string; message?: string; errno?: string };
  const errno = typeof err.code === "string" && /^E[A-Z0-9]+$/.test(err.code) ? err.code : "EIO";
  const what = errno === "ENOENT" && /not found/i.test(err.message ?? "") ? `program not found: ${cmd[0]}` : (err.message ?? String(e));
  return { errno, message: what };
}
