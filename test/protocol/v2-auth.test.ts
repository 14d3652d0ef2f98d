// Authentication codec (PROTOCOL.md §11): the proofs against the committed vectors and the token rules.
import { describe, expect, test } from "bun:test";
import { MIN_TOKEN_BYTES, TokenError, agentProof, checkToken, fromHex, hostProof, proofMatches, toHex, tokenFromFile } from "../../src/protocol/v2/auth.ts";
import { ProtocolError } from "../../src/protocol/v2/frame.ts";
import vectors from "../vectors/v2.json" with { type: "json" };

const h = (s: string) => new Uint8Array(Buffer.from(s, "hex"));
const a = vectors.auth;
const token = h(a.token_hex);
const hostNonce = h(a.host_nonce_hex);
const agentNonce = h(a.agent_nonce_hex);

describe("proofs", () => {
  test("match the committed vectors", () => {
    expect(toHex(tokenFromFile(h(a.token_file_hex), "f"))).toBe(a.token_hex);
    expect(toHex(agentProof(token, hostNonce, agentNonce))).toBe(a.agent_proof_hex);
    expect(toHex(hostProof(token, hostNonce, agentNonce))).toBe(a.host_proof_hex);
  });

  test("the two directions differ, so a reflected proof is refused", () => {
    const ap = agentProof(token, hostNonce, agentNonce);
    const hp = hostProof(token, hostNonce, agentNonce);
    expect(proofMatches(hp, ap)).toBe(false);
    // Swapping the nonces (the agent reflecting the host's nonce back) gives yet another MAC.
    expect(proofMatches(hp, hostProof(token, agentNonce, hostNonce))).toBe(false);
    expect(proofMatches(hp, hp.slice())).toBe(true);
  });

  test("a proof of the wrong length never matches (and does not throw)", () => {
    const hp = hostProof(token, hostNonce, agentNonce);
    expect(proofMatches(hp, hp.subarray(0, 31))).toBe(false);
    expect(proofMatches(hp, new Uint8Array(0))).toBe(false);
  });

  test("nonces must be 32 bytes", () => {
    expect(() => hostProof(token, hostNonce.subarray(1), agentNonce)).toThrow(RangeError);
  });
});

describe("tokens", () => {
  test.each([
    ["LF stripped", "0123456789abcdef\n", "0123456789abcdef"],
    ["CR LF stripped", "0123456789abcdef\r\n", "0123456789abcdef"],
    ["only one newline stripped", "0123456789abcdef\n\n", "0123456789abcdef\n"],
    ["no newline: as is", "0123456789abcdef", "0123456789abcdef"],
    ["a lone CR stays", "0123456789abcdef\r", "0123456789abcdef\r"],
  ])("%s", (_n, file, tok) => {
    expect(new TextDecoder().decode(tokenFromFile(new TextEncoder().encode(file), "f"))).toBe(tok);
  });

  test("fewer than 16 bytes (after the newline) are refused with a message that does not show them", () => {
    const secret = "short-secret-1\n"; // 14 bytes + LF
    let err: unknown;
    try {
      tokenFromFile(new TextEncoder().encode(secret), "/etc/vge.token");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TokenError);
    expect((err as Error).message).toContain("/etc/vge.token");
    expect((err as Error).message).toContain(`at least ${MIN_TOKEN_BYTES}`);
    expect((err as Error).message).not.toContain("short-secret");
    expect(() => checkToken("", "token option")).toThrow(TokenError);
    expect(checkToken("x".repeat(16), "t").byteLength).toBe(16);
  });

  test("hex fields are exact: 64 lowercase digits", () => {
    expect(() => fromHex("AB".repeat(32), 32, "f")).toThrow(ProtocolError);
    expect(() => fromHex("ab".repeat(31), 32, "f")).toThrow(ProtocolError);
    expect(() => fromHex(42, 32, "f")).toThrow(ProtocolError);
    expect(fromHex("ab".repeat(32), 32, "f").byteLength).toBe(32);
  });
});
