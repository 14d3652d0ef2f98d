// `vge run` against the real agent: output, status, stdin, JSON, signals and usage errors.
import { describe, expect, test } from "bun:test";
import { dialingAgent, stop } from "../host/_fixtures.ts";
import { VGE, startVge, vge, vgeAgent, vgeLines } from "./_vge.ts";

const { dir, addr: ADDR } = vgeAgent("vge-cli-run-");

test("the issue's acceptance: unix-listen with the agent dialing in; out, err, exit 3", async () => {
  const path = dir.file("accept.sock");
  const run = startVge(["run", `unix-listen:${path}`, "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
  const dialer = dialingAgent(path);
  try {
    const r = await run.done;
    expect(r.stdout).toBe("out\n");
    expect(r.stderr.split("\n").filter((l) => !l.startsWith("vge: "))).toEqual(["err", ""]);
    expect(vgeLines(r.stderr)).toEqual([`vge: waiting for a guest to connect to unix-listen:${path}`]);
    expect(r.code).toBe(3);
  } finally {
    stop(dialer);
  }
});

describe("vge run on a connect address", () => {
  test("stdin from a pipe goes through, then EOF (wc -c, cat)", async () => {
    const data = "x".repeat(1_000_000);
    expect((await vge(["run", ADDR, "--", "wc", "-c"], { stdin: data })).stdout.trim()).toBe("1000000");
    const cat = await vge(["run", ADDR, "--shell", "cat; echo end"], { stdin: "piped\n" });
    expect(cat).toMatchObject({ stdout: "piped\nend\n", code: 0 });
  });

  test("--no-stdin: the command reads EOF at once", async () => {
    const r = await vge(["run", "--no-stdin", ADDR, "--", "cat"], { stdin: "ignored" });
    expect(r).toMatchObject({ code: 0, stdout: "" });
  });

  test("a missing program: 127 and one error line, promptly", async () => {
    const r = await vge(["run", ADDR, "--", "no-such-program-vge"]);
    expect(r.code).toBe(127);
    expect(vgeLines(r.stderr)).toEqual(["vge: error: no-such-program-vge: program not found: no-such-program-vge (ENOENT)"]);
    expect(r.ms).toBeLessThan(5000);
  });

  test("--timeout: 124, promptly; --quiet drops the notice", async () => {
    const r = await vge(["run", ADDR, "--timeout", "1", "--", "sh", "-c", "sleep 60 & sleep 60"]);
    expect(r.code).toBe(124);
    expect(r.ms).toBeLessThan(5000);
    expect(vgeLines(r.stderr)).toEqual(["vge: timed out after 1 s; the process group got SIGKILL"]);
    const q = await vge(["run", "-q", ADDR, "--timeout", "0.5", "--", "sleep", "60"]);
    expect(q).toMatchObject({ code: 124, stderr: "" });
  });

  test("killed by a signal: 128 + n", async () => {
    expect((await vge(["run", ADDR, "--shell", "kill -9 $$"])).code).toBe(137);
  });

  test("--env (repeatable), --cwd, --user, --merge", async () => {
    const r = await vge(["run", ADDR, "--env", "A=1", "-e", "B=two", "--cwd", "/tmp", "--user", "0", "--merge", "--shell", 'echo "$A $B $(pwd) $(id -u)"; echo e >&2']);
    expect(r).toMatchObject({ code: 0, stdout: "1 two /tmp 0\ne\n" });
  });

  test("--json: one object on stdout, the status as vge's", async () => {
    const r = await vge(["run", ADDR, "--json", "--shell", "echo a; echo b >&2; exit 4"]);
    expect(r.code).toBe(4);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ status: "exited", code: 4, signal: null, stdout: "a\n", stderr: "b\n" });
    expect(typeof j.durationMs).toBe("number");
    const e = await vge(["run", ADDR, "--json", "--", "no-such-program-vge"]);
    expect(e.code).toBe(127);
    expect(JSON.parse(e.stdout)).toMatchObject({ status: "error", errno: "ENOENT", code: null });
    const t = await vge(["run", ADDR, "--json", "--timeout", "0.3", "--", "sleep", "9"]);
    expect(t.code).toBe(124);
    expect(JSON.parse(t.stdout)).toMatchObject({ status: "timeout", signal: "SIGKILL" });
  });

  test("--json carries usage (rusage without --cgroup); --memory/--pids/--cpus on an agent without --cgroup: ENOTSUP, nothing run", async () => {
    const r = await vge(["run", ADDR, "--json", "--shell", "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done"]);
    const j = JSON.parse(r.stdout);
    expect(j.usage.from).toBe("rusage");
    expect(j.usage.userUsec + j.usage.systemUsec).toBeGreaterThan(1000);
    expect(j.usage.memoryPeak).toBeGreaterThan(100_000);
    const marker = `/tmp/vge-limits-${crypto.randomUUID()}`;
    for (const flags of [["--memory", "64M"], ["--pids", "8"], ["--cpus", "0.5"]]) {
      const l = await vge(["run", ADDR, "--json", ...flags, "--", "touch", marker]);
      expect(JSON.parse(l.stdout)).toMatchObject({ status: "error", errno: "ENOTSUP" });
      expect(JSON.parse(l.stdout).message).toMatch(/--cgroup/);
    }
    expect(await Bun.file(marker).exists()).toBe(false);
    for (const [flag, value] of [["--memory", "12Q"], ["--memory", "1K"], ["--pids", "0"], ["--cpus", "-1"], ["--cpus", "0.001"]]) {
      const bad = await vge(["run", ADDR, flag!, value!, "--", "true"]);
      expect(bad.code).toBe(2);
      expect(vgeLines(bad.stderr).join("\n")).toMatch(new RegExp(flag!));
    }
  });

  test("Ctrl-C is passed to the remote process group (130)", async () => {
    const run = startVge(["run", ADDR, "--", "sleep", "30"]);
    await Bun.sleep(1000);
    run.proc.kill("SIGINT");
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(r.ms).toBeLessThan(5000);
  });

  test("a slow local reader gets every byte", async () => {
    const proc = Bun.spawn(["bun", VGE, "run", ADDR, "--", "seq", "1", "300000"], { stdout: "pipe", stderr: "inherit", timeout: 20_000, killSignal: "SIGKILL" });
    const reader = proc.stdout.getReader();
    const parts: Uint8Array[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      await Bun.sleep(3);
    }
    expect(await proc.exited).toBe(0);
    expect(Buffer.concat(parts).toString() === Bun.spawnSync(["seq", "1", "300000"]).stdout.toString()).toBe(true);
  });
});

describe("bad input: one line, exit 2", () => {
  test.each([
    [["run", "bogus", "--", "true"], /bad address "bogus": expected one of/],
    [["run", "unix:/x", "--bogus", "--", "true"], /unknown option --bogus/],
    [["run", "unix:/x"], /nothing to run/],
    [["run", "unix:/x", "--shell", "true", "--", "true"], /either --shell CMD or a program/],
    [["run", "unix:/x", "--timeout", "soon", "--", "true"], /--timeout must be a number of seconds/],
    [["run"], /Missing required positional argument: ADDRESS/],
    [["frobnicate"], /unknown command "frobnicate"/],
    [["cp", "unix:/x", "a", "b"], /exactly one of SRC and DST must be a guest path/],
    [["send", "unix:/x", "one", "two"], /disposable mode sends one command/],
  ])("%p", async (args, why) => {
    const r = await vge(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(why);
    expect(lines[0]).toEndWith("(see vge --help)");
  });
});

test("vge's own failures: 255 and one line; --verbose gives the whole error", async () => {
  const r = await vge(["run", `unix:${dir.file("nobody.sock")}`, "--", "true"]);
  expect(r.code).toBe(255);
  expect(r.stderr).toBe(`vge: error: guest unix:${dir.file("nobody.sock")}: connect: ENOENT\n`);
  const v = await vge(["--verbose", "run", `unix:${dir.file("nobody.sock")}`, "--", "true"]);
  expect(v.code).toBe(255);
  expect(v.stderr.split("\n").length).toBeGreaterThan(2);
  expect(v.stderr).toContain("caused by: ConnectError");
});

test("--help, --version", async () => {
  const h = await vge(["--help"]);
  expect(h.code).toBe(0);
  expect(h.stdout).toContain("ADDRESSES");
  expect(h.stdout).not.toContain("\x1b[");
  const rh = await vge(["run", "--help"]);
  expect(rh.stdout).toContain("USAGE vge run");
  expect((await vge(["--version"])).stdout).toBe("0.2.0\n");
});
