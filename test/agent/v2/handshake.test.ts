// The agent's handshake (PROTOCOL.md §11) fed hand-made frames, as a hostile host would send them, with
// its nonce injected so that its first WELCOME can be compared with the committed vector byte for byte.
import { describe, expect, test } from "bun:test";
import { T, decodeJson, encodeJson, type Frame } from "../../../src/protocol/v2/frame.ts";
import { FrameDecoder } from "../../../src/protocol/v2/decoder.ts";
import { AgentHandshake } from "../../../src/agent/v2/handshake.ts";
import vectors from "../../vectors/v2.json" with { type: "json" };

const h = (s: string) => new Uint8Array(Buffer.from(s, "hex"));
const a = vectors.auth;
const token = h(a.token_hex);
const agentNonce = h(a.agent_nonce_hex);
const frame = (bytes: Uint8Array): Frame => new FrameDecoder().push(bytes)[0]!;
const vector = (name: string) => vectors.vectors.find((v) => v.name === name)!;

describe("the agent's handshake (nonce injected)", () => {
  const helloAuth = frame(h(vector("hello with auth").hex));
  const plainHello = frame(h(vector("hello").hex));
  const run = (tok: Uint8Array | undefined, frames: Frame[]) => {
    const hs = new AgentHandshake(tok, () => agentNonce);
    const sent: Frame[] = [];
    const results = frames.map((f) => hs.step(f, (b) => sent.push(frame(b))));
    return { sent, results };
  };
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return (e as { code?: string }).code ?? "EPROTO";
    }
    return "none";
  };

  test("with the token: the byte-exact minimal WELCOME, then after a valid AUTH the full one", () => {
    const { sent, results } = run(token, [helloAuth, frame(h(vector("auth").hex))]);
    expect(results).toEqual([false, true]);
    expect(Buffer.from(encodeJson(sent[0]!.type, 0, decodeJson(sent[0]!))).toString("hex")).toBe(vector("welcome with auth").hex);
    const full = decodeJson(sent[1]!);
    expect(full.hostname).toBeString();
    expect(full.auth).toBeUndefined();
  });

  test("the minimal WELCOME discloses nothing about the guest", () => {
    const { sent } = run(token, [helloAuth]);
    expect(Object.keys(decodeJson(sent[0]!)).sort()).toEqual(["auth", "version"]);
  });

  test("hostile hosts are refused with EAUTH and nothing is disclosed", () => {
    const wrong = frame(encodeJson(T.AUTH, 0, { proof: "00".repeat(32) }));
    const reflected = frame(encodeJson(T.AUTH, 0, { proof: a.agent_proof_hex }));
    const exec = frame(encodeJson(T.EXEC, 1, { argv: ["true"] }));
    const hs = () => new AgentHandshake(token, () => agentNonce);
    for (const [what, second] of [["wrong proof", wrong], ["reflected agent proof", reflected], ["EXEC instead of AUTH", exec], ["a second HELLO", helloAuth]] as const) {
      const x = hs();
      const sent: Frame[] = [];
      x.step(helloAuth, (b) => sent.push(frame(b)));
      expect([what, code(() => x.step(second, (b) => sent.push(frame(b))))]).toEqual([what, "EAUTH"]);
      expect(sent).toHaveLength(1);
    }
    // No auth at all in HELLO: refused before any WELCOME.
    const sent: Frame[] = [];
    expect(code(() => hs().step(plainHello, (b) => sent.push(frame(b))))).toBe("EAUTH");
    expect(sent).toHaveLength(0);
    // A malformed nonce.
    const badNonce = frame(encodeJson(T.HELLO, 0, { versions: [2], auth: { nonce: "zz" } }));
    expect(code(() => hs().step(badNonce, () => {}))).toBe("EAUTH");
  });

  test("without a token: HELLO with or without auth gets the full WELCOME at once", () => {
    for (const hello of [plainHello, helloAuth]) {
      const { sent, results } = run(undefined, [hello]);
      expect(results).toEqual([true]);
      expect(decodeJson(sent[0]!).hostname).toBeString();
    }
  });
});
