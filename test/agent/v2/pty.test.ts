// Executions on a pseudo-terminal: a real tty, TERM, RESIZE reaching `stty size`, input and Ctrl-D.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { tempDir, type TempDir } from "../../helpers/tmp.ts";
import { listeningAgent, type Agent } from "./_agent.ts";
import { T, V2Host } from "./_host.ts";

let dir: TempDir;
let agent: Agent;
let host: V2Host;
let nextId = 1;

beforeAll(async () => {
  dir = tempDir("vge-v2p-");
  agent = await listeningAgent(dir.file("agent.sock"));
  host = await V2Host.connect(dir.file("agent.sock"));
  await host.hello();
}, 60_000); // may build the agent first

afterAll(async () => {
  host?.close();
  await agent?.stop();
  dir?.remove();
});

/** A terminal turns "\n" into "\r\n". */
const lines = (s: string) => s.replace(/\r\n/g, "\n");

test("tty prints a /dev/pts device; stdin, stdout and stderr are that terminal", async () => {
  const r = await host.run(nextId++, { shell: "tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; echo err >&2", pty: { cols: 80, rows: 24 } });
  expect(lines(r.stdout)).toMatch(/^\/dev\/pts\/\d+\nall-tty\nerr\n$/);
  expect(r.frames.some((f) => f.type === T.STDERR)).toBe(false);
  expect(r.exit).toEqual({ status: "exited", code: 0 });
});

test("TERM defaults to xterm-256color, or the one asked for; the size is the one asked for", async () => {
  const a = await host.run(nextId++, { shell: 'echo "$TERM"; stty size', pty: { cols: 123, rows: 45 } });
  expect(lines(a.stdout)).toBe("xterm-256color\n45 123\n");
  const b = await host.run(nextId++, { shell: 'echo "$TERM"', pty: { cols: 80, rows: 24, term: "vt100" } });
  expect(lines(b.stdout)).toBe("vt100\n");
});

test("the process leads its own session with the terminal as controlling tty", async () => {
  const r = await host.run(nextId++, { argv: ["sh", "-c", 'ps -o pid=,sid=,tty= -p $$'], pty: { cols: 80, rows: 24 } });
  const [pid, sid, tty] = lines(r.stdout).trim().split(/\s+/);
  expect(sid).toBe(pid);
  expect(tty).toMatch(/^pts\/\d+$/);
});

test("RESIZE changes what stty size reports", async () => {
  const n = nextId++;
  // Reports its size, waits for a line on stdin, reports again.
  await host.sendJson(T.EXEC, n, { shell: "stty size; read x; stty size", pty: { cols: 80, rows: 24 } });
  await host.until((f) => f.id === n && f.type === T.STDOUT && Buffer.from(f.payload).toString().includes("24 80"), 5000, "first size");
  await host.sendJson(T.RESIZE, n, { cols: 100, rows: 30 });
  await Bun.sleep(50);
  await host.send(T.STDIN, n, new TextEncoder().encode("go\n"));
  const r = await host.exit(n, 5000);
  expect(lines(r.stdout)).toBe("24 80\ngo\n30 100\n");
});

test("input on a terminal, and STDIN_EOF as Ctrl-D", async () => {
  const n = nextId++;
  await host.sendJson(T.EXEC, n, { argv: ["cat"], pty: { cols: 80, rows: 24 } });
  await host.until((f) => f.id === n && f.type === T.STARTED);
  await host.send(T.STDIN, n, new TextEncoder().encode("hello\n"));
  await host.send(T.STDIN_EOF, n);
  const r = await host.exit(n, 5000);
  // The terminal echoes the line, then cat writes it back.
  expect(lines(r.stdout)).toBe("hello\nhello\n");
  expect(r.exit).toEqual({ status: "exited", code: 0 });
});

test("a large burst on a terminal arrives whole", async () => {
  const r = await host.run(nextId++, { shell: "seq 1 100000", pty: { cols: 80, rows: 24 } }, { timeoutMs: 15_000 });
  expect(lines(r.stdout)).toBe(Array.from({ length: 100000 }, (_, i) => `${i + 1}\n`).join(""));
}, 20_000);
