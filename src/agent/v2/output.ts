// Where an execution's frames go. DirectOutput: to the connection that started it, output within that
// host's window, and nothing once the connection is gone. JobOutput (job-output.ts): a detached execution's
// ring buffers, replayed to whichever connection attaches. Both send one execution's (or one GET's) bytes
// with sendWithin: within the window, in CHUNK-sized frames.
import { DEFAULT_WINDOW, ProtocolError, T, encodeJson, encodeWindow } from "../../protocol/v2/frame.ts";
import { Credit, creditBack, sendWithin, type Send } from "../../protocol/v2/credit.ts";
import type { ExitResult } from "../../protocol/v2/messages.ts";

export type { Send };

/** What an Execution needs from wherever its frames go. Stream types are T.STDOUT and T.STDERR. */
export interface Output {
  /** Resolves true once the next chunk of `type` may be read from the process; false: stop reading. */
  ready(type: number): Promise<boolean>;
  /** Bytes one read may take now (a PTY reads no more than this; 0: do not read). */
  room(type: number): number;
  /** write() copies the chunk before it returns (nothing keeps the caller's buffer). */
  readonly copiesChunks: boolean;
  /** A chunk the process wrote; false: stop reading. */
  write(type: number, chunk: Uint8Array): Promise<boolean>;
  /** The process runs (STARTED). */
  started(pid: number): void;
  /** The process is over and all of its output was handed to write(): the EXIT follows the output. */
  end(result: ExitResult): void;
  /** WINDOW from the host for this execution's output. */
  onWindow(n: number): void;
  /** STDIN of `n` bytes arrived from the host (EFLOW beyond its credit); the result gives the credit back. */
  spendStdin(n: number): () => void;
  /** The connection `send` belongs to is gone: true if the execution goes on without it (detached). */
  leave(send: Send): boolean;
  /** The execution is being killed: send nothing more. */
  close(): void;
}

export function stdinOverrun(n: number, credit: number): ProtocolError {
  return new ProtocolError(`STDIN: ${n} bytes exceed the ${credit} bytes of credit`, "EFLOW");
}

/**
 * How long STARTED may wait for company. A short execution's STARTED and EXIT then leave in one write, and
 * the host wakes once for both instead of twice (each wake-up of the host and each write were a measured
 * share of an exec's round trip: bench/README.md). STARTED still comes before any output and the EXIT.
 */
const STARTED_HOLD_MS = 5;

/** An execution that lives and dies with its connection (PROTOCOL.md §5, §7). */
export class DirectOutput implements Output {
  // Chunks are queued on the connection as they are until the kernel takes them.
  readonly copiesChunks = false;
  private readonly credit = new Credit(DEFAULT_WINDOW, DEFAULT_WINDOW);
  private stdinCredit = DEFAULT_WINDOW;
  private closed = false;
  /** STARTED, held back for at most STARTED_HOLD_MS, and its timer. */
  private heldStarted: Uint8Array | undefined;
  private holdTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly id: number,
    private readonly send: Send,
  ) {}

  ready(): Promise<boolean> {
    return this.credit.ready();
  }

  room(): number {
    return this.credit.available;
  }

  write(type: number, chunk: Uint8Array): Promise<boolean> {
    this.releaseStarted();
    // False once the window was closed: the connection is gone.
    return sendWithin(this.credit, this.send, type, this.id, chunk).then(
      () => true,
      () => false,
    );
  }

  started(pid: number): void {
    this.heldStarted = encodeJson(T.STARTED, this.id, { pid });
    this.holdTimer = setTimeout(() => this.releaseStarted(), STARTED_HOLD_MS);
  }

  /** Sends a held STARTED now (before output), or returns it to go out with the EXIT. */
  private releaseStarted(withExit = false): Uint8Array | undefined {
    const f = this.heldStarted;
    if (!f) return undefined;
    this.heldStarted = undefined;
    clearTimeout(this.holdTimer);
    if (withExit) return f;
    if (!this.closed) void this.send(f).catch(() => {});
    return undefined;
  }

  end(result: ExitResult): void {
    this.credit.fail(new Error("execution over"));
    const started = this.releaseStarted(true);
    if (this.closed) return;
    const exit = encodeJson(T.EXIT, this.id, result);
    const out = started ? new Uint8Array(started.byteLength + exit.byteLength) : exit;
    if (started) {
      out.set(started);
      out.set(exit, started.byteLength);
    }
    void this.send(out).catch(() => {});
  }

  onWindow(n: number): void {
    creditBack(this.credit, n, `execution ${this.id}`);
  }

  spendStdin(n: number): () => void {
    if (n > this.stdinCredit) throw stdinOverrun(n, this.stdinCredit);
    this.stdinCredit -= n;
    return () => {
      this.stdinCredit += n;
      void this.send(encodeWindow(this.id, n)).catch(() => {});
    };
  }

  leave(): boolean {
    return false;
  }

  close(): void {
    this.closed = true;
    this.heldStarted = undefined;
    clearTimeout(this.holdTimer);
    this.credit.fail(new Error("connection closed"));
  }
}
