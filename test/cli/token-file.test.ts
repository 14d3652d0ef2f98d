// `vge --token-file` with a file that cannot serve: one line naming the file and what is wrong with it,
// exit 2 (the operator's configuration, like a bad option), never a byte of the file, and nothing dialed
// or bound. Run as a user would: vge in its own process, pointed at a Unix socket this file owns.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tempDir } from "../helpers/tmp.ts";
import { vge, vgeLines } from "./_vge.ts";

const dir = tempDir("vge-token-");
// Readable by the unprivileged user the EACCES case runs vge as.
chmodSync(dir.path, 0o755);
const SECRET = "s3cr3t-w0rds";
let server: Server;
let dials = 0;
beforeAll(async () => {
  server = createServer((s) => {
    dials++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(dir.file("agent.sock"), r));
});
afterAll(() => {
  server.close();
  dir.remove();
});
const ADDR = `unix:${dir.file("agent.sock")}`;

const file = (name: string, contents: string | Uint8Array, mode = 0o600) => {
  writeFileSync(dir.file(name), contents, { mode });
  return dir.file(name);
};
mkdirSync(dir.file("a-directory"));
// Root reads any file: it does not, once CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH are out of its bounding
// set; it stays root and still reaches its own checkout (running as nobody did not, in a 0700 folder).
const NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"];
const root = process.getuid?.() === 0;

const cases: [string, string, string, string[]?][] = [
  ["missing", dir.file("missing"), "cannot read it: ENOENT: no such file or directory"],
  ["unreadable", file("unreadable", `${SECRET}-long-enough\n`, 0o000), "cannot read it: EACCES: permission denied", root ? NO_DAC : undefined],
  ["a directory", dir.file("a-directory"), "cannot read it: EISDIR: illegal operation on a directory"],
  ["empty", file("empty", ""), "the token has 0 bytes; at least 16 are required (make one with: head -c 32 /dev/urandom | base64 > FILE)"],
  ["only a newline", file("newline", "\n"), "the token has 0 bytes; at least 16 are required (make one with: head -c 32 /dev/urandom | base64 > FILE)"],
  ["too short", file("short", `${SECRET}\n`), `the token has ${SECRET.length} bytes; at least 16 are required (make one with: head -c 32 /dev/urandom | base64 > FILE)`],
  ["without end (/dev/zero)", "/dev/zero", "more than 65536 bytes; a token is one short line (make one with: head -c 32 /dev/urandom | base64 > FILE)"],
];

for (const [what, path, problem, prefix] of cases) {
  test(`a token file that is ${what}: one line naming it and the problem, exit 2, nothing dialed`, async () => {
    const before = dials;
    const r = await vge(["info", "--token-file", path, ADDR], { prefix, timeoutMs: 15_000 });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`vge: error: token file ${path}: ${problem} (see vge --help)\n`);
    expect(r.stderr).not.toContain(SECRET);
    // Refused before any connection; /dev/zero is read no further than the bound, not forever.
    expect(dials).toBe(before);
    expect(r.ms).toBeLessThan(5_000);
  }, 20_000);
}

// vge shell goes through the same openGuest, but first wants a terminal on stdin (also exit 2).
test("every command that takes --token-file refuses a missing one the same way, before dialing or binding", async () => {
  const missing = dir.file("missing");
  const line = `vge: error: token file ${missing}: cannot read it: ENOENT: no such file or directory (see vge --help)`;
  const listenAt = dir.file("listen.sock");
  const before = dials;
  for (const args of [
    ["run", ADDR, "--", "true"],
    ["run", `unix-listen:${listenAt}`, "--", "true"],
    ["cp", ADDR, dir.file("empty"), ":/tmp/x"],
    ["forward", ADDR, "0:127.0.0.1:80"],
    ["wait", ADDR, "--timeout", "1"],
    ["ps", ADDR],
    ["attach", ADDR, "job"],
    ["kill", ADDR, "job"],
  ]) {
    const r = await vge([args[0]!, "--token-file", missing, ...args.slice(1)], { timeoutMs: 15_000 });
    expect({ args, code: r.code, lines: vgeLines(r.stderr) }).toEqual({ args, code: 2, lines: [line] });
  }
  expect(dials).toBe(before);
  expect(existsSync(listenAt)).toBe(false);
}, 60_000);

test("a good token file is read and vge goes on to the guest (here: one that hangs up, exit 255)", async () => {
  const before = dials;
  const r = await vge(["info", "--token-file", file("good", `${SECRET}-long-enough\n`), ADDR], { timeoutMs: 15_000 });
  expect(r.code).toBe(255);
  expect(dials).toBe(before + 1);
  expect(r.stderr).not.toContain(SECRET);
}, 20_000);
