// Local bytes ⇄ a remote stream, one chunk in flight each way, for stdin (run, shell, attach, cp -) and for
// the sockets of `vge forward`. Inward, the local side is read only when the last chunk was granted credit,
// and its end is the end of a loop of awaited reads, never an event that has to be caught in time.
import type { Socket } from "node:net";
import type { Readable } from "node:stream";

/**
 * A Node stream (a socket, Node's process.stdin) as a pull stream, through its async iterator: a chunk is
 * taken when asked for, `end` ends it whenever it came, an error or a close without `end` rejects. The
 * end leaves the source open (a socket whose reading side ended may still be written: a half-close);
 * cancel() destroys it.
 */
export function pullStream(src: Readable): ReadableStream<Uint8Array> {
  const it = src.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { value, done } = await it.next();
        if (done) return controller.close();
        controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
      },
      cancel() {
        src.destroy();
      },
    },
    { highWaterMark: 0 },
  );
}

/** The local side could not be read (EISDIR for `vge run < /`, EIO): not the remote end going away. */
export class LocalReadError extends Error {
  override name = "LocalReadError";
  constructor(override readonly cause: unknown) {
    super((cause as Error)?.message ?? String(cause));
  }
}

/**
 * Every chunk of `src` into `dst`, each written (within the remote credit) before the next is read; then
 * closes `dst` (STDIN_EOF, TCP_EOF). Rejects when either side fails (a LocalReadError for `src`); `src` is
 * cancelled then. `stop`
 * cancels `src` (a read under way is left to finish) and ends the pump without closing `dst`.
 */
export async function pumpChunks(src: ReadableStream<Uint8Array>, dst: WritableStreamDefaultWriter<Uint8Array | string>, stop?: AbortSignal): Promise<void> {
  const reader = src.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  stop?.addEventListener("abort", cancel, { once: true });
  try {
    for (;;) {
      const { value, done } = await reader.read().catch((e: unknown) => {
        throw new LocalReadError(e);
      });
      if (stop?.aborted) return;
      if (done) break;
      await dst.write(value);
    }
  } catch (e) {
    cancel();
    throw e;
  } finally {
    stop?.removeEventListener("abort", cancel);
  }
  await dst.close();
}

/**
 * Resolves at the socket's next `drain`, or its `close` (no drain comes after it). Both listeners go at
 * once: a long transfer to a slow reader waits for drain thousands of times on the one socket.
 */
export function drained(sock: Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      sock.off("drain", done);
      sock.off("close", done);
      resolve();
    };
    sock.on("drain", done);
    sock.on("close", done);
  });
}

/** Remote → socket, as fast as the socket takes the bytes; ends the socket's writing side at the end. */
export async function pumpToSocket(src: ReadableStream<Uint8Array>, sock: Socket): Promise<void> {
  const reader = src.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    if (!sock.write(value)) await drained(sock);
    if (sock.destroyed) return;
  }
  sock.end();
}
