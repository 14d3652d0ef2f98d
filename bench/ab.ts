#!/usr/bin/env bun
// `bun bench/ab.ts AGENT_A AGENT_B [--n N]`: two agent binaries side by side, interleaved exec by exec
// (/bin/true through the host library, one connection each), with a local Bun.spawn in the same rotation:
// the before/after rows of bench/README.md on a shared machine, where only interleaved ratios mean much.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { connect } from "../src/host/index.ts";
import { start, stop, waitUnix } from "./_procs.ts";
import { summarize } from "./_stats.ts";
import { V2Conn } from "./_v2.ts";

const { values: opt, positionals } = parseArgs({ allowPositionals: true, options: { n: { type: "string", default: "1000" }, argv: { type: "string", default: "/bin/true" }, stream: { type: "string" }, get: { type: "boolean", default: false }, lean: { type: "boolean", default: false } } });
if (positionals.length !== 2) throw new Error("usage: bun bench/ab.ts AGENT_A AGENT_B [--n N] [--stream MIB [--lean | --get]] [--argv 'CMD ARGS']");
const n = Number(opt.n);
const argv = opt.argv!.split(" ");
const dir = mkdtempSync(join(tmpdir(), "vge-ab-"));
const agents = await Promise.all(
  positionals.map(async (bin, i) => {
    const sock = join(dir, `a${i}.sock`);
    const proc = start([bin, "--listen", "--unix", sock], { timeoutMs: 600_000 });
    await waitUnix(sock, 10_000, 5);
    const lean = opt.lean ? await V2Conn.connect(sock) : undefined;
    await lean?.hello();
    return { proc, guest: await connect(`unix:${sock}`), lean };
  }),
);
async function local(): Promise<void> {
  const p = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "ignore" });
  await Promise.all([new Response(p.stdout).text(), p.exited]);
}
/** CPU time (ms, all threads) and voluntary context switches (wake-ups) of a process so far. */
function usage(pid: number): { cpuMs: number; wakes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuMs = ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
  let wakes = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${t}/status`, "utf8"));
    wakes += Number(m?.[1] ?? 0);
  }
  return { cpuMs, wakes };
}

if (opt.stream) {
  // --stream MIB: `head -c MIB /dev/zero` through each agent in turn, stdout read by the host library
  // (--lean: by bench/_v2.ts's lean client, so that the rows are the agent's data path alone).
  const bytes = Number(opt.stream) * 1024 * 1024;
  const drain = async (s: ReadableStream<Uint8Array>) => {
    let k = 0;
    for await (const c of s) k += c.byteLength;
    return k;
  };
  const rates: number[][] = [[], []];
  // --get: a GET of a file of MIB zeros instead (written once, through the first agent).
  const getPath = join(dir, "get.bin");
  if (opt.get) await agents[0]!.guest.putFile(getPath, new Blob([new Uint8Array(bytes)]).stream(), { size: bytes });
  const u0 = agents.map((a) => usage(a.proc.pid));
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 2; k++) {
      const j = (i + k) % 2;
      const t0 = performance.now();
      let got: number;
      const lean = agents[j]!.lean;
      if (opt.get) {
        const f = agents[j]!.guest.getFile(getPath, { maxSize: bytes });
        [got] = await Promise.all([drain(f.stream), f.done]);
      } else if (lean) got = (await lean.exec(i + 1, { argv: ["head", "-c", String(bytes), "/dev/zero"] }, 120_000)).stdout;
      else {
        const p = agents[j]!.guest.exec(["head", "-c", String(bytes), "/dev/zero"], { stdin: "closed" });
        [got] = await Promise.all([drain(p.stdout), drain(p.stderr), p.exited]);
      }
      if (got !== bytes) throw new Error(`moved ${got} bytes, not ${bytes}`);
      rates[j]!.push(bytes / 1024 / 1024 / ((performance.now() - t0) / 1000));
    }
  }
  const u1 = agents.map((a) => usage(a.proc.pid));
  agents.forEach((_, i) => {
    const gib = (n * bytes) / 2 ** 30;
    const s = summarize(rates[i]!);
    console.log(`${"AB"[i]} ${positionals[i]}: ${opt.get ? "GET" : "stdout"} median ${s.median.toFixed(0)} MiB/s (max ${s.max.toFixed(0)}); agent CPU ${((u1[i]!.cpuMs - u0[i]!.cpuMs) / gib).toFixed(0)} ms/GiB, ${((u1[i]!.wakes - u0[i]!.wakes) / gib).toFixed(0)} wake-ups/GiB`);
  });
  for (const x of agents) {
    x.guest.close();
    x.lean?.close();
    await stop(x.proc);
  }
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

const ops = [local, () => agents[0]!.guest.run(argv), () => agents[1]!.guest.run(argv)];
const times: number[][] = [[], [], []];
for (const op of ops) await op();
const before = agents.map((a) => usage(a.proc.pid));
for (let i = 0; i < n; i++) {
  // Rotate the order, so that none of the three always follows the same one.
  for (let k = 0; k < 3; k++) {
    const j = (i + k) % 3;
    const t0 = performance.now();
    await ops[j]!();
    times[j]!.push(performance.now() - t0);
  }
}
const [l, a, b] = times.map(summarize);
const f = (x: number) => x.toFixed(3);
console.log(`local spawn: median ${f(l!.median)} p99 ${f(l!.p99)} ms`);
console.log(`A ${positionals[0]}: median ${f(a!.median)} (${(a!.median / l!.median).toFixed(2)}× local) p99 ${f(a!.p99)} (${(a!.p99 / l!.p99).toFixed(2)}×)`);
console.log(`B ${positionals[1]}: median ${f(b!.median)} (${(b!.median / l!.median).toFixed(2)}× local) p99 ${f(b!.p99)} (${(b!.p99 / l!.p99).toFixed(2)}×)`);
const after = agents.map((a) => usage(a.proc.pid));
agents.forEach((_, i) => {
  const cpu = (after[i]!.cpuMs - before[i]!.cpuMs) / n;
  const wakes = (after[i]!.wakes - before[i]!.wakes) / n;
  console.log(`${"AB"[i]} agent per exec: CPU ${cpu.toFixed(3)} ms, ${wakes.toFixed(2)} wake-ups (voluntary context switches, all threads)`);
});
console.log(`B / A: median ${(b!.median / a!.median).toFixed(3)}, p99 ${(b!.p99 / a!.p99).toFixed(3)}`);
for (const x of agents) {
  x.guest.close();
  await stop(x.proc);
}
rmSync(dir, { recursive: true, force: true });
process.exit(0);
