// A flow-control window: bytes we may still send, and a way to wait until there is some.

export class Credit {
  private waiters: (() => void)[] = [];
  private closed = false;

  constructor(private bytes: number) {}

  get available(): number {
    return this.bytes;
  }

  add(n: number): void {
    this.bytes += n;
    for (const w of this.waiters.splice(0)) w();
  }

  take(n: number): void {
    this.bytes -= n;
  }

  /** Resolves once some credit is available, or the window is closed (then returns false). */
  async wait(): Promise<boolean> {
    while (this.bytes <= 0 && !this.closed) await new Promise<void>((r) => this.waiters.push(r));
    return !this.closed;
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w();
  }
}
