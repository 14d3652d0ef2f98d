// Dialing the host, kernel AF_VSOCK or a Unix socket, on a short fixed cadence while nobody listens yet.
import { connectBegin, connectOutcome } from "../sys/vsock.ts";
import { dialVsockOverlapping } from "./dial-vsock.ts";
import { SyscallError } from "../sys/_errno.ts";
import { close, poll, POLLERR, POLLHUP, POLLOUT } from "../sys/socket.ts";
import { fdReady } from "../sys/fdwatch.ts";
import { PathWatch } from "./path-watch.ts";

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
 * One attempt every 50 ms ±25 % (from the start of one attempt to the start of the next) where nothing
 * better tells the agent that the host is there: a host that starts listening is noticed within ~65 ms,
 * where a backoff to 2 s made a booting guest wait seconds for a host that was already there. A refused
 * attempt is a socket(), a connect() and a close(): ~20 a second cost ~1 % of a core (BENCHMARKS.md,
 * "agent dialing into nothing"), so a Unix socket is watched instead (WATCHED_PAUSE_MS).
 */
export const DIAL_CADENCE_MS = 50;

/**
 * A Unix socket's folder is watched (inotify, path-watch.ts): a host that starts listening creates (or
 * renames into place, or chmods) the socket file, and the agent dials at once. Besides, one attempt a
 * second catches what inotify does not show: a socket file that exists before its host listens, a folder
 * that inotify cannot watch (some network and FUSE file systems).
 */
export const WATCHED_PAUSE_MS = 1_000;

/**
 * After a change of the socket file, the 50 ms cadence for this long: the file appears at bind(), before
 * the host's listen(), and an attempt in between is refused.
 */
export const FAST_AFTER_CHANGE_MS = 1_000;

/** Past the kernel's own connect timeout (2 s for AF_VSOCK): a backstop, in case no answer ever shows on the fd. */
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

/** Resolves after `ms`, or when `watch` sees the socket file change (true), or when `signal` aborts. */
async function pause(ms: number, watch: PathWatch | null, signal: AbortSignal | undefined): Promise<boolean> {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => stop.abort(), ms);
  try {
    if (watch?.alive) return await watch.changed(stop.signal);
    await new Promise<void>((r) => stop.signal.addEventListener("abort", () => r(), { once: true }));
    return false;
  } finally {
    clearTimeout(timer);
    stop.abort(); // before the watch may be closed: its fd must not stay watched
    signal?.removeEventListener("abort", onAbort);
  }
}

/** A connected non-blocking fd; throws the last error once the retry window is spent. */
export async function dial(target: Target, opts: DialOptions): Promise<number> {
  // Monotonic (performance.now, as src/common/clock.ts, which sits above this layer): a guest clock stepped
  // at boot or by NTP must not end the window early, or never.
  const deadline = performance.now() + opts.retryMs;
  // Retrying over AF_VSOCK: attempts overlap, none given up early (dial-vsock.ts says why).
  if (target.kind === "vsock" && opts.retryMs > 0) {
    return dialVsockOverlapping(target, { deadline, cadenceMs: DIAL_CADENCE_MS, isTransient, onRetry: opts.onRetry, signal: opts.signal });
  }
  // Set up before the first attempt, so that a socket created between a refused attempt and the watch is seen.
  const watch = target.kind === "unix" && opts.retryMs > 0 ? PathWatch.open(target.path) : null;
  let fastUntil = 0;
  try {
    for (let n = 1; ; n++) {
      opts.signal?.throwIfAborted();
      // Guests booted together do not dial in lock-step.
      const jitter = 0.75 + Math.random() / 2;
      const startedAt = performance.now();
      try {
        return await attempt(target, opts.signal);
      } catch (err) {
        const left = deadline - performance.now();
        if (!isTransient(err) || left <= 0) throw err;
        const cadence = watch?.alive && performance.now() >= fastUntil ? WATCHED_PAUSE_MS : DIAL_CADENCE_MS;
        const wait = Math.min(left, Math.max(0, startedAt + cadence * jitter - performance.now()));
        opts.onRetry?.(err as Error, wait, n);
        if (wait > 0 && (await pause(wait, watch, opts.signal))) fastUntil = performance.now() + FAST_AFTER_CHANGE_MS;
      }
    }
  } finally {
    watch?.close();
  }
}
