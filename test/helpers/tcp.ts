// Plain TCP servers on 127.0.0.1 for the tests of streams through the agent (guest.connectTcp, vge
// forward): "the guest" is this machine, so its servers are ones the test runs. And the data they move.
import { afterAll } from "bun:test";
import { createServer, type Server, type Socket } from "node:net";

export const MiB = 1024 * 1024;

/** A test file's servers, all closed by its afterAll. Call at module scope. */
export function tcpServers() {
  const all: Server[] = [];
  afterAll(() => {
    for (const s of all) s.close();
  });
  return {
    /** A server that allows half-open connections and ignores their errors; resolves with its port. */
    async listen(onConn: (s: Socket) => void): Promise<number> {
      const srv = createServer({ allowHalfOpen: true }, (s) => {
        s.on("error", () => {});
        onConn(s);
      });
      await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
      all.push(srv);
      return (srv.address() as { port: number }).port;
    },
    /** A server made elsewhere, closed with the others. */
    keep(srv: Server): void {
      all.push(srv);
    },
    /** Closes the newest server: its port now refuses connections. */
    closeLast(): Promise<void> {
      return new Promise((r) => all.pop()!.close(() => r()));
    },
  };
}

/**
 * A connection handler that hashes everything it receives and, at the client's half-close, answers
 * "<bytes> <sha256 hex>" and ends. With `pauseMs` it is a slow reader, paused that long after each chunk.
 */
export function digestAnswer(pauseMs = 0): (s: Socket) => void {
  return (s) => {
    const h = new Bun.CryptoHasher("sha256");
    let n = 0;
    s.on("data", (d) => {
      h.update(d);
      n += d.length;
      if (pauseMs > 0) {
        s.pause();
        setTimeout(() => s.resume(), pauseMs);
      }
    });
    s.on("end", () => s.end(`${n} ${h.digest("hex")}`));
  };
}

/**
 * A connection handler that sends `data` as fast as the client takes it (waiting for `drain`), hashing each
 * chunk into `sent` on its way, then ends. For one connection: `data` may be a generator.
 */
export function sendAll(data: Iterable<Uint8Array>, sent?: Bun.CryptoHasher): (s: Socket) => Promise<void> {
  return async (s) => {
    for (const b of data) {
      sent?.update(b);
      if (!s.write(b)) await new Promise((r) => s.once("drain", r));
    }
    s.end();
  };
}

/** `mib` MiB, each MiB a random block stamped with its index: a reordering or a repeat changes the hash. */
export function* bigData(mib: number, block = crypto.getRandomValues(new Uint8Array(MiB))): Generator<Uint8Array> {
  for (let i = 0; i < mib; i++) {
    const b = block.slice();
    new DataView(b.buffer).setUint32(0, i);
    yield b;
  }
}
