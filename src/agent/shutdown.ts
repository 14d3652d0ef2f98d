// SIGTERM (systemd stopping the unit, the initrd's cleanup hook before switch_root): let running v2
// work finish and its results reach the host, for a short grace, then exit. Without this, a command
// that itself triggers the stop (the host creating the initrd's release file) loses its EXIT frame.
import type { Log } from "./log.ts";
import { existingDetachedJobs } from "./v2/detached.ts";
import { killLeftovers } from "./v2/groups.ts";

/** Shorter than the 2 s the dracut cleanup hook allows between SIGTERM and SIGKILL. */
export const TERM_GRACE_MS = 1500;
/** 128 + SIGTERM, as if the signal had ended the process: what init systems expect. */
const EXIT_TERM = 143;

export interface Drainable {
  idle(): Promise<void>;
  /** The grace is over: kill what still runs, so that nothing outlives the agent. */
  abortAll(): void;
}

const active = new Set<Drainable>();

/** Registers a session for the duration of `serve`. */
export async function tracked<T>(session: Drainable, serve: () => Promise<T>): Promise<T> {
  active.add(session);
  try {
    return await serve();
  } finally {
    active.delete(session);
  }
}

export function exitGracefullyOnTerm(log: Log, graceMs = TERM_GRACE_MS): void {
  let stopping = false;
  process.on("SIGTERM", () => {
    // A second SIGTERM means "now".
    if (stopping || active.size === 0) {
      for (const s of active) s.abortAll();
      existingDetachedJobs()?.abortAll();
      killLeftovers();
      process.exit(EXIT_TERM);
    }
    stopping = true;
    log.info(`SIGTERM: letting ${active.size} session(s) finish their running work (up to ${graceMs} ms), then exiting`);
    const drained = Promise.all([...active].map((s) => s.idle()));
    void Promise.race([drained, Bun.sleep(graceMs)]).then(() => {
      for (const s of active) s.abortAll();
      // Detached executions too: nothing the agent started outlives it, and nobody could reattach.
      existingDetachedJobs()?.abortAll();
      // And what finished executions left in their groups, detached ones' too.
      killLeftovers();
      process.exit(EXIT_TERM);
    });
  });
}
