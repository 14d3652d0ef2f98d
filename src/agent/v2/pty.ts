// A PTY execution's terminal, bounded both ways. Its output is flow-controlled as a pipe's is: the master
// is read only while the host has credit, so a job that outruns the host blocks in write(2) on the
// terminal, whatever process group or session it is in. Input credit goes back only once the bytes are in
// the terminal. The master is closed with the execution; that hangs up whatever still holds the terminal.
import type { Subprocess } from "bun";
import { POLLOUT, close, openPty, pipe, setWinsize, write } from "../../sys/index.ts";
import { fdReady } from "../../sys/fdwatch.ts";
import { ptyExecCommand } from "../pty-exec.ts";
import { pumpFd, type Gate } from "./fd-pump.ts";
import type { SpawnPlan } from "./spawn.ts";

export class PtyTerminal {
  private closed = false;
  private readonly stop = new AbortController();

  private constructor(
    private readonly master: number,
    readonly proc: Subprocess<any, any, any>,
    /** Resolves null once the program runs; with its errno and message if it could not be started. */
    readonly started: Promise<{ errno: string; message: string } | null>,
  ) {}

  /**
   * Starts `plan.cmd` as a session leader with a new terminal as its controlling tty, through the agent's
   * own `__pty-exec` mode. Throws (nothing left open) if the terminal or the process cannot be made.
   */
  static spawn(plan: SpawnPlan, cols: number, rows: number): PtyTerminal {
    const pty = openPty(cols, rows);
    let status: { read: number; write: number } | undefined;
    let proc: Subprocess<any, any, any>;
    try {
      status = pipe();
      // detached: setsid, so the helper can take the terminal as its controlling tty.
      const helper = ptyExecCommand(plan.cmd, plan.env);
      proc = Bun.spawn(helper.argv, {
        cwd: plan.cwd,
        env: helper.env,
        uid: plan.uid,
        gid: plan.gid,
        detached: true,
        stdio: [pty.slave, pty.slave, pty.slave, status.write],
      });
    } catch (e) {
      close(pty.master);
      if (status) close(status.read);
      throw e;
    } finally {
      // The child has its copies; the agent keeping the slave open would hide the end of output (EIO).
      close(pty.slave);
      if (status) close(status.write);
    }
    const statusFd = status.read;
    const started = new Response(Bun.file(statusFd).stream())
      .text()
      .then((text) => {
        if (!text) return null;
        const sp = text.indexOf(" ");
        return { errno: text.slice(0, sp), message: text.slice(sp + 1) };
      })
      .catch((e) => ({ errno: "EIO", message: String((e as Error).message ?? e) }))
      .finally(() => close(statusFd));
    return new PtyTerminal(pty.master, proc, started);
  }

  /** Sends the terminal's output through `emit`, reading only while `gate` has credit, until EIO (no holder of the slave is left) or close(). */
  pump(gate: Gate, emit: (chunk: Uint8Array) => Promise<boolean>): Promise<void> {
    return pumpFd(this.master, gate, emit, this.stop.signal);
  }

  /** Writes all of `data` to the terminal, waiting while it is full; resolves early only if the terminal is closed or hung up (the bytes are dropped, as a pipe would). */
  async write(data: Uint8Array): Promise<void> {
    try {
      for (let off = 0; off < data.byteLength && !this.closed; ) {
        const n = write(this.master, data.subarray(off));
        if (n === null) await fdReady(this.master, POLLOUT, this.stop.signal);
        else off += n;
      }
    } catch {
      // EIO (nobody holds the slave) or aborted by close().
    }
  }

  resize(cols: number, rows: number): void {
    if (this.closed) return;
    try {
      setWinsize(this.master, cols, rows);
    } catch {
      // The terminal is hung up; there is nothing left to resize.
    }
  }

  /** Ends reading and writing and closes the master: processes still holding the terminal get a hang-up. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort();
    close(this.master);
  }
}
