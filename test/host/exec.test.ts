// The library against the real compiled agent, over a Unix socket the host listens on: one connection,
// many executions on it, as a host would use it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { GuestError, listen, StdinClosedError, type Guest, type Listener } from "../../src/host/index.ts";
import type { RunningAgent } from "../helpers/agent.ts";
import { dialingAgent, groupMembers, stop, tempDir } from "./_fixtures.ts";

const dir = tempDir("vge-exec-");
let listener: Listener;
let agent: RunningAgent;
let guest: Guest;
const text = (b: Uint8Array) => new TextDecoder().decode(b);

beforeAll(async () => {
  listener = await listen(`unix-listen:${dir.file("host.sock")}`);
  agent = dialingAgent(dir.file("host.sock"), [], 120_000);
  guest = await listener.accept();
});

afterAll(async () => {
  guest?.close();
  await listener?.close();
  stop(agent);
  dir.remove();
});

describe("exec over one connection", () => {
  test("hello: WELCOME facts", () => {
    expect(guest.info.version).toBe(2);
    expect(guest.info.capabilities).toContain("exec");
    expect(guest.info.window).toBeGreaterThan(0);
    expect(guest.info.pid).toBe(agent.proc.pid);
  });

  test("output on both streams and the exit code", async () => {
    const r = await guest.run(["sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(r).toMatchObject({ status: "exited", code: 3, signal: null, exitStatus: 3, stdoutText: "out\n", stderrText: "err\n" });
  });

  test("shell, env, cwd, clearEnv, merge", async () => {
    const r = await guest.run({ shell: 'echo "$A-$B-$(pwd)"; echo e >&2' }, { env: { A: "1", B: "two" }, cwd: "/tmp", merge: true });
    expect(r.stdoutText).toBe("1-two-/tmp\ne\n");
    expect(r.stderr.byteLength).toBe(0);
    const c = await guest.run(["/usr/bin/env"], { clearEnv: true, env: { ONLY: "x" } });
    expect(c.stdoutText).toBe("ONLY=x\n");
  });

  test("stdin goes through and its half-close ends the reader (wc -c, cat)", async () => {
    const data = new Uint8Array(1_000_000).map((_, i) => (i * 7) % 256);
    const wc = await guest.run(["wc", "-c"], { input: data });
    expect(wc.stdoutText.trim()).toBe("1000000");
    const proc = guest.exec(["cat"]);
    const w = proc.stdin!.getWriter();
    await w.write("hello ");
    await w.write(new TextEncoder().encode("world"));
    await w.close();
    expect(text(await new Response(proc.stdout).bytes())).toBe("hello world");
    expect(await proc.result).toEqual({ status: "exited", code: 0 });
    expect(await proc.exited).toBe(0);
    expect([proc.exitCode, proc.signalCode]).toEqual([0, null]);
  });

  test("stdin closed: the process reads EOF at once", async () => {
    const r = await guest.run(["cat"]);
    expect(r.code).toBe(0);
    expect(r.stdout.byteLength).toBe(0);
  });

  test("writing stdin after the exit rejects with EPIPE", async () => {
    const proc = guest.exec(["true"]);
    await proc.exited;
    const err = await proc.stdin!.getWriter().write("late").catch((e) => e);
    expect(err).toBeInstanceOf(StdinClosedError);
  });

  test("a missing program ends promptly with ENOENT (status 127)", async () => {
    const t0 = performance.now();
    const r = await guest.run(["no-such-program-vge"]);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(r.status).toBe("error");
    expect(r.errno).toBe("ENOENT");
    expect(r.exitStatus).toBe(127);
    const proc = guest.exec(["no-such-program-vge"]);
    expect(await proc.started).toBeNull();
  });

  test("a cwd that cannot be entered fails to start (status 126 unless ENOENT)", async () => {
    const r = await guest.run(["true"], { cwd: "/etc/passwd" });
    expect(r).toMatchObject({ status: "error", errno: "ENOTDIR", exitStatus: 126 });
    expect((await guest.run(["true"], { cwd: "/no/such/dir" })).exitStatus).toBe(127);
  });

  test("timeout ends promptly and the whole process tree is gone", async () => {
    const marker = `${100 + Math.floor(Math.random() * 1000)}.${process.pid}`;
    const t0 = performance.now();
    const proc = guest.exec(["sh", "-c", `sleep ${marker} & sleep ${marker}; echo never`], { timeoutMs: 1000, stdin: "closed" });
    const pid = await proc.started;
    expect(pid).toBeGreaterThan(0);
    await Bun.sleep(200);
    expect((await groupMembers(pid!)).length).toBeGreaterThanOrEqual(2);
    const [r, out] = await Promise.all([proc.result, new Response(proc.stdout).text()]);
    const took = performance.now() - t0;
    expect(r).toMatchObject({ status: "timeout", signal: "SIGKILL", signo: 9 });
    // As timeout(1) reports it.
    expect(await proc.exited).toBe(124);
    expect(out).toBe("");
    expect(took).toBeGreaterThan(900);
    expect(took).toBeLessThan(3000);
    // EXIT comes after the reaping; the background sleep of the same group was killed too.
    await Bun.sleep(100);
    expect(await groupMembers(pid!)).toEqual([]);
    const ps = Bun.spawnSync(["ps", "-eo", "stat=,args="]).stdout.toString();
    expect(ps.split("\n").filter((l) => l.includes(`sleep ${marker}`) && !l.startsWith("Z"))).toEqual([]);
  }, 10_000);

  test("kill() sends a signal to the process group", async () => {
    const proc = guest.exec(["sleep", "30"], { stdin: "closed" });
    await proc.started;
    expect(proc.kill()).toBe(true);
    expect(await proc.result).toEqual({ status: "signaled", signal: "SIGTERM", signo: 15 });
    // As Bun.spawn's: `exited` is 128 + signo for a signal death, exitCode null, signalCode the name.
    expect(await proc.exited).toBe(143);
    expect(proc.exitCode).toBeNull();
    expect(proc.signalCode).toBe("SIGTERM");
    expect(proc.kill()).toBe(false);
    const p2 = guest.exec(["sleep", "30"], { stdin: "closed" });
    await p2.started;
    p2.kill(9);
    expect((await p2.result).status).toBe("signaled");
    expect(await p2.exited).toBe(137);
    expect(() => p2.kill("SIGNOPE")).toThrow(/unknown signal/);
    // Refusals before anything is sent carry a code like every other error of the library.
    for (const refuse of [() => p2.kill("SIGNOPE"), () => guest.exec(["true"], { timeoutMs: -1 }), () => guest.exec([])]) {
      const err = (() => {
        try {
          refuse();
        } catch (e) {
          return e;
        }
      })() as GuestError;
      expect(err).toBeInstanceOf(GuestError);
      expect(err.code).toBe("EINVAL");
    }
  });

  test("many executions at once, each with its own output", async () => {
    const t0 = performance.now();
    const runs = await Promise.all(Array.from({ length: 24 }, (_, i) => guest.run(["sh", "-c", `sleep 0.3; echo ${i}; echo e${i} >&2; exit ${i % 5}`])));
    runs.forEach((r, i) => {
      expect(r.stdoutText).toBe(`${i}\n`);
      expect(r.stderrText).toBe(`e${i}\n`);
      expect(r.code).toBe(i % 5);
    });
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  test("a slow reader stalls only its own process, and its output stays intact", async () => {
    const marker = dir.file("slow-done");
    const slow = guest.exec(["sh", "-c", `seq 1 400000; echo done > ${marker}`], { stdin: "closed" });
    await slow.started;
    await Bun.sleep(800);
    // 2.6 MB of output against a 256 KiB window and a 64 KiB pipe: blocked until we read.
    expect(await Bun.file(marker).exists()).toBe(false);
    const other = await guest.run(["echo", "meanwhile"]);
    expect(other.stdoutText).toBe("meanwhile\n");
    const reader = slow.stdout.getReader();
    const parts: Uint8Array[] = [];
    for (let n = 0; ; n++) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      if (n % 4 === 0) await Bun.sleep(5);
    }
    expect(await slow.result).toEqual({ status: "exited", code: 0 });
    const got = Buffer.concat(parts).toString();
    const want = Bun.spawnSync(["seq", "1", "400000"]).stdout.toString();
    expect(got.length).toBe(want.length);
    expect(got === want).toBe(true);
    expect(await Bun.file(marker).exists()).toBe(true);
  }, 20_000);

  test("a cancelled stream is discarded without stalling the process", async () => {
    const proc = guest.exec(["sh", "-c", "head -c 3000000 /dev/zero; echo fine >&2"], { stdin: "closed" });
    await proc.stdout.cancel();
    expect(await new Response(proc.stderr).text()).toBe("fine\n");
    expect(await proc.result).toEqual({ status: "exited", code: 0 });
  });

  test("run() maxBuffer kills the process and rejects", async () => {
    const err = await guest.run(["sh", "-c", "yes"], { maxBuffer: 100_000 }).catch((e) => e);
    expect(err).toBeInstanceOf(GuestError);
    expect(err.code).toBe("EMAXBUFFER");
    expect(err.cause).toBeInstanceOf(RangeError);
  });

  test("a PTY: one output stream, a terminal, resize", async () => {
    const proc = guest.exec(["sh", "-c", "tty; stty size; read x; stty size"], { pty: { cols: 100, rows: 30 } });
    const reader = proc.stdout.getReader();
    let out = "";
    while (!out.includes("30 100")) out += text((await reader.read()).value!);
    expect(out).toMatch(/\/dev\/pts\/\d+/);
    proc.resize(120, 40);
    await Bun.sleep(100);
    const w = proc.stdin!.getWriter();
    await w.write("go\r");
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      out += text(value);
    }
    expect(out).toContain("40 120");
    expect(await proc.result).toEqual({ status: "exited", code: 0 });
  });

  test("ping measures a round trip", async () => {
    const ms = await guest.ping();
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThan(1000);
    const all = await Promise.all([guest.ping(), guest.ping(), guest.ping()]);
    expect(all.every((m) => m > 0)).toBe(true);
  });

  test("bad options are a GuestError EINVAL at the call, not a lost connection", async () => {
    expect(() => guest.exec([])).toThrow(GuestError);
    expect(() => guest.exec(["x"], { env: { "A=B": "1" } })).toThrow(/env name/);
    expect(() => guest.exec(["x"], { timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect((await guest.run(["true"])).code).toBe(0);
  });
});
