// A process's resource footprint from /proc, for soak and fuzz runs that bound growth by measuring it.
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { vmRssKiB } from "../agent/v2/_proc.ts";

export interface Child {
  pid: number;
  /** One-letter state from /proc/PID/stat: "Z" is a zombie nobody has reaped. */
  state: string;
  comm: string;
}

export interface Footprint {
  fds: number;
  rssKiB: number;
  children: Child[];
}

/** Open fds of `pid`, counted in /proc/PID/fd. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** What readlink says each fd of `pid` is (socket:[…], pipe:[…], /dev/null…), for a failure message. */
export function fdTargets(pid: number): string[] {
  const out: string[] = [];
  for (const name of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(`${name} -> ${readlinkSync(`/proc/${pid}/fd/${name}`)}`);
    } catch {
      // closed while we looked
    }
  }
  return out;
}

/** Direct children of `pid`, zombies included (they are what a missing waitpid leaves behind). */
export function childrenOf(pid: number): Child[] {
  const out: Child[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // gone while we looked
    }
    const close = stat.lastIndexOf(")");
    const f = stat.slice(close + 2).split(" ");
    if (Number(f[1]) === pid) out.push({ pid: Number(name), state: f[0]!, comm: stat.slice(stat.indexOf("(") + 1, close) });
  }
  return out;
}

export function footprint(pid: number): Footprint {
  const rss = vmRssKiB(pid);
  if (rss === null) throw new Error(`process ${pid} is gone`);
  return { fds: fdCount(pid), rssKiB: rss, children: childrenOf(pid) };
}

/**
 * Polls until `pid` has no children and its fd count is at most `fds` (executions and connections wind
 * down asynchronously), or `ms` have passed; returns the footprint either way, for the caller to judge.
 */
export async function settled(pid: number, fds: number, ms = 3000): Promise<Footprint> {
  const end = performance.now() + ms;
  for (;;) {
    const fp = footprint(pid);
    if ((fp.children.length === 0 && fp.fds <= fds) || performance.now() > end) return fp;
    await Bun.sleep(50);
  }
}
