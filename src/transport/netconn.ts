// A Conn over a node:net Socket: the same interface as conn.ts, but runs on Node as well as Bun, so the
// host library's Unix-socket transports need nothing Bun-only. Type imports only from conn.ts (it uses Bun).
import { createConnection, type Socket } from "node:net";
import type { Conn } from "./stream.ts";
import { ByteReader } from "./reader.ts";

class NetConn implements Conn {
  readonly reader: ByteReader;
  private resolveClosed!: () => void;
  readonly closed = new Promise<void>((r) => (this.resolveClosed = r));
  private isClosed = false;
  private drainWaiters: (() => void)[] = [];
  private writeWaiters = new Set<() => void>();

  constructor(
    private readonly socket: Socket,
    highWater?: number,
  ) {
    this.reader = new ByteReader({ pause: () => socket.pause(), resume: () => socket.resume() }, highWater);
    socket.on("data", (d: Buffer) => this.reader.push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)));
    socket.on("end", () => this.reader.end());
    socket.on("drain", () => this.releaseWriters());
    socket.on("error", (err) => this.onClose(err));
    socket.on("close", () => this.onClose());
  }

  write(data: Uint8Array): Promise<void> {
    if (this.isClosed || this.socket.destroyed) return Promise.reject(new Error("write: connection closed"));
    // Resolved by node:net's write callback, once these bytes are handed to the kernel (as the Conn contract
    // says), not when its buffer is merely below the high-water mark: until then node:net holds `data`
    // itself, and a caller that reuses its buffer after the promise (a file read into one chunk buffer)
    // would change bytes not yet sent. A write cut off by the close resolves with the close.
    return new Promise((resolve) => {
      this.writeWaiters.add(resolve);
      this.socket.write(data, () => {
        this.writeWaiters.delete(resolve);
        resolve();
      });
    });
  }

  get unsent(): number {
    return this.socket.writableLength;
  }

  drained(highWater = 0): Promise<void> {
    // node:net says "drain" once its buffer is empty, and only after a write found it full (needDrain).
    if (this.isClosed || this.socket.writableLength <= highWater || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  end(): void {
    if (!this.isClosed) this.socket.end();
  }

  close(): void {
    if (this.isClosed) return;
    this.socket.destroy();
    this.onClose();
  }

  private releaseWriters(): void {
    for (const r of this.drainWaiters.splice(0)) r();
  }

  private onClose(err?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.reader.end(err);
    // As in conn.ts: writers waiting for a drain or a write that never comes are released; the peer is gone.
    this.releaseWriters();
    for (const r of this.writeWaiters) r();
    this.writeWaiters.clear();
    this.resolveClosed();
  }
}

/** Wraps a connected socket (half-open allowed: a peer's half-close must not end our side). */
export function netConn(socket: Socket, highWater?: number): Conn {
  return new NetConn(socket, highWater);
}

/** An error from a failed connect, named like the FFI layer's: `connect: ENOENT`, with `code` kept. */
export class ConnectError extends Error {
  override name = "ConnectError";
  constructor(
    readonly code: string,
    detail: string,
  ) {
    super(`connect: ${code}${detail ? ` (${detail})` : ""}`);
  }
}

export interface NetConnectOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  highWater?: number;
}

/** Connects to a Unix socket with node:net. */
export function connectUnixNet(path: string, opts: NetConnectOptions = {}): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path, allowHalfOpen: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const fail = (err: Error) => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onError = (e: NodeJS.ErrnoException) => fail(new ConnectError(e.code ?? "EIO", e.code ? "" : e.message));
    const onAbort = () => fail(new ConnectError("ECANCELED", "aborted"));
    const cleanup = () => {
      if (timer) clearTimeout(timer);
      socket.off("error", onError);
      opts.signal?.removeEventListener("abort", onAbort);
    };
    if (opts.signal?.aborted) return onAbort();
    socket.once("error", onError);
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    if (opts.timeoutMs !== undefined) timer = setTimeout(() => fail(new ConnectError("ETIMEDOUT", `no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    socket.once("connect", () => {
      cleanup();
      resolve(netConn(socket, opts.highWater));
    });
  });
}
