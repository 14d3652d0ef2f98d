// A TCP connection made by the agent inside the guest (PROTOCOL.md §13), as a pair of web streams the way
// Deno.Conn and Cloudflare's connect() give them: `readable` returns credit only as it is read, `writable`
// sends only what the agent granted, so a slow side slows the other down and nothing piles up in memory.
// `writable.close()` is a half-close (TCP_EOF): the guest's server sees EOF and can still answer.
import { ProtocolError, T, decodeJson, encodeFrame, encodeJson, encodeWindow, typeName, type Frame } from "../protocol/v2/frame.ts";
import { Credit, sendWithin } from "../protocol/v2/credit.ts";
import { tcpHostProblem, tcpPortProblem, decodeTcpClosed, decodeTcpOpened, type TcpOpened } from "../protocol/v2/tcp.ts";
import { Inbox } from "./_inbox.ts";
import { ReceiveWindow } from "../protocol/v2/receive-window.ts";
import { windowFrom } from "./_window.ts";
import type { Mux } from "./_mux.ts";
import { GuestError } from "./errors.ts";
import { printable } from "../protocol/printable.ts";

/** A stream the agent could not open, or that ended with an error: `code` is the guest's errno (ECONNREFUSED, EAGAIN over the agent's limit, ...). */
export class TcpError extends Error {
  override name = "TcpError";
  constructor(
    readonly code: string,
    readonly target: string,
    message: string,
  ) {
    super(`${target}: ${message}`);
  }
}

export interface TcpStream {
  /** Bytes from the guest's peer; ends at its half-close. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the guest's peer; close() half-closes, abort() resets the stream. */
  readonly writable: WritableStream<Uint8Array | string>;
  /** The peer the agent connected to, as the agent saw it. */
  readonly remote: TcpOpened;
  /** Resolves when the stream has ended both ways; rejects with a TcpError (reset, ECONNRESET) or a GuestError (connection lost). */
  readonly closed: Promise<void>;
  /** Drops the stream at once, both ways (TCP_RESET). */
  reset(): void;
}

const enc = new TextEncoder();

export function connectTcp(mux: Mux, window: number, capabilities: string[], host: string, port: number): Promise<TcpStream> {
  const target = `${host.includes(":") ? `[${host}]` : host}:${port} in ${mux.name}`;
  const bad = tcpHostProblem(host) ?? tcpPortProblem(port);
  if (bad) return Promise.reject(new TcpError("EINVAL", target, bad));
  if (!capabilities.includes("tcp")) return Promise.reject(new GuestError("ENOTSUP", `${mux.name}: this agent has no TCP streams (capability "tcp"); it is older than this host`));

  const credit = new Credit(window, window);
  let over = false;
  // What the agent may still send us: a hostile agent past it would make us buffer without bound.
  const received = new ReceiveWindow(window, `TCP stream to ${target}`, window / 2);
  const inbox = new Inbox((n) => {
    const back = received.consume(n);
    if (back > 0 && !over && !mux.error) mux.post(encodeWindow(id, back));
  });
  let opened = false;
  let settleOpen!: { ok: (s: TcpStream) => void; fail: (e: Error) => void };
  const open = new Promise<TcpStream>((ok, fail) => (settleOpen = { ok, fail }));
  let settleClosed!: { ok: () => void; fail: (e: Error) => void };
  const closed = new Promise<void>((ok, fail) => (settleClosed = { ok, fail }));
  closed.catch(() => {});

  const end = (err: Error | undefined) => {
    over = true;
    credit.fail(err ?? new TcpError("EPIPE", target, "the stream is closed"));
    if (err) {
      inbox.fail(err);
      settleOpen.fail(err);
      settleClosed.fail(err);
    } else {
      inbox.end();
      settleClosed.ok();
    }
  };

  const writable = new WritableStream<Uint8Array | string>({
    write: async (chunk) => {
      const bytes = typeof chunk === "string" ? enc.encode(chunk) : chunk;
      await sendWithin(credit, (b) => mux.send(b), T.TCP_DATA, id, bytes);
    },
    close: async () => {
      if (!over && !mux.error) await mux.send(encodeFrame(T.TCP_EOF, id));
    },
    abort: () => reset(),
  });
  const reset = () => {
    if (over || mux.error) return;
    mux.post(encodeFrame(T.TCP_RESET, id));
  };

  const frame = (f: Frame) => {
    switch (f.type) {
      case T.TCP_OPENED: {
        if (opened) throw new ProtocolError("TCP_OPENED twice for one stream");
        opened = true;
        return settleOpen.ok({ readable: inbox.stream, writable, remote: decodeTcpOpened(decodeJson(f)), closed, reset });
      }
      case T.TCP_DATA:
        if (!opened) throw new ProtocolError("TCP_DATA before TCP_OPENED");
        received.receive(f.type, f.payload.byteLength);
        return inbox.push(f.payload);
      case T.TCP_EOF:
        if (!opened) throw new ProtocolError("TCP_EOF before TCP_OPENED");
        return inbox.end();
      case T.WINDOW:
        return windowFrom(credit, f, mux.name, `TCP stream ${id}`);
      case T.TCP_CLOSED: {
        const r = decodeTcpClosed(decodeJson(f));
        // A connect that failed is TCP_CLOSED{ok:false}; a clean end of a stream never opened would leave
        // the caller's connectTcp() pending for ever (and vge forward holding the accepted socket).
        if (r.ok && !opened) throw new ProtocolError("TCP_CLOSED ok:true before TCP_OPENED");
        mux.release(id);
        if (r.ok) return end(undefined);
        // The guest's words, escaped: they end up on a terminal (vge prints them) and in logs.
        const [errno, message] = [printable(r.errno, 64), printable(r.message)];
        return end(new TcpError(errno, target, message.endsWith(errno) ? errno : `${errno}: ${message}`));
      }
      default:
        throw new ProtocolError(`unexpected ${typeName(f.type)} frame for a TCP stream`);
    }
  };
  const id = mux.register({ frame, fail: (e) => end(e) });
  mux.post(encodeJson(T.TCP_OPEN, id, { host, port }));
  return open;
}
