// A connected stream socket driven by Bun's event loop: reads arrive in a ByteReader, writes respect
// back-pressure. Works for any fd the FFI layer made (AF_VSOCK or AF_UNIX) and for Bun's own sockets.
import type { Socket } from "bun";
import { SHUT_WR, shutdown } from "../sys/socket.ts";
import { ByteReader } from "./reader.ts";
import type { Conn } from "./stream.ts";

export type { Conn };

interface State {
  conn: SocketConn;
}

class SocketConn implements Conn {
  readonly reader: ByteReader;
  socket!: Socket<State>;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private drainWaiters: (() => void)[] = [];
  private lowWaiters: { bytes: number; resolve: () => void }[] = [];
  private resolveClosed!: () => void;
  readonly closed = new Promise<void>((r) => (this.resolveClosed = r));
  private isClosed = false;
  private ending = false;
  private halfClosed = false;

  /** `fd`: the descriptor when the FFI layer made it, so that end() can half-close it itself. */
  constructor(
    highWater?: number,
    private readonly fd?: number,
  ) {
    this.reader = new ByteReader({ pause: () => this.socket.pause(), resume: () => this.socket.resume() }, highWater);
  }

  attach(socket: Socket<State>): void {
    this.socket = socket;
  }

  write(data: Uint8Array): Promise<void> {
    if (this.isClosed) return Promise.reject(new Error("write: connection closed"));
    if (this.queue.length === 0) {
      const n = this.socket.write(data);
      if (n === data.byteLength) return Promise.resolve();
      data = data.subarray(Math.max(n, 0));
    }
    this.queue.push(data);
    this.queued += data.byteLength;
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  get unsent(): number {
    return this.queued;
  }

  drained(highWater = 0): Promise<void> {
    if (this.isClosed || this.queued <= highWater) return Promise.resolve();
    return new Promise((resolve) => this.lowWaiters.push({ bytes: highWater, resolve }));
  }

  private wakeLow(): void {
    if (this.lowWaiters.length === 0) return;
    const still: typeof this.lowWaiters = [];
    for (const w of this.lowWaiters) (this.isClosed || this.queued <= w.bytes ? w.resolve() : still.push(w));
    this.lowWaiters = still;
  }

  flush(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = this.socket.write(head);
      if (n < head.byteLength) {
        this.queue[0] = head.subarray(Math.max(n, 0));
        this.queued -= Math.max(n, 0);
        this.wakeLow();
        return;
      }
      this.queue.shift();
      this.queued -= head.byteLength;
    }
    this.wakeLow();
    for (const r of this.drainWaiters.splice(0)) r();
    if (this.ending) this.halfClose();
  }

  /** Half-closes once every queued write is out: the peer reads all of it, then EOF. */
  end(): void {
    if (this.isClosed || this.ending) return;
    this.ending = true;
    if (this.queue.length === 0) this.halfClose();
  }

  private halfClose(): void {
    if (this.isClosed || this.halfClosed) return;
    this.halfClosed = true;
    // Bun's socket.shutdown(true) shuts the READ side (and over an adopted fd the connection closes),
    // so a disposable agent never saw EOF. shutdown(2) with SHUT_WR on our own fd is exactly a FIN.
    if (this.fd !== undefined) {
      try {
        shutdown(this.fd, SHUT_WR);
      } catch {
        // ENOTCONN: the peer is already gone; the close handler reports that.
      }
    } else this.socket.shutdown();
  }

  close(): void {
    if (this.isClosed) return;
    this.socket.end();
    this.onClose();
  }

  onClose(err?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.reader.end(err);
    // Writers waiting for a drain that will never come are released; their data is lost with the peer.
    for (const r of this.drainWaiters.splice(0)) r();
    this.queue = [];
    this.queued = 0;
    this.wakeLow();
    this.resolveClosed();
  }
}

const handlers = {
  data(s: Socket<State>, d: Uint8Array) {
    s.data.conn.reader.push(d);
  },
  drain(s: Socket<State>) {
    s.data.conn.flush();
  },
  end(s: Socket<State>) {
    s.data.conn.reader.end();
  },
  close(s: Socket<State>, err?: Error) {
    s.data.conn.onClose(err);
  },
  error(s: Socket<State>, err: Error) {
    s.data.conn.onClose(err);
  },
};

/** Adopts a connected fd made by the FFI layer; Bun owns and closes it from here on. */
export async function adoptFd(fd: number, highWater?: number): Promise<Conn> {
  const conn = new SocketConn(highWater, fd);
  // allowHalfOpen: a peer's half-close must not close our side (disposable hosts shut down writes first).
  const socket = await Bun.connect<State>({ fd, allowHalfOpen: true, data: { conn }, socket: handlers } as never);
  conn.attach(socket);
  return conn;
}

/** Socket handlers for Bun.listen({ unix }) servers: call `accepted(conn)` for each new connection. */
export function serverHandlers(accepted: (conn: Conn) => void, highWater?: number) {
  return {
    ...handlers,
    open(s: Socket<State>) {
      const conn = new SocketConn(highWater);
      conn.attach(s);
      s.data = { conn };
      accepted(conn);
    },
  };
}
