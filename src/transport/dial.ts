// Dialing the host, kernel AF_VSOCK or a Unix socket, with retry and backoff while nobody listens yet.
import { vsockConnect, unixConnect } from "../sys/vsock.ts";
import { SyscallError } from "../sys/_errno.ts";
import { retrying } from "./retry.ts";

export type Target = { kind: "vsock"; cid: number; port: number } | { kind: "unix"; path: string };

export function describeTarget(t: Target): string {
  return t.kind === "vsock" ? `vsock ${t.cid === 0xffffffff ? -1 : t.cid}:${t.port}` : `unix ${t.path}`;
}

/**
 * Errors that mean "not yet": the host is not listening (refused, reset by the vsock transport), the
 * socket file is not there yet, or the guest's vsock transport has not come up in early boot.
 */
const TRANSIENT = new Set(["ECONNREFUSED", "ECONNRESET", "ENOENT", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENODEV", "EAFNOSUPPORT", "EAGAIN", "ENXIO"]);

export function isTransient(e: unknown): boolean {
  return e instanceof SyscallError && TRANSIENT.has(e.code);
}

export interface DialOptions {
  /** Keep retrying transient failures for this many milliseconds (0: one attempt). */
  retryMs: number;
  /** Called before each wait: the failure and the pause that follows it. */
  onRetry?: (err: Error, waitMs: number, attempt: number) => void;
  signal?: AbortSignal;
}

/**
 * The agent's dial cadence while the host is not listening: one attempt every 50 ms ±25 %, for the whole
 * window. A host that starts listening is noticed within ~65 ms (plus one attempt), where a backoff to
 * 2 s made a booting guest wait seconds for a host that was already there. A refused attempt is a
 * socket(), a connect() answered by the guest kernel or the VMM with a reset, and a close(): microseconds,
 * ~20 times a second (measured in BENCHMARKS.md: "agent dialing into nothing: CPU").
 */
export const DIAL_CADENCE_MS = 50;

/** A connected non-blocking fd; throws the last error once the retry window is spent. */
export function dial(target: Target, opts: DialOptions): Promise<number> {
  const once = { timeoutMs: 10_000, signal: opts.signal };
  return retrying(() => (target.kind === "vsock" ? vsockConnect(target, once) : unixConnect(target.path, once)), {
    retryMs: opts.retryMs,
    isTransient,
    onRetry: opts.onRetry,
    signal: opts.signal,
    firstPauseMs: DIAL_CADENCE_MS,
    maxPauseMs: DIAL_CADENCE_MS,
    // A fleet of guests booted together must not dial the host in lock-step.
    jitter: true,
  });
}
