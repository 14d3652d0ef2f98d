// The receiving end of one stream's flow control (PROTOCOL.md §7), for every receiver on either end:
// an execution's output, a GET's data and TCP data at the host; a PUT's data and TCP data at the agent;
// directory streams at both. Pure bookkeeping, no I/O: the owner says what arrived and what it has consumed
// (written out, read by its consumer, dropped), and sends the WINDOW frames this tells it to.
//
// The rules, here once: the peer may send only what was granted (the window at the start, plus every
// WINDOW given back since), so a receiver never holds more than one window of a peer's bytes, however
// hostile; anything past it is the peer's violation (EFLOW), which ends the connection. Credit goes back
// only for bytes that arrived and were consumed, so the grant never exceeds the window. It goes back in
// batches of at least `batch` bytes: a WINDOW frame per 64 KiB chunk read took about 30% of the host's
// time reading a 1 GiB stdout (CPU profile). A batch of at most half the window never stalls a stream:
// the sender waits only when all of its window is unreturned, and then more than half of it is held here
// unconsumed, so the consumer has bytes to read and will pay the debt.
import { ProtocolError, typeName } from "./frame.ts";

export class ReceiveWindow {
  /** Bytes the peer may still send. */
  private granted: number;
  /** Bytes that arrived and are not consumed yet. */
  private held = 0;
  /** Bytes consumed and not yet given back. */
  private owed = 0;

  constructor(
    /** The window the peer started with: the most it may ever have outstanding. */
    readonly size: number,
    /** Names the stream in the overrun error: "execution 3", "GET 7", "PUT 2". */
    private readonly what: string,
    /** Give credit back once this much is owed (0: every consumed chunk at once). At most size / 2. */
    private readonly batch = 0,
  ) {
    if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`window size must be a positive integer, got ${size}`);
    if (!(batch >= 0 && batch <= size / 2)) throw new RangeError(`batch must be 0..${size / 2} (half the window), got ${batch}`);
    this.granted = size;
  }

  /** What the peer may still send before it has to wait for a WINDOW. */
  get available(): number {
    return this.granted;
  }

  /** Arrived and not yet consumed: what the receiver holds for this stream (at most `size`). */
  get pending(): number {
    return this.held;
  }

  /**
   * `n` bytes of a frame of `type` arrived. Past the grant: an EFLOW ProtocolError, and nothing counted
   * (the connection ends; PROTOCOL.md §9).
   */
  receive(type: number, n: number): void {
    if (n > this.granted) throw new ProtocolError(`${this.what}: ${typeName(type)}: ${n} bytes exceed the ${this.granted} bytes of credit`, "EFLOW");
    this.granted -= n;
    this.held += n;
  }

  /**
   * `n` received bytes are consumed (written, read, or dropped). Returns the credit to give back now in
   * one WINDOW frame, or 0 while less than `batch` is owed. More than was received is a bug of the caller.
   */
  consume(n: number): number {
    if (!(Number.isInteger(n) && n >= 0 && n <= this.held)) throw new RangeError(`${this.what}: consumed ${n} bytes, but ${this.held} are held`);
    this.held -= n;
    this.owed += n;
    if (this.owed === 0 || this.owed < this.batch) return 0;
    const back = this.owed;
    this.owed = 0;
    this.granted += back;
    return back;
  }
}
