// One v2 connection, host side: the hello, a read loop that hands each frame to the request that owns
// its id, and one failure path that rejects everything pending with the same clear error.
import type { Conn } from "../transport/stream.ts";
import { MAGIC, ProtocolError, T, decodeJson, encodeJson, typeName, type Frame } from "../protocol/v2/frame.ts";
import { FrameDecoder } from "../protocol/v2/decoder.ts";
import { PROTOCOL_VERSION, message, token, validateWelcome, type Welcome } from "../protocol/v2/messages.ts";
import { GuestError } from "./errors.ts";
import { HostAuth } from "./_auth.ts";

/** Whoever owns an id: an exec, a file request or a ping. */
export interface Handler {
  frame(f: Frame): void;
  fail(err: Error): void;
}

export class Mux {
  private handlers = new Map<number, Handler>();
  private next = 1;
  private failure: Error | undefined;
  private readonly decoder = new FrameDecoder();
  private welcomed!: { resolve: (w: Welcome) => void; reject: (e: Error) => void };
  readonly welcome = new Promise<Welcome>((resolve, reject) => (this.welcomed = { resolve, reject }));
  private closedByUs = false;
  private welcomeSeen = false;

  constructor(
    private readonly conn: Conn,
    /** How the connection is named in errors: "guest unix:/run/g.sock". */
    readonly name: string,
  ) {
    this.welcome.catch(() => {});
    void this.loop();
  }

  /** Set by hello() with a token: the agent must prove itself before `welcome` resolves. */
  private auth: HostAuth | undefined;

  /** Magic and HELLO (with a nonce when authenticating); the full WELCOME arrives on `welcome`. */
  hello(client: string, token?: Uint8Array): void {
    this.auth = token ? new HostAuth(token, this.name) : undefined;
    this.post(MAGIC);
    this.post(encodeJson(T.HELLO, 0, { versions: [PROTOCOL_VERSION], client, ...(this.auth ? { auth: this.auth.helloField } : {}) }));
  }

  /** True once the agent has proved it holds the token (and was sent our proof). */
  get authenticated(): boolean {
    return this.auth !== undefined;
  }

  /** A fresh id, never 0, never one still open. */
  register(h: Handler): number {
    if (this.failure) throw this.failure;
    while (this.next === 0 || this.handlers.has(this.next)) this.next = (this.next + 1) >>> 0;
    const id = this.next;
    this.next = (this.next + 1) >>> 0;
    this.handlers.set(id, h);
    return id;
  }

  /** The request is over; late frames for its id are ignored, as the agent does. */
  release(id: number): void {
    this.handlers.delete(id);
  }

  /** Queues a frame; a connection that has failed makes it a no-op (the failure reached everyone). */
  send(frame: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return this.conn.write(frame).catch((e) => {
      throw this.fail(new GuestError("ECLOSED", `${this.name}: write failed: ${(e as Error).message}`, { cause: e }));
    });
  }

  /** send() for frames nobody waits on (signals, credit): a failure has already reached every request. */
  post(frame: Uint8Array): void {
    this.send(frame).catch(() => {});
  }

  get error(): Error | undefined {
    return this.failure;
  }

  close(): void {
    this.closedByUs = true;
    this.fail(new GuestError("ECLOSED", `${this.name}: connection closed by the host`));
  }

  /** Ends the connection and rejects everything pending with `err` (the first failure wins). */
  fail(err: Error): Error {
    if (this.failure) return this.failure;
    this.failure = err;
    this.conn.close();
    this.welcomed.reject(err);
    const pending = [...this.handlers.values()];
    this.handlers.clear();
    for (const h of pending) h.fail(err);
    return err;
  }

  private async loop(): Promise<void> {
    const r = this.conn.reader;
    try {
      for (;;) {
        await r.waitData();
        if (this.failure) return;
        if (r.available === 0) break;
        while (r.available > 0) {
          // Bun's sockets read into Buffers: payloads handed to callers are plain Uint8Arrays either way.
          const c = r.readChunk();
          for (const f of this.decoder.frames(c.constructor === Uint8Array ? c : new Uint8Array(c.buffer, c.byteOffset, c.byteLength))) {
            this.dispatch(f);
            if (this.failure) return;
          }
        }
      }
      const cut = r.available > 0 || this.decoder.pending > 0 ? ` in the middle of a frame` : "";
      this.fail(new GuestError("ECLOSED", `${this.name}: the agent closed the connection${cut}`));
    } catch (e) {
      // A ProtocolError's own code (EFLOW for a credit overrun) is the GuestError's: the same code whichever
      // receiver noticed it. Only a malformed frame is called one.
      if (e instanceof ProtocolError) this.fail(new GuestError(e.code, `${this.name}: ${e.code === "EPROTO" ? "malformed frame from the agent: " : ""}${e.message}`, { cause: e }));
      else this.fail(e instanceof GuestError ? e : new GuestError("EPROTO", `${this.name}: ${(e as Error).message}`, { cause: e }));
    }
  }

  private dispatch(f: Frame): void {
    if (f.id !== 0) {
      // Frames for an id we do not hold (never opened, or released after its EXIT/RESULT) are dropped,
      // never buffered: a guest cannot make the host keep anything for ids of its choosing.
      this.handlers.get(f.id)?.frame(f);
      return;
    }
    if (f.type === T.WELCOME) {
      if (this.welcomeSeen) throw new ProtocolError("a second WELCOME");
      const body = decodeJson(f);
      if (this.auth) {
        // The agent's proof: checked (EAUTH ends the connection with nothing more sent), then ours.
        const reply = this.auth.onWelcome(body);
        if (reply) return this.post(reply);
      } else if (body.auth !== undefined) throw new GuestError("EAUTH", `${this.name}: the agent requires authentication; give the host its token (tokenFile, vge --token-file)`);
      this.welcomeSeen = true;
      this.welcomed.resolve(validateWelcome(body));
    } else if (f.type === T.ERROR) {
      const e = decodeJson(f);
      // The code becomes GuestError.code and the message part of ours: a name, and escaped, bounded text.
      let code = "EREMOTE";
      try {
        code = token("ERROR", e.code, "code");
      } catch {
        // Not a plain name: keep EREMOTE rather than the guest's text.
      }
      const text = typeof e.message === "string" ? message("ERROR", e.message, "message") : "(no message)";
      this.fail(new GuestError(code, `${this.name}: the agent reported ${code}: ${text}`));
    } else throw new ProtocolError(`unexpected ${typeName(f.type)} frame for id 0`);
  }

  /** True once close() was called by this side (not a failure of the peer). */
  get closedByHost(): boolean {
    return this.closedByUs;
  }
}

