// Reading a process's output (a pipe, or a terminal's master) only as far as its consumer allows: read(2)
// takes at most the credit there is, so what the host has not granted stays in the kernel and the writer
// blocks, whatever it is. Bun's own pipe streams read ahead of any consumer while the event loop is busy
// (chunks of 6 to 20 MiB were measured under a host that never reads): that is why pipes come here too.
import { CHUNK, HEADER_SIZE } from "../../protocol/v2/frame.ts";
import { POLLIN, read } from "../../sys/index.ts";
import { fdReady } from "../../sys/fdwatch.ts";

/**
 * Bytes read without the event loop turning, at most. A writer as fast as read(2) (`cat /dev/zero` into a
 * detached job's ring, or a host that keeps up) never leaves the pipe empty, and every await in the loop
 * below is then a resolved promise: without a yield the agent would serve nothing else meanwhile.
 */
const YIELD_EVERY = 1024 * 1024;

/**
 * Where every pump reads into: the JS thread does one read(2) at a time, and what was read is handed on
 * before the next await. Reads that find nothing, or end of file, then cost no allocation (two 64 KiB
 * buffers per execution of `true` were 1.3 GB of garbage over the soak's 10,000 runs).
 */
/**
 * Every buffer a pump reads into: room for a frame header, then up to CHUNK bytes read. A chunk handed on
 * starts right after that room (framable()), so that its receiver can send header and bytes as one frame
 * in one write.
 */
const framed = new WeakSet<ArrayBufferLike>();
/**
 * Whole read buffers given back by their receiver once nothing refers to them any more (recycle()), taken
 * again before a new one is made: a new zeroed 64 KiB buffer per chunk read was 12 % of the agent's CPU
 * while it streamed (bench/profile-stream.ts). Few: a stream in flow hands one back per chunk it takes.
 */
const spares: Uint8Array[] = [];
const SPARES_MAX = 4;
let scratch = newScratch();

function newScratch(): Uint8Array {
  const spare = spares.pop();
  if (spare) return spare;
  const b = new Uint8Array(HEADER_SIZE + CHUNK);
  framed.add(b.buffer);
  return b;
}

/**
 * `frame` (framable() of a pump's chunk) is no longer referenced by anyone: the kernel has its bytes, no
 * queue holds it. Its buffer is read into again. Call it once per chunk, and only when that is certain.
 */
export function recycle(frame: Uint8Array): void {
  const b = frame.buffer;
  if (b.byteLength !== HEADER_SIZE + CHUNK || !framed.has(b) || spares.length >= SPARES_MAX) return;
  if (b === scratch.buffer || spares.some((s) => s.buffer === b)) return;
  spares.push(new Uint8Array(b));
}

/**
 * The frame around `chunk`, if `chunk` came from a pump: `chunk` preceded by HEADER_SIZE bytes of its own
 * buffer that are free to overwrite with the frame's header (encodeHeaderInto). Else undefined.
 */
export function framable(chunk: Uint8Array): Uint8Array | undefined {
  if (chunk.byteOffset !== HEADER_SIZE || !framed.has(chunk.buffer)) return undefined;
  return new Uint8Array(chunk.buffer, 0, HEADER_SIZE + chunk.byteLength);
}

/**
 * The `n` bytes just read, as a buffer of their own (the receiver may keep it: a detached job's ring
 * does). A mostly full scratch is handed over whole and replaced; a small read is copied out, after room
 * for a header as well.
 */
function takeChunk(n: number): Uint8Array {
  if (n < CHUNK / 2) {
    const b = new Uint8Array(HEADER_SIZE + n);
    b.set(scratch.subarray(HEADER_SIZE, HEADER_SIZE + n), HEADER_SIZE);
    framed.add(b.buffer);
    return b.subarray(HEADER_SIZE);
  }
  const chunk = scratch.subarray(HEADER_SIZE, HEADER_SIZE + n);
  scratch = newScratch();
  return chunk;
}

/**
 * How long a pump whose pipe is still empty waits for the process to exit before it asks the poll thread.
 * Most executions are short: once the process has exited its pipe holds the rest and EOF, read at once,
 * and the two thread hand-offs of a poll-thread wait (the request, the answer) are saved.
 */
const EXIT_FIRST_MS = 5;

/** Resolves once `p` settles or after `ms`, whichever is first; the timer does not outlive it. */
export function settledOrAfter(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    const done = () => {
      clearTimeout(t);
      resolve();
    };
    p.then(done, done);
  });
}

/** Where the bytes may go: `ready` resolves false when reading should stop; `available` caps one read. */
export interface Gate {
  ready(): Promise<boolean>;
  readonly available: number;
  /** The receiver copies each chunk before `emit` returns (a detached job's ring): the pump may reuse its buffer. */
  readonly copies?: boolean;
}

/**
 * Reads the non-blocking `fd` and hands each chunk to `emit` (false: stop) until end of file, a read error
 * (a terminal's EIO once nobody holds its slave), or `stop` aborts. Never closes `fd`. `exited`: the
 * writer's exit, if known; the first wait for data is for it (at most EXIT_FIRST_MS) instead of the poll thread.
 */
export async function pumpFd(fd: number, gate: Gate, emit: (chunk: Uint8Array) => Promise<boolean>, stop: AbortSignal, exited?: Promise<unknown>): Promise<void> {
  let sinceYield = 0;
  let exitFirst = exited;
  try {
    for (;;) {
      if (sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
      // Credit at hand needs no wait (the fast path of a stream in full flow); else wait for it, or for stop.
      if (stop.aborted) return;
      if (gate.available === 0 && !(await readyOrStopped(gate, stop))) return;
      if (stop.aborted) return;
      const want = Math.min(gate.available, CHUNK);
      if (want === 0) continue;
      // Always the current scratch: another pump may have handed the one before an await on (takeChunk).
      const into = () => scratch.subarray(HEADER_SIZE, HEADER_SIZE + want);
      let n = read(fd, into());
      while (n === null) {
        sinceYield = 0;
        if (exitFirst) {
          await settledOrAfter(exitFirst, EXIT_FIRST_MS);
          exitFirst = undefined;
          if (stop.aborted) return;
        } else await fdReady(fd, POLLIN, stop);
        n = read(fd, into());
      }
      if (n === 0) return;
      sinceYield += n;
      if (!(await emit(gate.copies ? scratch.subarray(HEADER_SIZE, HEADER_SIZE + n) : takeChunk(n)))) return;
    }
  } catch {
    // Aborted, EIO from a hung-up terminal, or any other read error: this output is over either way, and
    // there is nobody else to tell.
  }
}

/**
 * gate.ready(), or false once `stop` aborts. Its abort listener is removed when ready() settles: racing
 * every wait against one never-settling "stopped" promise would add a reaction to it per read, kept until
 * the pump ends (a detached `yes` grew the agent by 50 MiB in 10 s that way).
 */
function readyOrStopped(gate: Gate, stop: AbortSignal): Promise<boolean> {
  if (stop.aborted) return Promise.resolve(false);
  return new Promise<boolean>((resolve, reject) => {
    const onStop = () => resolve(false);
    stop.addEventListener("abort", onStop, { once: true });
    gate.ready().then(
      (ok) => {
        stop.removeEventListener("abort", onStop);
        resolve(ok);
      },
      (err) => {
        stop.removeEventListener("abort", onStop);
        reject(err);
      },
    );
  });
}
