// An incoming byte stream (STDOUT, STDERR, a GET's FILE_DATA) as a web ReadableStream whose credit goes
// back to the agent only as the consumer reads: a chunk counts as consumed when it is handed to a read(),
// so a slow reader holds back only its own process (PROTOCOL.md §7). Cancelling the stream discards what
// follows and returns its credit at once, so an ignored stream never stalls the process.
// The queue holds at most what the owner granted: the owner counts each chunk into its ReceiveWindow
// (protocol/v2/receive-window.ts) before push(), which fails the connection with EFLOW on an overrun and
// batches the credit that `consumed` gives back, so a guest cannot grow the queue.
// Chunks are payloads as the decoder hands them out: views of a read buffer only when they are at least a
// quarter of it (ownPayload), so queued or kept chunks hold at most four times their size.

export class Inbox {
  readonly stream: ReadableStream<Uint8Array>;
  private queue: Uint8Array[] = [];
  private ended = false;
  private error: Error | undefined;
  private cancelled = false;
  private wake: (() => void) | undefined;

  /** `consumed(n)` is called with the size of each chunk a reader took (or that was discarded). */
  constructor(private readonly consumed: (n: number) => void) {
    this.stream = new ReadableStream<Uint8Array>(
      {
        pull: (c) => this.pull(c),
        cancel: () => {
          this.cancelled = true;
          const held = this.queue.splice(0).reduce((s, q) => s + q.byteLength, 0);
          if (held > 0) this.consumed(held);
        },
      },
      // No read-ahead: a chunk leaves the queue only for a pending read.
      { highWaterMark: 0 },
    );
  }

  push(chunk: Uint8Array): void {
    if (this.ended) return;
    if (this.cancelled) {
      if (chunk.byteLength > 0) this.consumed(chunk.byteLength);
      return;
    }
    this.queue.push(chunk);
    this.notify();
  }

  /** No more data; readers see the end after what is queued. */
  end(): void {
    this.ended = true;
    this.notify();
  }

  /** The data stops with an error; readers see it after what is queued. */
  fail(err: Error): void {
    if (this.ended) return;
    this.error = err;
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Synchronous when a chunk is there: no promise per chunk for a reader that is behind. */
  private pull(c: ReadableStreamDefaultController<Uint8Array>): Promise<void> | void {
    if (this.queue.length === 0 && !this.ended) return new Promise<void>((r) => (this.wake = r)).then(() => this.pull(c));
    const chunk = this.queue.shift();
    if (chunk) {
      c.enqueue(chunk);
      if (chunk.byteLength > 0) this.consumed(chunk.byteLength);
    } else if (this.error) c.error(this.error);
    else c.close();
  }
}

/** Reads a whole stream into one array. */
export async function collect(stream: ReadableStream<Uint8Array>, limit = Infinity): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new RangeError(`output is over the ${limit}-byte limit`);
    }
    parts.push(value);
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}
