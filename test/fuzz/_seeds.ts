// Valid v2 sessions the mutator starts from: every frame a host sends (EXEC with every option and detach,
// STDIN, WINDOW, SIGNAL, RESIZE, PUT/GET, PUTDIR/GETDIR/DIR_ENTRY/DIR_END, LIST/ATTACH/KILL, TCP_*, AUTH).
// Only harmless commands (true, echo, cat, short sleeps) and only paths inside the fuzz directory.
import { MAGIC, T } from "../../src/protocol/v2/frame.ts";

/** One thing the host writes: a frame (JSON body or raw payload), or raw bytes such as the magic. */
export interface Step {
  /** Raw bytes written as they are (the magic); then type, id and payload are unused. */
  raw?: Uint8Array;
  type: number;
  id: number;
  json?: unknown;
  data?: Uint8Array;
  /** Pause before writing this step, so the agent sees it in a separate read. */
  gapMs?: number;
}

export interface Session {
  name: string;
  steps: Step[];
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const magic = (): Step => ({ raw: MAGIC, type: 0, id: 0 });
const hello = (): Step => ({ type: T.HELLO, id: 0, json: { versions: [2], client: "vge-fuzz" } });
const exec = (id: number, json: Record<string, unknown>): Step => ({ type: T.EXEC, id, json });
const frame = (type: number, id: number, data: Uint8Array | string = new Uint8Array(0)): Step => ({ type, id, data: typeof data === "string" ? utf8(data) : data });
const window = (id: number, n: number): Step => {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setUint32(0, n, true);
  return frame(T.WINDOW, id, p);
};

/**
 * `dir` is the fuzz directory (absolute, no trailing slash). It holds `get-me` (a small file to GET) and
 * `sub/` (a directory); PUTs go to `dir/put-*`.
 */
export function seedSessions(dir: string, echoPort?: number): Session[] {
  const s = (name: string, ...steps: Step[]): Session => ({ name, steps: [magic(), hello(), ...steps] });
  return [
    s("ping", frame(T.PING, 1, "abc"), frame(T.PING, 2)),
    s("exec argv", exec(1, { argv: ["true"] })),
    s("exec shell env cwd merge", exec(3, { shell: "echo out; echo err >&2", env: { A: "1", HOME: null }, cwd: dir, merge: true })),
    s("exec cat stdin eof", exec(5, { argv: ["cat"], stdin: "pipe" }), frame(T.STDIN, 5, "hello\n"), window(5, 6), frame(T.STDIN_EOF, 5)),
    s("exec timeout killSignal", exec(7, { argv: ["sleep", "0.3"], timeoutMs: 50, killSignal: "SIGTERM" })),
    s("exec signal", exec(9, { argv: ["sleep", "0.3"] }), { ...frame(T.SIGNAL, 9), data: undefined, json: { signal: "SIGTERM" }, gapMs: 20 }),
    s(
      "exec pty resize",
      exec(11, { argv: ["cat"], pty: { cols: 80, rows: 24, term: "xterm" } }),
      { type: T.RESIZE, id: 11, json: { cols: 100, rows: 30 } },
      frame(T.STDIN, 11, "x\n\x04"),
      window(11, 4),
    ),
    s("exec closed stdin clearEnv user", exec(13, { argv: ["echo", "a", "b"], stdin: "closed", clearEnv: true, env: { LANG: "C" }, user: "root", uid: 0, gid: 0 })),
    s("put", { type: T.PUT, id: 15, json: { path: `${dir}/put-a`, size: 5, mode: 0o600 } }, frame(T.FILE_DATA, 15, "hello"), frame(T.FILE_END, 15)),
    s("put empty in subdir", { type: T.PUT, id: 16, json: { path: `${dir}/sub/put-b`, size: 0 } }, frame(T.FILE_END, 16)),
    s("get", { type: T.GET, id: 17, json: { path: `${dir}/get-me`, maxSize: 1024 } }, window(17, 16)),
    s(
      "mixed",
      exec(21, { argv: ["cat"] }),
      frame(T.PING, 22, "p"),
      { type: T.PUT, id: 23, json: { path: `${dir}/put-c`, size: 3 } },
      frame(T.STDIN, 21, "abc"),
      frame(T.FILE_DATA, 23, "xyz"),
      { type: T.GET, id: 24, json: { path: `${dir}/get-me` } },
      frame(T.FILE_END, 23),
      frame(T.STDIN_EOF, 21),
    ),
    // Directory copies (PROTOCOL.md §12): into and out of the fuzz directory only (see hazard()).
    s(
      "putdir",
      { type: T.PUTDIR, id: 31, json: { path: `${dir}/tree-a` } },
      { type: T.DIR_ENTRY, id: 31, json: { type: "dir", path: "d", mode: 0o755, mtime: 1.7e12 } },
      { type: T.DIR_ENTRY, id: 31, json: { type: "file", path: "d/f", mode: 0o644, mtime: 1.7e12, size: 3 } },
      frame(T.FILE_DATA, 31, "abc"),
      { type: T.DIR_ENTRY, id: 31, json: { type: "symlink", path: "d/l", mode: 0o777, mtime: 1.7e12, target: "f" } },
      frame(T.DIR_END, 31),
    ),
    s("getdir", { type: T.GETDIR, id: 33, json: { path: `${dir}/sub` } }, window(33, 4096)),
    // Detached executions (PROTOCOL.md §5.1): short jobs only, so none outlives the run.
    s(
      "detach list attach kill",
      exec(41, { argv: ["sleep", "0.2"], detach: { tag: "fz", keep: 4096 } }),
      { type: T.LIST, id: 42, json: {} },
      { type: T.ATTACH, id: 43, json: { tag: "fz", from: { stdout: 0, stderr: 0 } }, gapMs: 10 },
      { type: T.KILL, id: 44, json: { tag: "fz", signal: "SIGTERM" } },
    ),
    // TCP streams (PROTOCOL.md §13): only to the run's echo listener on 127.0.0.1 (see hazard()).
    ...(echoPort === undefined
      ? []
      : [
          s(
            "tcp echo half-close",
            { type: T.TCP_OPEN, id: 51, json: { host: "127.0.0.1", port: echoPort } },
            { ...frame(T.TCP_DATA, 51, "ping\n"), gapMs: 10 },
            window(51, 64),
            frame(T.TCP_EOF, 51),
          ),
        ]),
    s(
      "tcp reset while connecting",
      { type: T.TCP_OPEN, id: 53, json: { host: "127.0.0.1", port: echoPort ?? 9 } },
      frame(T.TCP_RESET, 53),
      { ...frame(T.TCP_DATA, 53, "late"), gapMs: 10 },
    ),
    s(
      "tcp data window reset",
      { type: T.TCP_OPEN, id: 55, json: { host: "127.0.0.1", port: echoPort ?? 9 } },
      { ...frame(T.TCP_DATA, 55, "abc"), gapMs: 10 },
      window(55, 3),
      { ...frame(T.TCP_RESET, 55), gapMs: 5 },
    ),
    // A detached execution's stdin, fed over an ATTACH's id (its credit is per attach), then signalled.
    s(
      "detach attach stdin kill by job",
      exec(61, { argv: ["sleep", "0.3"], stdin: "pipe", timeoutMs: 600, detach: { tag: "fz-in", keep: 0 } }),
      { type: T.ATTACH, id: 62, json: { tag: "fz-in", from: { stdout: 1, stderr: 0 } }, gapMs: 10 },
      frame(T.STDIN, 62, "to the job\n"),
      window(62, 4096),
      frame(T.STDIN_EOF, 62),
      { type: T.LIST, id: 63, json: {} },
      { type: T.KILL, id: 64, json: { job: 1, signal: "SIGKILL" } },
    ),
    s("list only", { type: T.LIST, id: 65, json: {} }),
    s("getdir small window", { type: T.GETDIR, id: 67, json: { path: dir } }, window(67, 1), { ...window(67, 100), gapMs: 5 }),
    s(
      "putdir many dirs and a short file",
      { type: T.PUTDIR, id: 69, json: { path: `${dir}/tree-b` } },
      ...Array.from({ length: 20 }, (_, i): Step => ({ type: T.DIR_ENTRY, id: 69, json: { type: "dir", path: `d${i}`, mode: 0o700, mtime: 1.7e12 } })),
      { type: T.DIR_ENTRY, id: 69, json: { type: "file", path: "d0/f", mode: 0o600, mtime: 1.7e12, size: 10 } },
      frame(T.FILE_DATA, 69, "short"),
      frame(T.DIR_END, 69),
    ),
    s("auth unasked", { type: T.AUTH, id: 0, json: { proof: "00" } }, frame(T.PING, 71, "x")),
    s("detach echo attach by job", exec(45, { argv: ["echo", "hi"], detach: { keep: 64 } }), { type: T.ATTACH, id: 46, json: { job: 1 }, gapMs: 20 }, window(46, 64)),
  ];
}
