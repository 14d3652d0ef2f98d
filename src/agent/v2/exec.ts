// One execution: a process group started for an EXEC frame, its streams read only when its Output lets them
// (within the host's window, or into a detached job's ring), and exactly one EXIT after all of its output.
import type { Subprocess } from "bun";
import { T } from "../../protocol/v2/frame.ts";
import type { ExecSpec, ExitResult } from "../../protocol/v2/messages.ts";
import { signalNumber, type Signal } from "../../protocol/v2/signals.ts";
import { close, pipe, setNonblocking } from "../../sys/index.ts";
import { startFdWatch } from "../../sys/fdwatch.ts";
import { pumpFd, settledOrAfter, type Gate } from "./fd-pump.ts";
import type { Output, Send } from "./output.ts";
import { PtyTerminal } from "./pty.ts";
import { planSpawn, startError } from "./spawn.ts";
import { StdinQueue } from "./stdin-queue.ts";
import { UserError } from "./users.ts";
import { monotonicMs } from "../../common/clock.ts";
import { leaderExited, signalOrphanedGroup } from "./groups.ts";
import { ExecBox } from "./contain.ts";

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
  private stdin: StdinQueue | undefined;
  private proc: Subprocess<any, any, any> | undefined;
  /** Our read ends of the process's output pipes, with the stream each one is; closed once read to the end. */
  private pipes: { fd: number; type: number }[] = [];
  private readonly stopRead = new AbortController();
  private lastOutput = monotonicMs();
  private timedOut: Signal | undefined;
  private aborted = false;
  private done = false;
  private pty: PtyTerminal | undefined;
  /** Its cgroup leaf and OOM score (contain.ts); a no-op box without --cgroup and --protect. */
  private box: ExecBox | undefined;

  constructor(
    readonly id: number,
    private readonly req: ExecSpec,
    private readonly output: Output,
    private readonly finished: (result: ExitResult) => void,
    /** Whose the group's leftovers are once the leader exits (groups.ts): the connection; none if detached. */
    private readonly owner?: object,
  ) {}

  /** Starts the process; a start failure is reported as the execution's EXIT at once. */
  start(): void {
    const cmd = this.req.argv ?? ["/bin/sh", "-c", this.req.shell!];
    // Output is read through the poll thread: from the first execution on it is there, with its fds.
    startFdWatch();
    try {
      const plan = planSpawn(this.req);
      // contain: the box's spawn() makes the child be born in the execution's cgroup leaf; its command()
      // resets the OOM score of a protected agent's child before the program runs.
      const box = (this.box = ExecBox.open(this.req.limits));
      plan.cmd = box.command(plan.cmd, plan.env, plan.cwd);
      if (this.req.pty) {
        this.pty = box.spawn(() => PtyTerminal.spawn(plan, this.req.pty!.cols, this.req.pty!.rows), (t) => t.proc);
        this.proc = this.pty.proc;
      } else this.proc = box.spawn(() => this.spawnWithPipes(plan), (p) => p);
    } catch (e) {
      this.box?.killAll();
      void this.box?.close();
      const { errno, message } = e instanceof UserError ? { errno: e.errno, message: e.message } : startError(e, cmd);
      this.finish({ status: "error", errno, message });
      return;
    }
    if (this.pty) void this.afterPtyExec(this.pty);
    else this.begin();
  }

  /**
   * Starts the process with pipes of our own for its output (one for both streams when merged): their read
   * ends are non-blocking and read with read(2) under credit (fd-pump.ts). Throws with nothing left open.
   */
  private spawnWithPipes(plan: ReturnType<typeof planSpawn>): Subprocess<any, any, any> {
    const made: { read: number; write: number }[] = [];
    try {
      const stdout = pipe();
      made.push(stdout);
      const stderr = this.req.merge ? stdout : pipe();
      if (stderr !== stdout) made.push(stderr);
      for (const p of made) setNonblocking(p.read, true);
      const stdin = this.req.stdin === "closed" ? "ignore" : "pipe";
      // detached: a new session, so signals and the timeout reach every process the command starts.
      const proc = Bun.spawn(plan.cmd, { cwd: plan.cwd, env: plan.inherited ? undefined : plan.env, uid: plan.uid, gid: plan.gid, detached: true, stdin, stdout: stdout.write, stderr: stderr.write });
      this.pipes = [{ fd: stdout.read, type: T.STDOUT }, ...(stderr !== stdout ? [{ fd: stderr.read, type: T.STDERR }] : [])];
      return proc;
    } catch (e) {
      for (const p of made) close(p.read);
      throw e;
    } finally {
      // The child has its copies; ours open would hide the end of output.
      for (const p of made) close(p.write);
    }
  }

  /** A PTY program is known to run only once its helper has exec'd it; until then no STARTED. */
  private async afterPtyExec(pty: PtyTerminal): Promise<void> {
    const err = await pty.started;
    if (!err) return this.begin();
    pty.close();
    this.finish({ status: "error", ...err });
  }

  private begin(): void {
    this.output.started(this.proc!.pid);
    if (this.req.timeoutMs) this.armTimeout(this.req.timeoutMs);
    // Nothing in run() is expected to throw; if something does, this execution still ends with an EXIT
    // and gives its slot back, instead of the failure reaching the process-wide handler.
    this.run().catch((e) => {
      this.abortProcess();
      void this.box?.close();
      this.finish({ status: "error", errno: "EIO", message: `internal error: ${(e as Error).message ?? e}` });
    });
  }

  /** A gate and an emitter for one stream: reads wait for the output's room, each chunk marks the time. */
  private stream(type: number): { gate: Gate; emit: (chunk: Uint8Array) => Promise<boolean> } {
    const out = this.output;
    return {
      gate: { ready: () => out.ready(type), get available() { return out.room(type); }, copies: out.copiesChunks },
      emit: (chunk) => {
        this.lastOutput = monotonicMs();
        return out.write(type, chunk);
      },
    };
  }

  private async run(): Promise<void> {
    const proc = this.proc!;
    let pumps: Promise<unknown>;
    if (this.pty) {
      // The terminal is read only as far as the output lets: the host's credit, or the ring's turn.
      const { gate, emit } = this.stream(T.STDOUT);
      pumps = this.pty.pump(gate, emit);
    } else {
      pumps = Promise.all(
        this.pipes.map(({ fd, type }) => {
          const { gate, emit } = this.stream(type);
          return pumpFd(fd, gate, emit, this.stopRead.signal, proc.exited).finally(() => close(fd));
        }),
      );
    }
    await proc.exited;
    leaderExited(proc.pid, this.owner);
    // contain: with a cgroup leaf the tree ends with its leader, setsid'd daemons too; tracked without
    // one, what it left is the connection's, as its group is.
    this.box?.leaderExited(this.owner);
    // Quiet is counted from the exit at the earliest: what the process wrote just before it ended may still
    // be on its way to a pump (the readiness wake-up can lag, e.g. under emulation), and must not be cut off.
    const exitedAt = monotonicMs();
    let done = false;
    void pumps.then(() => (done = true));
    while (!done && !this.aborted) {
      // Not Bun.sleep: its timer would outlive the pumps and wake the agent 100 ms after every execution.
      await settledOrAfter(pumps, 100);
      const quiet = monotonicMs() - Math.max(this.lastOutput, exitedAt) > QUIET_AFTER_EXIT_MS;
      if (!done && quiet && this.output.room(T.STDOUT) > 0) break;
    }
    this.stopReading();
    const used = await this.used(proc);
    this.finish({ ...this.result(proc), ...used });
  }

  /** Closes the box (the leaf is emptied and removed) and returns usage for the EXIT when asked for. */
  private async used(proc: Subprocess<any, any, any>): Promise<Pick<ExitResult, "usage" | "oom">> {
    const fromLeaf = await this.box?.close().catch(() => undefined);
    if (!this.req.usage && !this.req.limits) return {};
    if (fromLeaf?.usage) return fromLeaf;
    const ru = proc.resourceUsage();
    if (!ru) return {};
    return { usage: { userUsec: Number(ru.cpuTime.user), systemUsec: Number(ru.cpuTime.system), memoryPeak: ru.maxRSS, from: "rusage" } };
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

  /** The one EXIT of this execution. */
  private finish(result: ExitResult): void {
    if (this.done) return;
    this.done = true;
    this.output.end(result);
    this.finished(result);
  }

  /** Stops reading output: the pumps end at their next wait and close their pipes. */
  private stopReading(): void {
    this.stopRead.abort();
    this.pty?.close();
  }

  private armTimeout(ms: number): void {
    const cancel = longTimeout(ms, () => {
      const sig = this.req.killSignal;
      this.timedOut = sig;
      this.signalGroup(sig.signo);
      // Whatever the leader did meanwhile: a leader that traps the signal and exits must not leave a
      // member that ignores it running.
      if (sig.signo !== SIGKILL) setTimeout(() => this.signalGroup(SIGKILL), KILL_GRACE_MS).unref();
    });
    void this.proc!.exited.then(cancel);
  }

  /** Signals the execution's whole process group (its pid leads a session of its own). */
  signalGroup(sig: number | string): void {
    const pid = this.proc?.pid;
    // Names come from our own code (the PTY's SIGSTOP/SIGCONT); a host's signal arrives as a number.
    const signo = typeof sig === "number" ? sig : signalNumber(sig);
    if (!pid || signo === undefined) return;
    // contain: SIGKILL reaches the whole leaf, processes that left the group included.
    if (signo === SIGKILL) this.box?.killAll();
    // The leader reaped: its pid may have been reused (groups.ts decides whether the group is still ours).
    if (this.proc!.exitCode !== null || this.proc!.signalCode !== null) return signalOrphanedGroup(pid, signo);
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
    // An empty frame carries nothing and takes no credit.
    if (data.byteLength === 0) return;
    this.output.spendStdin(data.byteLength);
    this.stdinQueue().push(data);
  }

  onStdinEof(): void {
    this.stdinQueue().end();
  }

  private stdinQueue(): StdinQueue {
    this.stdin ??= new StdinQueue(
      {
        write: async (bytes) => {
          // On a terminal, the credit goes back once the bytes are in it, not when they are queued.
          if (this.pty) return this.pty.write(bytes);
          const sink = this.proc?.stdin as import("bun").FileSink | undefined;
          if (sink && typeof sink !== "number") {
            // write() returns a promise when the pipe did not take everything at once; a process that has
            // gone rejects it (EPIPE) later, so it is awaited here, inside the queue's catch, not left to
            // surface as an unhandled rejection.
            await sink.write(bytes);
            await sink.flush();
          }
        },
        end: async () => {
          const sink = this.proc?.stdin as import("bun").FileSink | undefined;
          if (sink && typeof sink !== "number") await sink.end();
        },
      },
      // On a terminal, end of input is the EOF character, as when a user types Ctrl-D.
      !!this.req.pty,
      (n) => this.output.stdinTaken(n),
    );
    return this.stdin;
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
    this.output.close();
    this.abortProcess();
  }

  private abortProcess(): void {
    this.aborted = true;
    this.signalGroup(SIGKILL);
    this.stopReading();
  }
}
