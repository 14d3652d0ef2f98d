// Byte sources and sinks for the streaming rows: a counted stream of zeros, a Unix-socket writer that
// honours back-pressure, and (from _v2.ts) a Unix-socket sink that counts what arrives.
export { byteSink } from "./_v2.ts";

const CHUNK = 64 * 1024;
const ZEROS = new Uint8Array(CHUNK);

/** `total` bytes of zeros in 64 KiB chunks (the same buffer each time: nothing reads or keeps them). */
export function zeros(total: number): ReadableStream<Uint8Array> {
  let left = total;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (left <= 0) return c.close();
      const n = Math.min(CHUNK, left);
      left -= n;
      c.enqueue(n === CHUNK ? ZEROS : ZEROS.subarray(0, n));
    },
  });
}

/**
 * Connects to `path`, writes `total` zero bytes as fast as the socket takes them, then half-closes. The
 * socket file of a one-connection listener (socat UNIX-LISTEN) exists from its bind(), a moment before its
 * listen(): a refused connect is tried again for up to 2 s (the wait cannot probe: the probe would be its
 * one connection).
 */
export async function pushZeros(path: string, total: number): Promise<void> {
  const deadline = performance.now() + 2000;
  for (;;) {
    try {
      return await pushZerosOnce(path, total);
    } catch (e) {
      if (performance.now() > deadline || !/connect/i.test(String((e as Error).message))) throw e;
      await Bun.sleep(2);
    }
  }
}

function pushZerosOnce(path: string, total: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let left = total;
    let pending: Uint8Array | undefined;
    const pump = (s: import("bun").Socket<undefined>) => {
      for (;;) {
        const buf = pending ?? ZEROS.subarray(0, Math.min(CHUNK, left));
        if (buf.byteLength === 0) {
          s.shutdown();
          return resolve();
        }
        const n = s.write(buf);
        if (!pending) left -= buf.byteLength;
        pending = n < buf.byteLength ? buf.subarray(Math.max(0, n)) : undefined;
        if (pending) return;
      }
    };
    Bun.connect({ unix: path, socket: { open: pump, drain: pump, data() {}, error: (_s, e) => reject(e) } }).catch(reject);
  });
}

/** Counts the bytes of a stream. */
export async function count(s: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const c of s) n += c.byteLength;
  return n;
}
