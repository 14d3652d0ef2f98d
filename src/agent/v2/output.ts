// Sending one execution's (or one GET's) bytes to the host within its window, in CHUNK-sized frames.
import { CHUNK, encodeHeader } from "../../protocol/v2/frame.ts";
import type { Credit } from "../../protocol/v2/credit.ts";

export type Send = (frame: Uint8Array) => Promise<void>;

/** Sends `data` as frames of `type`; false if the window was closed (connection gone) before the end. */
export async function sendWithin(credit: Credit, send: Send, type: number, id: number, data: Uint8Array): Promise<boolean> {
  let off = 0;
  while (off < data.byteLength) {
    let n: number;
    try {
      n = await credit.take(Math.min(CHUNK, data.byteLength - off));
    } catch {
      return false;
    }
    // Header and payload go out as two writes, in order: cheaper than copying each 64 KiB chunk into
    // a new frame (bench/README.md). A failed header write shows again on the payload's.
    send(encodeHeader(type, id, n)).catch(() => {});
    await send(data.subarray(off, off + n));
    off += n;
  }
  return true;
}
