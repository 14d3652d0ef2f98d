// vge cp's download writer (src/cli/vge/_filewrite.ts): chunks that arrive during a write go out together,
// partial writes are resumed, what waits for the disk stays under its bound, and a failed write ends the
// download (the stream is cancelled, so its credit goes back and the guest is not left waiting).
import { expect, test } from "bun:test";
import { open, readFile } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { streamToFile } from "../../src/cli/vge/_filewrite.ts";
import { tempDir } from "../host/_fixtures.ts";

/** `n` chunks of `size` bytes, chunk i filled with i & 0xff; counts how many were read. */
function chunks(n: number, size: number) {
  const state = { read: 0, cancelled: false };
  let i = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (i === n) return c.close();
        state.read += size;
        c.enqueue(new Uint8Array(size).fill(i++ & 0xff));
      },
      cancel() {
        state.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, state };
}

test("a real file gets every byte in order, in fewer writes than chunks", async () => {
  const dir = tempDir("vge-fw-");
  try {
    const path = dir.file("out.bin");
    const fh = await open(path, "w");
    let writes = 0;
    const counted = new Proxy(fh, { get: (t, k) => (k === "writev" ? (b: Uint8Array[]) => (writes++, t.writev(b)) : Reflect.get(t, k).bind?.(t) ?? Reflect.get(t, k)) });
    const { stream } = chunks(500, 4096);
    await streamToFile(stream, counted as FileHandle);
    await fh.close();
    const got = await readFile(path);
    expect(got.byteLength).toBe(500 * 4096);
    for (let i = 0; i < 500; i++) expect(got[i * 4096]).toBe(i & 0xff);
    expect(writes).toBeLessThan(500);
  } finally {
    dir.remove();
  }
});

test("partial writes are resumed where they stopped; a slow disk holds reading back to the bound", async () => {
  const out: number[] = [];
  let maxAhead = 0;
  const { stream, state } = chunks(200, 1000);
  const fh = {
    async writev(bufs: Uint8Array[]) {
      await Bun.sleep(1);
      maxAhead = Math.max(maxAhead, state.read - out.length);
      // At most 1,500 bytes a call: most chunks are cut.
      let n = 0;
      for (const b of bufs) {
        const k = Math.min(b.byteLength, 1500 - n);
        for (let j = 0; j < k; j++) out.push(b[j]!);
        n += k;
        if (n === 1500) break;
      }
      return { bytesWritten: n, buffers: bufs };
    },
  };
  await streamToFile(stream, fh as unknown as FileHandle, 10_000);
  expect(out.length).toBe(200 * 1000);
  for (let i = 0; i < 200; i++) expect(out[i * 1000 + 999]).toBe(i & 0xff);
  // The bound, plus the chunk read when it was reached and the batch being written.
  expect(maxAhead).toBeLessThanOrEqual(10_000 + 2 * 1000 + 1500);
});

test("a failed write rejects with its error and cancels the stream", async () => {
  const { stream, state } = chunks(1000, 1000);
  let calls = 0;
  const fh = {
    async writev(bufs: Uint8Array[]) {
      await Bun.sleep(1);
      if (++calls === 3) throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
      return { bytesWritten: bufs.reduce((s, b) => s + b.byteLength, 0), buffers: bufs };
    },
  };
  await expect(streamToFile(stream, fh as unknown as FileHandle, 10_000)).rejects.toMatchObject({ code: "ENOSPC" });
  expect(state.cancelled).toBe(true);
  expect(state.read).toBeLessThan(1000 * 1000);
});
