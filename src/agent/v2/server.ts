// One v2 connection: frames in, operations dispatched by id, frames out. A protocol error ends this
// connection (ERROR frame, then close); the agent itself goes on.
import { FrameDecoder, ProtocolError, T, decodeJson, decodeWindow, encodeFrame, encodeJson, typeName, type Frame } from "../../protocol/v2/frame.ts";
import { PROTOCOL_VERSION, validateExec } from "../../protocol/v2/messages.ts";
import type { Conn } from "../../transport/conn.ts";
import type { Log } from "../log.ts";
import { Execution } from "./exec.ts";
import { welcome } from "./facts.ts";
import { GetOp, PutOp, validateGet, validatePut } from "./files.ts";
import { GetDirOp, PutDirOp } from "./dirs.ts";
import { decodeDirRequest } from "../../protocol/v2/dirs.ts";

type Op = Execution | PutOp | GetOp | PutDirOp | GetDirOp;
const MAX_PING = 64;
/** How long a stopping agent keeps reading after its last frame, for the host to close first. */
const LINGER_MS = 500;

export class V2Session {
  private readonly decoder = new FrameDecoder();
  private readonly ops = new Map<number, Op>();
  private greeted = false;
  private idleWaiters: (() => void)[] = [];
  private endRead!: () => void;
  /** Resolves when the host has closed (or the session is over): nothing more will be read. */
  private readonly readDone = new Promise<void>((r) => (this.endRead = r));
  private readonly send = (f: Uint8Array) => this.conn.write(f);

  constructor(
    private readonly conn: Conn,
    private readonly log: Log,
  ) {}

  /** Serves until the host closes or breaks the protocol. */
  async run(): Promise<void> {
    const reader = this.conn.reader;
    try {
      for (;;) {
        await reader.waitData();
        if (reader.isEnded) break;
        for (const f of this.decoder.push(reader.readAvailable(1 << 20))) this.handle(f);
        this.decoder.finish();
      }
      if (this.decoder.pending > 0) this.log.error(`v2: connection closed inside a frame (${this.decoder.pending} bytes pending)`);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      const code = (e as ProtocolError & { code?: string }).code ?? "EPROTO";
      this.log.error(`v2: ${e.message}; closing this connection`);
      await this.conn.write(encodeJson(T.ERROR, 0, { code, message: e.message })).catch(() => {});
    } finally {
      for (const op of this.ops.values()) op.abort();
      this.ops.clear();
      this.wakeIdle();
      this.endRead();
      this.conn.close();
    }
  }

  private handle(f: Frame): void {
    if (!this.greeted) {
      if (f.type !== T.HELLO) throw new ProtocolError(`expected HELLO, got ${typeName(f.type)}`);
      const versions = decodeJson<{ versions?: unknown }>(f).versions;
      if (!Array.isArray(versions) || !versions.includes(PROTOCOL_VERSION)) throw Object.assign(new ProtocolError(`no common protocol version (host offers ${JSON.stringify(versions)}, agent speaks ${PROTOCOL_VERSION})`), { code: "EVERSION" });
      this.greeted = true;
      void this.send(encodeJson(T.WELCOME, 0, welcome())).catch(() => {});
      return;
    }
    switch (f.type) {
      case T.EXEC: {
        const req = validateExec(decodeJson(f));
        const ex = new Execution(this.newId(f), req, this.send, (r) => {
          this.finished(f.id);
          const what = this.log.verbose ? ` ${JSON.stringify(req.argv ?? req.shell)}` : "";
          this.log.info(`exec ${f.id}${what}: ${r.status === "exited" ? `exited ${r.code}` : r.status === "error" ? `failed to start: ${r.errno}` : `${r.status} ${r.signal}`}`);
        });
        this.ops.set(f.id, ex);
        ex.start();
        return;
      }
      case T.PUT: {
        const req = validatePut(decodeJson(f));
        this.ops.set(this.newId(f), new PutOp(f.id, req, this.send, () => this.finished(f.id)));
        return;
      }
      case T.GET: {
        const req = validateGet(decodeJson(f));
        this.ops.set(this.newId(f), new GetOp(f.id, req, this.send, () => this.finished(f.id)));
        return;
      }
      case T.PUTDIR: {
        const req = decodeDirRequest(f, "PUTDIR");
        this.ops.set(this.newId(f), new PutDirOp(f.id, req, this.send, () => this.finished(f.id)));
        return;
      }
      case T.GETDIR: {
        const req = decodeDirRequest(f, "GETDIR");
        this.ops.set(this.newId(f), new GetDirOp(f.id, req, this.send, () => this.finished(f.id)));
        return;
      }
      case T.DIR_ENTRY:
      case T.DIR_END: {
        const op = this.ops.get(f.id);
        if (op instanceof PutDirOp) op.onFrame(f);
        return;
      }
      case T.PING:
        if (f.payload.byteLength > MAX_PING) throw new ProtocolError(`PING payload of ${f.payload.byteLength} bytes exceeds ${MAX_PING}`);
        void this.send(encodeFrame(T.PONG, f.id, f.payload)).catch(() => {});
        return;
      case T.WINDOW: {
        const n = decodeWindow(f);
        const op = this.ops.get(f.id);
        if (op instanceof Execution || op instanceof GetOp || op instanceof GetDirOp) op.onWindow(n);
        return;
      }
      case T.STDIN:
      case T.STDIN_EOF:
      case T.SIGNAL:
      case T.RESIZE:
        return this.toExecution(f);
      case T.FILE_DATA:
      case T.FILE_END: {
        const op = this.ops.get(f.id);
        if (op instanceof PutDirOp) return op.onFrame(f);
        if (!(op instanceof PutOp)) return;
        if (f.type === T.FILE_DATA) op.onData(f.payload);
        else op.onEnd();
        return;
      }
      default:
        throw new ProtocolError(`unexpected ${typeName(f.type)} frame from the host`);
    }
  }

  private toExecution(f: Frame): void {
    const ex = this.ops.get(f.id);
    // Input racing with the EXIT frame finds no execution: ignored, as the spec says.
    if (!(ex instanceof Execution)) return;
    if (f.type === T.STDIN) ex.onStdin(f.payload);
    else if (f.type === T.STDIN_EOF) ex.onStdinEof();
    else if (f.type === T.SIGNAL) {
      const { signal } = decodeJson<{ signal?: unknown }>(f);
      if (typeof signal !== "string") throw new ProtocolError("SIGNAL: signal must be a name");
      ex.onSignal(signal);
    } else {
      const { cols, rows } = decodeJson<{ cols?: unknown; rows?: unknown }>(f);
      if (typeof cols !== "number" || typeof rows !== "number") throw new ProtocolError("RESIZE: cols and rows must be numbers");
      ex.onResize(cols, rows);
    }
  }

  /**
   * Resolves once no execution or file request is open and every frame sent so far has reached the
   * kernel: what an agent asked to stop (SIGTERM) waits for before it exits.
   */
  async idle(): Promise<void> {
    while (this.ops.size > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    // A zero-length write queues behind whatever is still unsent: it resolves when that is flushed.
    await this.conn.write(new Uint8Array(0)).catch(() => {});
    // Linger: keep reading (the run loop does) until the host closes, or briefly. Exiting with the host's
    // last WINDOW frames unread makes the kernel fail the host's socket (EPIPE/ECONNRESET), and a host
    // then loses the final frames it has not read yet. (No half-close: Bun closes both directions.)
    await Promise.race([this.readDone, Bun.sleep(LINGER_MS)]);
  }

  /** Ends every open execution (its whole process group) and file request at once. */
  abortAll(): void {
    for (const op of this.ops.values()) op.abort();
  }

  private finished(id: number): void {
    this.ops.delete(id);
    if (this.ops.size === 0) this.wakeIdle();
  }

  private wakeIdle(): void {
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private newId(f: Frame): number {
    if (f.id === 0) throw new ProtocolError(`${typeName(f.type)}: id 0 is reserved for the connection`);
    if (this.ops.has(f.id)) throw new ProtocolError(`${typeName(f.type)}: id ${f.id} is still in use`);
    return f.id;
  }
}
