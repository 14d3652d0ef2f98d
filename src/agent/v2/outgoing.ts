// Requests whose answer streams to the host within its window and ends with exactly one RESULT: GET and
// GETDIR. The window, the RESULT and the release are here once; each request says how it sends its data.
import { DEFAULT_WINDOW, T, encodeJson } from "../../protocol/v2/frame.ts";
import { Credit, creditBack } from "../../protocol/v2/credit.ts";
import type { Send } from "./output.ts";

export abstract class OutgoingOp<R> {
  /** The host's credit for this id: the data is sent within it (sendWithin, sendTree). */
  protected readonly out = new Credit(DEFAULT_WINDOW, DEFAULT_WINDOW);

  constructor(
    readonly id: number,
    protected readonly send: Send,
    private readonly finished: () => void,
  ) {}

  /** Sends the data within `out`; resolves with the RESULT body. Its own resources are released before it settles. */
  protected abstract transfer(): Promise<R>;
  /** The RESULT body for whatever `transfer` threw. */
  protected abstract failed(e: unknown): R;

  /** Called by the subclass constructor once its own fields are set. */
  protected start(): void {
    void (async () => {
      let result: R;
      try {
        result = await this.transfer();
      } catch (e) {
        result = this.failed(e);
      }
      await this.send(encodeJson(T.RESULT, this.id, result)).catch(() => {});
      this.finished();
    })();
  }

  onWindow(n: number): void {
    creditBack(this.out, n, `request ${this.id}`);
  }

  abort(): void {
    this.out.fail(new Error("connection closed"));
  }
}
