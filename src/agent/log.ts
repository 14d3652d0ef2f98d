// The agent's log: the shared logger (common/log.ts) with the agent's name, uncoloured (the guest console
// is often a serial line that a test or an operator greps), and how commands appear in it.
import { makeLog, type Log } from "../common/log.ts";

export type { Log };

export function agentLog(verbose: boolean, name = "vsock_guest_exec"): Log {
  return makeLog({ name, verbose, color: false });
}

/** A command for a log line: its length always, its text only when verbose (it may carry secrets). */
export function describeCommand(cmd: Uint8Array, verbose: boolean): string {
  const len = `${cmd.byteLength} bytes`;
  return verbose ? `${len}: ${JSON.stringify(new TextDecoder().decode(cmd))}` : len;
}
