// PUT and GET: whole files in and out, streamed within their windows. A PUT lands by rename, so a reader
// sees the old file or the complete new one, never half of it.
import { open, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CHUNK, DEFAULT_WINDOW, HEADER_SIZE, T, encodeHeaderInto, encodeJson, encodeWindow } from "../../protocol/v2/frame.ts";
import { DEFAULT_MAX_GET, type FileResult, type GetRequest, type PutRequest } from "../../protocol/v2/messages.ts";
import { sendWithin, type Send } from "../../protocol/v2/credit.ts";
import { ReceiveWindow } from "../../protocol/v2/receive-window.ts";
import { OutgoingOp } from "./outgoing.ts";
import type { Log } from "../log.ts";

function failure(e: unknown): FileResult {
  const err = e as { code?: string; message?: string };
  return { ok: false, errno: typeof err.code === "string" ? err.code : "EIO", message: err.message ?? String(e) };
}

/**
 * Puts a finished file in place: `rename`, then `syncDir`. The rename is the commit point. A failure before
 * it fails the PUT (the old file is untouched); after it the new file is there for everyone to see, so a
 * failing directory fsync cannot undo it, and reporting ok:false would tell the host a lie (a retry would
 * replace a file that is already right). It is returned as a warning: the rename may not survive a crash.
 */
export async function commitRename(rename: () => Promise<void>, syncDir: () => Promise<void>): Promise<{ warning?: string }> {
  await rename();
  try {
    await syncDir();
    return {};
  } catch (e) {
    const err = e as { code?: string; message?: string };
    return { warning: `fsync of the directory failed (${typeof err.code === "string" ? err.code : "EIO"}: ${err.message ?? String(e)}); the file is in place but may not survive a crash` };
  }
}

async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

export class PutOp {
  /** The host's data credit: each chunk's goes back once it is written (or dropped). */
  private readonly window: ReceiveWindow;
  private received = 0;
  private chain: Promise<unknown>;
  private fh: FileHandle | undefined;
  private readonly tmp: string;
  private failed: FileResult | undefined;
  /** FILE_END came: later FILE_DATA and FILE_END frames for this id are ignored, as for a finished one. */
  private ended = false;

  constructor(
    readonly id: number,
    private readonly req: PutRequest,
    private readonly send: Send,
    private readonly finished: () => void,
    private readonly log?: Log,
  ) {
    this.window = new ReceiveWindow(DEFAULT_WINDOW, `PUT ${id}`);
    this.tmp = join(dirname(req.path), `.${basename(req.path)}.vge-${Buffer.from(crypto.getRandomValues(new Uint8Array(4))).toString("hex")}`);
    this.chain = open(this.tmp, "wx", req.mode ?? 0o644).then(
      (fh) => (this.fh = fh),
      (e) => (this.failed = failure(e)),
    );
  }

  onData(data: Uint8Array): void {
    if (this.ended) return;
    this.window.receive(T.FILE_DATA, data.byteLength);
    this.received += data.byteLength;
    if (this.received > this.req.size && !this.failed) this.failed = { ok: false, errno: "EFBIG", message: `more than the announced ${this.req.size} bytes` };
    this.chain = this.chain.then(async () => {
      if (!this.failed && this.fh) await this.fh.write(data).catch((e) => (this.failed = failure(e)));
      const back = this.window.consume(data.byteLength);
      if (back > 0) await this.send(encodeWindow(this.id, back)).catch(() => {});
    });
  }

  onEnd(): void {
    if (this.ended) return;
    this.ended = true;
    this.chain = this.chain.then(async () => {
      if (!this.failed && this.received !== this.req.size) this.failed = { ok: false, errno: "EIO", message: `got ${this.received} of ${this.req.size} bytes` };
      let result: FileResult;
      if (this.failed) result = this.failed;
      else {
        try {
          const fh = this.fh!;
          // Owner first: chown(2) clears the setuid and setgid bits, so a mode applied before it would lose them.
          if (this.req.uid !== undefined || this.req.gid !== undefined) await fh.chown(this.req.uid ?? -1, this.req.gid ?? -1);
          // open() honoured the umask; the host asked for this exact mode.
          if (this.req.mode !== undefined) await fh.chmod(this.req.mode);
          await fh.sync();
          await fh.close();
          this.fh = undefined;
          // The rename is durable only once the directory is: without the fsync a crash can bring the old file back.
          const { warning } = await commitRename(
            () => rename(this.tmp, this.req.path),
            () => syncDir(dirname(this.req.path)),
          );
          if (warning) this.log?.warn(`PUT ${this.id} ${JSON.stringify(this.req.path)}: ${warning}`);
          result = { ok: true, size: this.received };
        } catch (e) {
          result = failure(e);
        }
      }
      await this.cleanup(!result.ok);
      await this.send(encodeJson(T.RESULT, this.id, result)).catch(() => {});
      this.finished();
    });
  }

  private async cleanup(removeTmp: boolean): Promise<void> {
    await this.fh?.close().catch(() => {});
    this.fh = undefined;
    if (removeTmp) await unlink(this.tmp).catch(() => {});
  }

  abort(): void {
    this.failed ??= { ok: false, errno: "ECONNRESET", message: "connection closed" };
    this.chain = this.chain.then(() => this.cleanup(true));
  }
}

export class GetOp extends OutgoingOp<FileResult> {
  constructor(
    id: number,
    private readonly req: GetRequest,
    send: Send,
    finished: () => void,
  ) {
    super(id, send, finished);
    this.start();
  }

  protected failed(e: unknown): FileResult {
    return failure(e);
  }

  protected async transfer(): Promise<FileResult> {
    let fh: FileHandle | undefined;
    try {
      const st = await stat(this.req.path);
      if (!st.isFile()) throw Object.assign(new Error(`not a regular file: ${this.req.path}`), { code: st.isDirectory() ? "EISDIR" : "EINVAL" });
      const max = this.req.maxSize ?? DEFAULT_MAX_GET;
      if (st.size > max) throw Object.assign(new Error(`${this.req.path} is ${st.size} bytes, over the limit of ${max}`), { code: "EFBIG" });
      fh = await open(this.req.path, "r");
      // Read after room for a frame header: header and bytes leave as one frame in one write (not two
      // writes per chunk, each a wake-up of the host), as an execution's output does (output.ts).
      const frame = new Uint8Array(HEADER_SIZE + CHUNK);
      const buf = frame.subarray(HEADER_SIZE);
      let size = 0;
      for (;;) {
        if (!(await this.out.ready())) throw Object.assign(new Error("connection closed"), { code: "ECONNRESET" });
        const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, this.out.available));
        if (bytesRead === 0) break;
        size += bytesRead;
        if (size > max) throw Object.assign(new Error(`${this.req.path} grew past the limit of ${max}`), { code: "EFBIG" });
        // Read into again only after the send resolves: the bytes are in the kernel by then. The read took
        // at most the credit at hand and nothing else spends this id's, so spend() fails only once closed.
        let sent: Promise<void>;
        if (this.out.spend(bytesRead)) {
          encodeHeaderInto(frame, T.FILE_DATA, this.id, bytesRead);
          sent = this.send(frame.subarray(0, HEADER_SIZE + bytesRead));
        } else sent = sendWithin(this.out, this.send, T.FILE_DATA, this.id, buf.subarray(0, bytesRead));
        await sent.catch(() => {
          throw Object.assign(new Error("connection closed"), { code: "ECONNRESET" });
        });
      }
      return { ok: true, size, mode: st.mode & 0o7777 };
    } finally {
      await fh?.close().catch(() => {});
    }
  }
}
