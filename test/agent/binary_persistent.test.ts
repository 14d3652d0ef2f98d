// Persistent mode, the compiled agent against legacy_host.py: u16 LE length + command, one at a time, in
// order, until the host closes.
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { lines, startAgent } from "../helpers/agent.ts";
import { binaryTests } from "../helpers/binary.ts";
import { listenUnix } from "../helpers/host.ts";
import type { Step } from "../helpers/pyhost.ts";
import { scenario } from "../helpers/scenario.ts";

const root = binaryTests();

const P = ["persistent"];
const END: Step = { shutdown: true };
const frames = (...cmds: string[]): Step[] => [...cmds.map((c) => ({ frame: c })), END];
/** A command that leaves `name` behind if it ever runs, padded with a comment to `size` bytes. */
const marking = (name: string, size: number) => {
  const cmd = `echo ran > ${name} #`;
  return cmd + "x".repeat(size - cmd.length);
};
const errors = (stderr: string) => lines(stderr).filter((l) => l.includes("error:"));

describe("commands", () => {
  test("run in order with inherited stdio; one log line each with length and status; exit 0 at close", async () => {
    const s = await scenario(root.path, frames("echo one", "echo two; exit 3", "echo three >&2; kill -TERM $$"), P);
    expect(s.agent.code).toBe(0);
    expect(s.agent.stdout).toBe("one\ntwo\n");
    expect(lines(s.agent.stderr)).toEqual([
      "vsock_guest_exec: command 1 (8 bytes) exited 0",
      "vsock_guest_exec: command 2 (16 bytes) exited 3",
      "three",
      "vsock_guest_exec: command 3 (29 bytes) killed by SIGTERM",
    ]);
  });

  test("one at a time: a slow command finishes before the next starts", async () => {
    const s = await scenario(root.path, frames("sleep 0.3; echo a >> f", "echo b >> f"), P);
    expect(s.marker("f")).toBe("a\nb\n");
  });

  test("1,000 commands run in order", async () => {
    const cmds = Array.from({ length: 1000 }, (_, i) => `echo ${i + 1} >> order`);
    const s = await scenario(root.path, frames(...cmds), P, { timeoutMs: 60_000 });
    expect(s.agent.code).toBe(0);
    expect(s.marker("order")).toBe(cmds.map((_, i) => `${i + 1}\n`).join(""));
    expect(lines(s.agent.stderr)).toHaveLength(1000);
  }, 60_000);

  test("a host that never sends a frame: exit 0, nothing logged as an error", async () => {
    const s = await scenario(root.path, [END], P);
    expect(s.agent.code).toBe(0);
    expect(errors(s.agent.stderr)).toEqual([]);
  });

  test("commands do not inherit the connection: no socket fd, and a background job does not hold it open", async () => {
    const s = await scenario(root.path, frames("sleep 3 >/dev/null 2>&1 </dev/null &", "ls -l /proc/$$/fd"), P);
    expect(s.agent.code).toBe(0);
    // fds 0-2 are the test's pipes (socketpairs under Bun); anything above would be inherited.
    const above = lines(s.agent.stdout).filter((l) => / ([3-9]|\d\d+) -> /.test(l));
    expect(above).toEqual([]);
    expect(s.host.eof_ms).toBeLessThan(2000);
  });
});

describe("frames that run nothing", () => {
  test("length 0: nothing runs, no error, the next frame runs", async () => {
    const s = await scenario(root.path, frames("", "echo ok > m"), P);
    expect(s.agent.code).toBe(0);
    expect(s.marker("m")).toBe("ok\n");
    expect(errors(s.agent.stderr)).toEqual([]);
    expect(lines(s.agent.stderr)).toEqual(["vsock_guest_exec: command 2 (11 bytes) exited 0"]);
  });

  test("a NUL inside: only the part before it runs; a NUL first: nothing runs", async () => {
    const s = await scenario(root.path, frames("echo a > a\0echo b > b", "\0echo c > c", "echo d > d"), P);
    expect(s.agent.code).toBe(0);
    expect([s.marker("a"), s.marker("b"), s.marker("c"), s.marker("d")]).toEqual(["a\n", null, null, "d\n"]);
    expect(s.agent.stderr).toContain("command 1 (10 bytes)");
  });

  test("exactly 2048 bytes runs", async () => {
    const s = await scenario(root.path, frames(marking("m", 2048)), P);
    expect(s.marker("m")).toBe("ran\n");
    expect(s.agent.stderr).toContain("command 1 (2048 bytes) exited 0");
  });

  test("2049 bytes: read and dropped with one error line, the stream stays in sync", async () => {
    const s = await scenario(root.path, [{ header: 2049 }, { send: marking("bad", 2049) }, { frame: "echo good > good" }, END], P);
    expect(s.agent.code).toBe(0);
    expect(s.marker("bad")).toBeNull();
    expect(s.marker("good")).toBe("good\n");
    expect(errors(s.agent.stderr)).toEqual(["vsock_guest_exec: error: frame 1: command is 2049 bytes, over the 2048-byte limit; dropped, nothing was run"]);
  });

  test("length 65535 (the original overflowed its stack here): dropped, then the next frame runs", async () => {
    const s = await scenario(root.path, [{ header: 65535 }, { send: marking("bad", 65535) }, { frame: "echo good > good" }, END], P);
    expect(s.agent.code).toBe(0);
    expect(s.marker("bad")).toBeNull();
    expect(s.marker("good")).toBe("good\n");
    expect(errors(s.agent.stderr)).toHaveLength(1);
    expect(errors(s.agent.stderr)[0]).toContain("65535 bytes");
  });

  test("a flood of 200 oversize frames (13 MB) is read through and dropped; the next frame runs", async () => {
    // Too big for legacy_host.py's argv: an in-process host sends it.
    const dir = mkdtempSync(join(root.path, "flood"));
    const host = await listenUnix(join(dir, "h.sock"));
    const agent = startAgent(["--unix", host.path, ...P], { cwd: dir });
    const conn = await host.accepted;
    const oversize = Buffer.concat([Buffer.from([0xff, 0xff]), Buffer.alloc(65535, "x")]);
    for (let i = 0; i < 200; i++) await conn.send(oversize);
    await conn.send(Buffer.concat([Buffer.from([16, 0]), Buffer.from("echo after-flood")]));
    conn.shutdownWrite();
    const r = await agent.done;
    await host.close();
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("after-flood\n");
    expect(errors(r.stderr)).toHaveLength(200);
  });

  test("length 65535 whose body comes after a pause is still an original-format frame", async () => {
    // FF FF also starts the v2 magic; without the rest of the magic it must stay a legacy frame.
    const s = await scenario(root.path, [{ header: 65535 }, { sleep_ms: 400 }, { send: marking("bad", 65535) }, { frame: "echo good > good" }, END], P);
    expect(s.agent.code).toBe(0);
    expect(s.marker("bad")).toBeNull();
    expect(s.marker("good")).toBe("good\n");
  });
});

describe("frames cut short: exit 3, nothing of the cut frame runs", () => {
  const cases: [string, Step[], string][] = [
    ["EOF inside the header", [{ send_hex: "05" }, END], "after 1 of 2 bytes"],
    ["EOF right after the header", [{ header: 20 }, END], "after 0 of 20 bytes"],
    ["EOF inside the body", [{ header: 20 }, { send: "echo cut > m" }, END], "after 12 of 20 bytes"],
    ["EOF inside an oversize body", [{ header: 65535 }, { send: "x".repeat(1000) }, END], "after 1000 of 65535 bytes"],
    ["the host closes both ways mid-frame", [{ frame: "echo ok > ok" }, { header: 20 }, { send: "echo cut > m" }, { close: true }], "after 12 of 20 bytes"],
  ];
  test.each(cases)("%s", async (_, steps, part) => {
    const s = await scenario(root.path, steps, P);
    expect(s.agent.code).toBe(3);
    expect(s.agent.signal).toBeNull();
    expect(s.marker("m")).toBeNull();
    const errs = errors(s.agent.stderr);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toContain(part);
    expect(errs[0]).toContain("nothing was run");
  });

  test("the frames before the cut one ran", async () => {
    const s = await scenario(root.path, [{ frame: "echo ok > ok" }, { header: 20 }, { send: "echo cut > m" }, { close: true }], P);
    expect(s.marker("ok")).toBe("ok\n");
  });
});

describe("frames split across writes", () => {
  test("header and body split with pauses between the pieces: the frame runs whole", async () => {
    // Caught a busy loop in ByteReader.readExact: with part of a frame buffered the agent spun at 100% CPU
    // and never read the rest.
    const body = "echo split > m";
    const head = Buffer.from([body.length, 0]).toString("hex");
    const steps: Step[] = [
      { send_hex: head.slice(0, 2) },
      { sleep_ms: 100 },
      { send_hex: head.slice(2) + Buffer.from(body.slice(0, 5)).toString("hex") },
      { sleep_ms: 100 },
      { send: body.slice(5) },
      END,
    ];
    const s = await scenario(root.path, steps, P, { timeoutMs: 10_000 });
    expect(s.agent.code).toBe(0);
    expect(s.marker("m")).toBe("split\n");
  });
});

describe("secrets stay out of the log", () => {
  const SECRET = "hunter2-Sup3rS3cret-token";

  test("without --verbose the command text is not logged", async () => {
    const s = await scenario(root.path, frames(`true ${SECRET}`), P);
    expect(s.agent.code).toBe(0);
    expect(s.agent.stderr).not.toContain(SECRET);
    expect(s.agent.stderr).toContain(`command 1 (${5 + SECRET.length} bytes) exited 0`);
  });

  test("with --verbose it is", async () => {
    const s = await scenario(root.path, frames(`true ${SECRET}`), ["--verbose", ...P]);
    expect(s.agent.stderr).toContain(SECRET);
  });
});
