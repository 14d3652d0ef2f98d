// The host's side of authentication (PROTOCOL.md §11): the token from the options (read once), the nonce
// in HELLO, the agent's proof checked before anything more is sent, then AUTH with the host's proof.
import { randomBytes } from "node:crypto";
import { readTokenFile as readTokenFileOnce } from "../common/token-file.ts";
import { NONCE_SIZE, TokenError, agentProof, checkToken, hostProof, parseWelcomeAuth, proofMatches, toHex } from "../protocol/v2/auth.ts";
import { ProtocolError, T, encodeJson } from "../protocol/v2/frame.ts";
import { GuestError } from "./errors.ts";

export interface TokenOptions {
  /** Shared secret the agent was given (`--token-file`): at least 16 bytes, used as they are. */
  token?: Uint8Array | string;
  /** A file holding it; one trailing newline is not part of the token. Read once, when the call starts. */
  tokenFile?: string;
}

/**
 * The token in the file at `path`, read once (a pipe such as `<(pass show vm)` works too); a GuestError
 * EINVAL naming the file and its problem (missing, unreadable, empty, too short, too long), never a
 * byte of its contents.
 */
export function readTokenFile(path: string): Uint8Array {
  try {
    return readTokenFileOnce(path);
  } catch (e) {
    if (e instanceof TokenError) throw new GuestError("EINVAL", e.message);
    throw e;
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
