// execve(2) through the FFI layer: failures throw and leave us running; success replaces the process with
// clean signal state (the runtime ignores SIGPIPE, a shell must not inherit that).
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SyscallError } from "../../src/sys/_errno.ts";
import { execve } from "../../src/sys/exec.ts";
import { ROOT } from "../helpers/build.ts";
import { tempDir } from "../helpers/tmp.ts";

const SIGPIPE = 13;
const SIGXFSZ = 25;

const dir = tempDir();
afterAll(() => dir.remove());
writeFileSync(dir.file("not-executable"), "#!/bin/sh\n", { mode: 0o644 });
writeFileSync(dir.file("not-a-program"), "\x7fELF garbage", { mode: 0o755 });

describe("execve failures return control", () => {
  test.each([
    ["a missing program", "execve: ENOENT", "/nonexistent/sh"],
    ["a file without execute permission", "execve: EACCES", dir.file("not-executable")],
    ["an executable file that is no program", "execve: ENOEXEC", dir.file("not-a-program")],
    ["a directory", "execve: EACCES", "/"],
  ])("%s → %s", (_, message, path) => {
    let err: unknown;
    try {
      execve(path, ["x"], {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SyscallError);
    expect((err as Error).message).toBe(message);
  });

  test("a NUL inside an argument is a RangeError before any call", () => {
    expect(() => execve("/bin/sh", ["sh", "-c", "echo a\0b"], {})).toThrow(RangeError);
  });
});

describe("execve in a child process", () => {
  /** Runs `bun -e` with code that resets signals and execs `sh -c script`; returns what sh printed. */
  function execChild(script: string, env: Record<string, string>) {
    const code = `
      import { execve, resetSignals } from ${JSON.stringify(join(ROOT, "src/sys/exec.ts"))};
      resetSignals();
      execve("/bin/sh", ["sh", "-c", ${JSON.stringify(script)}, "arg0", "two words"], ${JSON.stringify(env)});
    `;
    return Bun.spawnSync([process.execPath, "-e", code], { stdout: "pipe", stderr: "pipe", timeout: 10_000 });
  }

  test("argv and the environment arrive as given; the exit status is the shell's", () => {
    const r = execChild('printf "%s|%s|%s|%s\\n" "$0" "$1" "$FOO" "${BAR-unset}"; exit 7', { FOO: "bar baz" });
    expect(r.stderr.toString()).toBe("");
    expect(r.stdout.toString()).toBe("arg0|two words|bar baz|unset\n");
    expect(r.exitCode).toBe(7);
  });

  test("SIGPIPE and SIGXFSZ are no longer ignored and no signal is blocked", () => {
    const r = execChild("exec grep -E '^Sig(Ign|Blk):' /proc/self/status", {});
    const fields = Object.fromEntries(
      r.stdout
        .toString()
        .trim()
        .split("\n")
        .map((l) => l.split(/:\s+/) as [string, string]),
    );
    const ignored = BigInt(`0x${fields.SigIgn}`);
    expect((ignored >> BigInt(SIGPIPE - 1)) & 1n).toBe(0n);
    expect((ignored >> BigInt(SIGXFSZ - 1)) & 1n).toBe(0n);
    expect(BigInt(`0x${fields.SigBlk}`)).toBe(0n);
  });

  test("a pipeline that needs SIGPIPE ends (`yes | head -n 1`)", () => {
    const r = execChild("yes | head -n 1", {});
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toBe("y\n");
  });
});
