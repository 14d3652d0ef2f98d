// One TCP stream for a TCP_OPEN (PROTOCOL.md §13): the agent connects to the target the host named and
// carries bytes both ways within their windows. Guest → host: the socket is read only while the host has
// given credit (a paused socket is how a slow host slows the guest's server down). Host → guest: credit
// goes back only once the bytes are in the socket. So each direction holds at most one window here.
import type { Socket } from "bun";
import { DEFAULT_WINDOW, ProtocolError, T, encodeFrame, encodeJson, encodeWindow, typeName, type Frame } from "../../protocol/v2/frame.ts";
import { Credit, creditBack } from "../../protocol/v2/credit.ts";
import type { TcpClosed, TcpOpen } from "../../protocol/v2/tcp.ts";
import { sendWithin, type Send } from "../../protocol/v2/credit.ts";

interface State {
  op: TcpOp;
}

const handlers = {
  open(s: Socket<State>) {
    s.data.op.socket = s;
  },
  data(s: Socket<State>, chunk: Uint8Array) {
    s.data.op.onSocketData(chunk);
  },
  drain(s: Socket<State>) {
    s.data.op.flushWrites();
  },
  end(s: Socket<State>) {
    s.data.op.onSocketEnd();
  },
  close(s: Socket<State>, err?: Error) {
    s.data.op.onSocketClosed(err);
  },
  error(s: Socket<State>, err: Error) {
    s.data.op.onSocketClosed(err);
  },
};

function errnoOf(e: unknown): { errno: string; message: string } {
  const err = e as { code?: unknown; message?: unknown };
  const errno = typeof err.code === "string" && /^E[A-Z0-9]+$/.test(err.code) ? err.code : "EIO";
  return { errno, message: typeof err.message === "string" ? err.message : String(e) };
}

export class TcpOp {
  socket: Socket<State> | undefined;
  /** Guest → host: what the host still accepts. */
  private readonly out = new Credit(DEFAULT_WINDOW, DEFAULT_WINDOW);
  /** Host → guest: what the host may still send. */
  private inCredit = DEFAULT_WINDOW;
  /** Host data not yet in the socket, with each frame's size to give back once it is. */
  private pending: { data: Uint8Array; size: number }[] = [];
  private hostEof = false;
  private eofSent = false;
  private shutDown = false;
  private socketGone = false;
  /** Frames to the host, in order: data, then TCP_EOF, then TCP_CLOSED. */
  private chain: Promise<unknown> = Promise.resolve();
  private done = false;
  private aborted = false;

  constructor(
    readonly id: number,
    private readonly req: TcpOpen,
    private readonly send: Send,
    private readonly finished: () => void,
  ) {
    void this.connect();
  }

  private async connect(): Promise<void> {
    let socket: Socket<State>;
    try {
      socket = await Bun.connect<State>({ hostname: this.req.host, port: this.req.port, allowHalfOpen: true, data: { op: this }, socket: handlers });
    } catch (e) {
      const { errno, message } = errnoOf(e);
      const target = this.req.host.includes(":") ? `[${this.req.host}]:${this.req.port}` : `${this.req.host}:${this.req.port}`;
      return this.finish({ ok: false, errno, message: `connect ${target}: ${errno === "EIO" ? message : errno}` });
    }
    this.socket = socket;
    if (this.aborted || this.done) return void socket.terminate();
    void this.send(encodeJson(T.TCP_OPENED, this.id, { address: socket.remoteAddress, port: this.req.port })).catch(() => {});
    this.flushWrites();
  }

  // --- the guest side: the socket ---

  onSocketData(chunk: Uint8Array): void {
    // One chunk at a time: no more is read until it is sent and there is credit for more.
    this.socket?.pause();
    this.chain = this.chain.then(async () => {
      // Rejected once the window is closed: the stream or the connection is over.
      if (!(await sendWithin(this.out, this.send, T.TCP_DATA, this.id, chunk).then(() => true, () => false))) return;
      void this.out.ready().then((ok) => ok && !this.socketGone && this.socket?.resume());
    });
  }

  onSocketEnd(): void {
    if (this.eofSent) return;
    this.eofSent = true;
    this.chain = this.chain.then(() => this.send(encodeFrame(T.TCP_EOF, this.id)).catch(() => {}));
  }

  onSocketClosed(err?: Error): void {
    if (this.socketGone) return;
    this.socketGone = true;
    // Host data that can no longer be written is dropped, as a closed socket would; its credit comes back.
    this.giveBack(this.pending.splice(0).reduce((n, p) => n + p.size, 0));
    // After our own shutdown Bun reports the peer's FIN as the close alone: a clean end is an EOF too.
    if (!err) this.onSocketEnd();
    this.finish(err ? { ok: false, ...errnoOf(err) } : { ok: true });
  }

  /** Writes what the socket takes now; the rest waits for its drain. Credit goes back per whole frame. */
  flushWrites(): void {
    const s = this.socket;
    if (!s || this.socketGone) return;
    while (this.pending.length > 0) {
      const head = this.pending[0]!;
      const n = s.write(head.data);
      if (n < head.data.byteLength) {
        head.data = head.data.subarray(Math.max(n, 0));
        return;
      }
      this.pending.shift();
      this.giveBack(head.size);
    }
    if (this.hostEof && !this.shutDown) {
      this.shutDown = true;
      // shutdown() without an argument is SHUT_WR here; reading goes on (allowHalfOpen).
      s.shutdown();
    }
  }

  private giveBack(n: number): void {
    if (n === 0) return;
    this.inCredit += n;
    if (!this.done) void this.send(encodeWindow(this.id, n)).catch(() => {});
  }

  // --- the host side: frames ---

  onFrame(f: Frame): void {
    if (f.type === T.TCP_DATA) {
      const n = f.payload.byteLength;
      if (n > this.inCredit) throw new ProtocolError(`TCP_DATA: ${n} bytes exceed the ${this.inCredit} bytes of credit`, "EFLOW");
      if (this.hostEof) throw new ProtocolError(`TCP_DATA on stream ${this.id} after its TCP_EOF`);
      this.inCredit -= n;
      if (this.socketGone) return this.giveBack(n);
      this.pending.push({ data: f.payload, size: n });
      this.flushWrites();
    } else if (f.type === T.TCP_EOF) {
      this.hostEof = true;
      this.flushWrites();
    } else if (f.type === T.TCP_RESET) {
      // Marked gone and finished first: terminate() reports the close at once, and that is no clean end.
      this.socketGone = true;
      this.pending = [];
      this.finish({ ok: false, errno: "ECONNRESET", message: "reset by the host" });
      this.socket?.terminate();
    } else throw new ProtocolError(`unexpected ${typeName(f.type)} frame for a TCP stream`);
  }

  onWindow(n: number): void {
    creditBack(this.out, n, `TCP stream ${this.id}`);
  }

  /** TCP_CLOSED once everything before it has gone out; the id is free after it. */
  private finish(result: TcpClosed): void {
    if (this.done) return;
    this.done = true;
    if (!result.ok) this.out.fail(new Error("stream over"));
    this.chain = this.chain.then(async () => {
      this.out.fail(new Error("stream over"));
      if (!this.aborted) await this.send(encodeJson(T.TCP_CLOSED, this.id, result)).catch(() => {});
      this.finished();
    });
  }

  /** The connection is gone: drop the socket, send nothing more. */
  abort(): void {
    this.aborted = true;
    this.out.fail(new Error("connection closed"));
    this.socketGone = true;
    this.socket?.terminate();
    this.finish({ ok: false, errno: "ECONNRESET", message: "connection closed" });
  }
}
