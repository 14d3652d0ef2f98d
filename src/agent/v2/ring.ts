// The last `keep` bytes one stream of a detached execution wrote, addressed by their offset in the whole
// stream: what a host that attaches later is replayed. Older bytes are dropped and counted. Chunks are kept
// as they came (no copy) except the oldest one when it is cut, which is copied so that the part dropped is
// really freed: the memory held is `keep` bytes, plus at most one read not yet sent to an attached host.

export class Ring {
  private chunks: Uint8Array[] = [];
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
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.held += chunk.byteLength;
    this.total += chunk.byteLength;
    this.trim(protectFrom);
  }

  /** Drops the oldest bytes beyond `keep`, none at or after `protectFrom`. */
  trim(protectFrom = Infinity): void {
    while (this.held > this.keep) {
      const head = this.chunks[0]!;
      const drop = Math.min(this.held - this.keep, head.byteLength, Math.max(0, protectFrom - this.start));
      if (drop <= 0) return;
      if (drop === head.byteLength) this.chunks.shift();
      else this.chunks[0] = head.slice(drop);
      this.held -= drop;
    }
  }

  /** Up to `max` bytes from `offset` (start <= offset <= total), without copying when they lie in one chunk. */
  read(offset: number, max: number): Uint8Array {
    if (offset < this.start || offset > this.total) throw new RangeError(`offset ${offset} is outside ${this.start}..${this.total}`);
    let skip = offset - this.start;
    for (const c of this.chunks) {
      if (skip >= c.byteLength) {
        skip -= c.byteLength;
        continue;
      }
      return c.subarray(skip, skip + Math.min(max, c.byteLength - skip));
    }
    return new Uint8Array(0);
  }

  /** Frees what is kept (the counts stay): an exited job whose slot is taken by a newer one. */
  clear(): void {
    this.chunks = [];
    this.held = 0;
  }
}
