// The host library reads a token file once, before dialing or binding, and a file that cannot serve is a
// GuestError EINVAL naming it and the problem (it used to be Node's raw ENOENT/EISDIR, with no code of ours
// for a caller to branch on, or an endless read of /dev/zero). Never a byte of the file.
import { afterAll, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { GuestError, connect, listen, readTokenFile } from "../../src/host/index.ts";
import { tempDir } from "../helpers/tmp.ts";

const dir = tempDir("vge-htoken-");
afterAll(() => dir.remove());

async function rejection(p: Promise<unknown>): Promise<GuestError> {
  const e = await p.then(() => undefined, (e: unknown) => e);
  expect(e).toBeInstanceOf(GuestError);
  return e as GuestError;
}

test("connect and listen: a missing or short token file is EINVAL before any socket is touched", async () => {
  const missing = dir.file("missing");
  const c = await rejection(connect(`unix:${dir.file("nobody.sock")}`, { tokenFile: missing }));
  expect([c.code, c.message]).toEqual(["EINVAL", `token file ${missing}: cannot read it: ENOENT: no such file or directory`]);
  writeFileSync(dir.file("short"), "0123456789\n");
  const at = dir.file("listen.sock");
  const l = await rejection(listen(`unix-listen:${at}`, { tokenFile: dir.file("short") }));
  expect([l.code, l.message]).toEqual(["EINVAL", `token file ${dir.file("short")}: the token has 10 bytes; at least 16 are required (make one with: head -c 32 /dev/urandom | base64 > FILE)`]);
  expect(existsSync(at)).toBe(false);
});

test("readTokenFile: one trailing newline dropped, bounded read, the secret in no message", () => {
  writeFileSync(dir.file("good"), "a-token-of-enough-length\r\n");
  expect(new TextDecoder().decode(readTokenFile(dir.file("good")))).toBe("a-token-of-enough-length");
  // Node's readFileSync took 13 s and 6 GiB of resident memory to give up on /dev/zero (ENOMEM).
  const rss0 = process.memoryUsage.rss();
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) expect(() => readTokenFile("/dev/zero")).toThrow("token file /dev/zero: more than 65536 bytes");
  expect(performance.now() - t0).toBeLessThan(2000);
  expect(process.memoryUsage.rss() - rss0).toBeLessThan(16 * 1024 * 1024);
  writeFileSync(dir.file("secret"), "hunter2\n");
  expect(() => readTokenFile(dir.file("secret"))).toThrow(/the token has 7 bytes/);
  let message = "";
  try {
    readTokenFile(dir.file("secret"));
  } catch (e) {
    message = (e as Error).message;
  }
  expect(message).not.toContain("hunter2");
});
