// Bytes in any pieces → whole v2 frames (PROTOCOL.md §2). Pure: no I/O.
//
// Each byte is copied at most once. A frame that lies inside one pushed piece keeps its payload as a view
// of that piece, unless the payload is under a quarter of the memory behind it: a small payload is copied out,
// so that it never keeps a large read buffer alive (a peer sending a 1-byte frame at the end of every
// 64 KiB read would otherwise make a 256 KiB window of payload hold gigabytes). A frame split across
// pieces is assembled in a buffer of exactly its size, allocated once its header has been checked.
import { HEADER_SIZE, KNOWN_TYPES, MAX_PAYLOAD, ProtocolError, typeName, type Frame } from "./frame.ts";

/**
 * The payload as handed out: the view itself when it is at least 1/`share` of its buffer (a quarter by
 * default), else a copy of it, so whoever keeps it holds at most `share` times its size. A quarter, not a
 * half: 64 KiB frames arrive in reads of up to 256 KiB, and copying those out cost the agent a fifth more
 * CPU per GiB of PUT and stdin (bench/README.md). The copy is `new Uint8Array(view)`, not `view.slice()`:
 * Bun's sockets hand their reads over as Buffers, whose slice() is a view (Node's Buffer semantics), so
 * slice() copied nothing and every small payload kept its whole read buffer alive.
 */
export function ownPayload(view: Uint8Array, share = 4): Uint8Array {
  return view.byteLength * share >= view.buffer.byteLength ? view : new Uint8Array(view);
}

/**
 * Incremental decoder: bytes in any pieces, whole frames out (`frames`, or `push` for an array). Throws
 * ProtocolError on a length outside 5..5+MAX_PAYLOAD or an unknown type, before buffering the body, so a
 * bad length never allocates. Payloads may be views of the bytes given: the caller must not write into
 * them afterwards.
 */
export class FrameDecoder {
  /** The header of a split frame, as far as it has come. */
  private readonly head = new Uint8Array(HEADER_SIZE);
  private headHave = 0;
  /** The body of a split frame whose header was whole and valid: type, id and payload being filled. */
  private body: Frame | undefined;
  private bodyHave = 0;
  private failed: ProtocolError | undefined;


  /**
   * The frames that `bytes` completes, one at a time: decoding goes only as far as the consumer takes, so
   * one read of thousands of tiny frames is never held as thousands of objects at once, and a consumer
   * that fails at the first bad one decodes no further. A bad header throws when iteration reaches it,
   * after the good frames before it, and every later call throws it again.
   */
  *frames(bytes: Uint8Array): Generator<Frame, void, undefined> {
    if (this.failed) throw this.failed;
    let off = 0;
    try {
      while (off < bytes.byteLength || (this.body && this.bodyHave === this.body.payload.byteLength)) {
        if (this.body) {
          const payload = this.body.payload;
          const k = Math.min(payload.byteLength - this.bodyHave, bytes.byteLength - off);
          payload.set(bytes.subarray(off, off + k), this.bodyHave);
          this.bodyHave += k;
          off += k;
          if (this.bodyHave === payload.byteLength) {
            const f = this.body;
            this.body = undefined;
            yield f;
          }
          continue;
        }
        if (this.headHave === 0 && bytes.byteLength - off >= HEADER_SIZE) {
          const { type, id, end } = checkHeader(bytes, off);
          if (bytes.byteLength - off >= end) {
            const at = off;
            off += end;
            yield { type, id, payload: ownPayload(bytes.subarray(at + HEADER_SIZE, at + end)) };
          } else {
            off += HEADER_SIZE;
            this.startBody(type, id, end);
          }
          continue;
        }
        const k = Math.min(HEADER_SIZE - this.headHave, bytes.byteLength - off);
        this.head.set(bytes.subarray(off, off + k), this.headHave);
        this.headHave += k;
        off += k;
        if (this.headHave === HEADER_SIZE) {
          const { type, id, end } = checkHeader(this.head, 0);
          this.headHave = 0;
          this.startBody(type, id, end);
        }
      }
    } catch (e) {
      if (e instanceof ProtocolError) {
        this.failed = e;
        this.headHave = 0;
        this.body = undefined;
      }
      throw e;
    }
  }

  /**
   * All the frames `bytes` completes, as an array. The good frames before a bad one are returned first;
   * the error comes with the next push (or `finish`).
   */
  push(bytes: Uint8Array): Frame[] {
    if (this.failed) throw this.failed;
    const out: Frame[] = [];
    try {
      for (const f of this.frames(bytes)) out.push(f);
    } catch (e) {
      if (!(e instanceof ProtocolError) || out.length === 0) throw e;
    }
    return out;
  }

  /** Throws the error held back by `push`, if any. */
  finish(): void {
    if (this.failed) throw this.failed;
  }

  /** Bytes held that do not yet make a whole frame. */
  get pending(): number {
    return this.body ? HEADER_SIZE + this.bodyHave : this.headHave;
  }

  private startBody(type: number, id: number, end: number): void {
    this.body = { type, id, payload: new Uint8Array(end - HEADER_SIZE) };
    this.bodyHave = 0;
  }
}

/** The header at `off`, checked: its type, id and where the frame ends (relative to `off`). */
function checkHeader(b: Uint8Array, off: number): { type: number; id: number; end: number } {
  const v = new DataView(b.buffer, b.byteOffset + off, HEADER_SIZE);
  const len = v.getUint32(0, true);
  const type = v.getUint8(4);
  if (len < 5 || len > 5 + MAX_PAYLOAD) throw new ProtocolError(`frame length ${len} is outside 5..${5 + MAX_PAYLOAD}`);
  if (!KNOWN_TYPES.has(type)) throw new ProtocolError(`unknown frame type ${typeName(type)}`);
  return { type, id: v.getUint32(5, true), end: 4 + len };
}
