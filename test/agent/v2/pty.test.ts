// Executions on a pseudo-terminal: a real tty, TERM, RESIZE reaching `stty size`, input and Ctrl-D.
import { expect, test } from "bun:test";
import { v2Fixture } from "./_fixture.ts";
import { T } from "./_host.ts";

const fx = v2Fixture("vge-v2p-");

/** A terminal turns "\n" into "\r\n". */
const lines = (s: string) => s.replace(/\r\n/g, "\n");

test("tty prints a /dev/pts device; stdin, stdout and stderr are that terminal", async () => {
  const r = await fx.host.run(fx.id(), { shell: "tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; echo err >&2", pty: { cols: 80, rows: 24 } });
  expect(lines(r.stdout)).toMatch(/^\/dev\/pts\/\d+\nall-tty\nerr\n$/);
  expect(r.frames.some((f) => f.type === T.STDERR)).toBe(false);
  expect(r.exit).toEqual({ status: "exited", code: 0 });
});

test("TERM defaults to xterm-256color, or the one asked for; the size is the one asked for", async () => {
  const a = await fx.host.run(fx.id(), { shell: 'echo "$TERM"; stty size', pty: { cols: 123, rows: 45 } });
  expect(lines(a.stdout)).toBe("xterm-256color\n45 123\n");
  const b = await fx.host.run(fx.id(), { shell: 'echo "$TERM"', pty: { cols: 80, rows: 24, term: "vt100" } });
  expect(lines(b.stdout)).toBe("vt100\n");
});

test("the process leads its own session with the terminal as controlling tty", async () => {
  const r = await fx.host.run(fx.id(), { argv: ["sh", "-c", 'ps -o pid=,sid=,tty= -p $$'], pty: { cols: 80, rows: 24 } });
  const [pid, sid, tty] = lines(r.stdout).trim().split(/\s+/);
  expect(sid).toBe(pid);
  expect(tty).toMatch(/^pts\/\d+$/);
});

test("RESIZE changes what stty size reports", async () => {
  const n = fx.id();
  // Reports its size, waits for a line on stdin, reports again.
  await fx.host.sendJson(T.EXEC, n, { shell: "stty size; read x; stty size", pty: { cols: 80, rows: 24 } });
  await fx.host.until((f) => f.id === n && f.type === T.STDOUT && Buffer.from(f.payload).toString().includes("24 80"), 5000, "first size");
  await fx.host.sendJson(T.RESIZE, n, { cols: 100, rows: 30 });
  await Bun.sleep(50);
  await fx.host.send(T.STDIN, n, new TextEncoder().encode("go\n"));
  const r = await fx.host.exit(n, 5000);
  expect(lines(r.stdout)).toBe("24 80\ngo\n30 100\n");
});

test("input on a terminal, and STDIN_EOF as Ctrl-D", async () => {
  const n = fx.id();
  await fx.host.sendJson(T.EXEC, n, { argv: ["cat"], pty: { cols: 80, rows: 24 } });
  await fx.host.until((f) => f.id === n && f.type === T.STARTED);
  await fx.host.send(T.STDIN, n, new TextEncoder().encode("hello\n"));
  await fx.host.send(T.STDIN_EOF, n);
  const r = await fx.host.exit(n, 5000);
  // The terminal echoes the line, then cat writes it back.
  expect(lines(r.stdout)).toBe("hello\nhello\n");
  expect(r.exit).toEqual({ status: "exited", code: 0 });
});

test("a large burst on a terminal arrives whole", async () => {
  const r = await fx.host.run(fx.id(), { shell: "seq 1 100000", pty: { cols: 80, rows: 24 } }, { timeoutMs: 15_000 });
  expect(lines(r.stdout)).toBe(Array.from({ length: 100000 }, (_, i) => `${i + 1}\n`).join(""));
}, 20_000);

test("a missing program on a terminal: EXIT error ENOENT, no STARTED, no output", async () => {
  const r = await fx.host.run(fx.id(), { argv: ["vge-no-such-program"], pty: { cols: 80, rows: 24 } });
  expect(r.exit).toEqual({ status: "error", errno: "ENOENT", message: "program not found: vge-no-such-program" });
  expect(r.frames.map((f) => f.type)).toEqual([T.EXIT]);
  const path = await fx.host.run(fx.id(), { argv: ["/no/such/program"], pty: { cols: 80, rows: 24 } });
  expect(path.exit).toMatchObject({ status: "error", errno: "ENOENT" });
});

test("a program found on PATH but not executable: EACCES; a bad cwd: ENOENT", async () => {
  const dir = fx.dir.file("bin");
  await Bun.write(`${dir}/vge-not-exec`, "#!/bin/sh\necho no\n");
  const r = await fx.host.run(fx.id(), { argv: ["vge-not-exec"], env: { PATH: dir }, pty: { cols: 80, rows: 24 } });
  expect(r.exit).toMatchObject({ status: "error", errno: "EACCES" });
  expect(r.started).toBeUndefined();
  const cwd = await fx.host.run(fx.id(), { argv: ["pwd"], cwd: fx.dir.file("no-such-dir"), pty: { cols: 80, rows: 24 } });
  expect(cwd.exit).toMatchObject({ status: "error", errno: "ENOENT" });
  expect(cwd.started).toBeUndefined();
});

test("exit status and death by signal on a terminal; PATH is searched as execvp does", async () => {
  expect((await fx.host.run(fx.id(), { shell: "exit 3", pty: { cols: 80, rows: 24 } })).exit).toEqual({ status: "exited", code: 3 });
  expect((await fx.host.run(fx.id(), { shell: "kill -TERM $$", pty: { cols: 80, rows: 24 } })).exit).toEqual({ status: "signaled", signal: "SIGTERM", signo: 15 });
  const r = await fx.host.run(fx.id(), { argv: ["echo", "found"], pty: { cols: 80, rows: 24 } });
  expect(lines(r.stdout)).toBe("found\n");
});

test("the program's environment is exactly the one asked for, BUN_ variables included", async () => {
  const env = { A: "1", BUN_BE_BUN: "1", BUN_X: "a=b" };
  const r = await fx.host.run(fx.id(), { argv: ["env"], clearEnv: true, env, pty: { cols: 80, rows: 24, term: "dumb" } });
  expect(r.exit).toEqual({ status: "exited", code: 0 });
  expect(lines(r.stdout).trim().split("\n").sort()).toEqual(["A=1", "BUN_BE_BUN=1", "BUN_X=a=b", "TERM=dumb"]);
});
