#!/usr/bin/env bun
// `bun bench/profile.ts [--n N] [--out DIR]`: where the per-exec time goes. Runs the agent from source
// under `bun --cpu-prof` (listen mode, Unix socket), drives N sequential `/bin/true` executions through
// the host library in this process (itself profiled when run as `bun --cpu-prof bench/profile.ts`), then
// ends the agent with SIGTERM (it exits normally, so the profile is written). Profiles (.cpuprofile and
// a Markdown summary) land in --out (default a temp folder, printed).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { connect } from "../src/host/index.ts";
import { ROOT } from "../test/helpers/build.ts";
import { start, waitUnix } from "./_procs.ts";

const { values: opt } = parseArgs({ options: { n: { type: "string", default: "2000" }, out: { type: "string" } } });
const N = Number(opt.n);
const out = opt.out ?? mkdtempSync(join(tmpdir(), "vge-prof-"));
const sock = join(out, "agent.sock");
const agent = start(["bun", "--cpu-prof", "--cpu-prof-md", "--cpu-prof-dir", out, "--cpu-prof-name", "agent.cpuprofile", "--cpu-prof-interval", "250", join(ROOT, "src/agent/main.ts"), "--listen", "--unix", sock], { timeoutMs: 300_000, stderr: "inherit" });
await waitUnix(sock, 20_000, 5);
const guest = await connect(`unix:${sock}`);
await guest.run(["/bin/true"]);
const t0 = performance.now();
for (let i = 0; i < N; i++) await guest.run(["/bin/true"]);
const ms = performance.now() - t0;
guest.close();
agent.kill("SIGTERM");
await agent.exited;
console.log(`${N} execs in ${ms.toFixed(0)} ms (${(ms / N).toFixed(2)} ms each); profiles in ${out}`);
