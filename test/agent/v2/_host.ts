// A raw-frame v2 host for tests: node:net (not src/transport, not src/host) plus the pure codec. It keeps
// every frame the agent sent, in order, returns output credit unless a test holds it, and can send any
// bytes at all, malformed ones included.
import { createConnection, createServer, type Socket } from "node:net";
import { MAGIC, T, decodeJson, decodeWindow, encodeFrame, encodeJson, encodeWindow, type Frame } from "../../../src/protocol/v2/frame.ts";
import { FrameDecoder } from "../../../src/protocol/v2/decoder.ts";
import type { ExecRequest, ExitResult, Welcome } from "../../../src/protocol/v2/messages.ts";

export { T };
export type Json = Record<string, any>;

export interface Result {
  started?: { pid: number };
  stdout: string;
  stderr: string;
  exit: ExitResult;
  /** Every frame of this id, in arrival order. */
  frames: Frame[];
}

const OUTPUT = new Set<number>([T.STDOUT, T.STDERR, T.FILE_DATA, T.TCP_DATA]);
const text = new TextDecoder();

export class V2Host {
  /** Every frame received, in order. */
  readonly frames: Frame[] = [];
  /** Ids whose output credit is not returned until release(). */
  readonly held = new Set<number>();
  private owed = new Map<number, number>();
  private spent = new Map<number, number>();
  private returned = new Map<number, number>();
  private readonly decoder = new FrameDecoder();
  private waiters: (() => void)[] = [];
  private ended = false;
  decodeError: Error | undefined;
  readonly closed: Promise<void>;
  welcome: Welcome | undefined;

  constructor(private readonly sock: Socket) {
    this.closed = new Promise((resolve) => {
      const done = () => {
        this.ended = true;
        this.wake();
        resolve();
      };
      sock.on("close", done);
      sock.on("end", done);
      sock.on("error", done);
    });
    sock.on("data", (d: Buffer) => {
      try {
        for (const f of this.decoder.push(new Uint8Array(d))) this.onFrame(f);
      } catch (e) {
        this.decodeError = e as Error;
        sock.destroy();
      }
      this.wake();
    });
  }

  /** Dials an agent that listens on `path`. */
  static connect(path: string): Promise<V2Host> {
    return new Promise((resolve, reject) => {
      const sock = createConnection({ path, allowHalfOpen: true }, () => resolve(new V2Host(sock)));
      sock.once("error", reject);
    });
  }

  /** Listens on `path` for an agent that dials it; `accepted` resolves with the first connection. */
  static async listen(path: string): Promise<{ accepted: Promise<V2Host>; close: () => void }> {
    let accept!: (h: V2Host) => void;
    const accepted = new Promise<V2Host>((r) => (accept = r));
    const server = createServer({ allowHalfOpen: true }, (sock) => accept(new V2Host(sock)));
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(path, () => resolve()));
    return { accepted, close: () => server.close() };
  }

  /**
   * Listens on `path` for an agent that dials again and again (--reconnect): `next()` resolves with each
   * connection in turn, or rejects after 15 s. `close()` stops listening and closes every connection.
   */
  static async listenMany(path: string): Promise<{ next(): Promise<V2Host>; close(): void }> {
    const queue: V2Host[] = [];
    const waiting: ((h: V2Host) => void)[] = [];
    const all: V2Host[] = [];
    const server = createServer({ allowHalfOpen: true }, (sock) => {
      const h = new V2Host(sock);
      all.push(h);
      const w = waiting.shift();
      if (w) w(h);
      else queue.push(h);
    });
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(path, () => resolve()));
    return {
      next: () => {
        const h = queue.shift();
        return h ? Promise.resolve(h) : Promise.race([new Promise<V2Host>((r) => waiting.push(r)), Bun.sleep(15_000).then(() => Promise.reject(new Error("agent did not dial")))]);
      },
      close: () => {
        server.close();
        for (const h of all) h.close();
      },
    };
  }

  private onFrame(f: Frame): void {
    this.frames.push(f);
    if (f.type === T.WINDOW) this.returned.set(f.id, (this.returned.get(f.id) ?? 0) + decodeWindow(f));
    if (OUTPUT.has(f.type) && f.payload.byteLength > 0) {
      if (this.held.has(f.id)) this.owed.set(f.id, (this.owed.get(f.id) ?? 0) + f.payload.byteLength);
      else void this.write(encodeWindow(f.id, f.payload.byteLength)).catch(() => {});
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once the socket has taken the bytes (maybe only into its buffer); rejects if the agent has gone. */
  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.sock.destroyed) return reject(new Error("socket closed"));
      this.sock.write(bytes, (err) => (err ? reject(err) : resolve()));
    });
  }

  send(type: number, id: number, payload?: Uint8Array): Promise<void> {
    return this.write(encodeFrame(type, id, payload));
  }

  sendJson(type: number, id: number, body: unknown): Promise<void> {
    return this.write(encodeJson(type, id, body));
  }

  /** Magic and HELLO, then waits for WELCOME. */
  async hello(): Promise<Welcome> {
    await this.write(MAGIC);
    await this.sendJson(T.HELLO, 0, { versions: [2], client: "test/agent/v2" });
    const f = await this.until((f) => f.type === T.WELCOME);
    this.welcome = decodeJson(f) as unknown as Welcome;
    return this.welcome;
  }

  /** The first frame (already received or still to come) that satisfies `pred`. */
  async until(pred: (f: Frame) => boolean, timeoutMs = 10_000, what = "a frame"): Promise<Frame> {
    let seen = 0;
    let found: Frame | undefined;
    await this.waitFor(() => {
      for (; seen < this.frames.length && !found; seen++) if (pred(this.frames[seen]!)) found = this.frames[seen]!;
      return found !== undefined;
    }, timeoutMs, what);
    return found!;
  }

  /** Re-checks `cond` whenever frames arrive, until it holds; throws on timeout or when the agent closes. */
  async waitFor(cond: () => boolean, timeoutMs = 10_000, what = "a condition"): Promise<void> {
    const end = performance.now() + timeoutMs;
    while (!cond()) {
      if (this.ended) throw new Error(`connection closed while waiting for ${what}${this.decodeError ? ` (${this.decodeError.message})` : ""}`);
      const left = end - performance.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
  }

  of(id: number): Frame[] {
    return this.frames.filter((f) => f.id === id);
  }

  /** Output bytes received for `id` so far (STDOUT + STDERR + FILE_DATA). */
  outputBytes(id: number): number {
    return this.of(id).reduce((n, f) => n + (OUTPUT.has(f.type) ? f.payload.byteLength : 0), 0);
  }

  /** Gives back the credit held for `id` and stops holding it. */
  /** WINDOW of `n` for `id` now, out of what it is owed (a host may give back only what it received). */
  async grant(id: number, n: number): Promise<void> {
    this.owed.set(id, (this.owed.get(id) ?? 0) - n);
    await this.write(encodeWindow(id, n));
  }

  async release(id: number): Promise<void> {
    this.held.delete(id);
    const n = this.owed.get(id) ?? 0;
    this.owed.delete(id);
    if (n > 0) await this.write(encodeWindow(id, n));
  }

  async exit(id: number, timeoutMs = 10_000): Promise<Result> {
    await this.until((f) => f.id === id && f.type === T.EXIT, timeoutMs, `EXIT of ${id}`);
    return this.result(id);
  }

  result(id: number): Result {
    const frames = this.of(id);
    const pick = (t: number) => Buffer.concat(frames.filter((f) => f.type === t).map((f) => f.payload));
    const started = frames.find((f) => f.type === T.STARTED);
    const exit = frames.find((f) => f.type === T.EXIT);
    return {
      started: started ? (decodeJson(started) as { pid: number }) : undefined,
      stdout: text.decode(pick(T.STDOUT)),
      stderr: text.decode(pick(T.STDERR)),
      exit: exit ? (decodeJson(exit) as unknown as ExitResult) : (undefined as never),
      frames,
    };
  }

  /** EXEC, optional stdin (sent within the initial window) and STDIN_EOF, then the whole result. */
  async run(id: number, req: ExecRequest, opts: { stdin?: Uint8Array | string; eof?: boolean; timeoutMs?: number } = {}): Promise<Result> {
    await this.sendJson(T.EXEC, id, req);
    if (opts.stdin !== undefined) await this.stdin(id, typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin);
    if (opts.eof) await this.send(T.STDIN_EOF, id);
    return this.exit(id, opts.timeoutMs);
  }

  /** Sends `data` as STDIN frames, never beyond the credit the agent has given for `id`. */
  async stdin(id: number, data: Uint8Array): Promise<void> {
    for (let off = 0; off < data.byteLength; ) {
      await this.waitFor(() => this.inputCredit(id) > 0, 10_000, `stdin credit for ${id}`);
      const n = Math.min(this.inputCredit(id), 65536, data.byteLength - off);
      this.spend(id, n);
      await this.send(T.STDIN, id, data.subarray(off, off + n));
      off += n;
    }
  }

  /** Input credit for `id` (STDIN, or a PUT's FILE_DATA): the window, plus what the agent returned, minus what we sent. */
  inputCredit(id: number): number {
    return (this.welcome?.window ?? 262144) + (this.returned.get(id) ?? 0) - (this.spent.get(id) ?? 0);
  }

  /** Counts `n` bytes sent as STDIN or FILE_DATA for `id` against its credit. */
  spend(id: number, n: number): void {
    this.spent.set(id, (this.spent.get(id) ?? 0) + n);
  }

  /** Waits for the agent to close the connection; true if it did within `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), Bun.sleep(ms).then(() => false)]);
  }

  close(): void {
    this.sock.destroy();
  }
}

export const json = (f: Frame) => decodeJson(f) as Json;
