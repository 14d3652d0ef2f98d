#!/usr/bin/env bun
// `bun bench/profile-stream.ts [--mib N] [--n N] [--what stdout|put|stdin] [--out DIR]`: where the agent's
// time goes while it streams. The agent runs from source under `bun --cpu-prof` (listen mode, Unix socket).
// stdout: bench/_v2.ts's lean client reads N executions' stdout of `head -c MIB /dev/zero`, so that the
// profile is the agent's data path alone; put and stdin: the host library sends MIB zeros N times.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "../test/helpers/build.ts";
import { start, waitUnix } from "./_procs.ts";
import { V2Conn } from "./_v2.ts";
import { connect } from "../src/host/index.ts";
import { zeros } from "./_bytes.ts";

const { values: opt } = parseArgs({ options: { mib: { type: "string", default: "256" }, n: { type: "string", default: "8" }, out: { type: "string" }, what: { type: "string", default: "stdout" } } });
const bytes = Number(opt.mib) * 1024 * 1024;
const out = opt.out ?? mkdtempSync(join(tmpdir(), "vge-prof-"));
const sock = join(out, "agent.sock");
const agent = start(["bun", "--cpu-prof", "--cpu-prof-md", "--cpu-prof-dir", out, "--cpu-prof-name", "agent.cpuprofile", "--cpu-prof-interval", "250", join(ROOT, "src/agent/main.ts"), "--listen", "--unix", sock], { timeoutMs: 300_000, stderr: "inherit" });
await waitUnix(sock, 20_000, 5);
const lean = await V2Conn.connect(sock);
await lean.hello();
const guest = await connect(`unix:${sock}`);
const t0 = performance.now();
for (let i = 1; i <= Number(opt.n); i++) {
  let got: number;
  if (opt.what === "put") got = (await guest.putFile(join(out, "put.bin"), zeros(bytes), { size: bytes })).size;
  else if (opt.what === "stdin") got = Number((await guest.run(["wc", "-c"], { input: zeros(bytes) })).stdoutText.trim());
  else got = (await lean.exec(i, { argv: ["head", "-c", String(bytes), "/dev/zero"] }, 120_000)).stdout;
  if (got !== bytes) throw new Error(`moved ${got} bytes, not ${bytes}`);
}
const ms = performance.now() - t0;
lean.close();
guest.close();
agent.kill("SIGTERM");
await agent.exited;
console.log(`${((Number(opt.n) * bytes) / 2 ** 20 / (ms / 1000)).toFixed(0)} MiB/s; profiles in ${out}`);
