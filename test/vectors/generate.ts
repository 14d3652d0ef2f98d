// Regenerates test/vectors/v2.json from the TypeScript encoder: `bun test/vectors/generate.ts`.
// The committed file is the reference: test/protocol/v2-vectors.test.ts fails if the encoder drifts from
// it, and the Python implementation (test/hosts/v2_host.py) decodes and re-encodes it independently.
import { MAGIC, T, encodeFrame, encodeJson, encodeWindow } from "../../src/protocol/v2/frame.ts";
import { agentProof, hostProof, tokenFromFile } from "../../src/protocol/v2/auth.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (s: string) => new TextEncoder().encode(s);

type V = { name: string; type: string; id: number; hex: string; json?: unknown; data_hex?: string; credit?: number; note?: string };
const vectors: V[] = [];
const json = (name: string, type: keyof typeof T, id: number, body: unknown, note?: string) =>
  vectors.push({ name, type, id, json: body, hex: hex(encodeJson(T[type], id, body)), ...(note ? { note } : {}) });
const data = (name: string, type: keyof typeof T, id: number, d: Uint8Array, note?: string) =>
  vectors.push({ name, type, id, data_hex: hex(d), hex: hex(encodeFrame(T[type], id, d)), ...(note ? { note } : {}) });

json("hello", "HELLO", 0, { versions: [2], client: "vge/0.2.0" });
json("welcome", "WELCOME", 0, { version: 2, agent: "0.2.0", capabilities: ["exec", "pty", "signal", "timeout", "files", "ping", "flow"], hostname: "guest", kernel: "6.1.0-28-cloud-amd64", arch: "x64", initrd: true, pid: 212, maxPayload: 262144, window: 262144 });
json("exec argv", "EXEC", 1, { argv: ["sh", "-c", "echo out; echo err >&2; exit 3"] });
json("exec shell with options", "EXEC", 2, { shell: "make -j2", env: { CC: "clang", DEBUG: null }, cwd: "/src", user: "builder", stdin: "closed", merge: true, timeoutMs: 60000, killSignal: "SIGTERM" });
json("exec pty", "EXEC", 3, { argv: ["/bin/sh"], pty: { cols: 120, rows: 40, term: "xterm-256color" } });
json("started", "STARTED", 1, { pid: 4242 });
data("stdin bytes", "STDIN", 1, bytes("hello\n"));
data("stdin binary", "STDIN", 1, new Uint8Array([0, 1, 2, 0xfe, 0xff]), "data payloads are raw bytes, NUL and 0xFF included");
data("stdin eof", "STDIN_EOF", 1, new Uint8Array(0));
data("stdout", "STDOUT", 1, bytes("out\n"));
data("stderr", "STDERR", 1, bytes("err\n"));
data("empty stdout", "STDOUT", 7, new Uint8Array(0), "the smallest frame: length 5");
json("signal", "SIGNAL", 1, { signal: "SIGTERM" });
json("resize", "RESIZE", 3, { cols: 100, rows: 30 });
json("exit code", "EXIT", 1, { status: "exited", code: 3 });
json("exit signal", "EXIT", 2, { status: "signaled", signal: "SIGKILL", signo: 9 });
json("exit timeout", "EXIT", 2, { status: "timeout", signal: "SIGKILL", signo: 9 });
json("exit start failure", "EXIT", 4, { status: "error", errno: "ENOENT", message: "program not found: nosuch" });
json("exec limits", "EXEC", 11, { argv: ["make"], limits: { memoryBytes: 268435456, pids: 64, cpu: 0.5 } }, "§5.2: the execution's own cgroup limits");
json("exit with usage", "EXIT", 11, { status: "signaled", signal: "SIGKILL", signo: 9, usage: { userUsec: 81234, systemUsec: 402311, memoryPeak: 268435456, from: "cgroup" }, oom: true }, "§5.2: usage and oom, when asked for");
json("exit limits refused", "EXIT", 12, { status: "error", errno: "ENOTSUP", message: "limits need an agent started with --cgroup DIR (cgroup v2); nothing was run" }, "§5.2: an agent without --cgroup");
vectors.push({ name: "window", type: "WINDOW", id: 1, credit: 65536, hex: hex(encodeWindow(1, 65536)) });
vectors.push({ name: "window max id", type: "WINDOW", id: 0xffffffff, credit: 0xffffffff, hex: hex(encodeWindow(0xffffffff, 0xffffffff)) });
json("exec detached", "EXEC", 10, { argv: ["make", "install"], detach: { tag: "provision", keep: 1048576 } }, "survives the connection; output beyond the credit is kept, 1 MiB per stream");
json("started detached", "STARTED", 10, { pid: 4300, job: 1, tag: "provision" });
json("list", "LIST", 11, {});
json("listing", "LISTING", 11, { jobs: [{ job: 1, tag: "provision", pid: 4300, argv: ["make", "install"], startedAt: 1764468000000, state: "exited", endedAt: 1764468020000, exit: { status: "exited", code: 0 }, attached: false, stdout: { total: 3000000, kept: 1048576 }, stderr: { total: 12, kept: 12 } }], more: false });
json("attach", "ATTACH", 12, { tag: "provision", from: { stdout: 4096, stderr: 0 } });
json("attached", "ATTACHED", 12, { job: 1, tag: "provision", pid: 4300, state: "running", stdout: { from: 1951424, dropped: 1947328 }, stderr: { from: 0, dropped: 0 } }, "replay starts at from; dropped bytes were no longer kept");
json("kill", "KILL", 13, { job: 1, signal: "SIGTERM" });
json("detached ok", "DETACHED", 13, {}, "the KILL was delivered");
json("detached taken over", "DETACHED", 12, { errno: "EBUSY", message: "job 1 was attached by another connection" });
json("put", "PUT", 5, { path: "/etc/motd", size: 6, mode: 0o644 });
data("file data", "FILE_DATA", 5, bytes("hello\n"));
data("file end", "FILE_END", 5, new Uint8Array(0));
json("result ok", "RESULT", 5, { ok: true, size: 6 });
json("get", "GET", 6, { path: "/etc/hostname", maxSize: 1048576 });
json("result error", "RESULT", 6, { ok: false, errno: "ENOENT", message: "no such file: /etc/hostname" });
json("putdir", "PUTDIR", 10, { path: "/srv/app" });
json("getdir", "GETDIR", 11, { path: "/var/log" });
json("dir entry: directory", "DIR_ENTRY", 10, { type: "dir", path: "conf", mode: 0o755, mtime: 1700000000000 }, "mtime: milliseconds since the epoch");
json("dir entry: file", "DIR_ENTRY", 10, { type: "file", path: "conf/app.ini", mode: 0o640, mtime: 1700000000123.5, size: 6 }, "its bytes follow as FILE_DATA: exactly size bytes");
data("dir file data", "FILE_DATA", 10, bytes("[app]\n"));
json("dir entry: symlink", "DIR_ENTRY", 10, { type: "symlink", path: "current", mode: 0o777, mtime: 1700000000000, target: "releases/42" }, "made as a symlink, never followed");
data("dir end", "DIR_END", 10, new Uint8Array(0));
json("result dir", "RESULT", 10, { ok: true, files: 1, dirs: 1, symlinks: 1, bytes: 6, skipped: 0 });
json("result dir refused", "RESULT", 11, { ok: false, errno: "ELOOP", message: "esc/x: refusing to write through the symlink esc", path: "esc/x" });
data("ping", "PING", 9, bytes("12345678"));
data("pong", "PONG", 9, bytes("12345678"));
json("tcp open", "TCP_OPEN", 10, { host: "127.0.0.1", port: 8080 });
json("tcp open ipv6", "TCP_OPEN", 11, { host: "::1", port: 22 });
json("tcp opened", "TCP_OPENED", 10, { address: "127.0.0.1", port: 8080 });
data("tcp data", "TCP_DATA", 10, bytes("GET / HTTP/1.0\r\n\r\n"));
data("tcp eof", "TCP_EOF", 10, new Uint8Array(0), "half-close: the sender sends no more data on this stream");
data("tcp reset", "TCP_RESET", 10, new Uint8Array(0));
json("tcp closed", "TCP_CLOSED", 10, { ok: true });
json("tcp refused", "TCP_CLOSED", 11, { ok: false, errno: "ECONNREFUSED", message: "connect [::1]:22: ECONNREFUSED" });
vectors.push({ name: "tcp window", type: "WINDOW", id: 10, credit: 19, hex: hex(encodeWindow(10, 19)), note: "credit for TCP_DATA goes back in WINDOW frames, both ways" });
json("error", "ERROR", 0, { code: "EPROTO", message: "frame length 4 is outside 5..262149" });

// Authentication (PROTOCOL.md §11) with fixed nonces: a real peer draws them at random.
const tokenFile = bytes("correct horse battery staple 42\n");
const token = tokenFromFile(tokenFile, "vector");
const hostNonce = Uint8Array.from({ length: 32 }, (_, i) => i);
const agentNonce = Uint8Array.from({ length: 32 }, (_, i) => 0xa0 + i);
const aProof = agentProof(token, hostNonce, agentNonce);
const hProof = hostProof(token, hostNonce, agentNonce);
json("hello with auth", "HELLO", 0, { versions: [2], client: "vge/0.2.0", auth: { nonce: hex(hostNonce) } }, "the host holds a token: its nonce");
json("welcome with auth", "WELCOME", 0, { version: 2, auth: { nonce: hex(agentNonce), proof: hex(aProof) } }, "the agent's first WELCOME: its nonce and proof, no facts; the full WELCOME follows a valid AUTH");
json("auth", "AUTH", 0, { proof: hex(hProof) }, "the host's proof");
json("error auth", "ERROR", 0, { code: "EAUTH", message: "AUTH: wrong proof; the host does not hold this agent's token" });
const auth = {
  note: "proof = HMAC-SHA256(key = token, label ‖ host nonce ‖ agent nonce); the token is the file minus one trailing newline",
  token_file_hex: hex(tokenFile),
  token_hex: hex(token),
  host_nonce_hex: hex(hostNonce),
  agent_nonce_hex: hex(agentNonce),
  agent_label_hex: hex(bytes("vge2-auth agent\0")),
  host_label_hex: hex(bytes("vge2-auth host\0")),
  agent_proof_hex: hex(aProof),
  host_proof_hex: hex(hProof),
};

const invalid = [
  { name: "length below 5", hex: "04000000" + "10" + "01000000", reason: "length" },
  { name: "length above max", hex: hex(new Uint8Array([0x06, 0x00, 0x04, 0x00])) + "14" + "01000000", reason: "length" },
  { name: "unknown type", hex: "05000000" + "55" + "01000000", reason: "type" },
];

// DIR_ENTRY headers that frame fine but that every receiver must refuse at decode (PROTOCOL.md §12).
const badEntry = (name: string, body: Record<string, unknown>) => ({ name, hex: hex(encodeJson(T.DIR_ENTRY, 10, body)), json: body });
const e = { type: "file", path: "ok", mode: 0o644, mtime: 1700000000000, size: 0 };
const invalidEntries = [
  badEntry("absolute path", { ...e, path: "/etc/passwd" }),
  badEntry("dot-dot component", { ...e, path: "a/../../etc/passwd" }),
  badEntry("dot component", { ...e, path: "./a" }),
  badEntry("empty component", { ...e, path: "a//b" }),
  badEntry("trailing slash", { ...e, path: "a/" }),
  badEntry("empty path", { ...e, path: "" }),
  badEntry("NUL in path", { ...e, path: "a\u0000b" }),
  badEntry("component over 255 bytes", { ...e, path: "x".repeat(256) }),
  badEntry("path over 4096 bytes", { ...e, path: Array(20).fill("y".repeat(250)).join("/") }),
  badEntry("unknown type", { ...e, type: "fifo" }),
  badEntry("mode not a u32", { ...e, mode: -1 }),
  badEntry("mtime not finite", { ...e, mtime: "soon" }),
  badEntry("size not an integer", { ...e, size: 1.5 }),
  badEntry("size above 2^53", { ...e, size: 2 ** 53 }),
  badEntry("symlink without target", { type: "symlink", path: "l", mode: 0o777, mtime: 0 }),
  badEntry("symlink target with NUL", { type: "symlink", path: "l", mode: 0o777, mtime: 0, target: "a\u0000" }),
];

const out = { magic_hex: hex(MAGIC), header: "u32le length (of type+id+payload), u8 type, u32le id", max_payload: 262144, vectors, invalid, invalid_entries: invalidEntries, auth };
await Bun.write(new URL("./v2.json", import.meta.url), JSON.stringify(out, null, 2) + "\n");
console.log(`wrote ${vectors.length} vectors, ${invalid.length} invalid frames, ${invalidEntries.length} invalid entries`);
