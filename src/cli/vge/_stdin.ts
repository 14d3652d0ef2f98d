// Local stdin as a pull stream: a chunk is read only when the consumer asks for one (under the remote
// process's credit), and the end is a read that returns nothing, so it cannot be missed. Bun's
// process.stdin, driven by pause()/resume() and `data`/`end` events, lost the end of a pipe about one run
// in ten: the remote `wc -c` never saw STDIN_EOF and vge hung.
import { fstatSync, read } from "node:fs";
import { isatty } from "node:tty";
import { UsageError } from "../../common/argv.ts";
import { pullStream } from "./_pump.ts";

/** One read(2) at most this big: a pipe holds 64 KiB, and the agent's window is a few of these. */
const CHUNK = 64 * 1024;
/** Sleep on EAGAIN: only when someone else left fd 0 non-blocking (a shared terminal or pipe). */
const AGAIN_MS = 10;

/** True when fd 0 is a terminal. Asked of the fd, so that nothing starts reading it. */
export const stdinIsTTY = (): boolean => isatty(0);

/**
 * Refuses a directory on stdin (`vge run ADDR -- tar x < src/`) before anything runs in the guest: Node
 * would read it as empty and Bun fail at the first read, after the command had started.
 */
export function checkStdin(): void {
  let dir = false;
  try {
    dir = fstatSync(0).isDirectory();
  } catch {
    // No fd 0 at all: the first read says so.
  }
  if (dir) throw new UsageError("stdin is a directory; give a file or a pipe, or --no-stdin");
}

const readFd = (fd: number, buf: Uint8Array) =>
  new Promise<number>((resolve, reject) => read(fd, buf, 0, buf.byteLength, null, (err, n) => (err ? reject(err) : resolve(n))));

/**
 * Under Bun: read(2) on fd 0 in a loop, a fresh buffer each time (the chunk is still in flight to the guest
 * when the next read starts). A read pending at process.exit() does not hold Bun up.
 */
function fdStream(fd: number): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        for (;;) {
          const buf = new Uint8Array(CHUNK);
          let n: number;
          try {
            n = await readFd(fd, buf);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
            await new Promise((r) => setTimeout(r, AGAIN_MS));
            continue;
          }
          if (n === 0) return controller.close();
          return controller.enqueue(buf.subarray(0, n));
        }
      },
    },
    { highWaterMark: 0 },
  );
}

/** fd 0 as a stream of chunks, each read on demand; cancel() stops reading (a pending read is left to finish). */
export function stdinStream(): ReadableStream<Uint8Array> {
  // Under Node: Node's own process.stdin (epoll for pipes and terminals, nothing blocks a thread). An
  // fs.read on fd 0 would not do there: Node's process.exit() joins its thread pool, and so waits for a
  // read that a silent writer never lets return.
  return process.versions.bun ? fdStream(0) : pullStream(process.stdin);
}
