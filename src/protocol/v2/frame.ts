// v2 framing: pure functions over bytes. See PROTOCOL.md §2–3.

/**
 * Sent once by the host before anything else. As an original persistent header FF FF is length 65535,
 * a frame the original format only ever drops; as a disposable command 0xFF is not UTF-8: neither is a
 * command anyone could mean to run.
 */
export const MAGIC = new Uint8Array([0xff, 0xff, 0x56, 0x47, 0x45, 0x32, 0x0d, 0x0a]); // FF FF "VGE2" CR LF

/** Header: u32 LE length of what follows it (type + id + payload), u8 type, u32 LE id. */
export const HEADER_SIZE = 9;
/** Largest payload in one frame. Peers must reject anything larger. */
export const MAX_PAYLOAD = 256 * 1024;
/** Largest data chunk an implementation should send; leaves room under MAX_PAYLOAD. */
export const CHUNK = 64 * 1024;
/** Flow-control window per stream direction unless the hello says otherwise. */
export const DEFAULT_WINDOW = 256 * 1024;

export const T = {
  HELLO: 0x01,
  WELCOME: 0x02,
  /** Host's proof of the token (PROTOCOL.md §11); only when the agent asked for it. */
  AUTH: 0x03,
  EXEC: 0x10,
  STARTED: 0x11,
  STDIN: 0x12,
  STDIN_EOF: 0x13,
  STDOUT: 0x14,
  STDERR: 0x15,
  SIGNAL: 0x16,
  RESIZE: 0x17,
  EXIT: 0x18,
  WINDOW: 0x19,
  // Detached executions (PROTOCOL.md §5.1): job control over executions that outlive their connection.
  LIST: 0x1a,
  LISTING: 0x1b,
  ATTACH: 0x1c,
  ATTACHED: 0x1d,
  DETACHED: 0x1e,
  KILL: 0x1f,
  PUT: 0x20,
  GET: 0x21,
  FILE_DATA: 0x22,
  FILE_END: 0x23,
  RESULT: 0x24,
  PUTDIR: 0x25,
  GETDIR: 0x26,
  DIR_ENTRY: 0x27,
  DIR_END: 0x28,
  PING: 0x30,
  PONG: 0x31,
  // TCP streams (PROTOCOL.md §13): 0x40–0x4F are theirs.
  TCP_OPEN: 0x40,
  TCP_OPENED: 0x41,
  TCP_DATA: 0x42,
  TCP_EOF: 0x43,
  TCP_RESET: 0x44,
  TCP_CLOSED: 0x45,
  ERROR: 0x7f,
} as const;

export type FrameType = (typeof T)[keyof typeof T];
export const KNOWN_TYPES: ReadonlySet<number> = new Set<number>(Object.values(T));
const NAMES = new Map<number, string>(Object.entries(T).map(([k, v]) => [v, k]));

export function typeName(t: number): string {
  return NAMES.get(t) ?? `0x${t.toString(16).padStart(2, "0")}`;
}

export interface Frame {
  type: number;
  id: number;
  payload: Uint8Array;
}

/**
 * A peer broke the protocol: a malformed or out-of-range frame, never a bug of the caller's (misuse of an
 * encoder is a RangeError). `code` is what goes into ERROR {code}: "EPROTO", or a more specific one
 * ("EFLOW" credit overrun, "EAUTH", "EVERSION"), so a library user can tell a bad frame from a bug and why.
 */
export class ProtocolError extends Error {
  override name = "ProtocolError";
  readonly code: string;

  constructor(message: string, code = "EPROTO", options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** The 9-byte header alone, for a payload the caller writes right after it without copying. */
export function encodeHeader(type: number, id: number, payloadSize: number): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE);
  encodeHeaderInto(out, type, id, payloadSize);
  return out;
}

/**
 * The header written into the first HEADER_SIZE bytes of `frame`, whose payload follows it there: a sender
 * that read the payload in place after room for its header sends the frame in one write, with no copy.
 */
export function encodeHeaderInto(frame: Uint8Array, type: number, id: number, payloadSize: number): void {
  if (payloadSize > MAX_PAYLOAD) throw new RangeError(`payload of ${payloadSize} bytes exceeds ${MAX_PAYLOAD}`);
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new RangeError(`id must be a u32, got ${id}`);
  const v = new DataView(frame.buffer, frame.byteOffset, HEADER_SIZE);
  v.setUint32(0, 5 + payloadSize, true);
  v.setUint8(4, type);
  v.setUint32(5, id, true);
}

export function encodeFrame(type: number, id: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.byteLength);
  out.set(encodeHeader(type, id, payload.byteLength));
  out.set(payload, HEADER_SIZE);
  return out;
}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export function encodeJson(type: number, id: number, body: unknown): Uint8Array {
  return encodeFrame(type, id, enc.encode(JSON.stringify(body)));
}

/** A JSON object payload, or ProtocolError. */
export function decodeJson<T = Record<string, unknown>>(f: Frame): T {
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(f.payload));
  } catch {
    throw new ProtocolError(`${typeName(f.type)} frame: payload is not UTF-8 JSON`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ProtocolError(`${typeName(f.type)} frame: payload is not a JSON object`);
  return v as T;
}

export function encodeWindow(id: number, bytes: number): Uint8Array {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setUint32(0, bytes, true);
  return encodeFrame(T.WINDOW, id, p);
}

export function decodeWindow(f: Frame): number {
  if (f.payload.byteLength !== 4) throw new ProtocolError(`WINDOW frame: payload must be 4 bytes, got ${f.payload.byteLength}`);
  return new DataView(f.payload.buffer, f.payload.byteOffset, 4).getUint32(0, true);
}


/** True if `bytes` (the start of a connection) is, or may still become, the v2 magic. */
export function magicPrefixState(bytes: Uint8Array): "match" | "maybe" | "no" {
  const n = Math.min(bytes.byteLength, MAGIC.byteLength);
  for (let i = 0; i < n; i++) if (bytes[i] !== MAGIC[i]) return "no";
  return n === MAGIC.byteLength ? "match" : "maybe";
}
