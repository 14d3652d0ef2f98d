// What the kernel says about this process's fds, from /proc/self.
import { readFileSync, readdirSync, readlinkSync } from "node:fs";

export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

/** The `flags:` line of /proc/self/fdinfo/FD (octal there), as a number. */
export function fdFlags(fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
  if (!m) throw new Error(`no flags line in /proc/self/fdinfo/${fd}`);
  return parseInt(m[1]!, 8);
}

/** The socket fds open in this process right now. */
export function socketFds(): Set<number> {
  const out = new Set<number>();
  for (const name of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`).startsWith("socket:")) out.add(Number(name));
    } catch {
      // The fd that listed the directory is gone by now.
    }
  }
  return out;
}
