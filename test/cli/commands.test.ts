// vge info, cp, wait, send and shell against the real agent.
import { describe, expect, test } from "bun:test";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { startAgent } from "../helpers/agent.ts";
import { dialingAgent, listeningAgent, sha256, stop } from "../host/_fixtures.ts";
import { VGE, startVge, vge, vgeAgent, vgeLines } from "./_vge.ts";

const fx = vgeAgent("vge-cli-cmd-");
const { dir, addr: ADDR } = fx;

test("info: the WELCOME facts and an rtt; --json", async () => {
  const t = await vge(["info", ADDR]);
  expect(t.code).toBe(0);
  expect(t.stdout).toMatch(/^agent: +0\.2\.0 \(protocol 2\)$/m);
  expect(t.stdout).toMatch(/^rtt: +\d+\.\d{3} ms$/m);
  const j = await vge(["info", ADDR, "--json"]);
  const info = JSON.parse(j.stdout);
  expect(info).toMatchObject({ version: 2, pid: fx.agent.proc.pid, capabilities: expect.arrayContaining(["exec", "files"]) });
  expect(info.rttMs).toBeGreaterThan(0);
});

describe("cp", () => {
  test("host → guest → host: same bytes, the mode kept both ways", async () => {
    const src = dir.file("src.bin");
    const data = crypto.getRandomValues(new Uint8Array(2_500_000));
    writeFileSync(src, data);
    chmodSync(src, 0o751);
    const put = await vge(["cp", ADDR, src, `:${dir.file("in-guest.bin")}`]);
    expect(put).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expect(statSync(dir.file("in-guest.bin")).mode & 0o7777).toBe(0o751);
    const get = await vge(["cp", ADDR, `:${dir.file("in-guest.bin")}`, dir.file("back.bin")]);
    expect(get.code).toBe(0);
    expect(sha256(readFileSync(dir.file("back.bin")))).toBe(sha256(data));
    expect(statSync(dir.file("back.bin")).mode & 0o7777).toBe(0o751);
  });

  test("--mode, a guest directory ending in /, stdin and stdout", async () => {
    writeFileSync(dir.file("m.txt"), "mode\n");
    expect((await vge(["cp", ADDR, "--mode", "600", dir.file("m.txt"), `:${dir.path}/sub-`])).code).toBe(0);
    expect(statSync(dir.file("sub-")).mode & 0o7777).toBe(0o600);
    Bun.spawnSync(["mkdir", dir.file("d")]);
    expect((await vge(["cp", ADDR, dir.file("m.txt"), `:${dir.file("d")}/`])).code).toBe(0);
    expect(readFileSync(dir.file("d/m.txt"), "utf8")).toBe("mode\n");
    expect((await vge(["cp", ADDR, "-", `:${dir.file("from-stdin")}`], { stdin: "piped in\n" })).code).toBe(0);
    expect(readFileSync(dir.file("from-stdin"), "utf8")).toBe("piped in\n");
    expect((await vge(["cp", ADDR, `:${dir.file("from-stdin")}`, "-"])).stdout).toBe("piped in\n");
  });

  test("a guest-side failure: exit 1, one line, no partial local file", async () => {
    const r = await vge(["cp", ADDR, `:${dir.file("missing")}`, dir.file("never")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^vge: error: .*missing: ENOENT.*\n$/);
    expect(Bun.spawnSync(["ls", "-A", dir.path]).stdout.toString()).not.toMatch(/never/);
  });
});

describe("wait", () => {
  test("a connect address: ready at once; nobody there: 124 after --timeout", async () => {
    const ok = await vge(["wait", ADDR]);
    expect(ok.code).toBe(0);
    expect(vgeLines(ok.stderr)[0]).toMatch(/^vge: ready: .* \(agent 0\.2\.0\) after \d+\.\d s$/);
    const none = await vge(["wait", `unix:${dir.file("none.sock")}`, "--timeout", "1"]);
    expect(none.code).toBe(124);
    expect(vgeLines(none.stderr)).toEqual([
      `vge: waiting for the agent at unix:${dir.file("none.sock")} (connect: ENOENT)`,
      `vge: error: no agent answering at unix:${dir.file("none.sock")} within 1 s; last: guest unix:${dir.file("none.sock")}: connect: ENOENT`,
    ]);
  });

  test("a connect address that comes up later", async () => {
    const path = dir.file("later.sock");
    const w = startVge(["wait", `unix:${path}`, "--timeout", "10"]);
    await Bun.sleep(700);
    const late = await listeningAgent(path);
    try {
      const r = await w.done;
      expect(r.code).toBe(0);
    } finally {
      stop(late);
    }
  });

  test("a listen address: waits for a guest to dial in", async () => {
    const path = dir.file("wait-listen.sock");
    const w = startVge(["wait", `unix-listen:${path}`]);
    await Bun.sleep(500);
    const dialer = dialingAgent(path);
    try {
      const r = await w.done;
      expect(r.code).toBe(0);
      expect(vgeLines(r.stderr)[0]).toBe(`vge: waiting for a guest to connect to unix-listen:${path}`);
    } finally {
      stop(dialer);
    }
  });

  test("waiting says so once, then every 5 s; --quiet says nothing", async () => {
    const path = dir.file("lonely.sock");
    const r = await vge(["wait", `unix-listen:${path}`, "--timeout", "6"]);
    expect(r.code).toBe(124);
    expect(vgeLines(r.stderr)).toEqual([
      `vge: waiting for a guest to connect to unix-listen:${path}`,
      `vge: still waiting for a guest to connect to unix-listen:${path} (5 s)`,
      `vge: error: no guest connected at unix-listen:${path} within 6 s`,
    ]);
    const q = await vge(["wait", "-q", `unix-listen:${path}`, "--timeout", "0.5"]);
    expect(q.code).toBe(124);
    expect(vgeLines(q.stderr)).toEqual([`vge: error: no guest connected at unix-listen:${path} within 0.5 s`]);
  }, 15_000);
});

describe("send (original formats)", () => {
  test("--persistent: each command one frame; disposable: one command, back when it finished", async () => {
    const path = dir.file("legacy.sock");
    const out = dir.file("legacy.out");
    const p = startVge(["send", `unix-listen:${path}`, "--persistent", `echo a >> ${out}`, `echo b >> ${out}`]);
    const pa = startAgent(["--unix", path, "--retry", "10", "persistent"]);
    try {
      expect((await p.done).code).toBe(0);
      expect(readFileSync(out, "utf8")).toBe("a\nb\n");
    } finally {
      stop(pa);
    }
    const d = startVge(["send", `unix-listen:${path}`, `sleep 0.5; echo c >> ${out}`]);
    const da = startAgent(["--unix", path, "--retry", "10"]);
    try {
      const r = await d.done;
      expect(r.code).toBe(0);
      expect(readFileSync(out, "utf8")).toBe("a\nb\nc\n");
      expect((await da.done).code).toBe(0);
    } finally {
      stop(da);
    }
  });
});

const script = Bun.which("script");

describe.skipIf(!script)("on a terminal (script(1) gives vge a PTY)", () => {
  const onTty = (cmd: string, input: string, delayMs = 1500, holdS = 2) =>
    Bun.spawn(["sh", "-c", `(sleep ${delayMs / 1000}; printf '${input}'; sleep ${holdS}) | script -qfec "${cmd}" /dev/null`], { stdout: "pipe", stderr: "pipe", timeout: 20_000, killSignal: "SIGKILL", env: { ...process.env, TERM: "dumb", NO_COLOR: "1" } });

  test("shell: a login shell on a PTY, its exit status becomes vge's", async () => {
    const p = onTty(`stty cols 91 rows 27; bun ${VGE} shell ${ADDR}`, "echo PTY-$((6*7)); stty size; tty\\nexit 5\\n");
    const out = await new Response(p.stdout).text();
    // script -e exits with its child's status: vge's, which is the remote shell's.
    expect(await p.exited).toBe(5);
    expect(out).toContain("PTY-42");
    expect(out).toContain("27 91");
    expect(out).toMatch(/\/dev\/pts\/\d+/);
  }, 10_000);

  test("run without -t on a terminal gives the command a closed stdin", async () => {
    // The terminal stays open for 8 s: a cat reading it would still be waiting then.
    const t0 = performance.now();
    const p = onTty(`bun ${VGE} run ${ADDR} --shell 'readlink /proc/self/fd/0; cat'; echo vge-exit=\\$?`, "", 0, 8);
    let out = "";
    const reader = p.stdout.getReader();
    while (!out.includes("vge-exit=")) {
      const { done, value } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    expect(out).toContain("/dev/null");
    expect(out).toContain("vge-exit=0");
    expect(performance.now() - t0).toBeLessThan(6000);
    p.kill("SIGKILL");
  }, 10_000);
});
