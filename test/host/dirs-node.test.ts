// putDir / getDir on Node ≥ 20: the bundled host library (src/archive uses node:fs only) against the real agent.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { ROOT } from "../helpers/build.ts";
import { dialingAgent, stop, tempDir } from "./_fixtures.ts";

const node = Bun.which("node");
const major = node ? Number(Bun.spawnSync([node, "-p", "process.versions.node.split('.')[0]"]).stdout.toString()) : 0;
const dir = tempDir("vge-dirnode-");
afterAll(() => dir.remove());

const SCRIPT = `
import { listen } from "./bundle/index.js";
import { mkdirSync, writeFileSync, symlinkSync, chmodSync, utimesSync, lstatSync, readlinkSync, readFileSync } from "node:fs";
const [path, root] = process.argv.slice(2);
mkdirSync(root + "/src/sub", { recursive: true });
writeFileSync(root + "/src/sub/f", "from node\\n");
chmodSync(root + "/src/sub/f", 0o640);
utimesSync(root + "/src/sub/f", 1600000000, 1600000000);
symlinkSync("sub/f", root + "/src/l");
const l = await listen("unix-listen:" + path);
const g = await l.accept();
await l.close();
const put = await g.putDir(root + "/src", root + "/guest");
const got = await g.getDir(root + "/guest", root + "/back");
g.close();
const f = lstatSync(root + "/back/sub/f");
console.log(JSON.stringify({ put, got, text: readFileSync(root + "/back/sub/f", "utf8"), mode: f.mode & 0o7777, mtime: f.mtimeMs, link: readlinkSync(root + "/back/l") }));
`;

test.skipIf(major < 20)("on Node: putDir then getDir, content, mode, mtime and symlink kept", async () => {
  const built = Bun.spawnSync(["bun", "build", join(ROOT, "src/host/index.ts"), "--target=node", "--format=esm", "--splitting", "--outdir", dir.file("bundle")], { stderr: "pipe" });
  expect(built.exitCode).toBe(0);
  await Bun.write(dir.file("main.mjs"), SCRIPT);
  const sock = dir.file("n.sock");
  const proc = Bun.spawn([node!, dir.file("main.mjs"), sock, dir.path], { cwd: dir.path, stdout: "pipe", stderr: "pipe", timeout: 20_000, killSignal: "SIGKILL" });
  const agent = dialingAgent(sock);
  try {
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    expect(err).toBe("");
    expect(await proc.exited).toBe(0);
    const counts = { files: 1, dirs: 1, symlinks: 1, bytes: 10, skipped: 0 };
    expect(JSON.parse(out.trim())).toEqual({ put: counts, got: counts, text: "from node\n", mode: 0o640, mtime: 1600000000000, link: "sub/f" });
  } finally {
    stop(agent);
    proc.kill("SIGKILL");
  }
}, 30_000);

// Directory copies name what they write through /proc/self/fd (src/archive/dirfd.ts). Without /proc they
// must refuse with one clear line, not write by path. Node runs without /proc (Bun does not start at all),
// so the host library on Node is the case: a private mount namespace hides /proc under an empty tmpfs.
const unshare = Bun.which("unshare");
const isRoot = process.getuid?.() === 0;
test.skipIf(major < 20 || !unshare || !isRoot)("on Node without /proc: the copy refuses with ENOTSUP and says why", async () => {
  await Bun.write(
    dir.file("noproc.ts"),
    `import { Extractor } from ${JSON.stringify(join(ROOT, "src/archive/extract.ts"))};
const x = new Extractor(process.argv[2], { modeMask: 0o777 });
try { await x.start(); console.log("started"); } catch (e) { console.log(e.code + " " + e.message); }
await x.abort();
`,
  );
  const built = Bun.spawnSync(["bun", "build", dir.file("noproc.ts"), "--target=node", "--format=esm", "--outfile", dir.file("noproc.mjs")], { stderr: "pipe" });
  expect(built.exitCode).toBe(0);
  // --propagation private: the tmpfs over /proc exists in this namespace only.
  const run = Bun.spawnSync([unshare!, "--mount", "--propagation", "private", "sh", "-c", 'mount -t tmpfs none /proc && exec "$0" "$1" "$2"', node!, dir.file("noproc.mjs"), dir.file("noproc-target")], { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
  expect(run.stderr.toString()).toBe("");
  expect(run.stdout.toString().trim()).toBe("ENOTSUP /proc is not mounted: directory copies name what they write through /proc/self/fd (mount -t proc proc /proc)");
  // With /proc, the same script starts.
  const normal = Bun.spawnSync([node!, dir.file("noproc.mjs"), dir.file("noproc-target2")], { stdout: "pipe", timeout: 20_000 });
  expect(normal.stdout.toString().trim()).toBe("started");
}, 30_000);
