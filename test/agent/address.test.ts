// The original `[CID][:PORT]` positional: which parts are taken, which fall back, and how many warnings.
import { describe, expect, test } from "bun:test";
import { DEFAULT_CID, DEFAULT_PORT, parseAddress, parseUint } from "../../src/agent/address.ts";
import { packSockaddrVm } from "../../src/sys/sockaddr.ts";

const ANY = 4294967295;

describe("parseAddress", () => {
  // [input, cid, port, number of warning lines]
  const cases: [string | undefined, number, number, number][] = [
    // Examples from the issue.
    ["foo:bar", 2, 1024, 2],
    ["-1:", ANY, 1024, 0],
    [":1025", 2, 1025, 0],
    ["1:2049", 1, 2049, 0],
    // Nothing given, or only a colon: the defaults, silently.
    [undefined, 2, 1024, 0],
    ["", 2, 1024, 0],
    [":", 2, 1024, 0],
    // Each accepted CID, alone and with a port.
    ["-1", ANY, 1024, 0],
    ["0", 0, 1024, 0],
    ["1", 1, 1024, 0],
    ["2", 2, 1024, 0],
    ["0:0", 0, 0, 0],
    ["+1", 1, 1024, 0], // a sign is part of a whole number, as for strtol
    ["2:65535", 2, 65535, 0],
    // CIDs the original does not take: default CID, one warning, the port still counts.
    ["3", 2, 1024, 1],
    ["3:1025", 2, 1025, 1],
    ["-2", 2, 1024, 1],
    ["4294967295", 2, 1024, 1], // VMADDR_CID_ANY spelled unsigned is not "-1"
    ["0x2", 2, 1024, 1],
    [" 2", 2, 1024, 1],
    ["2 ", 2, 1024, 1],
    ["1.0", 2, 1024, 1],
    ["3x", 2, 1024, 1],
    // Ports out of 0..65535 or not numbers: default port, one warning, the CID still counts.
    ["1:65536", 1, 1024, 1],
    ["1:-1", 1, 1024, 1],
    ["1:0x400", 1, 1024, 1],
    ["1: 80", 1, 1024, 1],
    ["1:2:3", 1, 1024, 1],
    ["3:99999", 2, 1024, 2],
  ];

  test.each(cases)("%p → CID %p, port %p, %p warning(s)", (input, cid, port, warnings) => {
    const got = parseAddress(input);
    expect(got.cid).toBe(cid);
    expect(got.port).toBe(port);
    expect(got.warnings).toHaveLength(warnings);
  });

  test("each warning is one line that names the rejected text and the default used", () => {
    const { warnings } = parseAddress("foo:bar");
    expect(warnings[0]).toContain('"foo"');
    expect(warnings[0]).toContain(String(DEFAULT_CID));
    expect(warnings[1]).toContain('"bar"');
    expect(warnings[1]).toContain(String(DEFAULT_PORT));
    for (const w of warnings) expect(w).not.toContain("\n");
  });

  test('"-0" and ":-0" reach the wire as CID 0 and port 0', () => {
    // parseAddress may hand back -0; only the packed bytes matter, and those must be the ones of 0.
    const { cid } = parseAddress("-0");
    const { port } = parseAddress(":-0");
    expect(packSockaddrVm({ cid, port })).toEqual(packSockaddrVm({ cid: 0, port: 0 }));
  });

  test("the defaults are CID 2 (the host) and port 1024", () => {
    expect(DEFAULT_CID).toBe(2);
    expect(DEFAULT_PORT).toBe(1024);
  });
});

describe("parseUint (the strict parser behind --cid, --port, --retry, --pause)", () => {
  const ok: [string, number, number, number][] = [
    ["0", 0, 10, 0],
    ["10", 0, 10, 10],
    ["007", 0, 10, 7],
    ["4294967295", 0, 0xffffffff, 0xffffffff],
  ];
  test.each(ok)("%p in %p..%p → %p", (text, min, max, want) => {
    expect(parseUint("--x", text, min, max)).toBe(want);
  });

  const bad: [string, number, number][] = [
    ["", 0, 10],
    ["-1", 0, 10],
    ["+1", 0, 10],
    ["1.5", 0, 10],
    ["1e3", 0, 10000],
    ["0x10", 0, 100],
    [" 1", 0, 10],
    ["11", 0, 10],
    ["0", 1, 10],
    ["4294967296", 0, 0xffffffff],
  ];
  test.each(bad)("%p in %p..%p → a message naming the option", (text, min, max) => {
    const got = parseUint("--x", text, min, max);
    expect(typeof got).toBe("string");
    expect(got as string).toContain("--x");
  });
});
