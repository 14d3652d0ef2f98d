// One conformance suite for the three host libraries: scenarios.json lists the scenarios and their expected
// results once; a driver per language (driver.ts, go/internal/conformance, conformance_driver.py) runs them
// all through its library's public API against the compiled agent, and each (language, scenario) is one bun
// test here, so a library that deviates shows by name. Agents run on Unix sockets only (never AF_VSOCK);
// the TCP scenarios reach a loopback echo server of this process.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startAgent, type RunningAgent } from "../helpers/agent.ts";
import { ROOT } from "../helpers/build.ts";
import { stop, tempDir } from "../host/_fixtures.ts";
import { echoServer, fcProxy, refusedPort, waitListening } from "./_servers.ts";

interface Scenario { id: string; op: string; expect: Record<string, unknown> }
const SCENARIOS = join(import.meta.dir, "scenarios.json");
const { scenarios } = (await Bun.file(SCENARIOS).json()) as { scenarios: Scenario[] };

function newestDebianGo(): string {
  try {
    const v = readdirSync("/usr/lib").filter((d) => /^go-1\.\d+$/.test(d)).sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
    return v.length ? `/usr/lib/${v[v.length - 1]}/bin` : "";
  } catch {
    return "";
  }
}
const PATH = `${process.env.PATH ?? ""}:/usr/local/go/bin:${newestDebianGo()}`;
const VENV = process.env.VGE_PY_VENV ?? join(ROOT, ".cache/py");
const PY = join(VENV, "bin/python");

/** The venv of scripts/python-deps.sh (scripts/test.sh has made it; a run on its own makes it once). */
function python(): string {
  if (!existsSync(PY) || Bun.spawnSync([PY, "-c", "import vsock_guest_exec"], { cwd: "/" }).exitCode !== 0) {
    Bun.spawnSync(["bash", join(ROOT, "scripts/python-deps.sh")], { stdout: "inherit", stderr: "inherit" });
  }
  return PY;
}

/**
 * The Go driver is built before it runs (not `go run`): with a cold build cache the compile takes ~45 s on
 * a loaded machine, which must not eat into the dialing agents' retry window.
 */
async function goDriver(): Promise<string> {
  const out = dir.file("vge-conformance");
  const build = Bun.spawn([Bun.which("go", { PATH }) ?? "go", "build", "-o", out, "./internal/conformance"], {
    cwd: join(ROOT, "go"),
    env: { ...process.env, PATH, GOFLAGS: "-buildvcs=false" },
    stdout: "pipe",
    stderr: "pipe",
    timeout: 240_000,
  });
  const err = await new Response(build.stderr).text();
  if ((await build.exited) !== 0) throw new Error(`go build ./internal/conformance failed: ${err}`);
  return out;
}

const LANGS: Record<string, () => Promise<{ cmd: string[]; cwd: string }>> = {
  ts: async () => ({ cmd: [process.execPath, join(import.meta.dir, "driver.ts")], cwd: ROOT }),
  go: async () => ({ cmd: [await goDriver()], cwd: join(ROOT, "go") }),
  python: async () => ({ cmd: [python(), join(import.meta.dir, "conformance_driver.py")], cwd: "/" }),
};

// VGE_CONF_LANGS=ts,go runs only those drivers (while working on one library).
const only = process.env.VGE_CONF_LANGS?.split(",");
for (const l of Object.keys(LANGS)) if (only && !only.includes(l)) delete LANGS[l];

const TOKEN = "conformance-token-0123456789abcdef";
const results = new Map<string, Map<string, Record<string, unknown>>>();
const failures = new Map<string, string>();
const dir = tempDir("vge-conf-");
const agents: RunningAgent[] = [];
const closers: (() => void)[] = [];

async function runDriver(lang: string): Promise<void> {
  let prepared;
  try {
    prepared = await LANGS[lang]!();
  } catch (e) {
    failures.set(lang, String(e));
    return;
  }
  const { cmd, cwd } = prepared;
  const work = join(dir.path, lang);
  mkdirSync(work);
  // A guest that dials in, for each listen address: it keeps dialing until the driver listens.
  const ul = join(work, "ul.sock");
  const fcl = join(work, "fcl.sock");
  agents.push(startAgent(["--unix", ul, "--retry", "60", "persistent"], { timeoutMs: 120_000 }));
  agents.push(startAgent(["--unix", `${fcl}_1024`, "--retry", "60", "persistent"], { timeoutMs: 120_000 }));
  const conf = {
    scenarios: SCENARIOS,
    work,
    tag: `conf-${lang}`,
    addresses: {
      unix: `unix:${dir.file("main.sock")}`,
      token: `unix:${dir.file("token.sock")}`,
      fc: `fc:${dir.file("fc.sock")}:1024`,
      unix_listen: `unix-listen:${ul}`,
      fc_listen: `fc-listen:${fcl}:1024`,
    },
    tokens: { right: TOKEN, wrong: "not-the-conformance-token-000000" },
    echo_port: echoPort,
    refused_port: closedPort,
  };
  const proc = Bun.spawn(cmd, {
    cwd,
    env: { ...process.env, PATH, GOFLAGS: "-buildvcs=false", VGE_CONF: JSON.stringify(conf), PYTHONDONTWRITEBYTECODE: "1" },
    stdout: "pipe",
    stderr: "pipe",
    timeout: 100_000,
    killSignal: "SIGKILL",
  });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const got = new Map<string, Record<string, unknown>>();
  for (const line of out.split("\n")) {
    if (!line.startsWith("{")) continue;
    const { id, result } = JSON.parse(line) as { id: string; result: Record<string, unknown> };
    got.set(id, result);
  }
  results.set(lang, got);
  if (proc.exitCode !== 0) failures.set(lang, `driver exited ${proc.exitCode ?? proc.signalCode}:\n${err.slice(-4000)}`);
}

let echoPort = 0;
let closedPort = 0;

beforeAll(async () => {
  writeFileSync(dir.file("token"), `${TOKEN}\n`, { mode: 0o600 });
  // The env scenarios read VGE_KEEP (kept) and VGE_DROP (removed by the request) from the agent's environment.
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", VGE_KEEP: "k", VGE_DROP: "d" };
  agents.push(startAgent(["--listen", "--unix", dir.file("main.sock")], { env, timeoutMs: 300_000 }));
  agents.push(startAgent(["--listen", "--token-file", dir.file("token"), "--unix", dir.file("token.sock")], { env, timeoutMs: 300_000 }));
  await waitListening(dir.file("main.sock"));
  await waitListening(dir.file("token.sock"));
  const echo = echoServer();
  echoPort = echo.port;
  closers.push(echo.close);
  const proxy = fcProxy(dir.file("fc.sock"), dir.file("main.sock"));
  closers.push(proxy.close);
  closedPort = await refusedPort();
  // The three drivers at once: each has its own work directory, job tag and dialing agents.
  await Promise.all(Object.keys(LANGS).map(runDriver));
}, 360_000);

afterAll(() => {
  for (const a of agents) stop(a);
  for (const c of closers) c();
  dir.remove();
});

/** Every key of `want` must match: equal, or for "<key>_regex" a match of result[key]. */
function check(got: Record<string, unknown>, want: Record<string, unknown>): void {
  const wrong = Object.entries(want).filter(([k, v]) =>
    k.endsWith("_regex") ? !new RegExp(v as string).test(String(got[k.slice(0, -"_regex".length)])) : !Bun.deepEquals(got[k], v),
  );
  expect(wrong.length ? `expected ${JSON.stringify(Object.fromEntries(wrong))}\ngot ${JSON.stringify(got).slice(0, 2000)}` : "").toBe("");
}

for (const lang of Object.keys(LANGS)) {
  describe(`conformance ${lang}`, () => {
    test("driver ran to the end", () => {
      expect(failures.get(lang) ?? "").toBe("");
    });
    for (const s of scenarios) {
      test(s.id, () => {
        const got = results.get(lang)?.get(s.id);
        if (!got) throw new Error(`${lang} reported nothing for ${s.id}${failures.has(lang) ? `: ${failures.get(lang)}` : ""}`);
        check(got, s.expect);
      });
    }
  });
}
