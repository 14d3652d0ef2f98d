// A pseudo-terminal's output, held for the host within its window. A terminal cannot be left unread like
// a pipe, so when the host falls a window behind, the job is stopped (SIGSTOP), as XOFF would stop it,
// and continued (SIGCONT) once the host has caught up.
import { DEFAULT_WINDOW } from "../../protocol/v2/frame.ts";

export class PtyOutput {
  private queue: Uint8Array[] = [];
  private queued = 0;
  private wake: (() => void) | undefined;
  private ended = false;
  private stopped = false;

  constructor(private readonly signalGroup: (name: string) => void) {}

  /** Bytes read from the terminal and not yet sent. */
  get pending(): number {
    return this.queued;
  }

  push(d: Uint8Array): void {
    this.queue.push(d);
    this.queued += d.byteLength;
    if (!this.stopped && this.queued > DEFAULT_WINDOW) {
      this.stopped = true;
      this.signalGroup("SIGSTOP");
    }
    this.wake?.();
  }

  /** The terminal closed, or the execution is over: the pump ends once the queue is empty. */
  end(): void {
    this.ended = true;
    this.wake?.();
  }

  /** Hands chunks to `emit` in order until the end; stops early if `emit` says the window closed. */
  async pump(emit: (chunk: Uint8Array) => Promise<boolean>): Promise<void> {
    for (;;) {
      const chunk = this.queue.shift();
      if (!chunk) {
        if (this.ended) return;
        await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      this.queued -= chunk.byteLength;
      if (!(await emit(chunk))) return;
      if (this.stopped && this.queued < DEFAULT_WINDOW / 2) {
        this.stopped = false;
        this.signalGroup("SIGCONT");
      }
    }
  }

  /** The execution is over: never leave what remains of the job stopped. */
  release(): void {
    this.end();
    if (this.stopped) {
      this.stopped = false;
      this.signalGroup("SIGCONT");
    }
  }
}
