#!/usr/bin/env bun
// `bun bench/ab-host.ts SRC_A SRC_B [--mib N] [--n N] [--ops stdout,stdin,put,get]`: two host libraries
// (two `src` trees, e.g. one from `git archive BASE src`) side by side against the same compiled agent,
// interleaved run by run: the before/after rows of a host-library cut (bench/README.md). ab.ts does the
// same for two agent binaries.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { count, zeros } from "./_bytes.ts";
import { start, stop, waitUnix } from "./_procs.ts";
import { summarize } from "./_stats.ts";

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: { mib: { type: "string", default: "64" }, n: { type: "string", default: "5" }, ops: { type: "string", default: "stdout,stdin,put,get" }, agent: { type: "string", default: "dist/vsock_guest_exec-linux-x64" }, "agent-b": { type: "string" } },
});
if (positionals.length !== 2) throw new Error("usage: bun bench/ab-host.ts SRC_A SRC_B [--mib N] [--n N] [--ops stdout,stdin,put,get]");
const N = Number(opt.mib) * 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), "vge-abh-"));
// --agent-b: B's library talks to a second agent binary (SRC_A SRC_B may then be the same tree): an A/B
// of two agent builds on all four streams.
const agentBins = [opt.agent!, opt["agent-b"] ?? opt.agent!];
const socks = agentBins.map((_, i) => join(dir, `a${i}.sock`));
const procs = agentBins.slice(0, opt["agent-b"] ? 2 : 1).map((bin, i) => start([resolve(bin), "--listen", "--unix", socks[i]!], { timeoutMs: 900_000 }));
for (let i = 0; i < procs.length; i++) await waitUnix(socks[i]!, 10_000, 5);
if (procs.length === 1) socks[1] = socks[0]!;
type G = Awaited<ReturnType<typeof import("../src/host/index.ts").connect>>;
const guests: G[] = [];
for (const [i, src] of positionals.entries()) {
  const lib = (await import(resolve(src, "host/index.ts"))) as typeof import("../src/host/index.ts");
  guests.push(await lib.connect(`unix:${socks[i]}`));
}
const files = [join(dir, "f0.bin"), join(dir, "f1.bin")];
let file = files[0]!;
const ops: Record<string, (g: G) => Promise<number>> = {
  async stdout(g) {
    const p = g.exec(["head", "-c", String(N), "/dev/zero"], { stdin: "closed" });
    const [n] = await Promise.all([count(p.stdout), count(p.stderr), p.exited]);
    return n;
  },
  async stdin(g) {
    const r = await g.run(["wc", "-c"], { input: zeros(N) });
    return Number(r.stdoutText.trim());
  },
  async put(g) {
    return (await g.putFile(file, zeros(N), { size: N })).size;
  },
  async get(g) {
    const f = g.getFile(file, { maxSize: N });
    const [n] = await Promise.all([count(f.stream), f.done]);
    return n;
  },
};
const names = opt.ops!.split(",");
if (names.includes("get"))
  for (const [i, f] of files.entries()) {
    file = f;
    await ops.put!(guests[i]!);
  }
const rates: Record<string, number[][]> = Object.fromEntries(names.map((k) => [k, [[], []]]));
/** This process's CPU time (user + system, ms) per op and library: the host library's own cost. */
const cpu: Record<string, number[]> = Object.fromEntries(names.map((k) => [k, [0, 0]]));
/** The agent's CPU time (ms, all threads) per op, when each library has its own agent (--agent-b). */
const agentCpu: Record<string, number[]> = Object.fromEntries(names.map((k) => [k, [0, 0]]));
function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, clock ticks of 10 ms
}
for (let i = 0; i < Number(opt.n); i++) {
  for (const k of names) {
    for (let s = 0; s < 2; s++) {
      const j = (i + s) % 2;
      file = files[j]!;
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const a0 = procs.length === 2 ? cpuMsOf(procs[j]!.pid) : 0;
      const got = await ops[k]!(guests[j]!);
      const c1 = process.cpuUsage(c0);
      if (procs.length === 2) agentCpu[k]![j]! += cpuMsOf(procs[j]!.pid) - a0;
      cpu[k]![j]! += (c1.user + c1.system) / 1000;
      if (got !== N) throw new Error(`${k}: moved ${got} bytes, not ${N}`);
      rates[k]![j]!.push(N / 2 ** 20 / ((performance.now() - t0) / 1000));
    }
  }
}
for (const k of names) {
  const [a, b] = rates[k]!.map(summarize);
  const gib = (Number(opt.n) * N) / 2 ** 30;
  const [ca, cb] = cpu[k]!.map((ms) => (ms / gib).toFixed(0));
  const [aa, ab] = agentCpu[k]!.map((ms) => (procs.length === 2 ? `; agent ${(ms / gib).toFixed(0)}` : ""));
  console.log(`${k.padEnd(6)} A median ${a!.median.toFixed(0)} max ${a!.max.toFixed(0)} MiB/s, ${ca}${aa} ms CPU/GiB | B median ${b!.median.toFixed(0)} max ${b!.max.toFixed(0)} MiB/s, ${cb}${ab} ms CPU/GiB | B/A median ${(b!.median / a!.median).toFixed(2)} max ${(b!.max / a!.max).toFixed(2)}`);
}
for (const g of guests) g.close();
for (const p of procs) await stop(p);
rmSync(dir, { recursive: true, force: true });
process.exit(0);
