// What a hostile agent answers to TCP_OPEN before (or instead of) a proper TCP_OPENED: a clean TCP_CLOSED
// or TCP_EOF for a stream it never opened, and TCP_OPENED bodies that are not a peer address and port.
// Each must settle connectTcp() promptly with EPROTO (it once stayed pending for ever, and vge forward
// with it, holding the accepted socket); a well-formed body is handed on as checked values only.
import { expect, test } from "bun:test";
import { T, encodeFrame, encodeJson } from "../../src/protocol/index.ts";
import { connect, GuestError } from "../../src/host/index.ts";
import { GOOD_WELCOME, hostileAgents } from "./_hostile.ts";
import { tempDir } from "./_fixtures.ts";

const agent = hostileAgents(tempDir("vge-tcpo-"));
const WELCOME = { ...GOOD_WELCOME, capabilities: ["exec", "tcp"] };

/** An agent answering each TCP_OPEN with `answer(id)`. */
const answering = (answer: (id: number) => Uint8Array[]) =>
  agent({ welcome: WELCOME, onFrame: (f, sock) => f.type === T.TCP_OPEN && answer(f.id).forEach((b) => sock.write(b)) });

/** connectTcp's outcome, or "pending" if it has not settled within `ms`. */
async function settle(addr: string, ms = 5000) {
  const g = await connect(addr);
  const outcome = await Promise.race([g.connectTcp("127.0.0.1", 80).then((s) => ({ stream: s }), (e: unknown) => ({ error: e })), Bun.sleep(ms).then(() => "pending" as const)]);
  return { g, outcome };
}

const opened = (body: Record<string, unknown>) => (id: number) => [encodeJson(T.TCP_OPENED, id, body)];
const cases: [string, (id: number) => Uint8Array[], RegExp][] = [
  ["TCP_CLOSED ok:true without TCP_OPENED", (id) => [encodeJson(T.TCP_CLOSED, id, { ok: true })], /TCP_CLOSED ok:true before TCP_OPENED/],
  ["TCP_EOF before TCP_OPENED", (id) => [encodeFrame(T.TCP_EOF, id)], /TCP_EOF before TCP_OPENED/],
  ["an address that is a number", opened({ address: 5, port: 80 }), /TCP_OPENED: address must be a string/],
  ["an address with terminal escapes", opened({ address: "\u001b]0;owned\u0007\u001b[2J", port: 80 }), /TCP_OPENED: address .* is not an IP address/],
  ["an address that is a host name", opened({ address: "localhost", port: 80 }), /is not an IP address/],
  ["200 KB of address (a frame holds 256 KiB)", opened({ address: "1".repeat(200_000), port: 80 }), /is not an IP address/],
  ["a zone on an IPv4 address", opened({ address: "127.0.0.1%lo", port: 80 }), /is not an IP address/],
  ["a zone with a shell in it", opened({ address: "fe80::1%eth0;reboot", port: 80 }), /is not an IP address/],
  ["a port that is a string", opened({ address: "127.0.0.1", port: "80" }), /TCP_OPENED: port must be an integer/],
  ["port 0", opened({ address: "127.0.0.1", port: 0 }), /port must be an integer 1\.\.65535/],
  ["port 65536", opened({ address: "127.0.0.1", port: 65536 }), /port must be an integer 1\.\.65535/],
];

test.each(cases)("%s: connectTcp rejects promptly with EPROTO, the connection ends", async (_name, answer, message) => {
  const { g, outcome } = await settle((await answering(answer)).addr);
  expect(outcome).not.toBe("pending");
  const error = (outcome as { error?: unknown }).error;
  expect(error).toBeInstanceOf(GuestError);
  expect((error as GuestError).code).toBe("EPROTO");
  expect((error as Error).message).toMatch(message);
  await g.closed;
  expect(g.error?.message).toMatch(message);
});

test.each([
  ["an IPv4 peer", { address: "10.0.2.2", port: 8080, extra: { x: 1 } }, { address: "10.0.2.2", port: 8080 }],
  ["an IPv6 peer with its zone", { address: "fe80::1%eth0", port: 22 }, { address: "fe80::1%eth0", port: 22 }],
  ["a mapped IPv4 peer", { address: "::ffff:127.0.0.1", port: 80 }, { address: "::ffff:127.0.0.1", port: 80 }],
  ["no peer at all", {}, {}],
] as [string, Record<string, unknown>, Record<string, unknown>][])("%s: opened; remote holds the checked fields only", async (_name, body, remote) => {
  const { g, outcome } = await settle((await answering(opened(body))).addr);
  const stream = (outcome as { stream?: { remote: unknown; reset(): void } }).stream;
  expect(stream?.remote).toStrictEqual(remote);
  g.close();
});
