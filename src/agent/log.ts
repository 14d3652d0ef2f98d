// Agent log lines go to stderr (the guest console in an initrd), written synchronously so that nothing
// is lost when the process execs or exits right after.
import { writeSync } from "node:fs";
import { constants } from "node:os";

export interface Log {
  info(msg: string): void;
  error(msg: string): void;
  /** Only with --verbose. */
  debug(msg: string): void;
  readonly verbose: boolean;
}

export function makeLog(verbose: boolean, name = "vsock_guest_exec"): Log {
  const line = (msg: string) => {
    try {
      writeSync(2, `${name}: ${msg}\n`);
    } catch {
      // A closed console must not take the agent down.
    }
  };
  return { info: line, error: (m) => line(`error: ${m}`), debug: (m) => verbose && line(m), verbose };
}

/** A command for a log line: its length always, its text only when verbose (it may carry secrets). */
export function describeCommand(cmd: Uint8Array, verbose: boolean): string {
  const len = `${cmd.byteLength} bytes`;
  return verbose ? `${len}: ${JSON.stringify(new TextDecoder().decode(cmd))}` : len;
}

/** How a child ended, as a log phrase and as a shell-style status (128+n for a signal). */
export function describeExit(code: number | null, signal: string | number | null): { text: string; status: number } {
  if (code !== null) return { text: `exited ${code}`, status: code };
  const n = typeof signal === "number" ? signal : signal ? ((constants.signals as Record<string, number>)[signal] ?? 0) : 0;
  return { text: `killed by ${signal ?? "a signal"}`, status: 128 + n };
}
