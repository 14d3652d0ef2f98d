// Process groups whose leader has exited: the members it left behind. An execution's pid leads a session
// and a group of its own (spawned detached), and the group outlives its leader while any member runs.
// Each such group is remembered with its owner (the connection that ran it; none for a detached one) and
// killed when that connection ends, or when the agent stops. A process that called setsid() has left the
// group: nothing here reaches it (only a cgroup would).
import { existsSync } from "node:fs";
import { containment } from "./contain.ts";

const SIGKILL = 9;

/**
 * Signals group `pgid` after its leader (pid `pgid`) has exited and been reaped. While any member of a
 * group lives, the kernel does not hand its id out as a pid again; so a live process with pid `pgid` means
 * the group is empty and the pid was reused: that process (and any group it leads) is not ours.
 */
export function signalOrphanedGroup(pgid: number, signo = SIGKILL): void {
  if (existsSync(`/proc/${pgid}`)) return;
  try {
    process.kill(-pgid, signo);
  } catch {
    // Empty already.
  }
}

/** True while group `pgid` (leader gone) has members. */
function hasMembers(pgid: number): boolean {
  if (existsSync(`/proc/${pgid}`)) return false;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    // EPERM: members there, of another user (an execution run as `user`).
    return (e as { code?: string }).code === "EPERM";
  }
}

/** pgid → its owner. One map for the agent: a pgid reused by a later execution changes owner. */
const leftovers = new Map<number, object | undefined>();
/** Pruned of empty groups when it reaches this size, so that it follows the groups still alive. */
let pruneAt = 64;

/** The leader of group `pgid` has exited; what remains of it belongs to `owner` (undefined: detached). */
export function leaderExited(pgid: number, owner: object | undefined): void {
  if (leftovers.size >= pruneAt) {
    for (const p of leftovers.keys()) if (!hasMembers(p)) leftovers.delete(p);
    pruneAt = Math.max(64, leftovers.size * 2);
  }
  leftovers.delete(pgid);
  leftovers.set(pgid, owner);
}

/**
 * SIGKILL to the leftover groups of `owner`, or with no argument to all of them (the agent stops); and to
 * what its finished executions left outside their groups, as tracked without cgroups (track.ts).
 */
export function killLeftovers(...owner: [object] | []): void {
  containment().tracking?.killLeftovers(...owner);
  for (const [p, o] of leftovers) {
    if (owner.length > 0 && o !== owner[0]) continue;
    leftovers.delete(p);
    signalOrphanedGroup(p);
  }
}
