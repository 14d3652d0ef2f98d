// One v2 connection: frames in, operations dispatched by id, frames out. Whatever goes wrong while a frame
// is handled (a protocol error, or anything thrown at all) ends this connection with an ERROR frame and a
// close; the agent itself goes on. The session reads no further while the host is not reading what it
// already sent, so answers (PONG, STARTED, EXIT, WINDOW, RESULT) never pile up in memory.
import { ProtocolError, T, decodeJson, encodeFrame, encodeJson, decodeWindow, typeName, type Frame } from "../../protocol/v2/frame.ts";
import { FrameDecoder } from "../../protocol/v2/decoder.ts";
import { decodeAttach, decodeKill } from "../../protocol/v2/jobs.ts";
import { PROTOCOL_VERSION, decodeExec, decodeGet, decodePut, decodeResize, decodeSignal } from "../../protocol/v2/messages.ts";
import type { Conn } from "../../transport/conn.ts";
import { DEFAULT_LIMITS, OUTBOUND_HIGH_WATER, type Limits } from "../limits.ts";
import type { Log } from "../log.ts";
import { detachedJobs } from "./detached.ts";
import { Execution } from "./exec.ts";
import { AgentHandshake } from "./handshake.ts";
import type { Attachment } from "./job-output.ts";
import { DirectOutput } from "./output.ts";
import { Coalescer } from "./coalesce.ts";
import { GetOp, PutOp } from "./files.ts";
import { GetDirOp, PutDirOp } from "./dirs.ts";
import { decodeDirRequest } from "../../protocol/v2/dirs.ts";
import { Quota, sharedQuotas } from "./quota.ts";
import { decodeTcpOpen } from "../../protocol/v2/tcp.ts";
import { TcpOp } from "./tcp.ts";
import { killLeftovers } from "./groups.ts";
import { LINGER_MS, lingerClose } from "./linger.ts";
import type { ByteReader } from "../../transport/reader.ts";

type Op = Execution | PutOp | GetOp | PutDirOp | GetDirOp | TcpOp;

export interface V2SessionOptions {
  /** Quotas of this connection and of the agent (defaults: DEFAULT_LIMITS). */
  limits?: Limits;
  /** Require the host to prove it holds this token before anything is disclosed or run (PROTOCOL.md §11). */
  token?: Uint8Array;
  /**
   * The hello must be complete by `deadline` (performance.now() time), else ERROR ETIMEDOUT and the
   * connection closes; `ms` is the option's value, for the message. After the hello an idle connection is
   * legitimate (a host may hold one open): nothing else is timed.
   */
  handshakeTimeout?: { deadline: number; ms: number };
  /** Called once the hello is complete (with a token: the host has proved it holds it). */
  onGreeted?: () => void;
}
const MAX_PING = 64;

export class V2Session {
  private readonly decoder = new FrameDecoder();
  private readonly ops = new Map<number, Op>();
  private greeted = false;
  private idleWaiters: (() => void)[] = [];
  private endRead!: () => void;
  /** Resolves when the host has closed (or the session is over): nothing more will be read. */
  private readonly readDone = new Promise<void>((r) => (this.endRead = r));
  /** Set once the session ends: whatever an operation still sends (a late WINDOW, an EXIT) is dropped, so ERROR is the last frame. */
  private over = false;
  /** Every frame goes out through here: an execution's STARTED is held briefly to share a write (coalesce.ts). */
  private readonly out = new Coalescer((b) => this.conn.write(b));
  private readonly send = (f: Uint8Array) => (this.over ? Promise.reject(new Error("session over")) : this.out.send(f));
  private readonly later = (f: Uint8Array) => void (this.over || this.out.later(f));
  private readonly execs: Quota;
  private readonly files: Quota;
  private readonly tcp: Quota;

  private readonly handshake: AgentHandshake;
  private readonly limits: Limits;
  private readonly handshakeTimeout: V2SessionOptions["handshakeTimeout"];
  private expired = false;
  private readonly onGreeted: (() => void) | undefined;

  constructor(
    private readonly conn: Conn,
    private readonly log: Log,
    opts: V2SessionOptions = {},
  ) {
    const limits = opts.limits ?? DEFAULT_LIMITS;
    this.limits = limits;
    this.execs = new Quota(limits.execsPerConn);
    this.files = new Quota(limits.filesPerConn);
    this.tcp = new Quota(limits.tcpPerConn);
    this.handshake = new AgentHandshake(opts.token);
    this.handshakeTimeout = opts.handshakeTimeout;
    this.onGreeted = opts.onGreeted;
  }

  /** True when the host did not complete the hello in time (ERROR ETIMEDOUT was sent). */
  get timedOut(): boolean {
    return this.expired;
  }

  /** True when the host did not prove it holds the token: the connection was refused (EAUTH). */
  get authRefused(): boolean {
    return this.handshake.refused;
  }

  /** Serves until the host closes or breaks the protocol. */
  async run(): Promise<void> {
    const reader = this.conn.reader;
    let linger = false;
    try {
      for (;;) {
        await this.waitData(reader);
        if (reader.isEnded) break;
        for (const f of this.decoder.frames(reader.readChunk())) {
          this.handle(f);
          // Back-pressure: while the host does not read, neither do we (its writes then block, not our memory).
          if (this.conn.unsent > OUTBOUND_HIGH_WATER) await this.conn.drained(OUTBOUND_HIGH_WATER);
        }
      }
      if (this.decoder.pending > 0) this.log.error(`v2: connection closed inside a frame (${this.decoder.pending} bytes pending)`);
    } catch (e) {
      // Not only protocol errors: a bug of ours must cost this connection, never the agent.
      const proto = e instanceof ProtocolError;
      const code = proto ? e.code : "EINTERNAL";
      const message = proto ? e.message : `internal error: ${(e as Error)?.message ?? String(e)}`;
      this.log.error(`v2: ${message}; closing this connection`);
      if (!proto && this.log.verbose) this.log.error(String((e as Error)?.stack ?? e));
      this.over = true;
      // Through a promise: a write that throws at once must not escape either. Not awaited to the end:
      // a host that does not read would hold us here; lingerClose sends the FIN after it, or gives up.
      await Promise.resolve()
        .then(() => void this.out.send(encodeJson(T.ERROR, 0, { code, message })).catch(() => {}))
        .catch(() => {});
      linger = true;
    } finally {
      this.over = true;
      // What is still held was made before the end: it goes out (the socket drops it if the peer is gone).
      this.out.flush();
      // Detached executions go on without this connection (their output into their rings); the rest die with it.
      for (const op of this.ops.values()) if (!(op instanceof Execution && op.leave(this.send))) op.abort();
      this.ops.clear();
      // And what this connection's finished executions left running in their groups (groups.ts).
      killLeftovers(this);
      this.wakeIdle();
      this.endRead();
      // After an ERROR: half-close and drain briefly, so that frames the host pipelined behind the bad one
      // do not turn our close into a reset that loses the ERROR on its side.
      if (linger) await lingerClose(this.conn);
      else this.conn.close();
    }
  }

  /** The next bytes, or ETIMEDOUT once the hello has taken longer than allowed. */
  private async waitData(reader: ByteReader): Promise<void> {
    const t = this.greeted ? undefined : this.handshakeTimeout;
    if (!t) return void (await reader.waitData());
    const left = t.deadline - performance.now();
    if (left <= 0 || !(await reader.waitData(left))) {
      this.expired = true;
      throw new ProtocolError(`no ${this.handshake.waitingFor} from the host within ${t.ms / 1000} s (see --handshake-timeout)`, "ETIMEDOUT");
    }
  }

  private handle(f: Frame): void {
    if (!this.greeted) {
      // HELLO, and with a token the host's AUTH: nothing else is served before this returns true.
      this.greeted = this.handshake.step(f, (w) => void this.send(w).catch(() => {}));
      if (this.greeted) this.onGreeted?.();
      return;
    }
    switch (f.type) {
      case T.EXEC: {
        const id = this.newId(f);
        const req = decodeExec(decodeJson(f));
        if (req.detach) {
          const ex = detachedJobs(this.limits).start(req, this.attachment(id), this.log);
          if (ex) this.ops.set(id, ex);
          return;
        }
        const refused = this.admitExec(!!req.pty);
        if (refused) {
          this.log.error(`exec ${id} refused: ${refused}`);
          void this.send(encodeJson(T.EXIT, id, { status: "error", errno: "EAGAIN", message: refused })).catch(() => {});
          return;
        }
        const shared = sharedQuotas(this.limits);
        const ex = new Execution(id, req, new DirectOutput(id, this.send, this.later), (r) => {
          this.execs.give();
          shared.execs.give();
          if (req.pty) shared.ptys.give();
          this.finished(f.id);
          const what = this.log.verbose ? ` ${JSON.stringify(req.argv ?? req.shell)}` : "";
          this.log.info(`exec ${f.id}${what}: ${r.status === "exited" ? `exited ${r.code}` : r.status === "error" ? `failed to start: ${r.errno}` : `${r.status} ${r.signal}`}`);
        }, this);
        this.ops.set(f.id, ex);
        ex.start();
        return;
      }
      case T.PUT:
      case T.GET:
      case T.PUTDIR:
      case T.GETDIR: {
        const id = this.newId(f);
        // Decoded before the quota: a malformed request is a protocol error whatever the count.
        const open = this.fileOp(f);
        if (!this.files.take()) {
          const message = `too many file requests open on this connection (limit ${this.files.max}, see --max-files-per-conn)`;
          this.log.error(`${typeName(f.type)} ${id} refused: ${message}`);
          void this.send(encodeJson(T.RESULT, id, { ok: false, errno: "EAGAIN", message })).catch(() => {});
          return;
        }
        this.ops.set(
          id,
          open(id, () => {
            this.files.give();
            this.finished(id);
          }),
        );
        return;
      }
      case T.DIR_ENTRY:
      case T.DIR_END: {
        const op = this.ops.get(f.id);
        if (op instanceof PutDirOp) op.onFrame(f);
        return;
      }
      case T.ATTACH: {
        const id = this.newId(f);
        const ex = detachedJobs(this.limits).attach(decodeAttach(decodeJson(f)), this.attachment(id));
        if (ex) this.ops.set(id, ex);
        return;
      }
      case T.LIST: {
        const id = this.newId(f);
        decodeJson(f);
        for (const page of detachedJobs(this.limits).listing()) void this.send(encodeJson(T.LISTING, id, page)).catch(() => {});
        return;
      }
      case T.KILL: {
        const id = this.newId(f);
        detachedJobs(this.limits).kill(decodeKill(decodeJson(f)), this.attachment(id));
        return;
      }
      case T.PING:
        if (f.payload.byteLength > MAX_PING) throw new ProtocolError(`PING payload of ${f.payload.byteLength} bytes exceeds ${MAX_PING}`);
        void this.send(encodeFrame(T.PONG, f.id, f.payload)).catch(() => {});
        return;
      case T.WINDOW: {
        const n = decodeWindow(f);
        const op = this.ops.get(f.id);
        if (op instanceof Execution || op instanceof GetOp || op instanceof GetDirOp || op instanceof TcpOp) op.onWindow(n);
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
      case T.TCP_OPEN: {
        const id = this.newId(f);
        const req = decodeTcpOpen(decodeJson(f));
        if (!this.tcp.take()) {
          const message = `too many TCP streams open on this connection (limit ${this.tcp.max}, see --max-tcp-per-conn)`;
          this.log.error(`TCP_OPEN ${id} refused: ${message}`);
          void this.send(encodeJson(T.TCP_CLOSED, id, { ok: false, errno: "EAGAIN", message })).catch(() => {});
          return;
        }
        this.ops.set(id, new TcpOp(id, req, this.send, () => {
          this.tcp.give();
          this.finished(id);
        }));
        return;
      }
      case T.TCP_DATA:
      case T.TCP_EOF:
      case T.TCP_RESET: {
        // Frames racing with the stream's TCP_CLOSED find no stream: ignored, like late STDIN.
        const op = this.ops.get(f.id);
        if (op instanceof TcpOp) op.onFrame(f);
        return;
      }
      default:
        throw new ProtocolError(`unexpected ${typeName(f.type)} frame from the host`);
    }
  }

  private toExecution(f: Frame): void {
    // Decoded before the id is looked up: a bad value is refused even when it races with the EXIT.
    const sig = f.type === T.SIGNAL ? decodeSignal(decodeJson(f)) : undefined;
    const size = f.type === T.RESIZE ? decodeResize(decodeJson(f)) : undefined;
    const ex = this.ops.get(f.id);
    // Input racing with the EXIT frame finds no execution: ignored, as the spec says.
    if (!(ex instanceof Execution)) return;
    if (f.type === T.STDIN) ex.onStdin(f.payload);
    else if (f.type === T.STDIN_EOF) ex.onStdinEof();
    else if (sig) ex.onSignal(sig);
    else if (size) ex.onResize(size.cols, size.rows);
  }

  /** Takes the quotas an execution needs, or says why it cannot run now. */
  private admitExec(pty: boolean): string | undefined {
    const shared = sharedQuotas(this.limits);
    if (!this.execs.take()) return `too many executions running on this connection (limit ${this.execs.max}, see --max-execs-per-conn)`;
    if (!shared.execs.take()) {
      this.execs.give();
      return `too many executions running in the agent (limit ${shared.execs.max}, see --max-execs)`;
    }
    if (pty && !shared.ptys.take()) {
      this.execs.give();
      shared.execs.give();
      return `too many pseudo-terminals open in the agent (limit ${shared.ptys.max}, see --max-ptys)`;
    }
    return undefined;
  }

  /**
   * Resolves once no execution or file request is open and every frame sent so far has reached the
   * kernel: what an agent asked to stop (SIGTERM) waits for before it exits.
   */
  async idle(): Promise<void> {
    while (this.ops.size > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    // A zero-length write queues behind whatever is still unsent (held frames included): it resolves when that is flushed.
    await this.out.send(new Uint8Array(0)).catch(() => {});
    // A FIN: the host learns at once that nothing more comes, and closes. Until it does (or briefly) the
    // run loop keeps reading: exiting with the host's last WINDOW frames unread makes the kernel reset the
    // connection, and a host then loses the final frames it has not read yet.
    this.conn.end();
    await Promise.race([this.readDone, Bun.sleep(LINGER_MS)]);
  }

  /** Ends every open execution (its whole process group) and file request at once. */
  abortAll(): void {
    for (const op of this.ops.values()) op.abort();
    killLeftovers(this);
  }

  private finished(id: number): void {
    this.ops.delete(id);
    if (this.ops.size === 0) this.wakeIdle();
  }

  private wakeIdle(): void {
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** A file or directory request, checked, as a function that starts it (PUT, GET, PUTDIR, GETDIR). */
  private fileOp(f: Frame): (id: number, done: () => void) => Op {
    switch (f.type) {
      case T.PUT: {
        const req = decodePut(decodeJson(f));
        return (id, done) => new PutOp(id, req, this.send, done, this.log);
      }
      case T.GET: {
        const req = decodeGet(decodeJson(f));
        return (id, done) => new GetOp(id, req, this.send, done);
      }
      case T.PUTDIR: {
        const req = decodeDirRequest(f, "PUTDIR");
        return (id, done) => new PutDirOp(id, req, this.send, done);
      }
      default: {
        const req = decodeDirRequest(f, "GETDIR");
        return (id, done) => new GetDirOp(id, req, this.send, done, this.log);
      }
    }

  }

  /** This connection as a follower of a detached execution under `id`. */
  private attachment(id: number): Attachment {
    return { id, send: this.send, release: () => this.finished(id) };
  }

  private newId(f: Frame): number {
    if (f.id === 0) throw new ProtocolError(`${typeName(f.type)}: id 0 is reserved for the connection`);
    if (this.ops.has(f.id)) throw new ProtocolError(`${typeName(f.type)}: id ${f.id} is still in use`);
    return f.id;
  }
}
