// The agent's side of the hello (PROTOCOL.md §4 and §11). Without a token: HELLO → the full WELCOME.
// With one: HELLO{auth:{nonce}} → WELCOME{version, auth:{nonce, proof}} → the host's AUTH{proof}, checked
// → the full WELCOME. Until the host has proved itself the agent discloses nothing about the guest and
// serves no request: anything else is refused with EAUTH, which ends the connection.
import { ProtocolError, T, decodeJson, encodeJson, typeName, type Frame } from "../../protocol/v2/frame.ts";
import { NONCE_SIZE, agentProof, authError, hostProof, parseAuth, parseHelloAuth, proofMatches, toHex } from "../../protocol/v2/auth.ts";
import { PROTOCOL_VERSION, decodeHello } from "../../protocol/v2/messages.ts";
import { welcome } from "./facts.ts";

export class AgentHandshake {
  private expected: Uint8Array | undefined;
  /** The host failed to authenticate (no proof, a wrong one, or a request before it). */
  refused = false;

  constructor(
    private readonly token: Uint8Array | undefined,
    /** Injected for tests; the nonce must be unpredictable, or a recorded AUTH could be replayed. */
    private readonly random: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n)),
  ) {}

  /** The frame the hello is waiting for: HELLO, or with a token the host's AUTH after it. */
  get waitingFor(): "HELLO" | "AUTH" {
    return this.expected ? "AUTH" : "HELLO";
  }

  /** Takes each frame until the hello is complete; true once requests may be served. */
  step(f: Frame, send: (frame: Uint8Array) => void): boolean {
    try {
      return this.expected ? this.onAuth(f, send) : this.onHello(f, send);
    } catch (e) {
      if (e instanceof ProtocolError && e.code === "EAUTH") this.refused = true;
      throw e;
    }
  }

  private onHello(f: Frame, send: (frame: Uint8Array) => void): boolean {
    if (f.type !== T.HELLO) throw new ProtocolError(`expected HELLO, got ${typeName(f.type)}`);
    const hello = decodeJson(f);
    // Versions and client are checked as every HELLO is (messages.ts); `auth` below.
    const { versions } = decodeHello(hello);
    if (!versions.includes(PROTOCOL_VERSION)) throw new ProtocolError(`no common protocol version (host offers ${JSON.stringify(versions)}, agent speaks ${PROTOCOL_VERSION})`, "EVERSION");
    if (!this.token) {
      // A host that offers authentication to an agent without a token gets the plain WELCOME: with no
      // `auth` in it, the host knows and decides for itself (ours refuses, EAUTH).
      send(encodeJson(T.WELCOME, 0, welcome()));
      return true;
    }
    const auth = parseHelloAuth(hello.auth);
    if (!auth) throw authError("this agent requires authentication: the host sent no token proof (give the host the agent's token)");
    const agentNonce = this.random(NONCE_SIZE);
    if (agentNonce.byteLength !== NONCE_SIZE) throw new RangeError(`nonce must be ${NONCE_SIZE} bytes`);
    this.expected = hostProof(this.token, auth.nonce, agentNonce);
    send(encodeJson(T.WELCOME, 0, { version: PROTOCOL_VERSION, auth: { nonce: toHex(agentNonce), proof: toHex(agentProof(this.token, auth.nonce, agentNonce)) } }));
    return false;
  }

  private onAuth(f: Frame, send: (frame: Uint8Array) => void): boolean {
    if (f.type !== T.AUTH) throw authError(`expected AUTH, got ${typeName(f.type)}: nothing is served before the host has proved it holds the token`);
    if (f.id !== 0) throw authError(`AUTH: id must be 0, got ${f.id}`);
    if (!proofMatches(this.expected!, parseAuth(decodeJson(f)))) throw authError("AUTH: wrong proof; the host does not hold this agent's token");
    this.expected = undefined;
    send(encodeJson(T.WELCOME, 0, welcome()));
    return true;
  }
}
