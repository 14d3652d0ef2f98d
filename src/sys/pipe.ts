// pipe2(2): both ends close-on-exec; hand the write end to a child through spawn's stdio.
import { libc } from "./_libc.ts";
import { check } from "./_call.ts";

const O_CLOEXEC = 0o2000000;

export function pipe(): { read: number; write: number } {
  const fds = new Int32Array(2);
  check("pipe2", () => libc().pipe2(fds, O_CLOEXEC));
  return { read: fds[0]!, write: fds[1]! };
}
