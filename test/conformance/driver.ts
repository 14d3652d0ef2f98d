// Conformance driver for the TypeScript host library: runs every scenario of scenarios.json against the
// agents named in $VGE_CONF (conformance.test.ts) through the library's public API, and prints one JSON
// line {id, result} per scenario. The Go and Python drivers do the same with their libraries.
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, listen, type Guest, type RunOptions } from "../../src/host/index.ts";

type Json = Record<string, unknown>;
interface Scenario extends Json { id: string; op: string }
interface Conf {
  scenarios: string;
  work: string;
  addresses: Record<string, string>;
  tokens: Record<string, string>;
  tag: string;
  echo_port: number;
  refused_port: number;
}

const conf = JSON.parse(process.env.VGE_CONF!) as Conf;
const dec = new TextDecoder();

const pattern = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 251);
const sha256 = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");
const octal = (m: number | undefined) => (m ?? 0).toString(8);

/** The code every error of the library carries (GuestError, FileError, TcpError). */
function errorResult(e: unknown): Json {
  const code = (e as { code?: unknown }).code;
  if (typeof code !== "string") throw e;
  return { error: code };
}

/** A connection to a named address: dial it, or for a listen address wait for the agent to dial in. */
async function open(name: string, token?: string): Promise<Guest> {
  const address = conf.addresses[name]!;
  const opts = token === undefined ? {} : { token: conf.tokens[token]! };
  if (!address.includes("-listen:")) return connect(address, opts);
  const listener = await listen(address, opts);
  try {
    return await listener.accept();
  } finally {
    await listener.close();
  }
}

async function run(g: Guest, s: Scenario): Promise<Json> {
  const cmd = s.argv ? (s.argv as string[]) : { shell: s.shell as string };
  const opts: RunOptions = {};
  if (s.env) opts.env = s.env as Record<string, string | null>;
  if (s.clear_env) opts.clearEnv = true;
  if (s.cwd) opts.cwd = s.cwd as string;
  if (s.merge) opts.merge = true;
  if (s.pty) opts.pty = s.pty as { cols: number; rows: number };
  if (s.timeout_ms) opts.timeoutMs = s.timeout_ms as number;
  if (s.stdin_size !== undefined) opts.input = pattern(s.stdin_size as number);
  let r;
  if (s.signal) {
    const p = g.exec(cmd, { ...opts, stdin: "closed" });
    await p.started;
    p.kill(s.signal as string);
    const [stdout, stderr, result] = await Promise.all([new Response(p.stdout).bytes(), new Response(p.stderr).bytes(), p.result]);
    r = { status: result.status, exitStatus: await p.exited, signal: p.signalCode, errno: undefined, stdout, stderr };
  } else {
    r = await g.run(cmd, opts);
  }
  const out: Json = {
    status: r.status,
    returncode: r.exitStatus,
    stdout: r.stdout.length <= 65536 ? dec.decode(r.stdout) : null,
    stderr: r.stderr.length <= 65536 ? dec.decode(r.stderr) : null,
    stdout_len: r.stdout.length,
    stdout_sha256: sha256(r.stdout),
    stderr_len: r.stderr.length,
  };
  if (r.signal) out.signal = r.signal;
  if (r.errno) out.errno = r.errno;
  if (s.check_child_gone) out.child_gone = await childGone(g, Number(dec.decode(r.stdout).trim()));
  return out;
}

/** A killed process may linger a moment as a zombie before it is reaped: ask `kill -0` a few times. */
async function childGone(g: Guest, pid: number): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    if ((await g.run(["kill", "-0", String(pid)])).exitStatus !== 0) return true;
    await Bun.sleep(100);
  }
  return false;
}

async function fileRoundtrip(g: Guest, s: Scenario): Promise<Json> {
  const path = join(conf.work, `file-${s.id}`);
  await g.putFile(path, pattern(s.size as number), { mode: parseInt(s.mode as string, 8) });
  const f = g.getFile(path, s.max_size ? { maxSize: s.max_size as number } : {});
  const [bytes, info] = await Promise.all([f.bytes(), f.done]);
  return { size: info.size, mode: octal(info.mode), sha256: sha256(bytes) };
}

async function dirRoundtrip(g: Guest, s: Scenario): Promise<Json> {
  const src = join(conf.work, "tree-src");
  mkdirSync(join(src, "bin"), { recursive: true });
  mkdirSync(join(src, "empty"));
  writeFileSync(join(src, "a.txt"), "alpha\n");
  writeFileSync(join(src, "bin/run.sh"), "#!/bin/sh\n");
  symlinkSync("a.txt", join(src, "link"));
  chmodSync(join(src, "a.txt"), 0o644);
  chmodSync(join(src, "bin/run.sh"), 0o755);
  chmodSync(join(src, "empty"), 0o700);
  const remote = join(conf.work, "tree-remote");
  const back = join(conf.work, "tree-back");
  await g.putDir(src, remote);
  await g.getDir(remote, back, { preserveMode: true });
  const list = async (dir: string) => (await g.run(["sh", "-c", s.list as string, "sh", dir])).stdoutText;
  return { remote: await list(remote), back: await list(back) };
}

/** Detach on one connection, then list, attach and kill on another: the job outlives the first. */
async function jobs(s: Scenario): Promise<Json> {
  const tag = `${conf.tag}-${s.id}`;
  const first = await open("unix");
  const p = first.exec({ shell: s.shell as string }, { detach: { tag }, stdin: "closed" });
  await p.started;
  first.close();
  const g = await open("unix");
  try {
    let listed: string | undefined;
    for (let i = 0; i < 100; i++) {
      const job = (await g.list()).find((j) => j.tag === tag);
      listed = job?.state;
      if (job && job.stdout.total >= 3) break;
      await Bun.sleep(50);
    }
    const a = g.attach(tag);
    await a.started;
    await g.kill(tag, "SIGKILL");
    const [replay, result] = await Promise.all([new Response(a.stdout).text(), a.result]);
    return { listed, replay, status: result.status, signal: a.signalCode, returncode: await a.exited };
  } finally {
    g.close();
  }
}

/** A second job with the tag of a running one does not start (EEXIST); the first runs on until killed. */
async function jobsTaken(g: Guest, s: Scenario): Promise<Json> {
  const tag = `${conf.tag}-${s.id}`;
  const first = g.exec({ shell: s.shell as string }, { detach: { tag }, stdin: "closed" });
  await first.started;
  const second = await g.run({ shell: s.shell as string }, { detach: { tag } });
  const listed = (await g.list()).find((j) => j.tag === tag)?.state;
  await g.kill(tag, "SIGKILL");
  return { first: listed, status: second.status, errno: second.errno };
}

async function tcpEcho(g: Guest, s: Scenario): Promise<Json> {
  const stream = await g.connectTcp("127.0.0.1", conf.echo_port);
  const send = (async () => {
    const w = stream.writable.getWriter();
    await w.write(pattern(s.size as number));
    await w.close();
  })();
  const [got] = await Promise.all([new Response(stream.readable).bytes(), send]);
  return { len: got.length, sha256: sha256(got) };
}

async function hello(s: Scenario): Promise<Json> {
  const g = await open(s.address as string, s.token as string | undefined);
  try {
    return { stdout: (await g.run(["echo", "ok"])).stdoutText };
  } finally {
    g.close();
  }
}

async function scenario(g: Guest, s: Scenario): Promise<Json> {
  try {
    switch (s.op) {
      case "run": return await run(g, s);
      case "file_roundtrip": return await fileRoundtrip(g, s);
      case "file_get": return { size: (await g.getFile(s.path as string).done).size };
      case "dir_roundtrip": return await dirRoundtrip(g, s);
      case "jobs": return await jobs(s);
      case "jobs_taken": return await jobsTaken(g, s);
      case "dir_get": return { files: (await g.getDir(s.path as string, join(conf.work, `dir-${s.id}`))).files };
      case "tcp_echo": return await tcpEcho(g, s);
      case "tcp_refused": return { opened: !!(await g.connectTcp("127.0.0.1", conf.refused_port)) };
      case "tcp_open": return { opened: !!(await g.connectTcp(s.host as string, s.port as number)) };
      case "file_put": return { size: (await g.putFile(s.path as string, pattern(s.size as number))).size };
      case "kill_job": return await g.kill(s.tag as string, "SIGKILL"), { killed: true };
      case "attach": return { status: (await g.attach(s.tag as string).result).status };
      case "hello": return await hello(s);
      default: return { unknown_op: s.op };
    }
  } catch (e) {
    return errorResult(e);
  }
}

const { scenarios } = (await Bun.file(conf.scenarios).json()) as { scenarios: Scenario[] };
const g = await open("unix");
for (const s of scenarios) {
  let result: Json;
  try {
    result = await scenario(g, s);
  } catch (e) {
    result = { exception: String(e) };
  }
  console.log(JSON.stringify({ id: s.id, result }));
}
g.close();
process.exit(0);
