// The compiled agent's command line and connection handling, run as a user would run it.
import { describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import pkg from "../../package.json" with { type: "json" };
import { POLLIN, SHUT_WR, close, shutdown, write } from "../../src/sys/socket.ts";
import { unixAccept, unixConnect, unixListen, waitFd } from "../../src/sys/vsock.ts";
import { lines, runAgent, startAgent } from "../helpers/agent.ts";
import { binaryTests } from "../helpers/binary.ts";
import { startPyHost } from "../helpers/pyhost.ts";

const dir = binaryTests();

// Every invocation names a Unix socket that nobody serves and allows one attempt, so that even if an
// argument were wrongly accepted the agent would fail fast on a file, never dial AF_VSOCK.
const NOBODY = ["--unix", dir.file("nobody.sock"), "--retry", "0"];

describe("--help and --version", () => {
  test("--help prints usage with exit codes and examples on stdout, exit 0", async () => {
    const r = await runAgent([...NOBODY, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("vsock_guest_exec");
    expect(r.stdout).toContain("--unix");
    expect(r.stdout).toContain("EXIT STATUS");
    expect(r.stderr).toBe("");
  });

  test("-h is --help", async () => {
    const r = await runAgent([...NOBODY, "-h"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("EXIT STATUS");
  });

  test.each([["--version"], ["-V"]])("%s prints the package version, exit 0", async (flag) => {
    const r = await runAgent([...NOBODY, flag]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${pkg.version}\n`);
    expect(r.stderr).toBe("");
  });

  test("help text has no colour codes when not on a terminal", async () => {
    const r = await runAgent([...NOBODY, "--help"], { env: { PATH: "/usr/bin:/bin", TERM: "xterm-256color" } });
    expect(r.stdout).not.toContain("\x1b[");
  });
});

describe("bad command lines: one line on stderr, exit 2, before any connection", () => {
  const cases: [string, string[], string][] = [
    ["unknown option", ["--bogus"], "unknown option --bogus"],
    ["unknown short option", ["-x"], "unknown option -x"],
    ["missing value", ["--pause"], "--pause needs a value"],
    ["non-number", ["--pause", "soon"], "--pause"],
    ["out of range", ["--pause", "0"], "--pause"],
    ["negative retry", ["--retry", "-5"], "--retry"],
    ["a third positional", ["persistent", "a", "b"], 'unexpected argument "b"'],
    ["an address with --unix", ["2:1024"], "the only argument is the mode"],
  ];
  test.concurrent.each(cases)("%s: %j", async (_, extra, part) => {
    const r = await runAgent([...NOBODY, ...extra]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const err = lines(r.stderr);
    expect(err).toHaveLength(1);
    expect(err[0]).toContain(part);
    expect(err[0]).toStartWith("vsock_guest_exec: error: ");
    expect(err[0]).not.toContain("connect"); // it never got as far as dialing
  });
});

describe("cannot connect: exit 1 with one line naming the syscall and errno", () => {
  test("--retry 0, no socket file: connect: ENOENT, at once", async () => {
    const r = await runAgent(["--unix", dir.file("missing.sock"), "--retry", "0"]);
    expect(r.code).toBe(1);
    expect(r.ms).toBeLessThan(3000);
    const err = lines(r.stderr);
    expect(err).toHaveLength(1);
    expect(err[0]).toContain("connect: ENOENT");
    expect(err[0]).toContain(dir.file("missing.sock"));
  });

  test("--retry 0, a socket file nobody listens on: connect: ECONNREFUSED", async () => {
    const path = dir.file("stale.sock");
    close(unixListen(path));
    const r = await runAgent(["--unix", path, "--retry", "0"]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([expect.stringContaining("connect: ECONNREFUSED")]);
  });

  test("--retry 0, a regular file: connect: ECONNREFUSED", async () => {
    const path = dir.file("plain-file");
    writeFileSync(path, "");
    const r = await runAgent(["--unix", path, "--retry", "0"]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([expect.stringContaining("connect: ECONNREFUSED")]);
  });

  test("a socket path over the 107-byte sun_path limit fails at once, without retrying, in one line", async () => {
    const long = dir.file("x".repeat(120));
    const r = await runAgent(["--unix", long]); // default --retry 30: must not be spent on this
    expect(r.code).toBe(2);
    expect(r.ms).toBeLessThan(3000);
    expect(lines(r.stderr)).toEqual([expect.stringContaining("the limit is 107")]);
  });

  test("--retry 1, nobody ever listens: tries for about a second, then exit 1", async () => {
    const r = await runAgent(["--unix", dir.file("never.sock"), "--retry", "1"]);
    expect(r.code).toBe(1);
    expect(r.ms).toBeGreaterThanOrEqual(900);
    expect(r.ms).toBeLessThan(5000);
    const err = lines(r.stderr);
    expect(err[0]).toContain("host not listening yet, retrying for up to 1s");
    expect(err.at(-1)).toContain("cannot connect");
    expect(err.at(-1)).toContain("connect: ENOENT");
    expect(err).toHaveLength(2); // per-attempt lines only with --verbose
  });

  test("a host that starts listening after the agent started is served", async () => {
    const sock = dir.file("late.sock");
    const agent = startAgent(["--unix", sock, "--retry", "10"], { cwd: dir.path });
    await Bun.sleep(700);
    const host = await startPyHost(sock, [{ send: "echo served-late; exit 5" }, { shutdown: true }]);
    const [r, report] = await Promise.all([agent.done, host.report]);
    expect(r.code).toBe(5);
    expect(r.stdout).toBe("served-late\n");
    expect(r.stderr).toContain("host not listening yet");
    expect(report.error).toBeNull();
  });

  test("a host whose listen backlog is full is retried (connect: EAGAIN), then served", async () => {
    const path = dir.file("full.sock");
    const listener = unixListen(path, 0);
    const filler = await unixConnect(path); // backlog 0 admits one pending connection: now it is full
    const agent = startAgent(["--unix", path, "--retry", "10", "-v"], { cwd: dir.path, timeoutMs: 10_000 });
    await Bun.sleep(600);
    expect(await waitFd(listener, POLLIN, { timeoutMs: 2000 })).toBeTruthy();
    close(unixAccept(listener)!); // the host catches up: room for the agent
    close(filler);
    expect(await waitFd(listener, POLLIN, { timeoutMs: 5000 })).toBeTruthy();
    const conn = unixAccept(listener)!;
    write(conn, new TextEncoder().encode("echo served; exit 4"));
    shutdown(conn, SHUT_WR);
    const r = await agent.done;
    close(conn);
    close(listener);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe("served\n");
    expect(r.stderr).toContain("connect: EAGAIN");
  });

  test("the retry also covers a stale socket file replaced by a live listener", async () => {
    const sock = dir.file("restart.sock");
    close(unixListen(sock)); // left over from an earlier host: ECONNREFUSED until the host is back
    const agent = startAgent(["--unix", sock, "--retry", "10", "-v"], { cwd: dir.path });
    await Bun.sleep(500);
    rmSync(sock);
    const host = await startPyHost(sock, [{ send: "exit 0" }, { shutdown: true }]);
    const [r] = await Promise.all([agent.done, host.report]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("connect: ECONNREFUSED");
  });
});
