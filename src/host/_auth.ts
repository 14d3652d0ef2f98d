// The host's side of authentication (PROTOCOL.md §11): the token from the options (read once), the nonce
// in HELLO, the agent's proof checked before anything more is sent, then AUTH with the host's proof.
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { NONCE_SIZE, TokenError, agentProof, checkToken, hostProof, parseWelcomeAuth, proofMatches, toHex, tokenFromFile } from "../protocol/v2/auth.ts";
import { ProtocolError, T, encodeJson } from "../protocol/v2/frame.ts";
import { GuestError } from "./errors.ts";

export interface TokenOptions {
  /** Shared secret the agent was given (`--token-file`): at least 16 bytes, used as they are. */
  token?: Uint8Array | string;
  /** A file holding it; one trailing newline is not part of the token. Read once, when the call starts. */
  tokenFile?: string;
}

/**
 * Most of a token file that is read: a token is a few dozen bytes, so more is the wrong file, and a
 * file without end (`/dev/zero`) must not fill this process's memory.
 */
export const MAX_TOKEN_FILE = 64 * 1024;

/**
 * The token in the file at `path`, read once (a pipe such as `<(pass show vm)` works too); a GuestError
 * EINVAL naming the file and its problem (missing, unreadable, empty, too short, too long), never a
 * byte of its contents.
 */
export function readTokenFile(path: string): Uint8Array {
  const buf = new Uint8Array(MAX_TOKEN_FILE + 1);
  let n = 0;
  try {
    const fd = openSync(path, "r");
    try {
      for (let got = -1; got !== 0 && n < buf.byteLength; n += got) got = readSync(fd, buf, n, buf.byteLength - n, null);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    // Node's message minus the path it repeats: "ENOENT: no such file or directory".
    const err = e as NodeJS.ErrnoException;
    const why = /^E[A-Z0-9]+: [^,]+/.exec(err.message)?.[0] ?? err.code ?? err.message;
    throw new GuestError("EINVAL", `token file ${path}: cannot read it: ${why}`);
  }
  try {
    if (n > MAX_TOKEN_FILE) throw new TokenError(`token file ${path}: more than ${MAX_TOKEN_FILE} bytes; a token is one short line (make one with: head -c 32 /dev/urandom | base64 > FILE)`);
    // A copy: the read buffer is wiped below rather than left holding the secret for the collector.
    return tokenFromFile(buf.subarray(0, n), path);
  } catch (e) {
    if (e instanceof TokenError) throw new GuestError("EINVAL", e.message);
    throw e;
  } finally {
    buf.fill(0);
  }
}

/** The token bytes, or undefined; a GuestError EINVAL (never showing the token) for a bad one. */
export function resolveToken(o: TokenOptions): Uint8Array | undefined {
  if (o.token !== undefined && o.tokenFile !== undefined) throw new GuestError("EINVAL", "give token or tokenFile, not both");
  if (o.tokenFile !== undefined) return readTokenFile(o.tokenFile);
  if (o.token === undefined) return undefined;
  try {
    return checkToken(o.token, "token option");
  } catch (e) {
    if (e instanceof TokenError) throw new GuestError("EINVAL", e.message);
    throw e;
  }
}

/** Options with the token read: retries and every accepted guest reuse it without touching the file again. */
export function withToken<O extends TokenOptions>(o: O): O {
  const token = resolveToken(o);
  return { ...o, tokenFile: undefined, token };
}

export class HostAuth {
  private readonly nonce = new Uint8Array(randomBytes(NONCE_SIZE));
  private proven = false;

  constructor(
    private readonly token: Uint8Array,
    private readonly name: string,
  ) {}

  /** HELLO's `auth` field. */
  get helloField(): { nonce: string } {
    return { nonce: toHex(this.nonce) };
  }

  /**
   * A WELCOME arrived. The first must carry the agent's proof: checked, and the AUTH frame to send is
   * returned. The second (after AUTH) is the full WELCOME: undefined. A wrong or missing proof is a
   * GuestError EAUTH, and the caller sends nothing more.
   */
  onWelcome(w: { auth?: unknown }): Uint8Array | undefined {
    if (this.proven) {
      if (w.auth !== undefined) throw new ProtocolError("a second WELCOME with auth");
      return undefined;
    }
    if (w.auth === undefined) throw new GuestError("EAUTH", `${this.name}: the agent does not authenticate (it was started without --token-file, or is older); refusing it`);
    let a: { nonce: Uint8Array; proof: Uint8Array };
    try {
      a = parseWelcomeAuth(w.auth);
    } catch (e) {
      throw new GuestError("EAUTH", `${this.name}: ${(e as Error).message}`);
    }
    if (!proofMatches(agentProof(this.token, this.nonce, a.nonce), a.proof)) throw new GuestError("EAUTH", `${this.name}: wrong proof from the agent; it does not hold this token`);
    this.proven = true;
    return encodeJson(T.AUTH, 0, { proof: toHex(hostProof(this.token, this.nonce, a.nonce)) });
  }
}
