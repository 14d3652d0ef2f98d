// The last `keep` bytes one stream of a detached execution wrote, addressed by their offset in the whole
// stream: what a host that attaches later is replayed. Older bytes are dropped and counted. The bytes are
// copied into one circular buffer that grows to what is held at most (`keep`, plus at most one read not yet
// sent to an attached host) and is then reused: a job nobody follows turns over gigabytes without making
// garbage, where keeping each read as it came left every one of them for a full collection to free.
// Reads hand out copies: a frame queued on a connection never shares memory the ring will overwrite.

export class Ring {
  private buf = new Uint8Array(0);
  private held = 0;
  /** Bytes written to the stream since the start. */
  total = 0;

  constructor(readonly keep: number) {}

  /** Offset of the oldest byte still kept; everything before it was dropped. */
  get start(): number {
    return this.total - this.held;
  }

  /** Bytes kept now. */
  get kept(): number {
    return this.held;
  }

  /**
   * Appends a chunk and drops the oldest bytes beyond `keep`, but never a byte at or after `protectFrom`:
   * what an attached host has not been sent yet is never lost (it is at most one read, see JobOutput).
   */
  push(chunk: Uint8Array, protectFrom = Infinity): void {
    const n = chunk.byteLength;
    if (n === 0) return;
    const end = this.total + n;
    // The new start: the last `keep` bytes, and everything from protectFrom on; never earlier than now.
    const from = Math.max(this.start, Math.min(end - this.keep, protectFrom));
    const held = end - from;
    this.reserve(held);
    // When fewer than n bytes are kept, only the chunk's tail is written.
    const tail = held < n ? chunk.subarray(n - held) : chunk;
    this.copyIn(end - tail.byteLength, tail);
    this.held = held;
    this.total = end;
  }

  /** Drops the oldest bytes beyond `keep`, none at or after `protectFrom`. */
  trim(protectFrom = Infinity): void {
    const from = Math.max(this.start, Math.min(this.total - this.keep, protectFrom));
    this.held = this.total - from;
  }

  /** A copy of up to `max` bytes from `offset` (start <= offset <= total). */
  read(offset: number, max: number): Uint8Array {
    if (offset < this.start || offset > this.total) throw new RangeError(`offset ${offset} is outside ${this.start}..${this.total}`);
    const n = Math.min(max, this.total - offset);
    const out = new Uint8Array(n);
    const cap = this.buf.byteLength;
    if (n === 0) return out;
    const at = offset % cap;
    const first = Math.min(n, cap - at);
    out.set(this.buf.subarray(at, at + first), 0);
    if (first < n) out.set(this.buf.subarray(0, n - first), first);
    return out;
  }

  /** Frees what is kept (the counts stay): an exited job whose slot is taken by a newer one. */
  clear(): void {
    this.buf = new Uint8Array(0);
    this.held = 0;
  }

  /** Room for `held` bytes: the buffer doubles (small outputs stay small) up to what is held at most. */
  private reserve(held: number): void {
    const cap = this.buf.byteLength;
    if (held <= cap) return;
    const start = this.start;
    const kept = this.held > 0 ? this.read(start, this.held) : undefined;
    this.buf = new Uint8Array(Math.max(held, Math.min(Math.max(cap * 2, 4096), Math.max(this.keep, held))));
    // Laid out again at the new size's positions: bytes are addressed by offset modulo the capacity.
    if (kept) this.copyIn(start, kept);
  }

  /** Writes `data` at stream offset `offset` (it fits: reserve() came first). */
  private copyIn(offset: number, data: Uint8Array): void {
    const cap = this.buf.byteLength;
    const at = offset % cap;
    const first = Math.min(data.byteLength, cap - at);
    this.buf.set(data.subarray(0, first), at);
    if (first < data.byteLength) this.buf.set(data.subarray(first), 0);
  }
}
