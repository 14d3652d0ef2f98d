// Where an execution's frames go. DirectOutput: to the connection that started it, output within that
// host's window, and nothing once the connection is gone. JobOutput (job-output.ts): a detached execution's
// ring buffers, replayed to whichever connection attaches. Both send one execution's (or one GET's) bytes
// with sendWithin: within the window, in CHUNK-sized frames.
import { DEFAULT_WINDOW, ProtocolError, T, encodeHeaderInto, encodeJson, encodeWindow } from "../../protocol/v2/frame.ts";
import { framable, recycle } from "./fd-pump.ts";
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
  /** STDIN of `n` bytes arrived from the host: EFLOW beyond its credit. */
  spendStdin(n: number): void;
  /** `n` bytes of STDIN were taken by the process (or dropped): their credit goes back to the host. */
  stdinTaken(n: number): void;
  /** The connection `send` belongs to is gone: true if the execution goes on without it (detached). */
  leave(send: Send): boolean;
  /** The execution is being killed: send nothing more. */
  close(): void;
}

export function stdinOverrun(n: number, credit: number): ProtocolError {
  return new ProtocolError(`STDIN: ${n} bytes exceed the ${credit} bytes of credit`, "EFLOW");
}

/** An execution that lives and dies with its connection (PROTOCOL.md §5, §7). */
export class DirectOutput implements Output {
  // Chunks are queued on the connection as they are until the kernel takes them.
  readonly copiesChunks = false;
  private readonly credit = new Credit(DEFAULT_WINDOW, DEFAULT_WINDOW);
  private stdinCredit = DEFAULT_WINDOW;
  private closed = false;

  constructor(
    private readonly id: number,
    private readonly send: Send,
    /** Sends a frame with the connection's next one, soon (coalesce.ts): for STARTED. Default: at once. */
    private readonly later: (f: Uint8Array) => void = (f) => void send(f).catch(() => {}),
  ) {}

  ready(): Promise<boolean> {
    return this.credit.ready();
  }

  room(): number {
    return this.credit.available;
  }

  write(type: number, chunk: Uint8Array): Promise<boolean> {
    // A pump's chunk with room for its header, and the credit for all of it: one frame, one write, no copy
    // (instead of a header write and a payload write per chunk). Credit at hand means nobody waits for it.
    const frame = framable(chunk);
    if (frame && !this.closed && chunk.byteLength > 0 && this.credit.spend(chunk.byteLength)) {
      encodeHeaderInto(frame, type, this.id, chunk.byteLength);
      // Resolved: the kernel has all of it and the connection keeps nothing, so the pump may read into it again.
      return this.send(frame).then(
        () => (recycle(frame), true),
        () => false,
      );
    }
    // False once the window was closed: the connection is gone.
    return sendWithin(this.credit, this.send, type, this.id, chunk).then(
      () => true,
      () => false,
    );
  }

  started(pid: number): void {
    // Held briefly: a short execution's STARTED leaves in one write with its EXIT.
    this.later(encodeJson(T.STARTED, this.id, { pid }));
  }

  end(result: ExitResult): void {
    this.credit.fail(new Error("execution over"));
    if (!this.closed) void this.send(encodeJson(T.EXIT, this.id, result)).catch(() => {});
  }

  onWindow(n: number): void {
    creditBack(this.credit, n, `execution ${this.id}`);
  }

  spendStdin(n: number): void {
    if (n > this.stdinCredit) throw stdinOverrun(n, this.stdinCredit);
    this.stdinCredit -= n;
  }

  stdinTaken(n: number): void {
    this.stdinCredit += n;
    void this.send(encodeWindow(this.id, n)).catch(() => {});
  }

  leave(): boolean {
    return false;
  }

  close(): void {
    this.closed = true;
    this.credit.fail(new Error("connection closed"));
  }
}
