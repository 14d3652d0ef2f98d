// EXEC's user names → ids, read from the guest's /etc/passwd. A malformed id field never becomes root.
import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { lookupUser, UserError } from "../../../src/agent/v2/users.ts";
import { tempDir } from "../../helpers/tmp.ts";

const dir = tempDir("vge-users-");
afterAll(() => dir.remove());
const passwd = dir.file("passwd");
writeFileSync(
  passwd,
  [
    "root:x:0:0:root:/root:/bin/sh",
    "alice:x:1000:1000::/home/alice:/bin/sh",
    "blank:x:::root:/home/blank:/bin/sh",
    "spaced:x: 7:7::/:/bin/sh",
    "hex:x:0x10:16::/:/bin/sh",
    "huge:x:4294967296:1::/:/bin/sh",
    "nogid:x:5:::/:/bin/sh",
    "short:x:9",
    "",
  ].join("\n"),
);

test.each([
  ["root", { uid: 0, gid: 0, name: "root", home: "/root" }],
  ["alice", { uid: 1000, gid: 1000, name: "alice", home: "/home/alice" }],
  ["1000", { uid: 1000, gid: 1000, name: "alice" }],
  // Not in the file: a number is taken as both ids, as su and setpriv would.
  ["4242", { uid: 4242, gid: 4242 }],
])("%s resolves", (user, want) => {
  expect(lookupUser(user, passwd)).toMatchObject(want);
});

test.each([
  ["blank", "EINVAL"],
  ["spaced", "EINVAL"],
  ["hex", "EINVAL"],
  ["huge", "EINVAL"],
  ["nogid", "EINVAL"],
  ["short", "ENOENT"],
  ["nobody-here", "ENOENT"],
  ["4294967297", "ENOENT"],
])("%s is refused with %s, never run as root", (user, errno) => {
  let err: unknown;
  try {
    lookupUser(user, passwd);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UserError);
  expect((err as UserError).errno).toBe(errno);
});

test("no passwd file: numeric ids still work, names do not", () => {
  expect(lookupUser("5", dir.file("missing"))).toEqual({ uid: 5, gid: 5 });
  expect(() => lookupUser("root", dir.file("missing"))).toThrow(/no such user/);
});
