// One execution in the guest, shaped after Bun.spawn / child_process: web streams for stdio, `exited`
// (a number, as Bun's), `exitCode`, `signalCode`, `kill()`; `result` has the whole ExitResult. Output
// credit goes back as the streams are read; stdin sends only what the agent granted.
// As with pipes to a local child, read (or cancel) stdout and stderr: once a process has written a
// window's worth (256 KiB) that nobody reads, it waits for its reader.
// The same class follows a detached execution: started by exec(cmd, {detach}) or by guest.attach(), which
// sends ATTACH instead of EXEC; `offsets` says how far each stream has been received, for the next attach.
import { DEFAULT_WINDOW, ProtocolError, T, decodeJson, encodeFrame, encodeJson, encodeWindow, typeName, type Frame } from "../protocol/v2/frame.ts";
import { TAG, validateExit, type ExecRequest, type ExitResult } from "../protocol/v2/messages.ts";
import { validateAttached, validateDetached, type Attached } from "../protocol/v2/jobs.ts";
import { Credit, sendWithin } from "../protocol/v2/credit.ts";
import { ReceiveWindow } from "../protocol/v2/receive-window.ts";
import { Inbox } from "./_inbox.ts";
import { windowFrom } from "./_window.ts";
import type { Mux } from "./_mux.ts";
import { signalName } from "./_signals.ts";
import { GuestError, StdinClosedError } from "./errors.ts";
import { shellStatus } from "../common/exit.ts";

const enc = new TextEncoder();

export class RemoteProcess {
  readonly id: number;
  /** The process's stdout (with a PTY or `merge`, everything it writes). */
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  /** null with `stdin: "closed"`. close() sends STDIN_EOF; writes after the exit reject with EPIPE. */
  readonly stdin: WritableStream<Uint8Array | string> | null;
  /** The guest pid, once STARTED arrived. */
  pid: number | undefined;
  /** Resolves with the pid when the process runs, or null when it never started. */
  readonly started: Promise<number | null>;
  /**
   * The exit status as a number, as Bun.spawn's `exited` gives it: the exit code, 128 + signo for a
   * signal death, 124 for a timeout, 127 / 126 when the program could not start (shellStatus). Rejects
   * with a GuestError if the connection fails first.
   */
  readonly exited: Promise<number>;
  /** The whole ExitResult (status, code or signal, errno); rejects like `exited`. */
  readonly result: Promise<ExitResult>;
  /** The ExitResult once the process has exited, else undefined. */
  exitResult: ExitResult | undefined;
  /** A detached execution's job number (from STARTED or ATTACHED), else undefined. */
  job: number | undefined;
  /** A detached execution's tag, if it has one. */
  tag: string | undefined;
  /** After guest.attach(): where the replay started per stream, and how many bytes the agent had dropped. */
  replay: Pick<Attached, "stdout" | "stderr"> | undefined;
  /** Offset in the whole stream of the next byte to arrive: where a later attach continues from. */
  readonly offsets = { stdout: 0, stderr: 0 };

  private readonly out: Inbox;
  private readonly err: Inbox;
  private readonly credit: Credit;
  /** Output credit: STDOUT and STDERR share one window (PROTOCOL.md §7), given back in batches as they are read. */
  private readonly received: ReceiveWindow;
  /** Waiting for ATTACHED (guest.attach) rather than STARTED. */
  private attaching: boolean;
  private settle!: { started: (pid: number | null) => void; exited: (r: ExitResult) => void; failed: (e: Error) => void };

  /** `open`: an EXEC request, or the body of an ATTACH (guest.attach). */
  constructor(
    private readonly mux: Mux,
    open: ExecRequest | { attach: Record<string, unknown> },
    window: number,
  ) {
    // One debt for both streams: they share the window.
    const consumed = (n: number) => this.giveCredit(this.received.consume(n));
    this.out = new Inbox(consumed);
    this.err = new Inbox(consumed);
    // A follower's stdin credit is what is left of the job's window: ATTACHED says how much (PROTOCOL.md §5.1).
    this.credit = new Credit("attach" in open ? 0 : window, window);
    this.stdout = this.out.stream;
    this.stderr = this.err.stream;
    let started!: (pid: number | null) => void;
    this.started = new Promise((r) => (started = r));
    this.result = new Promise<ExitResult>((resolve, reject) => (this.settle = { started, exited: resolve, failed: reject }));
    this.exited = this.result.then(shellStatus);
    // Callers that only read the streams must not see an unhandled rejection; awaiting either still throws.
    this.result.catch(() => {});
    this.exited.catch(() => {});
    this.id = mux.register({ frame: (f) => this.onFrame(f), fail: (e) => this.onFail(e) });
    this.received = new ReceiveWindow(DEFAULT_WINDOW, `execution ${this.id}`, DEFAULT_WINDOW / 2);
    const attach = "attach" in open ? open.attach : undefined;
    this.attaching = attach !== undefined;
    if (attach?.from) {
      const from = attach.from as { stdout?: number; stderr?: number };
      this.offsets.stdout = from.stdout ?? 0;
      this.offsets.stderr = from.stderr ?? 0;
    }
    this.stdin = !attach && (open as ExecRequest).stdin === "closed" ? null : this.makeStdin();
    mux.post(attach ? encodeJson(T.ATTACH, this.id, attach) : encodeJson(T.EXEC, this.id, open));
  }

  /** As Bun's and Node's: the exit code once the process has exited normally, else null. */
  get exitCode(): number | null {
    return this.exitResult?.status === "exited" ? this.exitResult.code : null;
  }

  /** As Bun's and Node's: the signal name once a signal (or the timeout's signal) ended it, else null. */
  get signalCode(): string | null {
    const r = this.exitResult;
    return r?.status === "signaled" || r?.status === "timeout" ? r.signal : null;
  }

  /** Sends a signal to the process group; false if the process has already exited. */
  kill(signal: string | number = "SIGTERM"): boolean {
    const name = signalName(signal);
    if (this.exitResult || this.mux.error) return false;
    this.mux.post(encodeJson(T.SIGNAL, this.id, { signal: name }));
    return true;
  }

  /** New PTY window size. */
  resize(cols: number, rows: number): void {
    if (this.exitResult || this.mux.error) return;
    this.mux.post(encodeJson(T.RESIZE, this.id, { cols, rows }));
  }

  private giveCredit(n: number): void {
    if (n > 0 && !this.exitResult && !this.mux.error) this.mux.post(encodeWindow(this.id, n));
  }

  private makeStdin(): WritableStream<Uint8Array | string> {
    return new WritableStream<Uint8Array | string>({
      write: async (chunk) => {
        const bytes = typeof chunk === "string" ? enc.encode(chunk) : chunk;
        await sendWithin(this.credit, (b) => this.mux.send(b), T.STDIN, this.id, bytes);
      },
      close: async () => {
        if (!this.exitResult && !this.mux.error) await this.mux.send(encodeFrame(T.STDIN_EOF, this.id));
      },
      abort: () => {
        if (!this.exitResult && !this.mux.error) this.mux.post(encodeFrame(T.STDIN_EOF, this.id));
      },
    });
  }

  private onFrame(f: Frame): void {
    switch (f.type) {
      case T.STARTED: {
        if (this.pid !== undefined) throw new ProtocolError("STARTED frame: a second one for the same execution");
        const { pid, job, tag } = decodeJson<{ pid: unknown; job?: unknown; tag?: unknown }>(f);
        if (typeof pid !== "number" || !Number.isInteger(pid) || pid <= 0 || pid > 0xffffffff) throw new ProtocolError("STARTED frame: pid must be a positive u32");
        if (job !== undefined && (typeof job !== "number" || !Number.isInteger(job) || job <= 0 || job > 0xffffffff)) throw new ProtocolError("STARTED frame: job must be a positive u32");
        if (tag !== undefined && (typeof tag !== "string" || !TAG.test(tag))) throw new ProtocolError("STARTED frame: tag must be a tag");
        this.pid = pid;
        this.job = job as number | undefined;
        this.tag = tag as string | undefined;
        this.settle.started(pid);
        return;
      }
      case T.STDOUT:
      case T.STDERR:
        // Nothing is queued beyond what we granted: a guest that overruns its window could otherwise
        // fill this process's memory while the consumer is not reading.
        this.received.receive(f.type, f.payload.byteLength);
        if (f.type === T.STDOUT) this.offsets.stdout += f.payload.byteLength;
        else this.offsets.stderr += f.payload.byteLength;
        return (f.type === T.STDOUT ? this.out : this.err).push(f.payload);
      case T.ATTACHED: {
        if (!this.attaching || this.replay) throw new ProtocolError("ATTACHED frame: not after an ATTACH, or a second one");
        const a = validateAttached(decodeJson(f));
        this.job = a.job;
        this.tag = a.tag ?? undefined;
        this.pid = a.pid ?? undefined;
        this.replay = { stdout: a.stdout, stderr: a.stderr };
        this.offsets.stdout = a.stdout.from;
        this.offsets.stderr = a.stderr.from;
        // An agent from before the field: a whole window, as for an EXEC.
        this.credit.add(Math.min(a.stdin ?? this.credit.limit, this.credit.limit));
        this.settle.started(this.pid ?? null);
        return;
      }
      case T.DETACHED: {
        // This id follows the job no more: it was never found (ENOENT, ERANGE), or another connection took
        // it over (EBUSY). The process itself is not affected, so there is no exit status to report.
        const d = validateDetached(decodeJson(f));
        this.mux.release(this.id);
        this.onFail(new GuestError(d.errno ?? "EDETACHED", `${this.mux.name}: ${d.message || "detached"}`));
        return;
      }
      case T.WINDOW:
        return windowFrom(this.credit, f, this.mux.name, `execution ${this.id}`);
      case T.EXIT: {
        // After the EXIT the id is released: a second EXIT (or anything else for it) is dropped by the Mux.
        const r = validateExit(decodeJson(f));
        this.exitResult = r;
        this.mux.release(this.id);
        this.out.end();
        this.err.end();
        this.credit.fail(new StdinClosedError());
        this.settle.started(this.pid ?? null);
        this.settle.exited(r);
        return;
      }
      default:
        throw new ProtocolError(`unexpected ${typeName(f.type)} frame for an execution`);
    }
  }

  private onFail(e: Error): void {
    this.out.fail(e);
    this.err.fail(e);
    this.credit.fail(e);
    this.settle.started(this.pid ?? null);
    this.settle.failed(e);
  }
}
