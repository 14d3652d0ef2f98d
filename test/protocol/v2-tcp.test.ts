// The TCP_OPEN checks (src/protocol/v2/tcp.ts), shared by the agent, the host library and vge forward:
// what a host may name as a target, table-driven; IP literals agree with node:net's isIP.
import { expect, test } from "bun:test";
import { isIP } from "node:net";
import { ProtocolError } from "../../src/protocol/v2/frame.ts";
import { MAX_TCP_HOST, tcpHostProblem, decodeTcpClosed, decodeTcpOpen } from "../../src/protocol/v2/tcp.ts";

const good = ["127.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "::", "fe80::1", "2001:db8::8a2e:370:7334", "1:2:3:4:5:6:7:8", "::ffff:192.0.2.1", "1:2:3:4:5:6:1.2.3.4", "localhost", "web-1.internal", "_svc.example.", "a".repeat(63), `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`];
const bad: [string, unknown][] = [
  ["empty", ""],
  ["NUL", "local\0host"],
  ["space", "a b"],
  ["slash", "a/b"],
  ["brackets", "[::1]"],
  ["label of 64", "a".repeat(64)],
  ["empty label", "a..b"],
  ["leading hyphen", "-a.b"],
  ["254 characters", "a.".repeat(127)],
  ["IPv4 of 3 parts", "1.2.3"],
  ["IPv4 over 255", "1.2.3.256"],
  ["IPv4 with a leading zero", "01.2.3.4"],
  ["9 IPv6 groups", "1:2:3:4:5:6:7:8:9"],
  ["two ::", "1::2::3"],
  ["IPv6 group of 5", "12345::"],
  ["IPv6 with a zone", "fe80::1%eth0"],
  ["IPv6 with a bad quad", "::ffff:1.2.3.999"],
  ["a number", 127001],
  ["null", null],
];

test.each(good)("accepted: %s", (host) => {
  expect(tcpHostProblem(host)).toBeUndefined();
  expect(decodeTcpOpen({ host, port: 1 })).toEqual({ host, port: 1 });
  if (host.includes(":")) expect(isIP(host)).toBe(6);
});

test.each(bad)("refused: %s", (_name, host) => {
  expect(tcpHostProblem(host)).toBeString();
  expect(() => decodeTcpOpen({ host, port: 80 })).toThrow(ProtocolError);
  // node:net takes a zone (fe80::1%eth0); the protocol does not, on purpose: the names of the guest's
  // interfaces are nothing a host should need to know.
  if (typeof host === "string" && !host.includes("%") && (host.includes(":") || /^[\d.]+$/.test(host))) expect(isIP(host)).toBe(0);
});

test("ports 1..65535 only, integers", () => {
  for (const port of [1, 80, 65535]) expect(decodeTcpOpen({ host: "h", port }).port).toBe(port);
  for (const port of [0, -1, 65536, 1.5, "80", null, undefined, Number.NaN]) expect(() => decodeTcpOpen({ host: "h", port })).toThrow(/port must be an integer 1\.\.65535/);
});

test("MAX_TCP_HOST is the DNS limit", () => {
  expect(MAX_TCP_HOST).toBe(253);
});

test("TCP_CLOSED bodies", () => {
  expect(decodeTcpClosed({ ok: true, extra: 1 })).toEqual({ ok: true });
  expect(decodeTcpClosed({ ok: false, errno: "ECONNREFUSED", message: "m" })).toEqual({ ok: false, errno: "ECONNREFUSED", message: "m" });
  for (const b of [{}, { ok: "yes" }, { ok: false }, { ok: false, errno: 1, message: "m" }]) expect(() => decodeTcpClosed(b)).toThrow(ProtocolError);
});
