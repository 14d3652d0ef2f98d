// What putFile accepts, turned into a size and a stream of chunks. node:fs (not Bun.file) keeps this
// usable on Node. A stream of unknown size is read into memory first: PUT announces its size up front.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { collect } from "./_inbox.ts";
import { GuestError } from "./errors.ts";

/** A local file to upload; its permission bits become the default mode. */
export interface LocalFile {
  localPath: string;
}

export type PutSource = Uint8Array | ArrayBuffer | string | Blob | ReadableStream<Uint8Array> | LocalFile;

export interface Prepared {
  size: number;
  /** The local file's permission bits, if the source is a local file. */
  mode?: number;
  chunks: AsyncIterable<Uint8Array>;
}

async function* once(b: Uint8Array): AsyncIterable<Uint8Array> {
  if (b.byteLength > 0) yield b;
}

/**
 * The file opened only when its first chunk is asked for, and closed however the reading ends: a putFile
 * that fails before it sends (a connection already gone) leaves no fd open.
 */
async function* fileChunks(path: string): AsyncIterable<Uint8Array> {
  yield* createReadStream(path, { highWaterMark: 256 * 1024 }) as AsyncIterable<Uint8Array>;
}

export async function prepareSource(src: PutSource, size?: number): Promise<Prepared> {
  if (typeof src === "string") {
    const b = new TextEncoder().encode(src);
    return { size: b.byteLength, chunks: once(b) };
  }
  if (src instanceof Uint8Array) return { size: src.byteLength, chunks: once(src) };
  if (src instanceof ArrayBuffer) return { size: src.byteLength, chunks: once(new Uint8Array(src)) };
  if (src instanceof Blob) return { size: src.size, chunks: src.stream() as unknown as AsyncIterable<Uint8Array> };
  if (src instanceof ReadableStream) {
    if (size !== undefined) return { size, chunks: src as unknown as AsyncIterable<Uint8Array> };
    const b = await collect(src);
    return { size: b.byteLength, chunks: once(b) };
  }
  if (typeof src === "object" && src !== null && typeof src.localPath === "string") {
    const st = await stat(src.localPath);
    if (!st.isFile()) throw new GuestError("EINVAL", `${src.localPath}: not a regular file`);
    return { size: st.size, mode: st.mode & 0o7777, chunks: fileChunks(src.localPath) };
  }
  throw new GuestError("EINVAL", "putFile: data must be bytes, a string, a Blob, a ReadableStream or { localPath }");
}
