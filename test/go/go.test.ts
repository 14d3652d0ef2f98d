// The Go host module (go/): `go vet` and `go test -race` run once, and every Go test becomes a visible bun
// test (its pass or failure, and its output when it failed), so scripts/test.sh's junit totals count them.
// The Go tests run the compiled agent (built here first if stale) over Unix sockets, never AF_VSOCK.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT, agentBinary } from "../helpers/build.ts";

const GO_DIR = join(ROOT, "go");

/** /usr/lib/go-1.2x/bin of Debian's newest golang-1.2x-go package, if one is installed. */
function newestDebianGo(): string {
  try {
    const v = readdirSync("/usr/lib").filter((d) => /^go-1\.\d+$/.test(d)).sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
    return v.length ? `/usr/lib/${v[v.length - 1]}/bin` : "";
  } catch {
    return "";
  }
}
// CI machines carry Go in /usr/local/go (scripts/guest-deps.sh installs Debian's otherwise).
const PATH = `${process.env.PATH ?? ""}:/usr/local/go/bin:${newestDebianGo()}`;
const GO = Bun.which("go", { PATH });

interface GoEvent {
  Action: string;
  Package: string;
  Test?: string;
  Output?: string;
  Elapsed?: number;
}

interface Outcome {
  action: string;
  output: string;
  elapsed: number;
}

function run(args: string[], timeoutMs: number, env: Record<string, string> = {}) {
  return Bun.spawnSync([GO!, ...args], {
    cwd: GO_DIR,
    env: { ...process.env, PATH, GOFLAGS: "-buildvcs=false", ...env },
    stdout: "pipe",
    stderr: "pipe",
    timeout: timeoutMs,
  });
}

let vet: ReturnType<typeof run> | undefined;
const outcomes = new Map<string, Outcome>();
const packages = new Map<string, Outcome>();
let runError = "";

if (GO) {
  vet = run(["vet", "./..."], 300_000);
  // The agent binary the conformance tests spawn; VGE_REQUIRE_AGENT makes a missing one a failure.
  const agent = agentBinary();
  const r = run(["test", "-race", "-count=1", "-json", "-timeout", "540s", "./..."], 600_000, { VGE_AGENT_BINARY: agent, VGE_REQUIRE_AGENT: "1" });
  for (const line of r.stdout.toString().split("\n")) {
    if (!line.startsWith("{")) continue;
    const e = JSON.parse(line) as GoEvent;
    const key = e.Test ? `${e.Package} ${e.Test}` : e.Package;
    const map = e.Test ? outcomes : packages;
    const o = map.get(key) ?? { action: "run", output: "", elapsed: 0 };
    if (e.Output && o.output.length < 64 * 1024) o.output += e.Output;
    if (e.Action === "pass" || e.Action === "fail" || e.Action === "skip") {
      o.action = e.Action;
      o.elapsed = e.Elapsed ?? 0;
    }
    map.set(key, o);
  }
  if (r.exitCode !== 0 && outcomes.size === 0) runError = `go test exited ${r.exitCode}:\n${r.stdout.toString().slice(-8000)}${r.stderr.toString().slice(-8000)}`;
}

describe("Go host module (go/)", () => {
  test("go is installed (scripts/guest-deps.sh installs it)", () => {
    expect(GO ? "found" : `go not on PATH (${PATH})`).toBe("found");
    expect(existsSync(join(GO_DIR, "go.mod"))).toBe(true);
  });

  test("go vet ./... is clean", () => {
    if (!vet) throw new Error("go is missing");
    expect(`${vet.stdout.toString()}${vet.stderr.toString()}`.trim()).toBe("");
    expect(vet.exitCode).toBe(0);
  });

  test("go test ran", () => {
    expect(runError).toBe("");
    expect(outcomes.size).toBeGreaterThan(20);
  });

  for (const [pkg, o] of packages) {
    test(`package ${pkg.replace(/^github\.com\/vsock-guest-exec\/vge-go/, "vge-go")}`, () => {
      if (o.action !== "pass") throw new Error(`${o.action}\n${o.output}`);
    });
  }

  // Subtests (vectors, tables) are counted in their parent: one bun test per top-level Go test.
  for (const [key, o] of outcomes) {
    const [pkg, name] = key.split(" ") as [string, string];
    if (name.includes("/")) continue;
    const short = pkg.replace(/^github\.com\/vsock-guest-exec\/vge-go/, "vge-go");
    test(`${short} ${name} (${o.elapsed}s)`, () => {
      if (o.action === "skip" && process.env.CI) throw new Error(`skipped in CI:\n${o.output}`);
      if (o.action === "fail" || o.action === "run") throw new Error(`${o.action}\n${o.output}`);
    });
  }
});
