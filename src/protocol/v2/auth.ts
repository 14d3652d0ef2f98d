// Optional mutual authentication (PROTOCOL.md §11): both ends prove they hold the same token without
// sending it, by HMAC-SHA256 over a nonce from each side. Pure: the nonces are passed in, so the codec is
// deterministic for the test vectors; the callers draw them from randomBytes.
import { createRequire } from "node:module";
import { ProtocolError } from "./frame.ts";

/** Bytes of each side's nonce, and of a proof (an HMAC-SHA256). */
export const NONCE_SIZE = 32;
export const PROOF_SIZE = 32;
/** A shorter token could be guessed offline from one observed proof. */
export const MIN_TOKEN_BYTES = 16;

/**
 * node:crypto, loaded at the first proof: evaluating it (and the stream modules under it) at start-up cost
 * a compiled agent ~3 ms and ~5 MiB of RSS, and only a connection with a token needs it (bench/README.md).
 * createRequire, not process.getBuiltinModule: the library supports Node 20 before 20.16.
 */
let nodeCrypto: typeof import("node:crypto") | undefined;
const crypto = () => (nodeCrypto ??= createRequire(import.meta.url)("node:crypto") as typeof import("node:crypto"));

// One label per direction, so a proof can never be replayed the other way (a reflected proof is the
// wrong MAC). They differ in length and end in NUL, so label ‖ nonces parses one way only.
const AGENT_LABEL = new TextEncoder().encode("vge2-auth agent\0");
const HOST_LABEL = new TextEncoder().encode("vge2-auth host\0");

/** A refused token (too short, empty): the message names where it came from, never its bytes. */
export class TokenError extends Error {
  override name = "TokenError";
}

/** A token given directly: at least MIN_TOKEN_BYTES bytes, used as they are. */
export function checkToken(token: Uint8Array | string, where: string): Uint8Array {
  const bytes = typeof token === "string" ? new TextEncoder().encode(token) : new Uint8Array(token);
  if (bytes.byteLength < MIN_TOKEN_BYTES) throw new TokenError(`${where}: the token has ${bytes.byteLength} bytes; at least ${MIN_TOKEN_BYTES} are required (make one with: head -c 32 /dev/urandom | base64 > FILE)`);
  return bytes;
}

/** A token file's contents: one trailing newline (LF or CR LF), as editors and `echo` add, is not part of it. */
export function tokenFromFile(contents: Uint8Array, path: string): Uint8Array {
  let end = contents.byteLength;
  if (end > 0 && contents[end - 1] === 0x0a) end--;
  if (end > 0 && contents[end - 1] === 0x0d && end === contents.byteLength - 1) end--;
  return checkToken(contents.subarray(0, end), `token file ${path}`);
}

function mac(label: Uint8Array, token: Uint8Array, hostNonce: Uint8Array, agentNonce: Uint8Array): Uint8Array {
  if (hostNonce.byteLength !== NONCE_SIZE || agentNonce.byteLength !== NONCE_SIZE) throw new RangeError(`nonces must be ${NONCE_SIZE} bytes`);
  return new Uint8Array(crypto().createHmac("sha256", token).update(label).update(hostNonce).update(agentNonce).digest());
}

/** What the agent sends in its first WELCOME: HMAC(token, "vge2-auth agent\0" ‖ host nonce ‖ agent nonce). */
export const agentProof = (token: Uint8Array, hostNonce: Uint8Array, agentNonce: Uint8Array) => mac(AGENT_LABEL, token, hostNonce, agentNonce);
/** What the host sends in AUTH: HMAC(token, "vge2-auth host\0" ‖ host nonce ‖ agent nonce). */
export const hostProof = (token: Uint8Array, hostNonce: Uint8Array, agentNonce: Uint8Array) => mac(HOST_LABEL, token, hostNonce, agentNonce);

/** Constant-time: how much of a forged proof matches must not show in the time to refuse it. */
export function proofMatches(expected: Uint8Array, got: Uint8Array): boolean {
  return got.byteLength === expected.byteLength && crypto().timingSafeEqual(expected, got);
}

export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

/** An EAUTH protocol error: the agent sends it as ERROR {code:"EAUTH"} and closes. */
export function authError(message: string): ProtocolError {
  return new ProtocolError(message, "EAUTH");
}

/** Exactly 2·size lowercase hex digits, or an EAUTH ProtocolError naming the field. */
export function fromHex(v: unknown, size: number, field: string): Uint8Array {
  if (typeof v !== "string" || v.length !== size * 2 || !/^[0-9a-f]*$/.test(v)) throw authError(`${field} must be ${size * 2} lowercase hex digits`);
  return new Uint8Array(Buffer.from(v, "hex"));
}

/** `auth` of HELLO: `{nonce}`; undefined when the host does not authenticate. */
export function parseHelloAuth(auth: unknown): { nonce: Uint8Array } | undefined {
  if (auth === undefined) return undefined;
  if (typeof auth !== "object" || auth === null) throw authError("HELLO: auth must be an object");
  return { nonce: fromHex((auth as { nonce?: unknown }).nonce, NONCE_SIZE, "HELLO auth.nonce") };
}

/** `auth` of the agent's first WELCOME: `{nonce, proof}`. */
export function parseWelcomeAuth(auth: unknown): { nonce: Uint8Array; proof: Uint8Array } {
  if (typeof auth !== "object" || auth === null) throw authError("WELCOME: auth must be an object");
  const a = auth as { nonce?: unknown; proof?: unknown };
  return { nonce: fromHex(a.nonce, NONCE_SIZE, "WELCOME auth.nonce"), proof: fromHex(a.proof, PROOF_SIZE, "WELCOME auth.proof") };
}

/** The AUTH body: `{proof}`. */
export function parseAuth(body: Record<string, unknown>): Uint8Array {
  return fromHex(body.proof, PROOF_SIZE, "AUTH proof");
}
