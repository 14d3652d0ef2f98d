// One execution: a process group started for an EXEC frame, its streams read only when its Output lets them
// (within the host's window, or into a detached job's ring), and exactly one EXIT after all of its output.
import type { Subprocess } from "bun";
import { T } from "../../protocol/v2/frame.ts";
import type { ExecSpec, ExitResult } from "../../protocol/v2/messages.ts";
import { signalNumber, type Signal } from "../../protocol/v2/signals.ts";
import { close, pipe } from "../../sys/index.ts";
import type { Output, Send } from "./output.ts";
import { PtyTerminal } from "./pty.ts";
import { planSpawn, startError } from "./spawn.ts";
import { UserError } from "./users.ts";

/** After the process exits, output still in its pipes is sent; a descendant that holds them open longer is cut off after this quiet period. */
const QUIET_AFTER_EXIT_MS = 500;
/** A timeout with a catchable signal becomes SIGKILL if the group is still there after this long. */
const KILL_GRACE_MS = 5000;
const SIGKILL = signalNumber("SIGKILL")!;

/** setTimeout's longest delay (a signed 32-bit count of ms); a longer one would fire at once. */
const MAX_TIMER_MS = 0x7fffffff;

/** Calls `fn` after `ms`, however long, by chaining timers of at most MAX_TIMER_MS; returns the canceller. */
function longTimeout(ms: number, fn: () => void): () => void {
  let timer: ReturnType<typeof setTimeout>;
  const arm = (left: number) => {
    timer = setTimeout(() => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : fn()), Math.min(left, MAX_TIMER_MS));
  };
  arm(ms);
  return () => clearTimeout(timer);
}

export class Execution {
  private stdinChain: Promise<void> = Promise.resolve();
  private proc: Subprocess<any, any, any> | undefined;
  private readers: { cancel(): Promise<void> }[] = [];
  private lastOutput = Date.now();
  private timedOut: Signal | undefined;
  private aborted = false;
  private pty: PtyTerminal | undefined;

  constructor(
    readonly id: number,
    private readonly req: ExecSpec,
    private readonly output: Output,
    private readonly finished: (result: ExitResult) => void,
  ) {}

  /** Starts the process; a start failure is reported as the execution's EXIT at once. */
  start(): void {
    const cmd = this.req.argv ?? ["/bin/sh", "-c", this.req.shell!];
    let merged: { read: number; write: number } | undefined;
    try {
      const plan = planSpawn(this.req);
      const common = { cwd: plan.cwd, env: plan.env, uid: plan.uid, gid: plan.gid };
      if (this.req.pty) {
        this.pty = PtyTerminal.spawn(plan, this.req.pty.cols, this.req.pty.rows);
        this.proc = this.pty.proc;
      } else {
        merged = this.req.merge ? pipe() : undefined;
        const stdin = this.req.stdin === "closed" ? "ignore" : "pipe";
        // detached: a new session, so signals and the timeout reach every process the command starts.
        this.proc = Bun.spawn(plan.cmd, { ...common, detached: true, stdin, stdout: merged?.write ?? "pipe", stderr: merged?.write ?? "pipe" });
        if (merged) close(merged.write);
      }
    } catch (e) {
      if (merged) {
        close(merged.read);
        close(merged.write);
      }
      const { errno, message } = e instanceof UserError ? { errno: e.errno, message: e.message } : startError(e, cmd);
      this.finish({ status: "error", errno, message });
      return;
    }
    if (this.pty) void this.afterPtyExec(this.pty);
    else this.begin(merged?.read);
  }

  /** A PTY program is known to run only once its helper has exec'd it; until then no STARTED. */
  private async afterPtyExec(pty: PtyTerminal): Promise<void> {
    const err = await pty.started;
    if (!err) return this.begin(undefined);
    pty.close();
    this.finish({ status: "error", ...err });
  }

  private begin(mergedFd: number | undefined): void {
    this.output.started(this.proc!.pid);
    if (this.req.timeoutMs) this.armTimeout(this.req.timeoutMs);
    void this.run(mergedFd);
  }

  private async run(mergedFd: number | undefined): Promise<void> {
    const proc = this.proc!;
    let pumps: Promise<unknown>;
    if (this.pty) {
      // The terminal is read only as far as the output lets: the host's credit, or the ring's turn.
      const out = this.output;
      const gate = { ready: () => out.ready(T.STDOUT), get available() { return out.room(T.STDOUT); } };
      pumps = this.pty.pump(gate, (chunk) => out.write(T.STDOUT, chunk), () => (this.lastOutput = Date.now()));
    } else if (mergedFd !== undefined) pumps = this.pump(Bun.file(mergedFd).stream(), T.STDOUT).finally(() => close(mergedFd));
    else pumps = Promise.all([this.pump(proc.stdout as ReadableStream<Uint8Array>, T.STDOUT), this.pump(proc.stderr as ReadableStream<Uint8Array>, T.STDERR)]);
    await proc.exited;
    let done = false;
    void pumps.then(() => (done = true));
    while (!done && !this.aborted) {
      await Promise.race([pumps, Bun.sleep(100)]);
      const quiet = Date.now() - this.lastOutput > QUIET_AFTER_EXIT_MS;
      if (!done && quiet && this.output.room(T.STDOUT) > 0) break;
    }
    this.stopReading();
    this.finish(this.result(proc));
  }

  private result(proc: Subprocess<any, any, any>): ExitResult {
    const sig = proc.signalCode ? String(proc.signalCode) : undefined;
    if (this.timedOut) {
      // The process may have died of another signal than ours (it caught ours, or got SIGKILL after the grace).
      if (sig) return { status: "timeout", signal: sig, signo: signalNumber(sig) ?? 0, code: proc.exitCode };
      return { status: "timeout", signal: this.timedOut.name, signo: this.timedOut.signo, code: proc.exitCode };
    }
    if (sig) return { status: "signaled", signal: sig, signo: signalNumber(sig) ?? 0 };
    return { status: "exited", code: proc.exitCode ?? 0 };
  }

  private finish(result: ExitResult): void {
    this.output.end(result);
    this.finished(result);
  }

  private async pump(stream: ReadableStream<Uint8Array>, type: number): Promise<void> {
    const reader = stream.getReader();
    this.readers.push(reader);
    try {
      for (;;) {
        // Wait for credit before reading: an unread pipe is how a slow host slows the process down.
        if (!(await this.output.ready(type))) return;
        const { value, done } = await reader.read();
        if (done) return;
        this.lastOutput = Date.now();
        if (!(await this.output.write(type, value))) return;
      }
    } catch {
      // Cancelled after exit, or the connection is gone: either way this stream is over.
    }
  }

  private stopReading(): void {
    for (const r of this.readers) r.cancel().catch(() => {});
    this.pty?.close();
  }

  private armTimeout(ms: number): void {
    const cancel = longTimeout(ms, () => {
      const sig = this.req.killSignal;
      this.timedOut = sig;
      this.signalGroup(sig.signo);
      if (sig.signo !== SIGKILL) setTimeout(() => this.proc?.exitCode === null && this.signalGroup(SIGKILL), KILL_GRACE_MS).unref();
    });
    void this.proc!.exited.then(cancel);
  }

  /** Signals the execution's whole process group (its pid leads a session of its own). */
  signalGroup(sig: number | string): void {
    const pid = this.proc?.pid;
    // Names come from our own code (the PTY's SIGSTOP/SIGCONT); a host's signal arrives as a number.
    const signo = typeof sig === "number" ? sig : signalNumber(sig);
    if (!pid || signo === undefined) return;
    try {
      process.kill(-pid, signo);
    } catch {
      // The group is gone already.
    }
  }

  // --- frames from the host ---

  onWindow(n: number): void {
    this.output.onWindow(n);
  }

  /** A signal decoded (and so known) by the protocol layer. */
  onSignal(sig: Signal): void {
    this.signalGroup(sig.signo);
  }

  onResize(cols: number, rows: number): void {
    this.pty?.resize(cols, rows);
  }

  onStdin(data: Uint8Array): void {
    const giveBack = this.output.spendStdin(data.byteLength);
    this.stdinChain = this.stdinChain.then(async () => {
      try {
        // On a terminal, the credit goes back once the bytes are in it, not when they are queued.
        if (this.pty) await this.pty.write(data);
        else {
          const sink = this.proc?.stdin as import("bun").FileSink | undefined;
          if (sink && typeof sink !== "number") {
            sink.write(data);
            await sink.flush();
          }
        }
      } catch {
        // The process closed its stdin or is gone: the bytes are dropped, as a pipe would.
      }
      giveBack();
    });
  }

  onStdinEof(): void {
    this.stdinChain = this.stdinChain.then(async () => {
      try {
        // On a terminal, end of input is the EOF character, as when a user types Ctrl-D.
        if (this.pty) await this.pty.write(new Uint8Array([4]));
        else {
          const sink = this.proc?.stdin as import("bun").FileSink | undefined;
          if (sink && typeof sink !== "number") await sink.end();
        }
      } catch {
        // Already closed.
      }
    });
  }

  /**
   * The connection that `send` belongs to is gone: true if the execution goes on without it (a detached
   * one); otherwise the caller aborts it.
   */
  leave(send: Send): boolean {
    return this.output.leave(send);
  }

  /** The connection is gone (or the agent stops): kill the group and send nothing more. */
  abort(): void {
    this.aborted = true;
    this.output.close();
    this.signalGroup(SIGKILL);
    this.stopReading();
  }
}
