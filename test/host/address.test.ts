// The address syntax, table-driven: what parses to what, and the one-line error for what does not.
import { describe, expect, test } from "bun:test";
import { AddressError, CID_ANY, formatAddress, isListenAddress, parseAddress, type Address } from "../../src/host/index.ts";

const good: [string, Address][] = [
  ["vsock:3:1024", { kind: "vsock", cid: 3, port: 1024 }],
  ["vsock:2:0", { kind: "vsock", cid: 2, port: 0 }],
  ["vsock:4294967294:4294967294", { kind: "vsock", cid: 4294967294, port: 4294967294 }],
  ["vsock-listen:1024", { kind: "vsock-listen", cid: CID_ANY, port: 1024 }],
  ["vsock-listen:-1:1024", { kind: "vsock-listen", cid: CID_ANY, port: 1024 }],
  ["vsock-listen:2:5000", { kind: "vsock-listen", cid: 2, port: 5000 }],
  ["unix:/run/vm/agent.sock", { kind: "unix", path: "/run/vm/agent.sock" }],
  ["unix:relative.sock", { kind: "unix", path: "relative.sock" }],
  ["unix:/tmp/a:b.sock", { kind: "unix", path: "/tmp/a:b.sock" }],
  ["unix-listen:/tmp/v.sock_1024", { kind: "unix-listen", path: "/tmp/v.sock_1024" }],
  ["fc:/run/fc/v.sock:1024", { kind: "fc", path: "/run/fc/v.sock", port: 1024 }],
  ["fc:/tmp/a:b/v.sock:52", { kind: "fc", path: "/tmp/a:b/v.sock", port: 52 }],
  ["fc-listen:/run/fc/v.sock:1024", { kind: "fc-listen", path: "/run/fc/v.sock", port: 1024 }],
];

const bad: [string, RegExp][] = [
  ["", /expected one of vsock:CID:PORT/],
  ["/tmp/x.sock", /expected one of/],
  ["tcp:1.2.3.4:5", /unknown kind "tcp"/],
  ["vsock:3", /expected vsock:CID:PORT/],
  ["vsock:3:1024:5", /expected vsock:CID:PORT/],
  ["vsock:x:1024", /CID must be a whole number/],
  ["vsock:-1:1024", /CID must be a whole number/],
  ["vsock:3:-5", /port must be a whole number/],
  ["vsock:3:65536x", /port must be a whole number/],
  ["vsock:4294967295:1", /CID must be 0\.\.4294967294/],
  ["vsock:3:4294967295", /port must be 0\.\.4294967294/],
  ["vsock-listen:", /port must be a whole number/],
  ["vsock-listen:1:2:3", /expected vsock-listen:PORT/],
  ["unix:", /socket path is empty/],
  ["unix-listen:", /socket path is empty/],
  [`unix:/${"x".repeat(107)}`, /108 bytes; Unix sockets allow 107/],
  ["unix:/tmp/a\0b", /NUL/],
  ["fc:/run/v.sock", /expected UDS_PATH:PORT/],
  ["fc::1024", /socket path is empty/],
  ["fc:/run/v.sock:", /port must be a whole number/],
  [`fc-listen:/${"x".repeat(103)}:1024`, /Unix sockets allow 107/],
];

describe("parseAddress", () => {
  test.each(good)("%p", (text, want) => {
    expect(parseAddress(text)).toEqual(want);
  });

  test.each(bad)("%p is refused", (text, why) => {
    let err: unknown;
    try {
      parseAddress(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AddressError);
    const msg = (err as Error).message;
    expect(msg).toMatch(why);
    expect(msg).toStartWith(`bad address "${text}": `);
    expect(msg).not.toContain("\n");
  });
});

describe("formatAddress", () => {
  test.each(good)("%p round-trips", (text, a) => {
    expect(parseAddress(formatAddress(a))).toEqual(a);
    if (text !== "vsock-listen:-1:1024") expect(formatAddress(a)).toBe(text);
  });
});

test("listen addresses are the three -listen kinds", () => {
  expect(good.filter(([, a]) => isListenAddress(a)).map(([t]) => t.split(":")[0])).toEqual(["vsock-listen", "vsock-listen", "vsock-listen", "unix-listen", "fc-listen"]);
});
