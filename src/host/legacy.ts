// Driving agents in the original formats (PROTOCOL.md §1): they answer nothing, so the only news is the
// connection closing: after the command (disposable) or after the last command (persistent).
import { MAX_COMMAND, encodeLegacyFrame } from "../protocol/legacy.ts";
import type { Conn } from "../transport/stream.ts";
import { GuestError } from "./errors.ts";

function toBytes(command: string | Uint8Array, what: string): Uint8Array {
  const b = typeof command === "string" ? new TextEncoder().encode(command) : command;
  if (b.byteLength === 0) throw new GuestError("EINVAL", `${what} is empty`);
  if (b.byteLength > MAX_COMMAND) throw new GuestError("EINVAL", `${what} is ${b.byteLength} bytes; the original format allows at most ${MAX_COMMAND}`);
  if (b.includes(0)) throw new GuestError("EINVAL", `${what} contains a NUL byte, where the agent would cut it off`);
  return b;
}

/** Waits until the agent closes its side, dropping anything it sends (an original agent sends nothing). */
async function untilClosed(conn: Conn, timeoutMs: number | undefined): Promise<void> {
  const r = conn.reader;
  const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
  for (;;) {
    const left = deadline === undefined ? undefined : deadline - Date.now();
    if (left !== undefined && (left <= 0 || !(await r.waitData(left)))) {
      conn.close();
      throw new GuestError("ETIMEDOUT", `the agent did not close the connection within ${timeoutMs! / 1000} s`);
    }
    if (left === undefined) await r.waitData();
    if (r.isEnded) break;
    r.readAvailable(r.available);
  }
  conn.close();
}

export interface LegacyOptions {
  /** Give up waiting for the agent to close after this long (default: wait as long as it takes). */
  timeoutMs?: number;
}

/**
 * One command for a disposable agent: written, then our side half-closed (which ends the command at once,
 * no pause needed); resolves when the agent closes the connection, i.e. when the command has finished.
 */
export async function sendDisposable(conn: Conn, command: string | Uint8Array, opts: LegacyOptions = {}): Promise<void> {
  const bytes = toBytes(command, "the command");
  await conn.write(bytes);
  conn.end();
  await untilClosed(conn, opts.timeoutMs);
}

export interface PersistentOptions extends LegacyOptions {
  /** Half-close after the commands and wait until the agent has run them all and closed (default true). */
  end?: boolean;
}

/** Commands for a persistent agent, each as one `u16 length` frame; all are checked before any is sent. */
export async function sendPersistent(conn: Conn, commands: (string | Uint8Array)[], opts: PersistentOptions = {}): Promise<void> {
  const frames = commands.map((c, i) => encodeLegacyFrame(toBytes(c, `command ${i + 1}`)));
  for (const f of frames) await conn.write(f);
  if (opts.end === false) return;
  conn.end();
  await untilClosed(conn, opts.timeoutMs);
}
