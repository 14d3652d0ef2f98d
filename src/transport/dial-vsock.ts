// Dialing the host over AF_VSOCK while nobody listens yet: a new attempt every 50 ms, and no attempt given
// up before the guest kernel gives up on it.
//
// vhost-device-vsock 0.3.0 never answers a connect to a port nobody listens on (its RST is a TODO): such an
// attempt ends only at the guest kernel's connect timeout (2 s). Ending it sooner is not safe: giving up an
// attempt that the VMM still holds (SO_VM_SOCKETS_CONNECT_TIMEOUT of 100 ms, say) lets the VMM complete it
// later, toward a host that has just started listening; the guest kernel then answers the late RESPONSE
// with an RST, and a host that writes one command and closes (the original tool's ovm) has lost it. That
// was measured: 1 lost command in 30 in a loaded TCG guest (BENCHMARKS.md). So attempts overlap instead,
// each left to the kernel: when the host starts listening, the next attempt the VMM sees connects. The VMM
// handles requests in order and so does the host's accept queue, so of several attempts that connect the
// oldest is the one the host accepted first: that one is kept, the others closed (a connection nobody
// serves, which the host sees end). Firecracker and QEMU's vhost-vsock reset an attempt nobody takes at
// once: one attempt is then open at a time.
import { SyscallError } from "../sys/_errno.ts";
import { close, poll, POLLERR, POLLHUP, POLLOUT, socketError } from "../sys/socket.ts";
import { connectBegin } from "../sys/vsock.ts";
import type { VsockAddr } from "../sys/sockaddr.ts";

/** The first look at an attempt, after it started; the second is at the next attempt. */
const ANSWER_LOOK_MS = 10;

/** More attempts than the kernel's 2 s timeout lets pile up at the 50 ms cadence (~54); a bound regardless. */
const MAX_OPEN = 64;

export interface VsockDialOptions {
  deadline: number;
  cadenceMs: number;
  isTransient: (e: unknown) => boolean;
  onRetry?: (err: Error, waitMs: number, attempt: number) => void;
  signal?: AbortSignal;
}

/** A connected non-blocking fd; throws the last error once the window (a performance.now() deadline) is spent. */
export async function dialVsockOverlapping(addr: VsockAddr, o: VsockDialOptions): Promise<number> {
  const open: number[] = []; // attempts in flight, oldest first
  let last: Error = new SyscallError("connect", 110 /* ETIMEDOUT */);
  let failures = 0;
  const fail = (err: Error, waitMs: number) => {
    if (!o.isTransient(err)) throw err;
    last = err;
    o.onRetry?.(err, waitMs, ++failures);
  };
  try {
    for (;;) {
      o.signal?.throwIfAborted();
      const startedAt = performance.now();
      // Guests booted together do not dial in lock-step.
      const wait = o.cadenceMs * (0.75 + Math.random() / 2);
      if (open.length < MAX_OPEN) {
        try {
          const { fd, connected } = connectBegin({ kind: "vsock", ...addr });
          open.push(fd);
          if (connected) return keep(open, fd);
        } catch (e) {
          fail(e as Error, wait);
        }
      }
      // A VMM answers within a few ms when it answers at all: a first look soon after the attempt, so that a
      // connection is taken then, not at the next attempt (without it: p50 117 ms in a TCG guest, RST backend).
      for (const at of [ANSWER_LOOK_MS, wait]) {
        await new Promise((r) => setTimeout(r, Math.max(0, startedAt + at - performance.now())));
        const connected = settle(open, (err) => fail(err, wait));
        if (connected !== undefined) return keep(open, connected);
      }
      if (performance.now() >= o.deadline) throw last;
    }
  } catch (e) {
    for (const fd of open) close(fd);
    throw e;
  }
}

/**
 * Looks at every attempt in flight, oldest first: returns the first one connected (the host's), closes and
 * reports (`failed`) the ones refused, reset or timed out, and leaves the rest in flight.
 */
function settle(open: number[], failed: (err: Error) => void): number | undefined {
  if (open.length === 0) return undefined;
  const revents = poll(open.map((fd) => ({ fd, events: POLLOUT })), 0);
  const done: { fd: number; errno: number }[] = [];
  let connected: number | undefined;
  for (let i = 0; i < open.length && connected === undefined; i++) {
    if (!(revents[i]! & (POLLOUT | POLLERR | POLLHUP))) continue;
    const errno = socketError(open[i]!);
    if (errno === 0) connected = open[i]!;
    else done.push({ fd: open[i]!, errno });
  }
  for (const { fd } of done) {
    close(fd);
    open.splice(open.indexOf(fd), 1);
  }
  // Reported once closed: failed() throws for an error that is not transient.
  for (const { errno } of done) failed(new SyscallError("connect", errno));
  return connected;
}

/** Closes every attempt but `fd`: older ones were never answered, newer ones are not the host's. */
function keep(open: number[], fd: number): number {
  for (const other of open) if (other !== fd) close(other);
  open.length = 0;
  return fd;
}
