// A test host in-process: listens on a Unix socket with node:net, independent of src/transport, and lets a
// test write bytes in pieces, half-close or close, and time the agent's end of the connection.
import { createServer, type Server, type Socket } from "node:net";

export interface HostConn {
  /** Resolves once the bytes are handed to the kernel. */
  send(data: Uint8Array | string): Promise<void>;
  /** shutdown(SHUT_WR): the agent sees EOF, we still see what it does. */
  shutdownWrite(): void;
  /** close(): both directions. */
  close(): void;
  /** Resolves with performance.now() when the agent's side closes (EOF or error). */
  readonly eof: Promise<number>;
  /** What the agent wrote to the socket (the legacy agent writes nothing). */
  readonly received: Buffer[];
}

export interface Host {
  readonly path: string;
  /** The first connection. */
  readonly accepted: Promise<HostConn>;
  close(): Promise<void>;
}

function wrap(sock: Socket): HostConn {
  const received: Buffer[] = [];
  let resolveEof!: (t: number) => void;
  const eof = new Promise<number>((r) => (resolveEof = r));
  sock.on("data", (d: Buffer) => received.push(d));
  sock.on("end", () => resolveEof(performance.now()));
  sock.on("close", () => resolveEof(performance.now()));
  // A peer that went away while we write is an outcome the test checks, not a crash of the test runner.
  sock.on("error", () => resolveEof(performance.now()));
  return {
    send: (data) =>
      new Promise((resolve, reject) => {
        sock.write(typeof data === "string" ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength), (err) => (err ? reject(err) : resolve()));
      }),
    shutdownWrite: () => void sock.end(),
    close: () => void sock.destroy(),
    eof,
    received,
  };
}

export async function listenUnix(path: string): Promise<Host> {
  let resolveAccepted!: (c: HostConn) => void;
  const accepted = new Promise<HostConn>((r) => (resolveAccepted = r));
  const server: Server = createServer({ allowHalfOpen: true }, (sock) => resolveAccepted(wrap(sock)));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  return { path, accepted, close: () => new Promise<void>((r) => server.close(() => r())) };
}

export const sleep = (ms: number) => Bun.sleep(ms);
