// Disposable mode, the compiled agent against hosts on a Unix socket: one command, then the agent becomes
// `/bin/sh -c COMMAND` and the host sees the connection close when the command has finished.
import { describe, expect, test } from "bun:test";
import { lines, startAgent } from "../helpers/agent.ts";
import { binaryTests } from "../helpers/binary.ts";
import { listenUnix } from "../helpers/host.ts";
import { scenario } from "../helpers/scenario.ts";
import { tempDir } from "../helpers/tmp.ts";

const root = binaryTests();

/** `echo TEXT > NAME` padded with a trailing comment to exactly `size` bytes. */
function padded(name: string, size: number): string {
  const cmd = `echo ran > ${name} #`;
  return cmd + "x".repeat(size - cmd.length);
}

describe("what runs", () => {
  test("the command's exit status becomes the agent's", async () => {
    const s = await scenario(root.path, [{ send: "echo out; echo err >&2; exit 42" }, { shutdown: true }], []);
    expect(s.agent.code).toBe(42);
    expect(s.agent.stdout).toBe("out\n");
    expect(lines(s.agent.stderr)).toContain("err");
  });

  test("a command killed by a signal: the agent ends the same way (it is the shell)", async () => {
    const s = await scenario(root.path, [{ send: "kill -TERM $$" }, { shutdown: true }], []);
    expect(s.agent.code).toBeNull();
    expect(s.agent.signal).toBe("SIGTERM");
  });

  test("the connection stays open until the command has finished", async () => {
    const s = await scenario(root.path, [{ send: "sleep 0.5; exit 0" }, { shutdown: true }], []);
    expect(s.agent.code).toBe(0);
    expect(s.host.eof_ms).toBeGreaterThanOrEqual(450);
  });

  test("the command holds the connection's fd and no other inherited fd", async () => {
    // fds of the shell beyond stdio: exactly the socket, kept open across execve on purpose.
    const s = await scenario(root.path, [{ send: "ls -l /proc/$$/fd" }, { shutdown: true }], []);
    const fds = lines(s.agent.stdout).flatMap((l) => /(\d+) -> (.*)$/.exec(l)?.slice(1, 3) ?? []);
    const extra = [];
    for (let i = 0; i < fds.length; i += 2) if (Number(fds[i]) > 2) extra.push(fds[i + 1]);
    expect(extra).toEqual([expect.stringMatching(/^socket:\[\d+\]$/)]);
  });

  test("a pipeline that relies on SIGPIPE ends (the runtime's ignored SIGPIPE is not inherited)", async () => {
    const s = await scenario(root.path, [{ send: "yes | head -n 2" }, { shutdown: true }], [], { timeoutMs: 10_000 });
    expect(s.agent.code).toBe(0);
    expect(s.agent.stdout).toBe("y\ny\n");
  });
});

describe("where the command ends", () => {
  test("three pieces with short gaps, socket left open: complete after the pause, whole", async () => {
    const s = await scenario(root.path, [{ send: "echo he" }, { sleep_ms: 50 }, { send: "llo > spl" }, { sleep_ms: 50 }, { send: "it" }], []);
    expect(s.agent.code).toBe(0);
    expect(s.marker("split")).toBe("hello\n");
    expect(s.agent.stderr).toContain("ended by pause");
  });

  test("three pieces with short gaps, then half-close: complete at EOF", async () => {
    const s = await scenario(root.path, [{ send: "echo he" }, { sleep_ms: 50 }, { send: "llo > spl" }, { sleep_ms: 50 }, { send: "it" }, { shutdown: true }], []);
    expect(s.marker("split")).toBe("hello\n");
    expect(s.agent.stderr).toContain("ended by eof");
  });

  test("a gap longer than the pause (250 ms) ends the command: the rest is not part of it", async () => {
    const s = await scenario(root.path, [{ send: "echo first > a" }, { sleep_ms: 600 }, { send: "; echo second > b" }], []);
    expect(s.marker("a")).toBe("first\n");
    expect(s.marker("b")).toBeNull();
  });

  test("--pause 1500 lets a 400 ms gap through", async () => {
    const s = await scenario(root.path, [{ send: "echo first > a" }, { sleep_ms: 400 }, { send: "; echo second > b" }], ["--pause", "1500"]);
    expect(s.marker("a")).toBe("first\n");
    expect(s.marker("b")).toBe("second\n");
  });

  test("a NUL ends the command: only the part before it runs", async () => {
    const s = await scenario(root.path, [{ send: "echo before > a\0echo after > b" }, { shutdown: true }], []);
    expect(s.agent.code).toBe(0);
    expect(s.marker("a")).toBe("before\n");
    expect(s.marker("b")).toBeNull();
    expect(s.agent.stderr).toContain("ended by nul");
  });
});

describe("the 2048-byte limit", () => {
  test.each([
    ["then half-close", true],
    ["socket left open", false],
  ])("exactly 2048 bytes runs (%s)", async (_, shutdown) => {
    const cmd = padded("m", 2048);
    expect(Buffer.byteLength(cmd)).toBe(2048);
    const s = await scenario(root.path, [{ send: cmd }, ...(shutdown ? [{ shutdown: true as const }] : [])], []);
    expect(s.agent.code).toBe(0);
    expect(s.marker("m")).toBe("ran\n");
    expect(s.agent.stderr).toContain("2048 bytes");
  });

  test.each([
    ["then half-close", true],
    ["socket left open", false],
  ])("2049 bytes is refused: exit 3, nothing ran, one error line (%s)", async (_, shutdown) => {
    const s = await scenario(root.path, [{ send: padded("m", 2049) }, ...(shutdown ? [{ shutdown: true as const }] : [])], []);
    expect(s.agent.code).toBe(3);
    expect(s.marker("m")).toBeNull();
    const err = lines(s.agent.stderr);
    expect(err).toHaveLength(1);
    expect(err[0]).toContain("longer than 2048 bytes");
  });

  test("a long stream is refused without waiting for its end", async () => {
    const s = await scenario(root.path, [{ send: padded("m", 100_000) }, { sleep_ms: 2000 }], []);
    expect(s.agent.code).toBe(3);
    expect(s.agent.ms).toBeLessThan(1500);
    expect(s.marker("m")).toBeNull();
  });
});

describe("nothing to run: exit 3", () => {
  test.each([
    ["the host closes at once", [{ close: true as const }]],
    ["the host half-closes at once", [{ shutdown: true as const }]],
    ["a NUL first", [{ send: "\0echo no > m" }, { shutdown: true as const }]],
  ])("%s", async (_, steps) => {
    const s = await scenario(root.path, steps, []);
    expect(s.agent.code).toBe(3);
    expect(s.marker("m")).toBeNull();
    expect(lines(s.agent.stderr)).toEqual([expect.stringContaining("no command")]);
  });
});

describe("log lines on stderr", () => {
  const SECRET = "hunter2-Sup3rS3cret-token";

  test("one line with the length and how the command ended; never the text without --verbose", async () => {
    const cmd = `true ${SECRET}`;
    const s = await scenario(root.path, [{ send: cmd }, { shutdown: true }], []);
    expect(s.agent.code).toBe(0);
    expect(lines(s.agent.stderr)).toEqual([`vsock_guest_exec: running command (${cmd.length} bytes, ended by eof); its exit status becomes ours`]);
    expect(s.agent.stderr).not.toContain(SECRET);
    expect(s.agent.stdout).not.toContain(SECRET);
  });

  test("--verbose shows the text", async () => {
    const s = await scenario(root.path, [{ send: `true ${SECRET}` }, { shutdown: true }], ["--verbose"]);
    expect(s.agent.stderr).toContain(SECRET);
  });
});

describe("against an in-process host (node:net)", () => {
  test("the host sees EOF only after a 0.5 s command, whatever it does meanwhile", async () => {
    const dir = tempDir();
    try {
      const host = await listenUnix(dir.file("h.sock"));
      const agent = startAgent(["--unix", host.path], { cwd: dir.path });
      const conn = await host.accepted;
      await conn.send("sleep 0.5");
      conn.shutdownWrite();
      const sent = performance.now();
      const eofAt = await conn.eof;
      const r = await agent.done;
      expect(r.code).toBe(0);
      expect(eofAt - sent).toBeGreaterThanOrEqual(450);
      await host.close();
    } finally {
      dir.remove();
    }
  });
});
