// Signal names as the guest (Linux, x86_64 and arm64) numbers them. The host may be macOS, whose numbers
// differ, so names travel on the wire and numbers given by callers are read as Linux numbers.
import { GuestError } from "./errors.ts";

const LINUX: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9,
  SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGSTKFLT: 16, SIGCHLD: 17,
  SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGTTIN: 21, SIGTTOU: 22, SIGURG: 23, SIGXCPU: 24, SIGXFSZ: 25,
  SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28, SIGIO: 29, SIGPWR: 30, SIGSYS: 31,
};
const BY_NUMBER = new Map(Object.entries(LINUX).map(([k, v]) => [v, k]));

/** "TERM", "sigterm", "SIGTERM" or 15 → "SIGTERM"; a GuestError EINVAL for anything else. */
export function signalName(sig: string | number): string {
  if (typeof sig === "number") {
    const name = BY_NUMBER.get(sig);
    if (!name) throw new GuestError("EINVAL", `unknown signal number ${sig}`);
    return name;
  }
  const up = sig.toUpperCase();
  const name = up.startsWith("SIG") ? up : `SIG${up}`;
  if (!(name in LINUX)) throw new GuestError("EINVAL", `unknown signal "${sig}"`);
  return name;
}

export function signalNumber(name: string): number | undefined {
  return LINUX[name];
}
