// The npm package as a user gets it: `npm pack` (prepack builds dist/lib and dist/types), the tarball's
// file list, then an install into a fresh project where only Node and npm are on PATH. There the library
// and `npx vge` drive a real agent over Unix sockets, a vsock: address is refused before any socket
// exists, and a strict NodeNext TypeScript consumer type-checks against the shipped declarations.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../helpers/build.ts";
import { dialingAgent, listeningAgent, stop, tempDir } from "../host/_fixtures.ts";

const dir = tempDir("vge-npm-");
const project = dir.file("project");
const bin = dir.file("bin");
let files: string[] = [];
let tarball = "";
afterAll(() => dir.remove());

const node = Bun.which("node");
const npm = Bun.which("npm");
const npx = Bun.which("npx");
const strace = Bun.which("strace");
const major = node ? Number(Bun.spawnSync([node, "-p", "process.versions.node.split('.')[0]"]).stdout.toString()) : 0;
const skip = !node || !npm || !npx || major < 20 ? "needs node >= 20, npm and npx" : undefined;

/** Node, npm, npx and sh and nothing else: no bun anywhere on PATH (the system dirs hold a bun link). */
const env = () => ({ PATH: bin, HOME: dir.path, NO_COLOR: "1", npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false" });

function run(argv: string[], cwd: string, extraEnv: Record<string, string> = {}) {
  const r = Bun.spawnSync(argv, { cwd, env: { ...env(), ...extraEnv }, stdout: "pipe", stderr: "pipe", timeout: 120_000 });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

beforeAll(() => {
  if (skip) return;
  mkdirSync(bin);
  // sh too: npx runs bins through it.
  for (const [name, path] of [["node", node!], ["npm", npm!], ["npx", npx!], ["sh", "/bin/sh"]]) symlinkSync(realpathSync(path!), join(bin, name!));
  // Packed from the repository with bun on PATH: prepack builds with it (a dev dependency).
  const packed = Bun.spawnSync([npm!, "pack", "--pack-destination", dir.path], { cwd: ROOT, stdout: "pipe", stderr: "pipe", timeout: 240_000 });
  if (packed.exitCode !== 0) throw new Error(`npm pack failed:\n${packed.stderr.toString()}`);
  tarball = join(dir.path, packed.stdout.toString().trim().split("\n").at(-1)!);
  files = Bun.spawnSync(["tar", "tzf", tarball]).stdout.toString().trim().split("\n").map((f) => f.replace(/^package\//, ""));
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  const installed = run(["npm", "install", "--offline", tarball], project);
  if (installed.code !== 0) throw new Error(`npm install failed:\n${installed.err}`);
}, 300_000);

test.skipIf(!!skip)("the tarball holds the built library, declarations, CLI and docs, and no tests", () => {
  for (const f of ["package.json", "README.md", "PROTOCOL.md", "LICENSE", "dist/lib/host/index.js", "dist/lib/protocol/index.js", "dist/lib/cli/vge.js", "dist/types/host/index.d.ts", "dist/types/protocol/index.d.ts"]) {
    expect(files).toContain(f);
  }
  expect(files.filter((f) => /^(test|\.ci|src|bench|scripts|initrd)\//.test(f) || /\.test\.|\.ts$/.test(f.replace(/\.d\.ts$/, "")))).toEqual([]);
  // Only the JS and declarations: the agent and vge executables in dist/ are far too big for npm.
  expect(files.filter((f) => f.startsWith("dist/") && !/^dist\/(lib\/.*\.js|types\/.*\.d\.ts)$/.test(f))).toEqual([]);
  // No Bun types leak into what consumers type-check.
  const dts = files.filter((f) => f.endsWith(".d.ts")).map((f) => Bun.file(join(project, "node_modules/vsock-guest-exec", f)));
  return Promise.all(dts.map(async (f) => expect(await f.text()).not.toMatch(/from ["']bun(:\w+)?["']/)));
});

test.skipIf(!!skip)("the project's PATH has node and npm but no bun", () => {
  expect(run(["/bin/sh", "-c", "command -v node && ! command -v bun"], project).code).toBe(0);
});

const LIBRARY = `
import { listen, GuestError } from "vsock-guest-exec";
import { T, encodeFrame } from "vsock-guest-exec/protocol";
const l = await listen("unix-listen:" + process.argv[2]);
const g = await l.accept();
await l.close();
const r = await g.run(["sh", "-c", "cat; echo err >&2; exit 3"], { input: "in\\n" });
const p = g.exec(["sh", "-c", "kill -9 $$"]);
const [exited, result] = await Promise.all([p.exited, p.result]);
const bad = (() => { try { p.kill("SIGNOPE"); } catch (e) { return e instanceof GuestError && e.code; } })();
g.close();
console.log(JSON.stringify({ runtime: typeof Bun === "undefined" ? "node" : "bun", code: r.code, out: r.stdoutText, err: r.stderrText, exited, result, bad, ping: encodeFrame(T.PING, 0).length }));
`;

async function library(runtime: string, name: string): Promise<unknown> {
  writeFileSync(join(project, "main.mjs"), LIBRARY);
  const sock = join(project, `${name}.sock`);
  const proc = Bun.spawn([runtime, "main.mjs", sock], { cwd: project, env: env(), stdout: "pipe", stderr: "pipe", timeout: 30_000, killSignal: "SIGKILL" });
  const agent = dialingAgent(sock);
  try {
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    expect(err).toBe("");
    expect(await proc.exited).toBe(0);
    return JSON.parse(out);
  } finally {
    stop(agent);
    proc.kill("SIGKILL");
  }
}

const EXPECTED = { code: 3, out: "in\n", err: "err\n", exited: 137, result: { status: "signaled", signal: "SIGKILL", signo: 9 }, bad: "EINVAL", ping: 9 };

test.skipIf(!!skip)("on Node the installed library and ./protocol run a command through a real agent", async () => {
  expect(await library(join(bin, "node"), "node")).toEqual({ runtime: "node", ...EXPECTED });
}, 60_000);

test.skipIf(!!skip)("on Bun the same installed package works too", async () => {
  expect(await library(process.execPath, "bun")).toEqual({ runtime: "bun", ...EXPECTED });
}, 60_000);

test.skipIf(!!skip)("npx vge run unix-listen: on Node: the command's output and exit status", async () => {
  const sock = join(project, "vge.sock");
  const proc = Bun.spawn(["npx", "--offline", "vge", "run", "-q", "--wait", "20", `unix-listen:${sock}`, "--", "sh", "-c", "echo out; exit 3"], {
    cwd: project,
    env: env(),
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
    killSignal: "SIGKILL",
  });
  const agent = dialingAgent(sock);
  try {
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    expect({ out, err, code: await proc.exited }).toEqual({ out: "out\n", err: "", code: 3 });
  } finally {
    stop(agent);
    proc.kill("SIGKILL");
  }
}, 90_000);

test.skipIf(!!skip)("vge cp - :PATH on Node: stdin (read through node:stream, not Bun.stdin) lands whole in the guest", async () => {
  const sock = join(project, "cp.sock");
  const data = new Uint8Array(300_000).map((_, i) => (i * 7) % 251);
  const target = join(project, "copied.bin");
  const proc = Bun.spawn([join(project, "node_modules/.bin/vge"), "cp", "-q", "--wait", "20", `unix-listen:${sock}`, "-", `:${target}`], {
    cwd: project,
    env: env(),
    stdin: data,
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
    killSignal: "SIGKILL",
  });
  const agent = dialingAgent(sock);
  try {
    const err = await new Response(proc.stderr).text();
    expect({ err, code: await proc.exited }).toEqual({ err: "", code: 0 });
    expect(new Uint8Array(readFileSync(target))).toEqual(data);
  } finally {
    stop(agent);
    proc.kill("SIGKILL");
  }
}, 90_000);

test.skipIf(!!skip || !strace)("npx vge run vsock: on Node says it needs Bun, exits 255, and makes no socket at all", () => {
  // Under strace, and with every connect() failed by strace before it reaches the kernel: even a
  // regression here could not dial AF_VSOCK from this machine (itself a VM).
  const trace = dir.file("strace.log");
  const straced = (argv: string[]) => run([strace!, "-f", "-qq", "-o", trace, "-e", "trace=socket,connect", "-e", "inject=connect:error=ECONNREFUSED", ...argv], project);
  const r = straced(["npx", "--offline", "vge", "run", "vsock:3:1024", "--", "true"]);
  expect(r.out).toBe("");
  expect(r.err).toBe("vge: error: vsock:3:1024: AF_VSOCK needs Bun or the standalone vge binary (it goes through bun:ffi); on Node use unix:, unix-listen:, fc: or fc-listen: addresses\n");
  expect(r.code).toBe(255);
  const calls = readFileSync(trace, "utf8");
  expect(calls).not.toContain("AF_VSOCK");
  expect(calls).not.toMatch(/connect\(/);
  // The control: the same trace does show a socket and a connect when node makes one.
  straced(["node", "-e", `require("net").connect("${dir.file("nobody.sock")}").on("error", () => {})`]);
  expect(readFileSync(trace, "utf8")).toMatch(/socket\(AF_UNIX[\s\S]*connect\(/);
}, 90_000);

const GOOD = `
import { connect, listen, GuestError, type Guest, type RunResult, type ExitResult } from "vsock-guest-exec";
import { encodeFrame, T } from "vsock-guest-exec/protocol";
export async function main(address: string): Promise<number> {
  const g: Guest = await connect(address, { retryMs: 1000 });
  const r: RunResult = await g.run(["sh", "-c", "echo hi"]);
  const p = g.exec(["true"], { stdin: "pipe" });
  await p.stdin?.getWriter().write("x");
  const status: number = await p.exited;
  const result: ExitResult = await p.result;
  const l = await listen("unix-listen:/tmp/x.sock");
  await l.close();
  const frame: Uint8Array = encodeFrame(T.PING, 0);
  try { await g.ping(); } catch (e) { if (e instanceof GuestError) console.log(e.code.length); }
  return r.exitStatus + status + frame.length + (result.status === "exited" ? result.code : 0);
}
`;
// A deliberate mistake: proves the declarations are read and typed (an `any` would accept it).
const BAD = `
import { connect } from "vsock-guest-exec";
export const wrong: string = await (await connect("unix:/x")).exec(["true"]).exited;
`;

test.skipIf(!!skip)("a strict NodeNext TypeScript consumer type-checks against the shipped declarations", () => {
  writeFileSync(join(project, "good.ts"), GOOD);
  writeFileSync(join(project, "bad.ts"), BAD);
  // @types/node from this repository, as any Node project has it; typescript too (no network here).
  mkdirSync(join(project, "node_modules/@types"), { recursive: true });
  symlinkSync(join(ROOT, "node_modules/@types/node"), join(project, "node_modules/@types/node"));
  symlinkSync(join(ROOT, "node_modules/undici-types"), join(project, "node_modules/undici-types"));
  const tsc = ["node", join(ROOT, "node_modules/typescript/bin/tsc"), "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--noEmit", "--pretty", "false"];
  const r = run([...tsc, "good.ts", "bad.ts"], project);
  const errors = r.out.trim().split("\n").filter(Boolean);
  expect(errors).toEqual([expect.stringMatching(/^bad\.ts\(3,14\): error TS2322: Type 'number' is not assignable to type 'string'\.$/)]);
  expect(r.code).toBe(2);
}, 180_000);

test.skipIf(!!skip)("the installed vge on Node: stdin of every size, from a pipe, a file and a socket, ends whole every time", async () => {
  // test/cli/stdin-loop.test.ts runs hundreds of these; here the CLI is the one npm installed.
  const sock = join(project, "stdin.sock");
  const agent = await listeningAgent(sock);
  try {
    const vge = [join(project, "node_modules/.bin/vge"), "run", "-q", `unix:${sock}`, "--", "wc", "-c"];
    for (let round = 0; round < 3; round++) {
      for (const size of [0, 1, 4095, 65536, 1 << 20, 4 << 20]) {
        const file = join(project, "stdin.bin");
        writeFileSync(file, new Uint8Array(size));
        for (const feed of ["pipe", "file", "socket"]) {
          const cmd = feed === "pipe" ? ["sh", "-c", `/usr/bin/head -c ${size} /dev/zero | exec "$@"`, "sh", ...vge] : vge;
          const stdin = feed === "file" ? Bun.file(file) : feed === "socket" ? new Uint8Array(size) : "ignore";
          const proc = Bun.spawn(cmd, { cwd: project, env: env(), stdin, stdout: "pipe", stderr: "pipe", timeout: 20_000, killSignal: "SIGKILL" });
          const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
          expect({ feed, size, out: out.trim(), err, code: await proc.exited }).toEqual({ feed, size, out: String(size), err: "", code: 0 });
        }
      }
    }
  } finally {
    stop(agent);
  }
}, 120_000);
