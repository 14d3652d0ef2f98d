// One execution: a process group started for an EXEC frame, its streams within their windows, and exactly
// one EXIT frame after all of its output.
import type { Subprocess } from "bun";
import { constants } from "node:os";
import { DEFAULT_WINDOW, ProtocolError, T, encodeJson, encodeWindow } from "../../protocol/v2/frame.ts";
import type { ExecRequest, ExitResult } from "../../protocol/v2/messages.ts";
import { close, pipe } from "../../sys/index.ts";
import { Credit } from "../../protocol/v2/credit.ts";
import { sendWithin, type Send } from "./output.ts";
import { PtyTerminal } from "./pty.ts";
import { planSpawn, startError } from "./spawn.ts";
import { UserError } from "./users.ts";

const SIGNALS = constants.signals as Record<string, number>;
/** After the process exits, output still in its pipes is sent; a descendant that holds them open longer is cut off after this quiet period. */
const QUIET_AFTER_EXIT_MS = 500;
/** A timeout with a catchable signal becomes SIGKILL if the group is still there after this long. */
const KILL_GRACE_MS = 5000;

export function signalNumber(name: string): number | undefined {
  const n = SIGNALS[name] ?? SIGNALS[`SIG${name}`];
  return typeof n === "number" ? n : undefined;
}

export class Execution {
  private readonly out = new Credit(DEFAULT_WINDOW);
  private stdinCredit = DEFAULT_WINDOW;
  private stdinChain: Promise<void> = Promise.resolve();
  private proc: Subprocess<any, any, any> | undefined;
  private readers: { cancel(): Promise<void> }[] = [];
  private lastOutput = Date.now();
  private timedOut: string | undefined;
  private aborted = false;
  private pty: PtyTerminal | undefined;

  constructor(
    readonly id: number,
    private readonly req: ExecRequest,
    private readonly send: Send,
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
    void this.send(encodeJson(T.STARTED, this.id, { pid: this.proc!.pid })).catch(() => {});
    if (this.req.timeoutMs) this.armTimeout(this.req.timeoutMs);
    void this.run(mergedFd);
  }

  private async run(mergedFd: number | undefined): Promise<void> {
    const proc = this.proc!;
    let pumps: Promise<unknown>;
    if (this.pty) pumps = this.pty.pump(this.out, (chunk) => sendWithin(this.out, this.send, T.STDOUT, this.id, chunk), () => (this.lastOutput = Date.now()));
    else if (mergedFd !== undefined) pumps = this.pump(Bun.file(mergedFd).stream(), T.STDOUT).finally(() => close(mergedFd));
    else pumps = Promise.all([this.pump(proc.stdout as ReadableStream<Uint8Array>, T.STDOUT), this.pump(proc.stderr as ReadableStream<Uint8Array>, T.STDERR)]);
    await proc.exited;
    let done = false;
    void pumps.then(() => (done = true));
    while (!done && !this.aborted) {
      await Promise.race([pumps, Bun.sleep(100)]);
      const quiet = Date.now() - this.lastOutput > QUIET_AFTER_EXIT_MS;
      if (!done && quiet && this.out.available > 0) break;
    }
    this.stopReading();
    this.finish(this.result(proc));
  }

  private result(proc: Subprocess<any, any, any>): ExitResult {
    const sig = proc.signalCode ? String(proc.signalCode) : undefined;
    if (this.timedOut) {
      const name = sig ?? this.timedOut;
      return { status: "timeout", signal: name, signo: signalNumber(name) ?? 0, code: proc.exitCode };
    }
    if (sig) return { status: "signaled", signal: sig, signo: signalNumber(sig) ?? 0 };
    return { status: "exited", code: proc.exitCode ?? 0 };
  }

  private finish(result: ExitResult): void {
    this.out.fail(new Error("execution over"));
    if (!this.aborted) void this.send(encodeJson(T.EXIT, this.id, result)).catch(() => {});
    this.finished(result);
  }

  private async pump(stream: ReadableStream<Uint8Array>, type: number): Promise<void> {
    const reader = stream.getReader();
    this.readers.push(reader);
    try {
      for (;;) {
        // Wait for credit before reading: an unread pipe is how a slow host slows the process down.
        if (!(await this.out.ready())) return;
        const { value, done } = await reader.read();
        if (done) return;
        this.lastOutput = Date.now();
        if (!(await sendWithin(this.out, this.send, type, this.id, value))) return;
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
    const timer = setTimeout(() => {
      const sig = this.req.killSignal ?? "SIGKILL";
      this.timedOut = sig;
      this.signalGroup(sig);
      if (sig !== "SIGKILL") setTimeout(() => this.proc?.exitCode === null && this.signalGroup("SIGKILL"), KILL_GRACE_MS).unref();
    }, ms);
    void this.proc!.exited.then(() => clearTimeout(timer));
  }

  /** Signals the execution's whole process group (its pid leads a session of its own). */
  signalGroup(name: string): void {
    const pid = this.proc?.pid;
    if (!pid || signalNumber(name) === undefined) return;
    try {
      process.kill(-pid, signalNumber(name)!);
    } catch {
      // The group is gone already.
    }
  }

  // --- frames from the host ---

  onWindow(n: number): void {
    this.out.add(n);
  }

  onSignal(name: string): void {
    if (signalNumber(name) === undefined) throw new ProtocolError(`SIGNAL: unknown signal ${JSON.stringify(name)}`);
    this.signalGroup(name);
  }

  onResize(cols: number, rows: number): void {
    this.pty?.resize(cols, rows);
  }

  onStdin(data: Uint8Array): void {
    if (data.byteLength > this.stdinCredit) throw Object.assign(new ProtocolError(`STDIN: ${data.byteLength} bytes exceed the ${this.stdinCredit} bytes of credit`), { code: "EFLOW" });
    this.stdinCredit -= data.byteLength;
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
      this.stdinCredit += data.byteLength;
      await this.send(encodeWindow(this.id, data.byteLength)).catch(() => {});
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

  /** The connection is gone: kill the group and send nothing more. */
  abort(): void {
    this.aborted = true;
    this.out.fail(new Error("connection closed"));
    this.signalGroup("SIGKILL");
    this.stopReading();
  }
}
