// A pull-style byte reader over a push-style socket. Buffers at most `highWater` bytes before asking
// the source to pause, so a host that floods the agent cannot grow its memory without bound.

export interface Pausable {
  pause(): void;
  resume(): void;
}

export class EndOfStream extends Error {
  constructor(readonly got: number, readonly wanted: number) {
    super(`connection closed after ${got} of ${wanted} bytes`);
    this.name = "EndOfStream";
  }
}

export class ByteReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  private paused = false;

  constructor(
    private readonly source: Pausable | undefined = undefined,
    /** Buffered bytes at which the source is paused: a reader waiting for more than this waits forever. */
    readonly highWater = 256 * 1024,
  ) {}

  /** Feed bytes from the socket's data callback. */
  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    if (this.source && !this.paused && this.buffered >= this.highWater) {
      this.paused = true;
      this.source.pause();
    }
    this.notify();
  }

  /** The peer closed (or half-closed) its side. */
  end(err?: Error): void {
    this.ended = true;
    this.error ??= err;
    this.notify();
  }

  get isEnded(): boolean {
    return this.ended && this.buffered === 0;
  }

  /** The peer has closed; buffered bytes may remain. */
  get sawEnd(): boolean {
    return this.ended;
  }

  get available(): number {
    return this.buffered;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private take(n: number): Uint8Array {
    // Within the first chunk: a view of it, not a copy (the chunks are ours, and nothing writes to them).
    const first = this.chunks[0];
    if (first && first.byteLength >= n) {
      if (first.byteLength === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return this.taken(n, first.subarray(0, n));
    }
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const head = this.chunks[0]!;
      const k = Math.min(head.byteLength, n - off);
      out.set(head.subarray(0, k), off);
      off += k;
      if (k === head.byteLength) this.chunks.shift();
      else this.chunks[0] = head.subarray(k);
    }
    return this.taken(n, out);
  }

  private taken(n: number, out: Uint8Array): Uint8Array {
    this.buffered -= n;
    if (this.paused && this.buffered < this.highWater / 2) {
      this.paused = false;
      this.source?.resume();
    }
    return out;
  }

  /**
   * Waits until at least one byte is buffered or the stream ended. Resolves false on timeout.
   * A timeout of undefined waits forever.
   */
  async waitData(timeoutMs?: number): Promise<boolean> {
    if (this.buffered > 0 || this.ended) return true;
    return this.waitMore(timeoutMs);
  }

  /** Waits for the next chunk or the end, whatever is buffered already. False on timeout. */
  waitMore(timeoutMs?: number): Promise<boolean> {
    if (this.ended) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      this.wake = () => {
        if (timer) clearTimeout(timer);
        resolve(true);
      };
      if (timeoutMs !== undefined)
        timer = setTimeout(() => {
          this.wake = undefined;
          resolve(false);
        }, timeoutMs);
    });
  }

  /** Exactly `n` bytes; null if the stream ended cleanly before the first byte; EndOfStream if cut short. */
  async readExact(n: number): Promise<Uint8Array | null> {
    while (this.buffered < n) {
      if (this.ended) {
        if (this.buffered === 0) {
          if (this.error) throw this.error;
          return null;
        }
        throw new EndOfStream(this.buffered, n);
      }
      await this.waitMore();
    }
    return this.take(n);
  }

  /** Up to `n` buffered bytes, left in place. */
  peek(n: number): Uint8Array {
    const out = new Uint8Array(Math.min(n, this.buffered));
    let off = 0;
    for (const c of this.chunks) {
      if (off >= out.byteLength) break;
      const k = Math.min(c.byteLength, out.byteLength - off);
      out.set(c.subarray(0, k), off);
      off += k;
    }
    return out;
  }

  /**
   * The oldest buffered piece whole, as it arrived (never a copy); empty if nothing is buffered. For a
   * consumer that assembles what it needs itself (the frame decoder) and so copies each byte at most once.
   */
  readChunk(): Uint8Array {
    const first = this.chunks[0];
    return first ? this.take(first.byteLength) : new Uint8Array(0);
  }

  /** Whatever is buffered, up to `max` bytes (possibly zero). */
  readAvailable(max: number): Uint8Array {
    return this.take(Math.min(max, this.buffered));
  }

  /** Reads and drops `n` bytes without holding them; returns how many were dropped before EOF. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0) {
        if (this.ended) return n - left;
        await this.waitData();
        continue;
      }
      left -= this.take(Math.min(left, this.buffered)).byteLength;
    }
    return n;
  }
}
