// An ExitResult read the way shells and timeout(1) read a status (PROTOCOL.md §6).
import type { ExitResult } from "../protocol/v2/messages.ts";
import { lookupSignal } from "../protocol/v2/signals.ts";

/** code; 128 + signo for a signal; 124 for a timeout; 127 for a missing program, 126 for other start failures. */
export function shellStatus(r: ExitResult): number {
  switch (r.status) {
    case "exited":
      return r.code;
    case "signaled":
      return 128 + r.signo;
    case "timeout":
      return 124;
    case "error":
      return r.errno === "ENOENT" ? 127 : 126;
  }
}

/** "exited 3", "killed by SIGKILL", "timed out (SIGKILL)", "failed to start: ENOENT: program not found: x". */
export function describeExit(r: ExitResult): string {
  switch (r.status) {
    case "exited":
      return `exited ${r.code}`;
    case "signaled":
      return `killed by ${r.signal}`;
    case "timeout":
      return `timed out (${r.signal})`;
    case "error":
      return `failed to start: ${r.errno}: ${r.message}`;
  }
}

/** How a child this process ran itself ended (agent: disposable and persistent modes), as an ExitResult. */
export function localExit(code: number | null, signal: string | number | null): ExitResult {
  if (code !== null) return { status: "exited", code };
  const sig = signal === null ? undefined : lookupSignal(signal);
  return { status: "signaled", signal: sig?.name ?? String(signal ?? "an unknown signal"), signo: sig?.signo ?? 0 };
}
