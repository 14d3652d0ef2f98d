// A stream into an open file with few writes: chunks that arrive while a write is under way go out
// together in the next writev, so a 1 GiB download is not 16,384 writes of 64 KiB each, one after the
// other through the thread pool. At most `maxAhead` bytes wait for the disk: past that, reading the stream
// (and with it the credit the guest gets back) waits, so a slow disk holds the download back.
import type { FileHandle } from "node:fs/promises";

export async function streamToFile(stream: ReadableStream<Uint8Array>, fh: FileHandle, maxAhead = 4 * 1024 * 1024): Promise<void> {
  const reader = stream.getReader();
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let writing: Promise<void> | undefined;
  let failed: unknown;
  const flush = async () => {
    try {
      while (pending.length > 0) {
        let batch = pending;
        pending = [];
        pendingBytes = 0;
        // writev may take part of the batch: the rest is written again from where it stopped.
        while (batch.length > 0) {
          let n = (await fh.writev(batch)).bytesWritten;
          while (n > 0 && n >= batch[0]!.byteLength) n -= batch.shift()!.byteLength;
          if (n > 0) batch[0] = batch[0]!.subarray(n);
        }
      }
    } catch (e) {
      failed = e;
      await reader.cancel().catch(() => {});
    } finally {
      writing = undefined;
    }
  };
  try {
    for (;;) {
      if (pendingBytes >= maxAhead && writing) await writing;
      if (failed) throw failed;
      const { done, value } = await reader.read();
      if (done) break;
      pending.push(value);
      pendingBytes += value.byteLength;
      writing ??= flush();
    }
    while (writing) await writing;
    if (failed) throw failed;
  } catch (e) {
    while (writing) await writing;
    throw failed ?? e;
  }
}
