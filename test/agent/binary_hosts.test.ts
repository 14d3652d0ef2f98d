// Hosts written in other languages drive the compiled agent: the wire format must hold against encoders
// that are not ours (Go's binary.LittleEndian, Python's struct).
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { lines, startAgent } from "../helpers/agent.ts";
import { binaryTests } from "../helpers/binary.ts";
import { ROOT } from "../helpers/build.ts";
import { PYTHON } from "../helpers/pyhost.ts";

const dir = binaryTests();

/** Spawns a host and resolves once it printed its "listening PATH" line; `done` resolves when it exits. */
async function startHost(argv: string[], path: string) {
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", timeout: 30_000, killSignal: "SIGKILL", env: { ...process.env, GOTOOLCHAIN: "local" } });
  const reader = proc.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${argv[0]} exited before listening: ${await new Response(proc.stderr).text()}`);
    text += new TextDecoder().decode(value);
  }
  expect(text).toStartWith(`listening ${path}\n`);
  const done = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await proc.exited;
    return { code: proc.exitCode, stdout: text, stderr: await new Response(proc.stderr).text() };
  })();
  return { done };
}

const GO = Bun.which("go");
let goHost = "";

describe.skipIf(!GO)("Go host (test/hosts/go_host, written like the original README's example)", () => {
  beforeAll(() => {
    goHost = join(dir.path, "go_host");
    const r = Bun.spawnSync([GO!, "build", "-o", goHost, "."], {
      cwd: join(ROOT, "test", "hosts", "go_host"),
      env: { ...process.env, GOTOOLCHAIN: "local" },
      stderr: "pipe",
      timeout: 120_000,
    });
    if (r.exitCode !== 0) throw new Error(`go build failed: ${r.stderr.toString()}`);
  }, 120_000);

  test("`vsock_guest_exec --unix PATH persistent` runs its `echo hello world`", async () => {
    const sock = dir.file("go1.sock");
    const host = await startHost([goHost, "-unix", sock], sock);
    const r = await startAgent(["--unix", sock, "persistent"], { cwd: dir.path }).done;
    const h = await host.done;
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("hello world\n");
    expect(lines(r.stderr)).toEqual(["vsock_guest_exec: command 1 (16 bytes) exited 0"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain("agent closed the connection");
  });

  test("several commands, up to the 2048-byte limit, in order", async () => {
    const sock = dir.file("go2.sock");
    const long = `echo long #${"x".repeat(2048 - 11)}`;
    expect(long.length).toBe(2048);
    const host = await startHost([goHost, "-unix", sock, "echo one", "printf 'two\\n'", long, "echo é"], sock);
    const r = await startAgent(["--unix", sock, "persistent"], { cwd: dir.path }).done;
    expect((await host.done).code).toBe(0);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("one\ntwo\nlong\né\n");
  });
});

if (!GO) test.skip("Go host: `go` is not on PATH; install Go to check the agent against a Go-written host", () => {});

describe.skipIf(!PYTHON)("Python host (test/hosts/legacy_host.py), command-line shorthands", () => {
  const script = join(ROOT, "test", "hosts", "legacy_host.py");

  test("--persistent CMD...: each a struct.pack('<H') frame", async () => {
    const sock = dir.file("py1.sock");
    const host = await startHost([PYTHON!, script, "--socket", sock, "--persistent", "echo hello world", "", "echo again"], sock);
    const r = await startAgent(["--unix", sock, "persistent"], { cwd: dir.path }).done;
    const h = await host.done;
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("hello world\nagain\n");
    expect(h.code).toBe(0);
    expect(JSON.parse(h.stdout.trim().split("\n").at(-1)!)).toMatchObject({ sent: 2 + 16 + 2 + 2 + 10, error: null });
  });

  test("--disposable CMD: raw bytes, half-close, EOF once the command is done", async () => {
    const sock = dir.file("py2.sock");
    const host = await startHost([PYTHON!, script, "--socket", sock, "--disposable", "echo hello world; sleep 0.3; exit 9"], sock);
    const r = await startAgent(["--unix", sock], { cwd: dir.path }).done;
    const h = await host.done;
    expect(r.code).toBe(9);
    expect(r.stdout).toBe("hello world\n");
    const report = JSON.parse(h.stdout.trim().split("\n").at(-1)!);
    expect(report.eof_ms).toBeGreaterThanOrEqual(250);
  });
});

if (!PYTHON) test.skip("Python host: python3 is not on PATH", () => {});
