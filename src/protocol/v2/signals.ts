// Signal names as the guest (Linux, x86_64 and arm64) numbers them: the one table both ends use. The host
// may be macOS, whose numbers differ, so names travel on the wire and numbers given by callers are read as
// Linux numbers. The agent resolves a name to its number when it decodes a frame, so nothing unknown
// reaches kill(2).
const LINUX: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9,
  SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGSTKFLT: 16, SIGCHLD: 17,
  SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGTTIN: 21, SIGTTOU: 22, SIGURG: 23, SIGXCPU: 24, SIGXFSZ: 25,
  SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28, SIGIO: 29, SIGPWR: 30, SIGSYS: 31,
};
const BY_NUMBER = new Map(Object.entries(LINUX).map(([k, v]) => [v, k]));

/** A known signal: its canonical name ("SIGTERM") and Linux number. */
export interface Signal {
  name: string;
  signo: number;
}

/** "TERM", "sigterm", "SIGTERM" or 15 → "SIGTERM"; TypeError for anything else. */
export function signalName(sig: string | number): string {
  if (typeof sig === "number") {
    const name = BY_NUMBER.get(sig);
    if (!name) throw new TypeError(`unknown signal number ${sig}`);
    return name;
  }
  const name = canonical(sig);
  if (name === undefined) throw new TypeError(`unknown signal "${sig}"`);
  return name;
}

/** The Linux number of a signal name ("SIGTERM" or "TERM", any case), or undefined. */
export function signalNumber(name: string): number | undefined {
  const c = canonical(name);
  return c === undefined ? undefined : LINUX[c];
}

/** A name or number as a Signal, or undefined when it is not a known Linux signal. */
export function lookupSignal(sig: string | number): Signal | undefined {
  const name = typeof sig === "number" ? BY_NUMBER.get(sig) : canonical(sig);
  return name === undefined ? undefined : { name, signo: LINUX[name]! };
}

function canonical(sig: string): string | undefined {
  const up = sig.toUpperCase();
  const name = up.startsWith("SIG") ? up : `SIG${up}`;
  return Object.hasOwn(LINUX, name) ? name : undefined;
}
