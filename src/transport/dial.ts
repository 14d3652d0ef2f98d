// Dialing the host, kernel AF_VSOCK or a Unix socket, with retry and backoff while nobody listens yet.
import { vsockConnect, unixConnect } from "../sys/vsock.ts";
import { SyscallError } from "../sys/_errno.ts";

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

/** A connected non-blocking fd; throws the last error once the retry window is spent. */
export async function dial(target: Target, opts: DialOptions): Promise<number> {
  const deadline = Date.now() + opts.retryMs;
  let pause = 100;
  for (let attempt = 1; ; attempt++) {
    try {
      return target.kind === "vsock" ? await vsockConnect(target, { timeoutMs: 10_000, signal: opts.signal }) : await unixConnect(target.path, { timeoutMs: 10_000, signal: opts.signal });
    } catch (e) {
      const left = deadline - Date.now();
      if (!isTransient(e) || left <= 0) throw e;
      // Jitter keeps a fleet of guests booted together from dialing the host in lock-step.
      const wait = Math.min(left, pause * (0.75 + Math.random() / 2));
      opts.onRetry?.(e as Error, wait, attempt);
      await Bun.sleep(wait);
      opts.signal?.throwIfAborted();
      pause = Math.min(pause * 2, 2000);
    }
  }
}
