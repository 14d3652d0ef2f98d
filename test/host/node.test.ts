// The host library's Unix-socket transports on Node ≥ 20: bundled as ESM (AF_VSOCK lands in a separate
// chunk that only a vsock address loads) and driven by `node` against the real agent.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { ROOT } from "../helpers/build.ts";
import { dialingAgent, stop, tempDir } from "./_fixtures.ts";

const node = Bun.which("node");
const major = node ? Number(Bun.spawnSync([node, "-p", "process.versions.node.split('.')[0]"]).stdout.toString()) : 0;
const dir = tempDir("vge-node-");
afterAll(() => dir.remove());

const SCRIPT = `
import { listen, connect } from "./bundle/index.js";
const [path] = process.argv.slice(2);
const l = await listen("unix-listen:" + path);
process.stdout.write("listening\\n");
const g = await l.accept();
await l.close();
const r = await g.run(["sh", "-c", "cat; echo err >&2; exit 3"], { input: "from node\\n" });
const data = new Uint8Array(300000).map((_, i) => i % 251);
await g.putFile(path + ".file", data, { mode: 0o600 });
const back = await g.readFile(path + ".file");
const rtt = await g.ping();
const vsock = await connect("vsock:3:1024").catch((e) => e.code + " " + e.message);
g.close();
console.log(JSON.stringify({ code: r.code, out: r.stdoutText, err: r.stderrText, same: back.length === data.length && back.every((b, i) => b === data[i]), rtt: rtt > 0, vsock }));
`;

test.skipIf(major < 20)("on Node: listen, run with stdin, put/get, ping; vsock says it needs Bun", async () => {
  const built = Bun.spawnSync(["bun", "build", join(ROOT, "src/host/index.ts"), "--target=node", "--format=esm", "--splitting", "--outdir", dir.file("bundle")], { stderr: "pipe" });
  expect(built.exitCode).toBe(0);
  await Bun.write(dir.file("main.mjs"), SCRIPT);
  const sock = dir.file("n.sock");
  const proc = Bun.spawn([node!, dir.file("main.mjs"), sock], { cwd: dir.path, stdout: "pipe", stderr: "pipe", timeout: 20_000, killSignal: "SIGKILL" });
  const agent = dialingAgent(sock);
  try {
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    expect(err).toBe("");
    expect(await proc.exited).toBe(0);
    const result = JSON.parse(out.trim().split("\n").at(-1)!);
    expect(result).toEqual({ code: 3, out: "from node\n", err: "err\n", same: true, rtt: true, vsock: expect.stringMatching(/^ENOTSUP vsock:3:1024: AF_VSOCK needs Bun or the standalone vge binary/) });
  } finally {
    stop(agent);
    proc.kill("SIGKILL");
  }
}, 30_000);
