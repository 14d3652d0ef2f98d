// The agent's command line, parsed the way main.ts parses it: strict argv split, citty, then toConfig.
import { describe, expect, test } from "bun:test";
import { parseArgs } from "citty";
import { UsageError, splitArgv } from "../../src/common/argv.ts";
import { agentArgs, toConfig, type AgentConfig } from "../../src/agent/cli.ts";

const ANY = 4294967295;

function configOf(argv: string[]): AgentConfig {
  return toConfig(parseArgs(splitArgv(argv, agentArgs), agentArgs) as never);
}

describe("accepted command lines", () => {
  const defaults = { mode: "disposable", retryMs: 30_000, pauseMs: 250, verbose: false } as const;
  // [argv, expected subset of the config, number of warnings]
  const cases: [string[], Partial<AgentConfig>, number][] = [
    [[], { target: { kind: "vsock", cid: 2, port: 1024 }, ...defaults }, 0],
    // The original positional forms.
    [["foo:bar"], { target: { kind: "vsock", cid: 2, port: 1024 } }, 2],
    [["-1:"], { target: { kind: "vsock", cid: ANY, port: 1024 } }, 0],
    [[":1025"], { target: { kind: "vsock", cid: 2, port: 1025 } }, 0],
    [["1:2049"], { target: { kind: "vsock", cid: 1, port: 2049 } }, 0],
    [[":1025", "persistent"], { target: { kind: "vsock", cid: 2, port: 1025 }, mode: "persistent" }, 0],
    [["-1:", "persistent"], { target: { kind: "vsock", cid: ANY, port: 1024 }, mode: "persistent" }, 0],
    [["2:1024", "other"], { mode: "disposable" }, 1],
    // A lone "persistent" names the mode, with the default address.
    [["persistent"], { target: { kind: "vsock", cid: 2, port: 1024 }, mode: "persistent" }, 0],
    [["--", "-1:"], { target: { kind: "vsock", cid: ANY, port: 1024 } }, 0],
    // The explicit options take any 32-bit CID and port.
    [["--cid", "3"], { target: { kind: "vsock", cid: 3, port: 1024 } }, 0],
    [["--cid", "-1"], { target: { kind: "vsock", cid: ANY, port: 1024 } }, 0],
    [["--cid=-1"], { target: { kind: "vsock", cid: ANY, port: 1024 } }, 0],
    [["--cid", "4294967295"], { target: { kind: "vsock", cid: ANY, port: 1024 } }, 0],
    [["--cid=7", "--port=5000"], { target: { kind: "vsock", cid: 7, port: 5000 } }, 0],
    [["--port", "70000"], { target: { kind: "vsock", cid: 2, port: 70000 } }, 0],
    [["--cid", "3", "persistent"], { target: { kind: "vsock", cid: 3, port: 1024 }, mode: "persistent" }, 0],
    // Unix sockets, with the mode alone as the positional.
    [["--unix", "/run/h.sock"], { target: { kind: "unix", path: "/run/h.sock" }, mode: "disposable" }, 0],
    [["--unix", "/run/h.sock", "persistent"], { target: { kind: "unix", path: "/run/h.sock" }, mode: "persistent" }, 0],
    [["persistent", "--unix=/run/h.sock"], { target: { kind: "unix", path: "/run/h.sock" }, mode: "persistent" }, 0],
    // Timing and logging.
    [["--retry", "0"], { retryMs: 0 }, 0],
    [["--retry", "5"], { retryMs: 5000 }, 0],
    [["--retry", "86400"], { retryMs: 86_400_000 }, 0],
    [["--pause", "1"], { pauseMs: 1 }, 0],
    [["--pause", "1000"], { pauseMs: 1000 }, 0],
    [[], { handshakeTimeoutMs: 30_000 }, 0],
    [["--handshake-timeout", "0"], { handshakeTimeoutMs: 0 }, 0],
    [["--handshake-timeout", "5"], { handshakeTimeoutMs: 5000 }, 0],
    [["--handshake-timeout=86400"], { handshakeTimeoutMs: 86_400_000 }, 0],
    [["--verbose"], { verbose: true }, 0],
    [["-v"], { verbose: true }, 0],
    [["--no-verbose"], { verbose: false }, 0],
    // Listen mode and reconnect (hosts that dial in, hosts that restart).
    [[], { listen: false, reconnect: false, allowCids: new Set([2]) }, 0],
    [["--listen", ":1025"], { listen: true, target: { kind: "vsock", cid: 2, port: 1025 } }, 0],
    [["--listen", "--allow-cid", "any"], { listen: true, allowCids: "any" }, 0],
    [["--listen", "--allow-cid", "3, 4"], { listen: true, allowCids: new Set([3, 4]) }, 0],
    [["--unix", "/run/h.sock", "--reconnect", "persistent"], { reconnect: true, mode: "persistent" }, 0],
  ];

  test.each(cases)("%j", (argv, want, warnings) => {
    const cfg = configOf(argv);
    expect(cfg).toMatchObject(want);
    expect(cfg.warnings).toHaveLength(warnings);
  });
});

describe("rejected command lines: UsageError, one line, no dialing", () => {
  // [argv, a part of the message]
  const cases: [string[], string][] = [
    [["--bogus"], "unknown option --bogus"],
    [["-x"], "unknown option -x"],
    [["--bogus=1"], "unknown option --bogus"],
    [["--unix"], "--unix needs a value"],
    [["--retry"], "--retry needs a value"],
    [["--cid="], "--cid needs a value"],
    [["--retry", "abc"], "--retry"],
    [["--retry", "-1"], "--retry"],
    [["--retry", "1.5"], "--retry"],
    [["--retry", "86401"], "--retry"],
    [["--pause", "0"], "--pause"],
    [["--pause", "60001"], "--pause"],
    [["--pause", "soon"], "--pause"],
    [["--handshake-timeout"], "--handshake-timeout needs a value"],
    [["--handshake-timeout", "-1"], "--handshake-timeout"],
    [["--handshake-timeout", "1.5"], "--handshake-timeout"],
    [["--handshake-timeout", "86401"], "--handshake-timeout"],
    [["--handshake-timeout", "soon"], "--handshake-timeout"],
    [["--cid", "-2"], "--cid"],
    [["--cid", "0x3"], "--cid"],
    [["--cid", "4294967296"], "--cid"],
    [["--port", "-1"], "--port"],
    [["--port", "4294967296"], "--port"],
    [["--port", "http"], "--port"],
    [["--unix", "/run/h.sock", "--cid", "3"], "--unix"],
    [["--unix", "/run/h.sock", "--port", "1024"], "--unix"],
    [["--unix", "/run/h.sock", "2:1024"], 'unexpected argument "2:1024"'],
    [["--unix", "/run/h.sock", "persistant"], 'the only argument is the mode "persistent"'],
    [["--unix", "/run/h.sock", "2:1024", "persistent"], "not both"],
    [[":1025", "--cid", "9"], 'unexpected argument ":1025"'],
    [["3:1025", "--cid", "5"], 'unexpected argument "3:1025"'],
    [["--unix", "/tmp/" + "x".repeat(120)], "the limit is 107"],
    [["--unix", ""], "--unix"],
    [["1:1", "persistent", "extra"], 'unexpected argument "extra"'],
    [["--listen", "--reconnect"], "--reconnect"],
    [["--allow-cid", "3"], "--allow-cid only applies with --listen"],
    [["--listen", "--allow-cid", "3,x"], "--allow-cid"],
    [["--listen", "--allow-cid", ""], "--allow-cid"],
  ];

  test.each(cases)("%j", (argv, part) => {
    let err: unknown;
    try {
      configOf(argv);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    const msg = (err as Error).message;
    expect(msg).toContain(part);
    expect(msg).not.toContain("\n");
  });
});

describe("limits", () => {
  test("defaults, and each option sets its own", () => {
    expect(configOf([]).limits).toEqual({ execs: 256, execsPerConn: 64, ptys: 32, filesPerConn: 16, tcpPerConn: 128, conns: 64, detached: 16, detachMemory: 64 * 1048576 });
    const c = configOf(["--listen", "--unix", "/run/a.sock", "--max-execs", "9", "--max-execs-per-conn", "3", "--max-ptys", "2", "--max-files-per-conn", "1", "--max-tcp-per-conn", "4", "--max-conns", "5", "--max-detached", "4", "--detach-memory", "8"]);
    expect(c.limits).toEqual({ execs: 9, execsPerConn: 3, ptys: 2, filesPerConn: 1, tcpPerConn: 4, conns: 5, detached: 4, detachMemory: 8 * 1048576 });
  });
  test.each([
    [["--max-execs", "0"], "--max-execs"],
    [["--max-ptys", "-1"], "--max-ptys"],
    [["--max-detached", "0"], "--max-detached"],
    [["--detach-memory", "0"], "--detach-memory"],
    [["--max-files-per-conn", "x"], "--max-files-per-conn"],
    [["--max-tcp-per-conn", "0"], "--max-tcp-per-conn"],
    [["--max-conns", "4"], "--max-conns only applies with --listen"],
  ])("%p is a usage error", (argv, text) => {
    expect(() => configOf(argv as string[])).toThrow(UsageError);
    expect(() => configOf(argv as string[])).toThrow(text as string);
  });
});
