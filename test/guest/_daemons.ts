// Shell steps the containment guest tests share (contain, track, systemd-unit): start a daemon that leaves
// its execution's process group and session, ask whether it still runs, and run a command with a bound.
import type { Guest as HostGuest } from "../../src/host/index.ts";
import { within } from "../../scripts/qemu/harness.ts";

/** How long one command may take in a TCG guest on a loaded machine. */
const CALL = 60_000;

/** Starts a daemon that leaves the process group and session (setsid) and its parent (double fork), records its pid in FILE, then runs `then`. */
export const daemonCmd = (file: string, then = "sleep 300") => `setsid sh -c 'sleep 300 & echo $! > ${file}'; ${then}`;

/** "alive" or "dead" for the pid in FILE (a zombie counts as dead: it runs nothing). */
export const stateOf = (file: string) => `d=$(cat ${file}); if [ -e /proc/$d/status ] && ! grep -q '^State:.*Z' /proc/$d/status; then echo alive; else echo dead; fi`;

/** A shell command in the guest, bounded. */
export async function sh(g: HostGuest, cmd: string, what: string, opts: Parameters<HostGuest["run"]>[1] = {}) {
  return within(g.run({ shell: cmd }, opts), CALL, what);
}

/** Polls FILE's daemon until it is dead (bounded, ~10 s); its last state. */
export async function waitDead(g: HostGuest, file: string): Promise<string> {
  let state = "";
  for (let i = 0; i < 40; i++) {
    state = (await sh(g, stateOf(file), "daemon state")).stdoutText.trim();
    if (state === "dead") break;
    await Bun.sleep(250);
  }
  return state;
}
