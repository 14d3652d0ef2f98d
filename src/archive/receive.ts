// The receiving end of a directory stream, frame by frame: DIR_ENTRY headers and FILE_DATA count against
// the window the receiver grants, each frame is written before its credit goes back, and the work runs
// in order on one chain. So at most one window of a hostile or fast sender's bytes is held in memory, and
// the extractor keeps nothing per entry (only the directories on the way to the current one).
// Used by the agent (PUTDIR) and the host library (GETDIR) alike.
import { ProtocolError, T, typeName, type Frame } from "../protocol/v2/frame.ts";
import { ReceiveWindow } from "../protocol/v2/receive-window.ts";
import { decodeEntry, type DirCounts } from "../protocol/v2/dirs.ts";
import { EntryError, Extractor, type ExtractOptions } from "./extract.ts";

export type Outcome = { ok: true; counts: DirCounts } | { ok: false; error: EntryError };

export class TreeReceiver {
  private readonly received: ReceiveWindow;
  private chain: Promise<void> = Promise.resolve();
  private failed: EntryError | undefined;
  private isEnded = false;
  private readonly extractor: Extractor;
  /** Resolves once DIR_END has been handled, or at the first failure. */
  readonly outcome: Promise<Outcome>;
  private settle!: (o: Outcome) => void;

  constructor(
    target: string,
    opts: ExtractOptions,
    window: number,
    /** Gives `n` bytes of credit back to the sender (a WINDOW frame). */
    private readonly giveCredit: (n: number) => void,
  ) {
    // Credit goes back as each frame is written (no batching): senders and tests count on the whole
    // window being back once the receiver has caught up.
    this.received = new ReceiveWindow(window, "directory stream");
    this.extractor = new Extractor(target, opts);
    this.outcome = new Promise((r) => (this.settle = r));
    this.run(() => this.extractor.start());
  }

  /**
   * DIR_ENTRY, FILE_DATA or DIR_END. Throws ProtocolError for what breaks the protocol itself (a header
   * that does not decode, credit overrun, another frame type); a refused entry is an outcome instead.
   */
  frame(f: Frame): void {
    if (f.type !== T.DIR_ENTRY && f.type !== T.FILE_DATA && f.type !== T.DIR_END) throw new ProtocolError(`unexpected ${typeName(f.type)} frame in a directory stream`);
    if (this.isEnded) throw new ProtocolError(`${typeName(f.type)} after DIR_END`);
    const n = f.type === T.DIR_END ? 0 : f.payload.byteLength;
    this.received.receive(f.type, n);
    if (f.type === T.DIR_END) {
      this.isEnded = true;
      this.run(async () => this.settle({ ok: true, counts: await this.extractor.end() }));
      return;
    }
    // Decoded now, not on the chain: a malformed header is the sender's protocol error, at once.
    const entry = f.type === T.DIR_ENTRY ? decodeEntry(f) : undefined;
    this.run(async () => {
      if (entry) await this.extractor.entry(entry);
      else await this.extractor.data(f.payload);
    }, n);
  }

  /** DIR_END has arrived: the sender has nothing more for this stream. */
  get ended(): boolean {
    return this.isEnded;
  }

  /** The connection is gone: stop, and leave no temporary file behind. */
  abort(): void {
    this.fail(new EntryError("ECONNRESET", "", "connection closed"));
  }

  private run(work: () => Promise<void>, credit = 0): void {
    this.chain = this.chain.then(async () => {
      if (!this.failed) await work().catch((e) => this.fail(e));
      // Credit goes back after a failure too (the bytes are dropped): a sender that has not yet learnt of
      // the failure is never left waiting for credit.
      const back = this.received.consume(credit);
      if (back > 0) this.giveCredit(back);
    });
  }

  private fail(e: unknown): void {
    if (this.failed) return;
    const err = e instanceof EntryError ? e : new EntryError((e as { code?: string }).code ?? "EIO", "", (e as Error).message ?? String(e));
    this.failed = err;
    // Settled only once the temporary file is gone: whoever reports the failure reports a clean target.
    this.chain = this.chain.then(async () => {
      await this.extractor.abort();
      this.settle({ ok: false, error: err });
    });
  }
}
