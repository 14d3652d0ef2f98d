// Process-tree calls for an agent without cgroups (agent/v2/track.ts): become the child subreaper, so that
// orphans of what the agent runs are reparented to it rather than to init, and reap such orphans.
import { libc } from "./_libc.ts";
import { check, checkOr } from "./_call.ts";

const PR_SET_CHILD_SUBREAPER = 36;
const WNOHANG = 1;
const ECHILD = 10;

/** prctl(PR_SET_CHILD_SUBREAPER, 1): this process adopts the orphans among its descendants. */
export function setChildSubreaper(): void {
  check("prctl", () => libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
}

/**
 * waitpid(pid, WNOHANG): true if `pid`, a child of ours, had ended and is reaped now; false if it still
 * runs or is no child of ours (ECHILD). Only for children the runtime did not spawn: it waits for its own.
 */
export function reapChild(pid: number): boolean {
  const rc = checkOr("waitpid", [ECHILD], () => libc().waitpid(pid, null, WNOHANG));
  return typeof rc === "number" && rc === pid;
}
