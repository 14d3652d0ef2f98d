// A flow-control window (PROTOCOL.md §7): bytes one side may still send, given back by the other side's
// WINDOW frames. Senders wait here; once the window fails (connection gone, stream over) they all stop.
// Used by both ends: the agent for output and GET data, the host for stdin and PUT data. The receiving
// side keeps one too, of what it has granted: `spend` each arriving chunk, `add` what it hands back.
// Credit only ever comes back for bytes that were sent, so a window the peer returns can never exceed what
// it was at the start: given that `limit`, `add` refuses more, and the caller treats it as the peer's
// violation (a WINDOW of 0xffffffff, sent again and again, would otherwise grow the count past 2^53, where
// it stops counting). Without one, the limit is 2^53 - 1 itself, so the count stays exact either way.

import { CHUNK, ProtocolError, encodeHeader } from "./frame.ts";

/** How a stream hands bytes to its connection: resolves once they are handed to the kernel. */
export type Send = (bytes: Uint8Array) => Promise<void>;

export class Credit {
  private waiters: { want: number; resolve: (n: number) => void; reject: (e: Error) => void }[] = [];
  private error: Error | undefined;

  constructor(
    private bytes: number,
    /** The most there may ever be: the window as granted at the start, when the peer returns it. */
    readonly limit = Number.MAX_SAFE_INTEGER,
  ) {}

  get available(): number {
    return this.bytes;
  }

  /** `n` bytes come back. False (and nothing added) when that would make more than `limit`. */
  add(n: number): boolean {
    if (n > this.limit - this.bytes) return false;
    this.bytes += n;
    this.wake();
    return true;
  }

  /** Waits for some credit and takes up to `max` bytes of it (at least 1 when max > 0). */
  take(max: number): Promise<number> {
    if (this.error) return Promise.reject(this.error);
    if (this.waiters.length === 0 && this.bytes > 0) return Promise.resolve(this.grab(max));
    return new Promise((resolve, reject) => this.waiters.push({ want: max, resolve, reject }));
  }

  /**
   * Receiving side: `n` bytes arrived against this grant. False (and nothing taken) when they are more
   * than was granted: the peer overran its window.
   */
  spend(n: number): boolean {
    if (n > this.bytes) return false;
    this.bytes -= n;
    return true;
  }

  /** Waits until some credit is there without taking it: false once the window has failed. */
  async ready(): Promise<boolean> {
    if (this.error) return false;
    if (this.bytes > 0 && this.waiters.length === 0) return true;
    return this.take(0).then(
      () => true,
      () => false,
    );
  }

  /** No more credit will come: waiting and later senders get `err`. */
  fail(err: Error): void {
    this.error ??= err;
    for (const w of this.waiters.splice(0)) w.reject(this.error);
  }

  private grab(max: number): number {
    const n = Math.min(max, this.bytes);
    this.bytes -= n;
    return n;
  }

  private wake(): void {
    while (this.waiters.length > 0 && this.bytes > 0) {
      const w = this.waiters.shift()!;
      w.resolve(this.grab(w.want));
    }
  }
}

/**
 * A WINDOW of `n` bytes given back to `credit`, or an EFLOW ProtocolError when that is more than was ever
 * taken from it (the peer's violation: PROTOCOL.md §7). `what` names the stream ("execution 3").
 */
export function creditBack(credit: Credit, n: number, what: string): void {
  if (!credit.add(n)) throw new ProtocolError(`WINDOW: ${n} bytes of credit back for ${what}, more than was sent (${credit.available} of the ${credit.limit}-byte window unused)`, "EFLOW");
}

/**
 * Sends `data` as frames of `type` for `id`, each at most CHUNK bytes and within `credit`. Used by both ends
 * for every data stream (output, stdin, files, TCP). Header and payload go out as two writes, in order and
 * with no await between them, so no other frame lands in between: cheaper than copying each chunk into a
 * new frame (bench/README.md). `data` must not change until this resolves. Rejects with the credit's
 * failure (the stream or the connection is over) or a failed write.
 */
export async function sendWithin(credit: Credit, send: Send, type: number, id: number, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.byteLength; ) {
    const n = await credit.take(Math.min(CHUNK, data.byteLength - off));
    await sendFrame(send, type, id, data.subarray(off, off + n));
    off += n;
  }
}

/**
 * One frame as two writes, header then `payload` itself (no copy into a new frame), with no await between
 * them. Resolves once the payload is in the kernel: only then may the caller reuse its buffer.
 */
export function sendFrame(send: Send, type: number, id: number, payload: Uint8Array): Promise<void> {
  // A failed header write fails the payload's too: that one is reported.
  send(encodeHeader(type, id, payload.byteLength)).catch(() => {});
  return send(payload);
}
