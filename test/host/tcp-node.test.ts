// guest.connectTcp on Node ≥ 20, from the bundled library, against the real agent: web streams and credit
// work there as on Bun (the agent is the compiled one; only the host side runs on Node).
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { ROOT } from "../helpers/build.ts";
import { listeningAgent, stop, tempDir } from "./_fixtures.ts";

const node = Bun.which("node");
const major = node ? Number(Bun.spawnSync([node, "-p", "process.versions.node.split('.')[0]"]).stdout.toString()) : 0;
const dir = tempDir("vge-tcpn-");
afterAll(() => dir.remove());

const SCRIPT = `
import { createServer } from "node:net";
import { createHash } from "node:crypto";
import { connect } from "./bundle/index.js";
const [path] = process.argv.slice(2);
// Counts and hashes what it gets until our half-close, then answers with that.
const srv = createServer({ allowHalfOpen: true }, (s) => {
  const h = createHash("sha256");
  let n = 0;
  s.on("data", (d) => { n += d.length; h.update(d); });
  s.on("end", () => s.end(n + " " + h.digest("hex")));
});
await new Promise((r) => srv.listen(0, "127.0.0.1", r));
const g = await connect("unix:" + path);
const s = await g.connectTcp("127.0.0.1", srv.address().port);
const data = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 13) % 256);
const w = s.writable.getWriter();
await w.write(data);
await w.close();
const answer = await new Response(s.readable).text();
await s.closed;
const refused = await g.connectTcp("127.0.0.1", 1).catch((e) => e.code);
g.close();
srv.close();
console.log(JSON.stringify({ answer, want: data.length + " " + createHash("sha256").update(data).digest("hex"), refused }));
`;

test.skipIf(major < 20)("on Node: 3 MiB up a TCP stream with half-close, the answer back; a refusal", async () => {
  const built = Bun.spawnSync(["bun", "build", join(ROOT, "src/host/index.ts"), "--target=node", "--format=esm", "--splitting", "--outdir", dir.file("bundle")], { stderr: "pipe" });
  expect(built.exitCode).toBe(0);
  await Bun.write(dir.file("main.mjs"), SCRIPT);
  const agent = await listeningAgent(dir.file("a.sock"));
  const proc = Bun.spawn([node!, dir.file("main.mjs"), dir.file("a.sock")], { cwd: dir.path, stdout: "pipe", stderr: "pipe", timeout: 20_000, killSignal: "SIGKILL" });
  try {
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    expect(err).toBe("");
    expect(await proc.exited).toBe(0);
    const r = JSON.parse(out.trim().split("\n").at(-1)!);
    expect(r.answer).toBe(r.want);
    expect(r.refused).toBe("ECONNREFUSED");
  } finally {
    stop(agent);
    proc.kill("SIGKILL");
  }
}, 30_000);
