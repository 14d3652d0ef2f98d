// What /proc says about processes the agent started: process-group members and resident memory.
import { readFileSync, readdirSync } from "node:fs";

/** Live (non-zombie) pids whose process group is `pgid`. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // gone while we looked
    }
    // After the command name in parentheses: state, ppid, pgrp, ...
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(f[2]) === pgid && f[0] !== "Z" && f[0] !== "X") out.push(Number(name));
  }
  return out;
}

/** Polls until the group is empty; returns what is left after `ms`. */
export async function groupGone(pgid: number, ms = 2000): Promise<number[]> {
  const end = performance.now() + ms;
  for (;;) {
    const left = groupMembers(pgid);
    if (left.length === 0 || performance.now() > end) return left;
    await Bun.sleep(20);
  }
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2)[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

export function ppid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** Resident set size in KiB, from /proc/PID/status; null once the process is gone. */
export function vmRssKiB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
