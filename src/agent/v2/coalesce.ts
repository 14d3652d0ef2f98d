// One connection's outgoing frames, with one thing held back: a frame sent `later` (an execution's
// STARTED) waits up to HOLD_MS and then leaves in the same write as whatever frame comes next. A short
// execution's STARTED and EXIT so reach the host in one write and wake it once, not twice: each write and
// each wake-up of the host was a measured share of an exec round trip (bench/README.md). Frames still
// leave in the order they were made, across every id: a held frame goes out before anything sent after it.

/** How long a frame sent `later` may wait for company. */
export const HOLD_MS = 5;
/** A frame that follows held ones is copied into their write up to this size; a larger one is written on its own after them. */
const JOIN_MAX = 4096;

export class Coalescer {
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly write: (bytes: Uint8Array) => Promise<void>) {}

  /** Sends `f` now, after (and if small, in one write with) whatever is held. */
  send(f: Uint8Array): Promise<void> {
    if (this.held.length === 0) return this.write(f);
    const join = f.byteLength <= JOIN_MAX;
    const out = this.take(join ? f : undefined);
    if (join) return this.write(out);
    // The held frames' write is queued first, in order; the caller waits for its own frame.
    this.write(out).catch(() => {});
    return this.write(f);
  }

  /** Sends `f` with the next frame, or after HOLD_MS if none comes. */
  later(f: Uint8Array): void {
    this.held.push(f);
    this.heldBytes += f.byteLength;
    this.timer ??= setTimeout(() => this.flush(), HOLD_MS);
  }

  /** Writes whatever is held now. */
  flush(): void {
    if (this.held.length > 0) this.write(this.take()).catch(() => {});
  }

  /** Drops whatever is held (the connection is over). */
  drop(): void {
    this.held = [];
    this.heldBytes = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The held frames and then `tail`, as one buffer; nothing is held after. */
  private take(tail?: Uint8Array): Uint8Array {
    const out = new Uint8Array(this.heldBytes + (tail?.byteLength ?? 0));
    let off = 0;
    for (const h of this.held) {
      out.set(h, off);
      off += h.byteLength;
    }
    if (tail) out.set(tail, off);
    this.drop();
    return out;
  }
}
