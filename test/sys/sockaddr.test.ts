// Byte-exact socket addresses: struct sockaddr_vm (16 bytes) and struct sockaddr_un.
import { describe, expect, test } from "bun:test";
import {
  AF_UNIX,
  AF_VSOCK,
  SOCKADDR_UN_SIZE,
  SOCKADDR_VM_SIZE,
  VMADDR_CID_ANY,
  VMADDR_PORT_ANY,
  packSockaddrUn,
  packSockaddrVm,
  unpackSockaddrVm,
} from "../../src/sys/sockaddr.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex").replace(/(..)(?!$)/g, "$1 ");
const fromHex = (s: string) => new Uint8Array(Buffer.from(s.replace(/ /g, ""), "hex"));

describe("packSockaddrVm", () => {
  // u16 family (40), u16 reserved, u32 port, u32 cid, u8 flags, 3 zero bytes; little-endian.
  const vectors: [string, { cid: number; port: number }, number, string][] = [
    ["CID 3, port 1024", { cid: 3, port: 1024 }, 0, "28 00 00 00 00 04 00 00 03 00 00 00 00 00 00 00"],
    ["the host, port 1024", { cid: 2, port: 1024 }, 0, "28 00 00 00 00 04 00 00 02 00 00 00 00 00 00 00"],
    ["hypervisor, port 0", { cid: 0, port: 0 }, 0, "28 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"],
    ["local, port 1", { cid: 1, port: 1 }, 0, "28 00 00 00 01 00 00 00 01 00 00 00 00 00 00 00"],
    ["ANY, ANY", { cid: VMADDR_CID_ANY, port: VMADDR_PORT_ANY }, 0, "28 00 00 00 ff ff ff ff ff ff ff ff 00 00 00 00"],
    ["byte order", { cid: 0x12345678, port: 0x9abcdef0 }, 0, "28 00 00 00 f0 de bc 9a 78 56 34 12 00 00 00 00"],
    ["VMADDR_FLAG_TO_HOST", { cid: 3, port: 52 }, 1, "28 00 00 00 34 00 00 00 03 00 00 00 01 00 00 00"],
  ];

  test.each(vectors)("%s", (_, addr, flags, want) => {
    const got = packSockaddrVm(addr, flags);
    expect(got.byteLength).toBe(SOCKADDR_VM_SIZE);
    expect(hex(got)).toBe(want);
  });

  const bad: [string, { cid: number; port: number }][] = [
    ["negative CID", { cid: -1, port: 1 }],
    ["CID over 32 bits", { cid: 2 ** 32, port: 1 }],
    ["fractional CID", { cid: 2.5, port: 1 }],
    ["NaN CID", { cid: NaN, port: 1 }],
    ["negative port", { cid: 2, port: -1 }],
    ["port over 32 bits", { cid: 2, port: 2 ** 32 }],
    ["infinite port", { cid: 2, port: Infinity }],
  ];
  test.each(bad)("%s is a RangeError naming the field", (_, addr) => {
    expect(() => packSockaddrVm(addr)).toThrow(RangeError);
    expect(() => packSockaddrVm(addr)).toThrow(addr.cid === 2 ? /port/ : /cid/);
  });
});

describe("unpackSockaddrVm", () => {
  test.each([
    { cid: 0, port: 0 },
    { cid: 2, port: 1024 },
    { cid: 3, port: 65535 },
    { cid: VMADDR_CID_ANY, port: VMADDR_PORT_ANY },
    { cid: 0x80000000, port: 0x80000001 },
  ])("round trip %j", (addr) => {
    expect(unpackSockaddrVm(packSockaddrVm(addr))).toEqual(addr);
  });

  test("reads a sockaddr_vm that sits at an offset inside a larger buffer", () => {
    const big = new Uint8Array(32);
    big.set(packSockaddrVm({ cid: 7, port: 9 }), 8);
    expect(unpackSockaddrVm(big.subarray(8, 24))).toEqual({ cid: 7, port: 9 });
  });

  test("decodes the vector from the kernel's layout", () => {
    expect(unpackSockaddrVm(fromHex("28 00 00 00 00 04 00 00 03 00 00 00 00 00 00 00"))).toEqual({ cid: 3, port: 1024 });
  });

  test("fewer than 16 bytes is a RangeError", () => {
    expect(() => unpackSockaddrVm(new Uint8Array(15))).toThrow(RangeError);
  });

  test("another family is a RangeError naming it", () => {
    const unix = packSockaddrUn("/tmp/x").addr.subarray(0, 16);
    expect(() => unpackSockaddrVm(unix)).toThrow(/family 1/);
  });
});

describe("packSockaddrUn", () => {
  test("family, path, NUL terminator; the length counts the terminator", () => {
    const { addr, len } = packSockaddrUn("/tmp/a");
    expect(addr.byteLength).toBe(SOCKADDR_UN_SIZE);
    expect(len).toBe(2 + 6 + 1);
    expect(hex(addr.subarray(0, len))).toBe("01 00 2f 74 6d 70 2f 61 00");
    expect(addr.subarray(len).every((b) => b === 0)).toBe(true);
    expect(new DataView(addr.buffer).getUint16(0, true)).toBe(AF_UNIX);
  });

  test("the limit is 107 path bytes, counted in UTF-8 bytes, not characters", () => {
    expect(packSockaddrUn("/" + "a".repeat(106)).len).toBe(SOCKADDR_UN_SIZE);
    expect(() => packSockaddrUn("/" + "a".repeat(107))).toThrow(/108 bytes; the limit is 107/);
    // 53 two-byte characters + "/" = 107 bytes: fits. One more character does not.
    expect(packSockaddrUn("/" + "é".repeat(53)).len).toBe(SOCKADDR_UN_SIZE);
    expect(() => packSockaddrUn("/" + "é".repeat(54))).toThrow(RangeError);
  });

  test.each([
    ["empty", ""],
    ["NUL inside", "/tmp/a\0b"],
    ["abstract-namespace style leading NUL", "\0name"],
  ])("%s is a RangeError", (_, path) => {
    expect(() => packSockaddrUn(path)).toThrow(RangeError);
  });

  test("AF_VSOCK and AF_UNIX have their Linux values", () => {
    expect(AF_VSOCK).toBe(40);
    expect(AF_UNIX).toBe(1);
  });
});
