// A connected stream socket driven by Bun's event loop: reads arrive in a ByteReader, writes respect
// back-pressure. Works for any fd the FFI layer made (AF_VSOCK or AF_UNIX) and for Bun's own sockets.
import type { Socket } from "bun";
import { SHUT_WR, read, shutdown, write } from "../sys/socket.ts";
import { jointPipe, splice } from "../sys/splice.ts";
import { close as closeFd } from "../sys/socket.ts";
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

  /** The socket's descriptor for writeSpliced: the FFI layer's, or the one Bun reports for its own sockets. */
  private rawFd: number | undefined;

  /** `fd`: the descriptor when the FFI layer made it, so that end() can half-close it itself. */
  constructor(
    highWater?: number,
    private readonly fd?: number,
  ) {
    this.reader = new ByteReader({ pause: () => this.socket.pause(), resume: () => this.socket.resume() }, highWater);
  }

  attach(socket: Socket<State>): void {
    this.socket = socket;
    const fd = this.fd ?? (socket as { fd?: number }).fd;
    this.rawFd = typeof fd === "number" && fd >= 0 ? fd : undefined;
  }

  /**
   * A pipe of this connection's own, empty between calls: header and spliced bytes meet in it, so that they
   * leave in one send (one wake-up of the peer, not one for the header and one for the bytes).
   */
  private joint: { read: number; write: number } | undefined;

  writeSpliced(head: Uint8Array, from: number, n: number): Promise<void> {
    if (this.isClosed) return Promise.reject(new Error("write: connection closed"));
    let headIn = 0;
    let moved = 0;
    let sent = 0;
    // Straight to the kernel only when nothing is queued: then everything written before is already in the
    // socket (Bun's socket.write never keeps what the kernel did not take: it says so, and we queue it), so
    // these bytes follow it. Whatever the kernel does not take now is queued below, in order, before any
    // later write.
    if (this.queue.length === 0 && this.rawFd !== undefined) {
      try {
        this.joint ??= jointPipe();
        headIn = write(this.joint.write, head) ?? 0;
        if (headIn === head.byteLength) moved = splice(from, this.joint.write, n) ?? 0;
        sent = splice(this.joint.read, this.rawFd, headIn + moved) ?? 0;
      } catch {
        // EPIPE, ECONNRESET: the peer is gone (the close handler says so); or splice refused (EINVAL):
        // from now on, only buffers. Whatever the joint holds is read back below.
        this.rawFd = undefined;
      }
    }
    if (sent === head.byteLength + n) return Promise.resolve();
    // The rest, in stream order: what the joint still holds, the header bytes that never reached it, and
    // the bytes still in `from`. The joint is empty again after.
    const rest = new Uint8Array(head.byteLength + n - sent);
    let off = 0;
    const take = (fd: number, count: number): boolean => {
      for (const end = off + count; off < end; ) {
        const got = read(fd, rest.subarray(off, end));
        if (!got) return false;
        off += got;
      }
      return true;
    };
    if (!take(this.joint?.read ?? -1, headIn + moved - sent)) return this.broken(rest.byteLength, off);
    rest.set(head.subarray(headIn), off);
    off += head.byteLength - headIn;
    if (!take(from, n - moved)) return this.broken(rest.byteLength, off);
    return this.write(rest);
  }

  /** A frame's header is out (or promised) without its bytes: nothing after it could be framed right. */
  private broken(want: number, got: number): Promise<void> {
    this.close();
    return Promise.reject(new Error(`writeSpliced: ${got} of the ${want} bytes promised`));
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
    if (this.joint) {
      closeFd(this.joint.read);
      closeFd(this.joint.write);
      this.joint = undefined;
    }
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
