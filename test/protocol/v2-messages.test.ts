// Decoding host frames into checked values (PROTOCOL.md §3): one bad value per field is a ProtocolError
// naming the field; good values come out typed, signals resolved to their Linux numbers.
import { describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/protocol/v2/frame.ts";
import { decodeExec, decodeGet, decodeHello, decodePut, decodeResize, decodeSignal, validateExec } from "../../src/protocol/v2/messages.ts";
import { lookupSignal, signalName, signalNumber } from "../../src/protocol/v2/signals.ts";

const ok = { argv: ["true"] };

// [what, body, text the error must contain]
const badExec: [string, Record<string, unknown>, string][] = [
  ["neither argv nor shell", {}, "exactly one"],
  ["argv empty", { argv: [] }, "argv"],
  ["argv item with NUL", { argv: ["a\0b"] }, "argv[0]"],
  ["shell with NUL", { shell: "x\0" }, "shell"],
  ["env name with =", { ...ok, env: { "A=B": "x" } }, "env name"],
  ["env name with NUL", { ...ok, env: { "A\0": "x" } }, "env name"],
  ["env value with NUL", { ...ok, env: { A: "x\0" } }, "env A"],
  ["env value a number", { ...ok, env: { A: 1 } }, "env A"],
  ["cwd with NUL", { ...ok, cwd: "/\0" }, "cwd"],
  ["cwd empty", { ...ok, cwd: "" }, "cwd"],
  ["user with NUL", { ...ok, user: "r\0" }, "user"],
  ["uid negative", { ...ok, uid: -1 }, "uid"],
  ["gid 2^32", { ...ok, gid: 2 ** 32 }, "gid"],
  // (uid_t)-1 is "no change" to setuid/chown: asking for it would leave the process root.
  ["uid 4294967295", { ...ok, uid: 4294967295 }, "uid"],
  ["gid 4294967295", { ...ok, gid: 4294967295 }, "gid"],
  ["user 4294967295 (a decimal user is a uid)", { ...ok, user: "4294967295" }, "user"],
  ["user 99999999999", { ...ok, user: "99999999999" }, "user"],
  ["stdin other", { ...ok, stdin: "tty" }, "stdin"],
  ["pty not an object", { ...ok, pty: [80, 24] }, "pty"],
  ["pty cols 0", { ...ok, pty: { cols: 0, rows: 24 } }, "pty.cols"],
  ["pty cols -5", { ...ok, pty: { cols: -5, rows: 24 } }, "pty.cols"],
  ["pty rows 65536", { ...ok, pty: { cols: 80, rows: 65536 } }, "pty.rows"],
  ["pty rows 2.5", { ...ok, pty: { cols: 80, rows: 2.5 } }, "pty.rows"],
  ["pty term with NUL", { ...ok, pty: { cols: 80, rows: 24, term: "x\0" } }, "pty.term"],
  ["merge a string", { ...ok, merge: "yes" }, "merge"],
  ["timeoutMs 0", { ...ok, timeoutMs: 0 }, "timeoutMs"],
  ["timeoutMs 2^32", { ...ok, timeoutMs: 2 ** 32 }, "timeoutMs"],
  ["timeoutMs NaN-ish string", { ...ok, timeoutMs: "5" }, "timeoutMs"],
  ["killSignal SIGFOO", { ...ok, killSignal: "SIGFOO" }, "SIGFOO"],
  ["killSignal a number", { ...ok, killSignal: 9 }, "killSignal"],
];

describe("decodeExec refuses", () => {
  test.each(badExec)("%s", (_what, body, text) => {
    expect(() => decodeExec(body)).toThrow(ProtocolError);
    expect(() => decodeExec(body)).toThrow(text);
    // The host library checks with the same rules before sending.
    expect(() => validateExec(body)).toThrow(ProtocolError);
  });
});

test("decodeExec: good values come out typed; the kill signal is resolved (default SIGKILL)", () => {
  expect(decodeExec(ok)).toEqual({ argv: ["true"], killSignal: { name: "SIGKILL", signo: 9 } });
  const spec = decodeExec({ shell: "x", env: { A: "1", B: null }, cwd: "/", user: "root", pty: { cols: 1, rows: 65535, term: "vt100" }, timeoutMs: 3e9, killSignal: "term", extra: 1 });
  expect(decodeExec({ ...ok, uid: 4294967294, gid: 0, user: "4294967294" })).toMatchObject({ uid: 4294967294, gid: 0, user: "4294967294" });
  expect(spec).toEqual({ shell: "x", env: { A: "1", B: null }, cwd: "/", user: "root", pty: { cols: 1, rows: 65535, term: "vt100" }, timeoutMs: 3e9, killSignal: { name: "SIGTERM", signo: 15 } });
  // validateExec hands the wire body back unchanged (nothing added to what the host sends).
  const body = { argv: ["a"], killSignal: "SIGINT" };
  expect(validateExec(body)).toBe(body as never);
});

test("decodeResize, decodeSignal, decodeHello", () => {
  expect(decodeResize({ cols: 80, rows: 24 })).toEqual({ cols: 80, rows: 24 });
  for (const bad of [{ cols: -5, rows: 24 }, { cols: 80, rows: 70000 }, { cols: 80.5, rows: 24 }, { cols: "80", rows: 24 }, { cols: 0, rows: 1 }, {}]) {
    expect(() => decodeResize(bad)).toThrow(/^RESIZE: /);
  }
  expect(decodeSignal({ signal: "SIGUSR1" })).toEqual({ name: "SIGUSR1", signo: 10 });
  expect(decodeSignal({ signal: "int" })).toEqual({ name: "SIGINT", signo: 2 });
  for (const bad of [{ signal: "SIGFOO" }, { signal: 15 }, {}, { signal: "toString" }]) expect(() => decodeSignal(bad)).toThrow(/^SIGNAL: /);
  expect(decodeHello({ versions: [2, 3] })).toEqual({ versions: [2, 3] });
  for (const bad of [{ versions: "2" }, { versions: ["2"] }, { versions: [2], client: "a\0" }]) expect(() => decodeHello(bad)).toThrow(/^HELLO: /);
});

test("decodePut and decodeGet", () => {
  expect(decodePut({ path: "/a", size: 3, mode: 0o4755, uid: 0, gid: 0 })).toEqual({ path: "/a", size: 3, mode: 0o4755, uid: 0, gid: 0 });
  for (const bad of [{ path: "a", size: 0 }, { path: "/a\0", size: 0 }, { path: "", size: 0 }, { path: "/a", size: -1 }, { path: "/a", size: 1.5 }, { path: "/a", size: 0, mode: 0o10000 }, { path: "/a", size: 0, uid: -1 }, { path: "/a", size: 0, uid: 4294967295 }, { path: "/a", size: 0, gid: 4294967295 }]) {
    expect(() => decodePut(bad)).toThrow(/^PUT: /);
  }
  // The largest real id is still accepted.
  expect(decodePut({ path: "/a", size: 0, uid: 4294967294, gid: 4294967294 })).toEqual({ path: "/a", size: 0, uid: 4294967294, gid: 4294967294 });
  expect(decodeGet({ path: "/etc/hostname", maxSize: 10 })).toEqual({ path: "/etc/hostname", maxSize: 10 });
  for (const bad of [{ path: "x" }, { path: "/x", maxSize: -1 }]) expect(() => decodeGet(bad)).toThrow(/^GET: /);
});

test("one signal table: names, short names, numbers", () => {
  expect(signalName("term")).toBe("SIGTERM");
  expect(signalName(9)).toBe("SIGKILL");
  expect(() => signalName("SIGFOO")).toThrow(TypeError);
  expect(() => signalName(64)).toThrow(TypeError);
  expect(signalNumber("SIGWINCH")).toBe(28);
  expect(signalNumber("hasOwnProperty")).toBeUndefined();
  expect(lookupSignal(15)).toEqual({ name: "SIGTERM", signo: 15 });
  expect(lookupSignal("SIGFOO")).toBeUndefined();
});

test("EXEC limits and usage decode typed; EXIT usage and oom are held to their types by the host", async () => {
  const { validateExit } = await import("../../src/protocol/v2/messages.ts");
  expect(decodeExec({ argv: ["x"], limits: { memoryBytes: 1 << 20, pids: 1, cpu: 0.01 }, usage: true })).toMatchObject({ limits: { memoryBytes: 1 << 20, pids: 1, cpu: 0.01 }, usage: true });
  const usage = { userUsec: 1, systemUsec: 2, memoryPeak: 3, from: "cgroup" };
  expect(validateExit({ status: "exited", code: 0, usage, oom: false })).toEqual({ status: "exited", code: 0, usage: usage as never, oom: false });
  expect(validateExit({ status: "exited", code: 0, usage: { userUsec: 1, systemUsec: 2, from: "rusage" } }).usage).toEqual({ userUsec: 1, systemUsec: 2, from: "rusage" });
  for (const bad of [{ usage: 1 }, { usage: { ...usage, userUsec: -1 } }, { usage: { ...usage, memoryPeak: "3" } }, { usage: { ...usage, from: "guess" } }, { usage: { ...usage, systemUsec: 2 ** 60 } }, { oom: "yes" }]) {
    expect(() => validateExit({ status: "exited", code: 0, ...bad })).toThrow(ProtocolError);
  }
});
