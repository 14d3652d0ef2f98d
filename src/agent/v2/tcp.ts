// One TCP stream for a TCP_OPEN (PROTOCOL.md §13): the agent connects to the target the host named and
// carries bytes both ways within their windows. Guest → host: the socket is read only while the host has
// given credit (a paused socket is how a slow host slows the guest's server down). Host → guest: credit
// goes back only once the bytes are in the socket. So each direction holds at most one window here.
//
// node:net, not Bun.connect: a connect under way must be cancellable. Bun.connect offers no socket until
// it has connected, so a stream reset during a connect that hangs (a full backlog, a dropped SYN) left its
// socket connecting for the kernel's SYN retries (~127 s) after its slot was given back; net's destroy()
// closes the fd at once. The slot (`finished`) comes back only after the socket's close.
import { createRequire } from "node:module";
import type { Socket } from "node:net";
import { DEFAULT_WINDOW, ProtocolError, T, encodeFrame, encodeJson, encodeWindow, typeName, type Frame } from "../../protocol/v2/frame.ts";
import { Credit, creditBack } from "../../protocol/v2/credit.ts";
import { ReceiveWindow } from "../../protocol/v2/receive-window.ts";
import type { TcpClosed, TcpOpen } from "../../protocol/v2/tcp.ts";
import { sendWithin, type Send } from "../../protocol/v2/credit.ts";

function errnoOf(e: unknown): { errno: string; message: string } {
  const err = e as { code?: unknown; message?: unknown };
  const errno = typeof err.code === "string" && /^E[A-Z0-9]+$/.test(err.code) ? err.code : "EIO";
  return { errno, message: typeof err.message === "string" ? err.message : String(e) };
}

/** One host TCP_DATA frame on its way into the socket; its credit goes back once written, or once dropped. */
interface Write {
  size: number;
  settled: boolean;
}

/**
 * node:net, loaded at the first TCP stream: evaluating it at start-up cost a compiled agent ~2 ms and
 * ~5 MiB of RSS (bench/README.md), for a feature most connections never use.
 */
let nodeNet: typeof import("node:net") | undefined;
const net = () => (nodeNet ??= createRequire(import.meta.url)("node:net") as typeof import("node:net"));

export class TcpOp {
  private readonly socket: Socket;
  private connected = false;
  /** Guest → host: what the host still accepts. */
  private readonly out = new Credit(DEFAULT_WINDOW, DEFAULT_WINDOW);
  /** Host → guest: what the host may still send. */
  /** The host's TCP_DATA, counted by the one receiver rule (receive-window.ts); credit goes back per write. */
  private readonly received: ReceiveWindow;
  /** Host data handed to the socket and not yet written into it. */
  private readonly writes = new Set<Write>();
  private hostEof = false;
  private eofSent = false;
  private socketGone = false;
  /** Why the stream ends, once decided (a reset, a socket error, the connection gone); first one wins. */
  private ending: TcpClosed | undefined;
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
    this.received = new ReceiveWindow(DEFAULT_WINDOW, `TCP stream ${id}`);
    this.socket = net().connect({ host: req.host, port: req.port, allowHalfOpen: true });
    this.socket.on("connect", () => this.onConnected());
    this.socket.on("data", (chunk: Uint8Array) => this.onSocketData(chunk));
    this.socket.on("end", () => this.onSocketEnd());
    this.socket.on("error", (err) => this.onSocketError(err));
    this.socket.on("close", () => this.onSocketClosed());
  }

  private onConnected(): void {
    this.connected = true;
    if (this.aborted || this.socketGone) return;
    void this.send(encodeJson(T.TCP_OPENED, this.id, { address: this.socket.remoteAddress, port: this.req.port })).catch(() => {});
  }

  // --- the guest side: the socket ---

  private onSocketData(chunk: Uint8Array): void {
    // One chunk at a time: no more is read until it is sent and there is credit for more.
    this.socket.pause();
    this.chain = this.chain.then(async () => {
      // Rejected once the window is closed: the stream or the connection is over.
      if (!(await sendWithin(this.out, this.send, T.TCP_DATA, this.id, chunk).then(() => true, () => false))) return;
      void this.out.ready().then((ok) => ok && !this.socketGone && this.socket.resume());
    });
  }

  private onSocketEnd(): void {
    if (this.eofSent) return;
    this.eofSent = true;
    this.chain = this.chain.then(() => this.send(encodeFrame(T.TCP_EOF, this.id)).catch(() => {}));
  }

  private onSocketError(err: Error): void {
    if (this.connected) return void (this.ending ??= { ok: false, ...errnoOf(err) });
    const { errno, message } = errnoOf(err);
    const target = this.req.host.includes(":") ? `[${this.req.host}]:${this.req.port}` : `${this.req.host}:${this.req.port}`;
    this.ending ??= { ok: false, errno, message: `connect ${target}: ${errno === "EIO" ? message : errno}` };
  }

  /** The fd is closed: whatever ended the stream, only now is it over (and its slot free). */
  private onSocketClosed(): void {
    this.socketGone = true;
    // Host data that can no longer be written is dropped, as a closed socket would; its credit comes back.
    for (const w of this.writes) this.settle(w);
    // A clean close both ways: the peer's FIN is an EOF too, if the socket did not report it.
    if (!this.ending && this.connected) this.onSocketEnd();
    this.finish(this.ending ?? (this.connected ? { ok: true } : { ok: false, errno: "EIO", message: "connect: closed" }));
  }

  private settle(w: Write): void {
    if (w.settled) return;
    w.settled = true;
    this.writes.delete(w);
    this.giveBack(w.size);
  }

  private giveBack(n: number): void {
    if (n === 0) return;
    const back = this.received.consume(n);
    if (back > 0 && !this.done && !this.ending) void this.send(encodeWindow(this.id, back)).catch(() => {});
  }

  // --- the host side: frames ---

  onFrame(f: Frame): void {
    if (f.type === T.TCP_DATA) {
      const n = f.payload.byteLength;
      if (this.hostEof) throw new ProtocolError(`TCP_DATA on stream ${this.id} after its TCP_EOF`);
      this.received.receive(f.type, n);
      if (this.socketGone || this.ending) return this.giveBack(n);
      // Before the connect completes net keeps it; within the host's credit either way.
      const w: Write = { size: n, settled: false };
      this.writes.add(w);
      this.socket.write(f.payload, () => this.settle(w));
    } else if (f.type === T.TCP_EOF) {
      this.hostEof = true;
      // end() is SHUT_WR after the writes queued before it; reading goes on (allowHalfOpen).
      if (!this.socketGone && !this.ending) this.socket.end();
    } else if (f.type === T.TCP_RESET) {
      this.close({ ok: false, errno: "ECONNRESET", message: "reset by the host" });
    } else throw new ProtocolError(`unexpected ${typeName(f.type)} frame for a TCP stream`);
  }

  onWindow(n: number): void {
    creditBack(this.out, n, `TCP stream ${this.id}`);
  }

  /** Closes the socket at once, connected or still connecting; TCP_CLOSED follows its close. */
  private close(result: TcpClosed): void {
    this.ending ??= result;
    this.out.fail(new Error("stream over"));
    // Connected: a reset (RST), as a dropped stream should look to the guest's server (a FIN would read
    // as a clean end). Still connecting: there is nobody to tell; the fd is closed at once either way.
    if (this.connected && !this.socketGone) this.socket.resetAndDestroy();
    else this.socket.destroy();
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
    this.close({ ok: false, errno: "ECONNRESET", message: "connection closed" });
  }
}
