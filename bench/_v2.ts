// A lean v2 host for the benchmark: parses frame headers as bytes stream by, counts output without
// copying it, and returns credit per 64 KiB consumed. Control payloads go through the pure codec.
import type { Socket } from "bun";
import { MAGIC, T, decodeJson, encodeFrame, encodeJson, encodeWindow } from "../src/protocol/v2/frame.ts";

type Exit = { status: string; [k: string]: unknown };
interface Pending {
  stdout: number;
  resolve: (r: { stdout: number; exit: Exit }) => void;
}

const CREDIT_BATCH = 64 * 1024;

export class V2Conn {
  private sock!: Socket<undefined>;
  private head = new Uint8Array(9);
  private headLen = 0;
  /** Current frame: type, id, payload bytes still to come, and the payload when it is a control frame. */
  private type = 0;
  private id = 0;
  private remaining = 0;
  private body: Uint8Array | undefined;
  private bodyOff = 0;
  private owed = new Map<number, number>();
  private execs = new Map<number, Pending>();
  private pongs = new Map<number, () => void>();
  private welcome: ((w: any) => void) | undefined;

  static async connect(path: string): Promise<V2Conn> {
    const c = new V2Conn();
    c.sock = await Bun.connect({ unix: path, socket: { data: (_s, d) => c.onData(d), drain: () => {} } });
    return c;
  }

  private write(b: Uint8Array): void {
    // Control frames are small and the agent reads continuously: a short write here would be a bug.
    if (this.sock.write(b) !== b.byteLength) throw new Error("short write to the agent");
  }

  async hello(): Promise<{ agent: string; window: number }> {
    const w = new Promise<any>((r) => (this.welcome = r));
    this.write(MAGIC);
    this.write(encodeJson(T.HELLO, 0, { versions: [2], client: "bench" }));
    return w;
  }

  exec(id: number, req: object, timeoutMs: number): Promise<{ stdout: number; exit: Exit }> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`exec ${id}: no EXIT after ${timeoutMs} ms`)), timeoutMs);
      this.execs.set(id, { stdout: 0, resolve: (r) => (clearTimeout(t), resolve(r)) });
      this.write(encodeJson(T.EXEC, id, req));
    });
  }

  /** Round trip of one PING in milliseconds. */
  ping(id: number): Promise<number> {
    const t0 = performance.now();
    return new Promise((resolve) => {
      this.pongs.set(id, () => resolve(performance.now() - t0));
      this.write(encodeFrame(T.PING, id, new Uint8Array(8)));
    });
  }

  close(): void {
    this.sock.end();
  }

  private onData(d: Uint8Array): void {
    let off = 0;
    while (off < d.byteLength) {
      if (this.remaining === 0 && this.headLen < 9) {
        const n = Math.min(9 - this.headLen, d.byteLength - off);
        this.head.set(d.subarray(off, off + n), this.headLen);
        this.headLen += n;
        off += n;
        if (this.headLen < 9) return;
        const v = new DataView(this.head.buffer);
        this.remaining = v.getUint32(0, true) - 5;
        this.type = v.getUint8(4);
        this.id = v.getUint32(5, true);
        this.body = this.type === T.STDOUT || this.type === T.STDERR ? undefined : new Uint8Array(this.remaining);
        this.bodyOff = 0;
        if (this.remaining === 0) this.frameDone();
        continue;
      }
      const n = Math.min(this.remaining, d.byteLength - off);
      if (this.body) this.body.set(d.subarray(off, off + n), this.bodyOff);
      else this.output(n);
      this.bodyOff += n;
      this.remaining -= n;
      off += n;
      if (this.remaining === 0) this.frameDone();
    }
  }

  private output(n: number): void {
    const ex = this.execs.get(this.id);
    if (ex) ex.stdout += n;
    const owed = (this.owed.get(this.id) ?? 0) + n;
    if (owed >= CREDIT_BATCH) {
      this.write(encodeWindow(this.id, owed));
      this.owed.set(this.id, 0);
    } else this.owed.set(this.id, owed);
  }

  private frameDone(): void {
    this.headLen = 0;
    const f = { type: this.type, id: this.id, payload: this.body ?? new Uint8Array(0) };
    if (f.type === T.WELCOME) this.welcome?.(decodeJson(f));
    else if (f.type === T.EXIT) {
      const ex = this.execs.get(f.id);
      this.execs.delete(f.id);
      this.owed.delete(f.id);
      ex?.resolve({ stdout: ex.stdout, exit: decodeJson(f) as Exit });
    } else if (f.type === T.PONG) {
      this.pongs.get(f.id)?.();
      this.pongs.delete(f.id);
    } else if (f.type === T.ERROR) throw new Error(`agent: ${JSON.stringify(decodeJson(f))}`);
  }
}

/** Listens on `path`, accepts one connection, counts its bytes until EOF. */
export async function byteSink(path: string): Promise<{ done: Promise<number>; close(): void }> {
  let n = 0;
  let finish!: (n: number) => void;
  const done = new Promise<number>((r) => (finish = r));
  const server = Bun.listen({
    unix: path,
    socket: {
      data: (_s, d) => void (n += d.byteLength),
      end: () => finish(n),
      close: () => finish(n),
    },
  });
  return { done, close: () => server.stop(true) };
}
