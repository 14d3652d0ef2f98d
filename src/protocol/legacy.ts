// The original tool's two wire formats, as readers over a ByteReader. No I/O of their own, no process
// handling: they say what the host sent and the modes decide what to do with it.
import type { ByteReader } from "../transport/reader.ts";
import { EndOfStream } from "../transport/reader.ts";

/** Largest command, in bytes, in both original formats. */
export const MAX_COMMAND = 2048;

/** A command ends at its first NUL byte, as it did for the original's C string. */
export function cutAtNul(bytes: Uint8Array): Uint8Array {
  const nul = bytes.indexOf(0);
  return nul < 0 ? bytes : bytes.subarray(0, nul);
}

export type Disposable =
  | { kind: "command"; command: Uint8Array; ended: "eof" | "pause" | "nul" }
  | { kind: "too-long" }
  | { kind: "empty" };

/**
 * Disposable format: raw command bytes. Waits for the first byte as long as it takes, then gathers bytes
 * until the host half-closes, a NUL arrives, or the host pauses for `pauseMs`. More than MAX_COMMAND bytes
 * is refused whole: a truncated command is never returned.
 */
export async function readDisposable(reader: ByteReader, pauseMs: number): Promise<Disposable> {
  const buf = new Uint8Array(MAX_COMMAND + 1);
  let len = 0;
  for (;;) {
    if (reader.available > 0) {
      const chunk = reader.readAvailable(MAX_COMMAND + 1 - len);
      const nul = chunk.indexOf(0);
      if (nul >= 0) {
        buf.set(chunk.subarray(0, nul), len);
        len += nul;
        return len === 0 ? { kind: "empty" } : { kind: "command", command: buf.subarray(0, len), ended: "nul" };
      }
      buf.set(chunk, len);
      len += chunk.byteLength;
      if (len > MAX_COMMAND) return { kind: "too-long" };
      continue;
    }
    if (reader.isEnded) break;
    if (len === 0) {
      await reader.waitData();
      continue;
    }
    if (!(await reader.waitData(pauseMs))) {
      return { kind: "command", command: buf.subarray(0, len), ended: "pause" };
    }
  }
  return len === 0 ? { kind: "empty" } : { kind: "command", command: buf.subarray(0, len), ended: "eof" };
}

export type LegacyFrame =
  | { kind: "command"; command: Uint8Array }
  | { kind: "empty" }
  | { kind: "too-long"; length: number }
  | { kind: "eof" }
  | { kind: "cut"; got: number; wanted: number };

/**
 * Persistent format: u16 little-endian length, then that many bytes. An oversize frame is read and
 * dropped so that the stream stays in sync; EOF between frames is the normal end.
 */
export async function readFrame(reader: ByteReader): Promise<LegacyFrame> {
  let header: Uint8Array | null;
  try {
    header = await reader.readExact(2);
  } catch (e) {
    if (e instanceof EndOfStream) return { kind: "cut", got: e.got, wanted: 2 };
    throw e;
  }
  if (header === null) return { kind: "eof" };
  const length = header[0]! | (header[1]! << 8);
  if (length === 0) return { kind: "empty" };
  if (length > MAX_COMMAND) {
    const dropped = await reader.skip(length);
    return dropped < length ? { kind: "cut", got: dropped, wanted: length } : { kind: "too-long", length };
  }
  try {
    const body = await reader.readExact(length);
    if (body === null) return { kind: "cut", got: 0, wanted: length };
    return { kind: "command", command: body };
  } catch (e) {
    if (e instanceof EndOfStream) return { kind: "cut", got: e.got, wanted: length };
    throw e;
  }
}

/** Encodes one persistent-format frame (for hosts and tests). */
export function encodeLegacyFrame(command: Uint8Array | string): Uint8Array {
  const body = typeof command === "string" ? new TextEncoder().encode(command) : command;
  if (body.byteLength > MAX_COMMAND) throw new RangeError(`command is ${body.byteLength} bytes; the limit is ${MAX_COMMAND}`);
  const out = new Uint8Array(2 + body.byteLength);
  out[0] = body.byteLength & 0xff;
  out[1] = body.byteLength >> 8;
  out.set(body, 2);
  return out;
}
