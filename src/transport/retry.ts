// Retrying an attempt that fails with "not there yet", with a growing pause, up to a deadline. Shared by
// the agent dialing its host and the host library dialing an agent. No Bun APIs: the host library runs
// on Node too.

export interface RetryOptions {
  /** Keep retrying for this many milliseconds (0: one attempt; Infinity: as long as it takes). */
  retryMs: number;
  /** Which failures mean "not yet"; any other is thrown at once. */
  isTransient: (e: unknown) => boolean;
  /** Called before each pause: the failure, the pause that follows, and the attempt that failed. */
  onRetry?: (err: Error, waitMs: number, attempt: number) => void;
  signal?: AbortSignal;
  /** First pause (default 100 ms), doubled after each failure up to maxPauseMs (default 2000 ms); equal
   * values give a fixed cadence. */
  firstPauseMs?: number;
  maxPauseMs?: number;
  /** Spread each pause over ±25 %, so that guests booted together do not dial in lock-step. */
  jitter?: boolean;
}

/** Runs `attempt` until it succeeds; throws its last error once the window is spent. */
export async function retrying<T>(attempt: (n: number) => Promise<T>, o: RetryOptions): Promise<T> {
  // Monotonic: a guest clock stepped at boot or by NTP must not end the window early (or never).
  const deadline = performance.now() + o.retryMs;
  let pause = o.firstPauseMs ?? 100;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (e) {
      const left = deadline - performance.now();
      if (!o.isTransient(e) || left <= 0) throw e;
      const wait = Math.min(left, o.jitter ? pause * (0.75 + Math.random() / 2) : pause);
      o.onRetry?.(e as Error, wait, n);
      await new Promise((r) => setTimeout(r, wait));
      o.signal?.throwIfAborted();
      pause = Math.min(pause * 2, o.maxPauseMs ?? 2000);
    }
  }
}
