// PUTDIR and GETDIR (PROTOCOL.md §12): whole directory trees in and out as one stream, read and written
// by the agent itself, so a guest without tar can still take `vge cp -r`. The filesystem work is in
// src/archive, shared with the host library.
import { DEFAULT_WINDOW, T, encodeJson, encodeWindow, type Frame } from "../../protocol/v2/frame.ts";
import type { DirRequest, DirResult } from "../../protocol/v2/dirs.ts";
import { TreeReceiver } from "../../archive/receive.ts";
import { sendTree } from "../../archive/send.ts";
import type { Log } from "../log.ts";
import type { Send } from "./output.ts";
import { OutgoingOp } from "./outgoing.ts";

/** How many skipped entries one GETDIR names in the log; the rest are counted in one line. */
const SKIPS_LOGGED = 10;

function failure(e: unknown): DirResult {
  const err = e as { code?: string; message?: string; path?: string };
  return { ok: false, errno: typeof err.code === "string" ? err.code : "EIO", message: err.message ?? String(e), ...(err.path ? { path: err.path } : {}) };
}

/** Host → guest: the host is trusted here (it can run anything anyway), so modes keep all 12 bits. */
export class PutDirOp {
  private readonly rx: TreeReceiver;
  private done = false;

  constructor(
    readonly id: number,
    req: DirRequest,
    private readonly send: Send,
    private readonly finished: () => void,
  ) {
    this.rx = new TreeReceiver(req.path, { modeMask: 0o7777 }, DEFAULT_WINDOW, (n) => {
      if (!this.done) void this.send(encodeWindow(id, n)).catch(() => {});
    });
    void this.rx.outcome.then(async (o) => {
      this.done = true;
      const result: DirResult = o.ok ? { ok: true, ...o.counts } : failure(o.error);
      await this.send(encodeJson(T.RESULT, id, result)).catch(() => {});
      this.finished();
    });
  }

  /** DIR_ENTRY, FILE_DATA or DIR_END; throws ProtocolError for a malformed one. */
  onFrame(f: Frame): void {
    if (!this.done) this.rx.frame(f);
  }

  abort(): void {
    this.rx.abort();
  }
}

/**
 * Guest → host: the tree under the path, then DIR_END and RESULT with the counts. On a failure there is
 * no DIR_END: the RESULT alone ends the stream, and the host drops what it wrote of the file in progress.
 */
export class GetDirOp extends OutgoingOp<DirResult> {
  private skipped = 0;

  constructor(
    id: number,
    private readonly req: DirRequest,
    send: Send,
    finished: () => void,
    private readonly log: Log,
  ) {
    super(id, send, finished);
    this.start();
  }

  protected failed(e: unknown): DirResult {
    return failure(e);
  }

  protected async transfer(): Promise<DirResult> {
    const counts = await sendTree(this.req.path, this.id, this.send, this.out, (path, why) => this.logSkip(path, why));
    if (this.skipped > SKIPS_LOGGED) this.log.info(`v2: GETDIR ${this.req.path}: ${this.skipped - SKIPS_LOGGED} more entries skipped`);
    return { ok: true, ...counts };
  }

  /** The host is told only a count; the guest's log says which entries, the first few of them (a tree like /dev would flood it). */
  private logSkip(path: string, why: string): void {
    if (++this.skipped <= SKIPS_LOGGED) this.log.info(`v2: GETDIR ${this.req.path}: skipped ${path || "."}: ${why}`);
  }
}

