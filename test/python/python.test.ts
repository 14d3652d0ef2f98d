// The Python host package (python/), as users install it: `pip install ./python` into a venv
// (scripts/python-deps.sh), then its pytest suite against the compiled agent and `mypy --strict`.
// Each pytest case is one test here, so the closing count says what passed.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { agentBinary } from "../helpers/build.ts";

const REPO = join(import.meta.dir, "../..");
const VENV = process.env.VGE_PY_VENV ?? join(REPO, ".cache/py");
const PY = join(VENV, "bin/python");
const JUNIT = join(REPO, "test-results/python-junit.xml");

function ready(): boolean {
  // scripts/test.sh has run python-deps.sh; a bun test run on its own makes the venv the first time.
  if (existsSync(PY) && Bun.spawnSync([PY, "-c", "import vsock_guest_exec, pytest"], { cwd: "/" }).exitCode === 0) return true;
  const r = Bun.spawnSync(["bash", join(REPO, "scripts/python-deps.sh")], { stdout: "inherit", stderr: "inherit" });
  return r.exitCode === 0 && existsSync(PY);
}

const env = () => ({ ...process.env, VGE_AGENT: agentBinary(), VGE_PY_INSTALLED: "1", PYTHONDONTWRITEBYTECODE: "1" });

// Collected synchronously: bun registers tests when the file loads.
const collected = ready()
  ? Bun.spawnSync([PY, "-m", "pytest", "--collect-only", "-q", "python/tests"], { cwd: REPO, env: env() }).stdout.toString()
  : "";
// "tests/test_x.py::name[param]" (pytest roots itself at python/, where pyproject.toml is) → "test_x.py::name[param]"
const ids = collected.split("\n").filter((l) => l.includes("::")).map((l) => l.slice(l.lastIndexOf("/", l.indexOf("::")) + 1));

interface Case { failed: boolean; text: string }
const results = new Map<string, Case>();

describe("python host", () => {
  beforeAll(() => {
    const r = Bun.spawnSync([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", `--junitxml=${JUNIT}`, "python/tests"], { cwd: REPO, env: env(), timeout: 600_000 });
    if (!existsSync(JUNIT)) throw new Error(`pytest wrote no report: ${r.stdout}\n${r.stderr}`);
    const xml = readFileSync(JUNIT, "utf8");
    for (const m of xml.matchAll(/<testcase classname="([^"]*)" name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
      const file = `${m[1]!.split(".").pop()}.py`;
      const body = m[4] ?? "";
      results.set(`${file}::${m[2]!.replace(/&quot;/g, '"').replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">")}`, { failed: /<(failure|error)\b/.test(body), text: body.slice(0, 4000) });
    }
  }, 600_000);

  test("the package installs with pip and imports from site-packages, not the source tree", () => {
    const r = Bun.spawnSync([PY, "-c", "import vsock_guest_exec as v; print(v.__file__)"], { cwd: "/" });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toContain("site-packages/vsock_guest_exec/__init__.py");
  });

  test("mypy --strict is clean on the package", () => {
    const r = Bun.spawnSync([PY, "-m", "mypy", "--strict", "--config-file", "python/pyproject.toml", "python/src/vsock_guest_exec"], { cwd: REPO, timeout: 300_000 });
    expect(r.stdout.toString()).toContain("Success");
  }, 300_000);

  test("pytest collected the suite", () => {
    expect(ids.length).toBeGreaterThan(50);
  });

  for (const id of ids) {
    test(id, () => {
      const c = results.get(id);
      if (!c) throw new Error(`pytest reported nothing for ${id}`);
      if (c.failed) throw new Error(c.text);
    });
  }
});
