// Dialing the host, kernel AF_VSOCK or a Unix socket, on a short fixed cadence while nobody listens yet.
import { connectBegin, connectOutcome } from "../sys/vsock.ts";
import { SyscallError } from "../sys/_errno.ts";
import { close, poll, POLLERR, POLLHUP, POLLOUT } from "../sys/socket.ts";
import { fdReady } from "../sys/fdwatch.ts";

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

/**
 * One attempt every 50 ms ±25 % for the whole window (from the start of one attempt to the start of the
 * next): a host that starts listening is noticed within ~65 ms, where a backoff to 2 s made a booting
 * guest wait seconds for a host that was already there.
 * A refused attempt is a socket(), a connect() and a close(): ~20 a second cost ~1 % of a core
 * (BENCHMARKS.md, "agent dialing into nothing").
 */
export const DIAL_CADENCE_MS = 50;

/**
 * How long one attempt may wait for the kernel's answer. One attempt at a time, always: a VMM may complete
 * an attempt long after it was sent (vhost-device-vsock 0.3.0 does: it never resets a connect to a port
 * nobody listens on, its RST is a TODO, and it was seen to connect such an attempt later), and every
 * attempt given up while still open would reach the host as a connection that resets at once — a host
 * that takes the first connection it accepts would take that one. So an unanswered attempt is waited for
 * until the guest kernel itself gives up (ETIMEDOUT after 2 s): Firecracker answers at once (it resets),
 * so does the kernel for a Unix socket; only a VMM that never answers makes the cadence 2 s.
 */
const ATTEMPT_MS = 10_000;

export interface DialOptions {
  /** Keep retrying transient failures for this many milliseconds (0: one attempt). */
  retryMs: number;
  /** Called after each failed attempt, with the pause before the next one and the attempt's number. */
  onRetry?: (err: Error, waitMs: number, attempt: number) => void;
  signal?: AbortSignal;
}

/**
 * Resolves once the kernel has answered a started connect: the fd polls writable, or in error. Waited for
 * by the poll thread (no timer polling while the VMM takes its time) and checked here with poll(2) itself,
 * as a wake-up can be stale when an fd number was closed and reused.
 */
async function answered(fd: number, signal: AbortSignal): Promise<boolean> {
  for (;;) {
    if ((await fdReady(fd, POLLOUT, signal)) === 0) return false;
    const [revents] = poll([{ fd, events: POLLOUT }], 0);
    if (revents! & (POLLOUT | POLLERR | POLLHUP)) return true;
  }
}

/** One attempt: a connected fd, or it throws (fd closed). */
async function attempt(target: Target, signal: AbortSignal | undefined): Promise<number> {
  const { fd, connected } = connectBegin(target);
  if (connected) return fd;
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), ATTEMPT_MS);
  const onAbort = () => stop.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (!(await answered(fd, stop.signal).catch(() => false))) throw new SyscallError("connect", 110 /* ETIMEDOUT */);
    connectOutcome(fd);
    return fd;
  } catch (e) {
    stop.abort(); // before close(): a watched number must not be reused while watched
    close(fd);
    signal?.throwIfAborted();
    throw e;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

/** A connected non-blocking fd; throws the last error once the retry window is spent. */
export async function dial(target: Target, opts: DialOptions): Promise<number> {
  // Monotonic (performance.now, as src/common/clock.ts, which sits above this layer): a guest clock stepped
  // at boot or by NTP must not end the window early, or never.
  const deadline = performance.now() + opts.retryMs;
  for (let n = 1; ; n++) {
    opts.signal?.throwIfAborted();
    // Guests booted together do not dial in lock-step.
    const next = performance.now() + DIAL_CADENCE_MS * (0.75 + Math.random() / 2);
    try {
      return await attempt(target, opts.signal);
    } catch (err) {
      const left = deadline - performance.now();
      if (!isTransient(err) || left <= 0) throw err;
      const wait = Math.min(left, Math.max(0, next - performance.now()));
      opts.onRetry?.(err as Error, wait, n);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }
}
