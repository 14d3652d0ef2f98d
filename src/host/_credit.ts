// Credit for bytes we send (STDIN, a PUT's FILE_DATA): the agent grants it with WINDOW frames and we
// never send more than it granted (PROTOCOL.md §7). Senders wait here; a failure releases them all.

export class Credit {
  private waiters: { want: number; resolve: (n: number) => void; reject: (e: Error) => void }[] = [];
  private error: Error | undefined;

  constructor(private available: number) {}

  add(n: number): void {
    this.available += n;
    this.wake();
  }

  /** Waits for some credit and takes up to `max` bytes of it (at least 1 when max > 0). */
  take(max: number): Promise<number> {
    if (this.error) return Promise.reject(this.error);
    if (this.waiters.length === 0 && this.available > 0) return Promise.resolve(this.grab(max));
    return new Promise((resolve, reject) => {
      this.waiters.push({ want: max, resolve, reject });
    });
  }

  /** No more credit will come: waiting and later senders get `err`. */
  fail(err: Error): void {
    this.error ??= err;
    for (const w of this.waiters.splice(0)) w.reject(this.error);
  }

  private grab(max: number): number {
    const n = Math.min(max, this.available);
    this.available -= n;
    return n;
  }

  private wake(): void {
    while (this.waiters.length > 0 && this.available > 0) {
      const w = this.waiters.shift()!;
      w.resolve(this.grab(w.want));
    }
  }
}
