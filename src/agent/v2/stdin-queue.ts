// An execution's STDIN on its way to the process: the bytes the host sent, in order, written one piece at a
// time as the process takes them; each piece's credit goes back once it is written (or dropped). Kept as
// bytes, small frames merged into pieces of up to MERGE bytes, not as one promise per frame: a host may
// send its whole window as 1-byte frames, and a promise chain held ~550 bytes per frame (140 MiB for one
// window); frames without bytes, and STDIN_EOF after the first on a pipe, took no credit and queued
// without any bound (a million of them: +237 MiB).

/** Where the pieces go: the process's stdin pipe, or its terminal. */
export interface StdinSink {
  /** Resolves once the process's side has taken `bytes`; rejects when it is gone (the bytes are dropped). */
  write(bytes: Uint8Array): Promise<void>;
  /** End of input on a pipe: closes it. */
  end(): Promise<void>;
}

/** Frames are merged into pieces of at most this many bytes (a pipe takes 64 KiB at once). */
const MERGE = 64 * 1024;
/**
 * On a terminal, end of input is a Ctrl-D byte that takes no credit; at most this many wait at once (the
 * size of a terminal's own input queue), more are dropped: a host that sends STDIN_EOF without end
 * to a program that reads nothing must not grow the queue.
 */
export const MAX_QUEUED_EOF = 4096;
const CTRL_D = 4;

interface Piece {
  buf: Uint8Array;
  len: number;
  /** Host credit these bytes took (Ctrl-D bytes take none). */
  credit: number;
  /** Ctrl-D bytes among them. */
  eofs: number;
  /** Handed to the sink: nothing more is merged into it. */
  sealed: boolean;
}

export class StdinQueue {
  private readonly pieces: Piece[] = [];
  private draining = false;
  private ended = false;
  private queuedEof = 0;

  /**
   * `terminal`: end of input is Ctrl-D, written in order with the bytes; else it closes the pipe, after
   * which bytes have nowhere to go (their credit goes back at once). `giveBack(n)`: n bytes of credit return.
   */
  constructor(
    private readonly sink: StdinSink,
    private readonly terminal: boolean,
    private readonly giveBack: (n: number) => void,
  ) {}

  /** Bytes already counted against the host's credit. */
  push(data: Uint8Array): void {
    if (data.byteLength === 0) return;
    if (this.ended) return this.giveBack(data.byteLength);
    this.append(data, data.byteLength, 0);
  }

  /** STDIN_EOF. */
  end(): void {
    if (this.ended) return;
    if (!this.terminal) {
      this.ended = true;
      this.pieces.push({ buf: new Uint8Array(0), len: 0, credit: 0, eofs: 0, sealed: true });
      void this.drain();
      return;
    }
    if (this.queuedEof >= MAX_QUEUED_EOF) return;
    this.queuedEof++;
    this.append(new Uint8Array([CTRL_D]), 0, 1);
  }

  private append(data: Uint8Array, credit: number, eofs: number): void {
    const n = data.byteLength;
    const tail = this.pieces.at(-1);
    if (tail && !tail.sealed && tail.len + n <= MERGE) {
      if (tail.len + n > tail.buf.byteLength) {
        const grown = new Uint8Array(Math.min(MERGE, Math.max(tail.len + n, tail.buf.byteLength * 2)));
        grown.set(tail.buf.subarray(0, tail.len));
        tail.buf = grown;
      }
      tail.buf.set(data, tail.len);
      tail.len += n;
      tail.credit += credit;
      tail.eofs += eofs;
    } else {
      // A small frame is copied (it may be a view of a larger read, and more may be merged into it); a
      // large one is kept as it is.
      const buf = n >= MERGE / 2 ? data : Uint8Array.from(data);
      this.pieces.push({ buf, len: n, credit, eofs, sealed: n >= MERGE / 2 });
    }
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    while (this.pieces.length > 0) {
      const p = this.pieces[0]!;
      p.sealed = true;
      const bytes = p.buf.subarray(0, p.len);
      try {
        if (p.len === 0) await this.sink.end();
        else await this.sink.write(bytes);
      } catch {
        // The process closed its stdin or is gone: the bytes are dropped, as a pipe would.
      }
      this.pieces.shift();
      this.queuedEof -= p.eofs;
      if (p.credit > 0) this.giveBack(p.credit);
    }
    this.draining = false;
  }
}
